"""Load ``airflow_settings.yaml`` (the Astro CLI schema) the way ``astro dev start`` does: through Airflow's
REST API, after the API server's health check.

This mirrors ``settings/settings.go`` of the Astro CLI, identical in the releases v1.42.0 to v1.45.0:

- ``InitSettings``: viper reads the file; viper lower-cases every mapping key at every depth (``conn_extra``
  keys included) and decodes weakly (a number where a string is expected becomes its text, ``"5432"`` where a
  number is expected becomes 5432, an empty value is "" or 0).
- ``ConfigSettings`` -> ``AddPools``, then ``AddVariables``, then ``AddConnections``; each entry goes through
  ``airflowAPIUpsert``: ``POST {api}/{resource}``; on 409 ``PATCH {api}/{resource}/{id}{suffix}`` with the same
  body; any other status fails the whole load (``astro dev start`` then exits with that error).
- Connections: no ``conn_id``: skipped silently; neither ``conn_type`` nor ``conn_uri``: skipped with
  "Skipping <id>: conn_type or conn_uri must be specified."; a ``conn_uri`` with no other field
  (type, host, login, password, schema, port) is parsed into the fields (``parseConnectionURI``; its query
  becomes the extra and ``conn_extra`` is ignored); otherwise the URI is ignored and only the non-empty fields
  are sent (``connectionToAPIObject``); ``conn_extra`` as a mapping is sent as its JSON text, as a string as is.
- Pools: no name or ``pool_slot`` 0: skipped; the body has ``include_deferred: false``; ``default_pool`` is
  PATCHed with ``?update_mask=slots&update_mask=include_deferred``.
- Variables: no name or an empty value: skipped.
- Auth (``airflow/docker.go`` ``airflowAuthHeader``): ``POST /auth/token`` with admin/admin, "Bearer <token>";
  on any failure no Authorization header at all. The Astro runtime sets
  ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True``, where any credentials get a token; ``make run`` does
  not, so it passes the generated admin password instead.

Where this differs on purpose: an unreadable file or a value viper cannot decode raises ``SettingsError`` (the
CLI logs it at debug level and loads nothing, without an error).

``rewrites`` replaces strings in each connection's host, URI and extra values: the Docker service hosts of the
Astro project (minio, fake-gcs, azurite) become the 127.0.0.1 servers of ``make run``.

``python -m localdev.settings_loader airflow_settings.yaml [--rewrite OLD=NEW ...]`` writes the same entries
straight into the metadata database of AIRFLOW_HOME (for ``make demo`` and the tests, which run no API
server); ``--api http://127.0.0.1:PORT [--password P]`` loads them through the REST API instead.
"""

from __future__ import annotations

import argparse
import json
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

# The release whose settings loader this mirrors (the logic is the same from v1.42.0 on).
ASTRO_CLI_VERSION = "1.45.0"


class SettingsError(ValueError):
    pass


class LoadError(RuntimeError):
    pass


# --- reading the file as viper (yaml.v3 + mapstructure's weak decoding) does ------------------------------


class _Yaml12Loader(yaml.SafeLoader):
    """YAML as Go's yaml.v3 reads untagged scalars: only true/false are booleans (no yes/no/on/off), no
    base-60 numbers, timestamps stay text."""


_DROPPED = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# yaml.v3: strconv.ParseInt(text without "_", 0, 64), then its float pattern, .inf and .nan.
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _lower_keys(value: Any) -> Any:
    """viper's ``insensitiviseMap``: every mapping key lower-cased, at every depth, inside lists too."""
    if isinstance(value, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def _go_float_text(value: float) -> str:
    """strconv.FormatFloat(value, 'f', -1, 64)."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _weak_string(value: Any, where: str) -> str:
    """mapstructure's weak decoding into a Go string field."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float_text(value)
    if isinstance(value, str):
        return value
    raise SettingsError(f"{where}: expected text, got {type(value).__name__} (the Astro CLI loads nothing then)")


def _go_parse_int(text: str) -> int:
    """strconv.ParseInt(text, 0, 64): 0x/0o/0b prefixes, and a leading 0 means octal."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    lowered = body.lower()
    if lowered.startswith(("0x", "0o", "0b")):
        return sign * int(body, 0)
    if len(body) > 1 and body.startswith("0"):
        return sign * int(body, 8)
    return sign * int(body)


def _weak_int(value: Any, where: str) -> int:
    """mapstructure's weak decoding into a Go int field."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return _go_parse_int(value) if value else 0
        except ValueError:
            pass
    raise SettingsError(f"{where}: expected a whole number, got {value!r} (the Astro CLI loads nothing then)")


def read_settings(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The file's ``airflow`` section as viper hands it to the CLI: keys lower-cased, lists of mappings."""
    try:
        doc = yaml.load(path.read_text(), Loader=_Yaml12Loader) or {}  # a SafeLoader
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"Cannot read {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise SettingsError(f"{path}: the file must be a mapping with the key 'airflow'")
    section = _lower_keys(doc).get("airflow") or {}
    if not isinstance(section, dict):
        raise SettingsError(f"{path}: top-level key 'airflow' must be a mapping")
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in ("connections", "pools", "variables"):
        items = section.get(kind) or []
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise SettingsError(f"{path}: airflow.{kind} must be a list of mappings")
        out[kind] = items
    return out


# --- the request bodies, as settings.go builds them --------------------------------------------------------


def _go_json_float(value: float) -> str:
    """encoding/json's text of a float64: 'f' form in [1e-6, 1e21), else 'e' form with a short exponent."""
    if value == 0 or 1e-6 <= abs(value) < 1e21:
        return _go_float_text(value)
    mantissa, _, exponent = repr(value).partition("e")
    return f"{mantissa}e{exponent[0]}{exponent[1:].lstrip('0') or '0'}"


def go_json(value: Any) -> str:
    """JSON text as Go's encoding/json.Marshal writes maps of strings, numbers, booleans, lists and maps: keys
    sorted, no spaces, UTF-8 kept, <, > and & escaped, floats in Go's form (1.0 -> 1, 1e-07 -> 1e-7)."""
    floats: list[str] = []

    def norm(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, float) and v == v and abs(v) != float("inf"):
            floats.append(_go_json_float(v))
            return f"\0go-float-{len(floats) - 1}\0"
        return v

    # NaN and infinities raise ValueError, as json.Marshal fails on them.
    text = json.dumps(norm(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    for i, number in enumerate(floats):
        text = text.replace(f'"\\u0000go-float-{i}\\u0000"', number, 1)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028")):
        text = text.replace(char, escaped)
    return text.replace("\u2029", "\\u2029")


def extra_string(extra: Any) -> str:
    """settings.go ``jsonString``: a string as is, a mapping as JSON, anything else (none, a list, a number)
    or a mapping JSON cannot hold (NaN) as "" (then no extra is sent)."""
    if isinstance(extra, str):
        return extra
    if isinstance(extra, dict):
        try:
            return go_json(extra)
        except ValueError:
            return ""
    return ""


def parse_connection_uri(uri: str, obj: dict[str, Any]) -> None:
    """settings.go ``parseConnectionURI``: scheme -> conn_type, host (as written, not lower-cased),
    login/password, port, path -> schema, query -> extra (values of a repeated key joined with ",")."""
    try:
        parts = urllib.parse.urlsplit(uri)
        port = parts.port
    except ValueError:
        return
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if hostport.startswith("["):
        host = hostport[1 : hostport.find("]")]
    else:
        host = hostport.rpartition(":")[0] if ":" in hostport else hostport
    obj["conn_type"] = parts.scheme
    obj["host"] = urllib.parse.unquote(host)
    if at:
        login, colon, secret = userinfo.partition(":")
        obj["login"] = urllib.parse.unquote(login)
        if colon:
            obj["password"] = urllib.parse.unquote(secret)
    if port is not None:
        obj["port"] = port
    if parts.path:
        obj["schema"] = urllib.parse.unquote(parts.path).removeprefix("/")
    if parts.query:
        values: dict[str, list[str]] = {}
        for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
            values.setdefault(key, []).append(value)
        obj["extra"] = go_json({key: ",".join(vals) for key, vals in values.items()})


def _rewrite_text(text: str, rewrites: dict[str, str]) -> str:
    for old, new in rewrites.items():
        text = text.replace(old, new)
    return text


def _rewrite_values(value: Any, rewrites: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _rewrite_text(value, rewrites)
    if isinstance(value, dict):
        return {k: _rewrite_values(v, rewrites) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite_values(v, rewrites) for v in value]
    return value


def connection_to_api_object(conn: dict[str, Any], rewrites: dict[str, str] | None = None) -> dict[str, Any]:
    """settings.go ``connectionToAPIObject`` for one decoded connection (``_decode_connection``)."""
    rewrites = rewrites or {}
    obj: dict[str, Any] = {"connection_id": conn["conn_id"]}
    names = ("conn_type", "conn_host", "conn_login", "conn_password", "conn_schema")
    has_fields = any(conn[name] for name in names) or conn["conn_port"] != 0
    if conn["conn_uri"] and not has_fields:
        parse_connection_uri(_rewrite_text(conn["conn_uri"], rewrites), obj)
        return obj
    if conn["conn_type"]:
        obj["conn_type"] = conn["conn_type"]
    if conn["conn_host"]:
        obj["host"] = _rewrite_text(conn["conn_host"], rewrites)
    if conn["conn_login"]:
        obj["login"] = conn["conn_login"]
    if conn["conn_password"]:
        obj["password"] = conn["conn_password"]
    if conn["conn_schema"]:
        obj["schema"] = conn["conn_schema"]
    if conn["conn_port"] != 0:
        obj["port"] = conn["conn_port"]
    extra = extra_string(_rewrite_values(conn["conn_extra"], rewrites))
    if extra:
        obj["extra"] = extra
    return obj


@dataclass(frozen=True)
class Upsert:
    """One ``airflowAPIUpsert`` call: POST ``{api}/{resource}``, on 409 PATCH ``{api}/{resource}/{id}{suffix}``."""

    resource: str  # "pools", "variables" or "connections"
    id: str
    body: dict[str, Any]
    update_suffix: str = ""

    def body_bytes(self) -> bytes:
        return go_json(self.body).encode()


@dataclass
class Plan:
    """What ``ConfigSettings`` sends for a settings file, in its order: pools, variables, connections."""

    pools: list[Upsert] = field(default_factory=list)
    variables: list[Upsert] = field(default_factory=list)
    connections: list[Upsert] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # the CLI's "Skipping ..." lines

    def upserts(self) -> list[Upsert]:
        return [*self.pools, *self.variables, *self.connections]


def _decode_connection(item: dict[str, Any]) -> dict[str, Any]:
    """One ``airflow.connections`` entry decoded into the CLI's ``Connection`` struct (settings/types.go)."""
    conn_id = _weak_string(item.get("conn_id"), "conn_id")
    where = f"connection {conn_id}"
    conn: dict[str, Any] = {
        name: _weak_string(item.get(name), f"{where}: {name}")
        for name in ("conn_type", "conn_host", "conn_schema", "conn_login", "conn_password", "conn_uri")
    }
    conn["conn_id"] = conn_id
    conn["conn_port"] = _weak_int(item.get("conn_port"), f"{where}: conn_port")
    conn["conn_extra"] = item.get("conn_extra")
    return conn


def _decode_pool(item: dict[str, Any]) -> dict[str, Any]:
    name = _weak_string(item.get("pool_name"), "pool_name")
    return {
        "pool_name": name,
        "pool_slot": _weak_int(item.get("pool_slot"), f"pool {name}: pool_slot"),
        "pool_description": _weak_string(item.get("pool_description"), f"pool {name}: pool_description"),
    }


def _decode_variable(item: dict[str, Any]) -> dict[str, Any]:
    name = _weak_string(item.get("variable_name"), "variable_name")
    return {
        "variable_name": name,
        "variable_value": _weak_string(item.get("variable_value"), f"variable {name}: variable_value"),
    }


def plan(path: Path, rewrites: dict[str, str] | None = None) -> Plan:
    """Read ``path`` and build the requests ``astro dev start`` sends for it (every entry is decoded first:
    one that cannot be decoded stops everything, as in the CLI)."""
    settings = read_settings(path)
    pools = [_decode_pool(item) for item in settings["pools"]]
    variables = [_decode_variable(item) for item in settings["variables"]]
    connections = [_decode_connection(item) for item in settings["connections"]]
    out = Plan()
    for pool in pools:  # AddPools
        name, slots = pool["pool_name"], pool["pool_slot"]
        if not name:
            continue
        if slots == 0:
            out.skipped.append(f"Skipping {name}: Pool Slot must be set.")
            continue
        body = {"name": name, "slots": slots, "description": pool["pool_description"], "include_deferred": False}
        suffix = "?update_mask=slots&update_mask=include_deferred" if name == "default_pool" else ""
        out.pools.append(Upsert("pools", name, body, suffix))
    for variable in variables:  # AddVariables
        key, value = variable["variable_name"], variable["variable_value"]
        if not key:
            if value:
                out.skipped.append("Skipping Variable Creation: No Variable Name Specified.")
            continue
        if not value:
            continue
        out.variables.append(Upsert("variables", key, {"key": key, "value": value}))
    for conn in connections:  # AddConnections
        if not conn["conn_id"]:
            continue
        if not conn["conn_type"] and not conn["conn_uri"]:
            out.skipped.append(f"Skipping {conn['conn_id']}: conn_type or conn_uri must be specified.")
            continue
        out.connections.append(Upsert("connections", conn["conn_id"], connection_to_api_object(conn, rewrites)))
    return out


# --- sending them ------------------------------------------------------------------------------------------

Request = Callable[..., tuple[int, bytes]]


@dataclass(frozen=True)
class Outcome:
    resource: str
    id: str
    method: str  # the request that succeeded: "POST" (created) or "PATCH" (existed, updated)
    status: int

    def line(self) -> str:
        kind = {"pools": "Pool", "variables": "Variable", "connections": "Connection"}[self.resource]
        return f"Added {kind}: {self.id} ({self.method} {self.status})"


def _default_request() -> Request:
    from localdev.airflow_api import request

    return request


def upsert(api_url: str, auth_header: str, item: Upsert, request: Request | None = None) -> Outcome:
    """settings.go ``airflowAPIUpsert``."""
    request = request or _default_request()
    body = item.body_bytes()
    status, answer = request(f"{api_url}/{item.resource}", "POST", auth_header, body)
    if 200 <= status < 300:
        return Outcome(item.resource, item.id, "POST", status)
    if status == 409:
        url = f"{api_url}/{item.resource}/{item.id}{item.update_suffix}"
        status, answer = request(url, "PATCH", auth_header, body)
        if 200 <= status < 300:
            return Outcome(item.resource, item.id, "PATCH", status)
        raise LoadError(f"error updating {item.resource} {item.id} (HTTP {status}): {answer.decode(errors='replace')}")
    raise LoadError(f"error creating {item.resource} {item.id} (HTTP {status}): {answer.decode(errors='replace')}")


def load_via_api(api_url: str, auth_header: str, settings: Plan, request: Request | None = None) -> list[Outcome]:
    """settings.go ``ConfigSettings`` with pools, variables and connections: every upsert in order; the first
    failure stops the load with the CLI's message (``LoadError``). ``api_url`` ends in ``/api/v2``."""
    return [upsert(api_url, auth_header, item, request) for item in settings.upserts()]


def auth_header(root_url: str, password: str = "admin", request: Request | None = None) -> str:
    """airflow/docker.go ``fetchAirflowJWTToken``: "Bearer <token>" from ``POST {root}/auth/token`` as admin,
    or "" when that fails (the CLI then sends no Authorization header)."""
    request = request or _default_request()
    body = json.dumps({"password": password, "username": "admin"}).encode()
    try:
        status, answer = request(f"{root_url}/auth/token", "POST", "", body)
        if status not in (200, 201):
            return ""
        return "Bearer " + json.loads(answer)["access_token"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""


# --- the same entries for callers without an API server ---------------------------------------------------


def parse_settings(path: Path, rewrites: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """The entries ``plan`` sends, as plain rows: connections (conn_id, conn_type, host, schema, login,
    password, port, extra: None where the CLI sends nothing), pools (name, slots, description) and variables
    (key, value)."""
    p = plan(path, rewrites)
    connections = [
        {
            "conn_id": item.id,
            "conn_type": item.body.get("conn_type"),
            **{name: item.body.get(name) for name in ("host", "schema", "login", "password", "port", "extra")},
        }
        for item in p.connections
    ]
    pools = [{k: item.body[k] for k in ("name", "slots", "description")} for item in p.pools]
    variables = [dict(item.body) for item in p.variables]
    return {"connections": connections, "pools": pools, "variables": variables}


def connection_env(ports: dict[str, int], **overrides: str) -> dict[str, str]:
    """The connections of ``airflow_settings.yaml`` as ``AIRFLOW_CONN_<ID>`` env vars (JSON), pointed at
    the local servers on ``ports`` (how a worker without the metadata database would see them)."""
    from localdev import config

    rewrites = config.host_rewrites({"pokeapi": 1, **ports})
    env = {}
    for conn in parse_settings(config.REPO / "airflow_settings.yaml", rewrites)["connections"]:
        doc = {k: v for k, v in conn.items() if k != "conn_id" and v is not None}
        if "extra" in doc:
            doc["extra"] = json.loads(doc["extra"])
        env[f"AIRFLOW_CONN_{conn['conn_id'].upper()}"] = json.dumps(doc)
    env.update(overrides)
    return env


def load_into_airflow(settings: dict[str, list[dict[str, Any]]]) -> None:
    """Write the parsed settings to the metadata database of the current AIRFLOW_HOME (connections replaced)."""
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        for item in settings["connections"]:
            session.query(Connection).filter(Connection.conn_id == item["conn_id"]).delete()
            session.add(Connection(**item))
        for item in settings["variables"]:
            Variable.set(item["key"], item["value"], session=session)
    for item in settings["pools"]:
        Pool.create_or_update_pool(
            name=item["name"], slots=item["slots"], description=item["description"], include_deferred=False
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path)
    parser.add_argument("--rewrite", action="append", default=[], metavar="OLD=NEW")
    parser.add_argument("--api", metavar="URL", help="load through the REST API at URL (http://127.0.0.1:8080)")
    parser.add_argument("--password", default="admin", help="the admin password for --api (default: admin)")
    args = parser.parse_args()
    rewrites = dict(r.split("=", 1) for r in args.rewrite)
    if args.api:
        settings = plan(args.path, rewrites)
        for line in settings.skipped:
            print(line)
        root = args.api.rstrip("/")
        for outcome in load_via_api(f"{root}/api/v2", auth_header(root, args.password), settings):
            print(outcome.line())
        return
    rows = parse_settings(args.path, rewrites)
    load_into_airflow(rows)
    print(
        f"Loaded {len(rows['connections'])} connections, {len(rows['pools'])} pools and "
        f"{len(rows['variables'])} variables from {args.path}"
    )


if __name__ == "__main__":
    main()
