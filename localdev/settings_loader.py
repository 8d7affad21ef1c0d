"""Load ``airflow_settings.yaml`` (the Astro CLI schema) into Airflow's metadata database.

The Astro CLI does this for ``astro dev start``; this does the same for the no-Docker setup:
connections (replaced if they exist), pools and variables. ``rewrites`` replaces strings in every
connection field, which is how the Docker service hosts become the local 127.0.0.1 servers.

Run inside the Airflow environment (AIRFLOW_HOME set):
``python -m localdev.settings_loader airflow_settings.yaml [--rewrite OLD=NEW ...]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml


class SettingsError(ValueError):
    pass


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _rewrite(value: str | None, rewrites: dict[str, str]) -> str | None:
    if value is None:
        return None
    for old, new in rewrites.items():
        value = value.replace(old, new)
    return value


def parse_settings(path: Path, rewrites: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Read and validate the file; return connections, pools and variables as plain dicts."""
    rewrites = rewrites or {}
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"Cannot read {path}: {exc}") from exc
    section = doc.get("airflow") or {}
    if not isinstance(section, dict):
        raise SettingsError(f"{path}: top-level key 'airflow' must be a mapping")

    connections = []
    for i, item in enumerate(section.get("connections") or []):
        if not item.get("conn_id") or not item.get("conn_type"):
            raise SettingsError(f"{path}: connection #{i + 1} needs conn_id and conn_type")
        extra = item.get("conn_extra")
        extra_text = json.dumps(extra) if isinstance(extra, dict) else _text(extra)
        port = item.get("conn_port")
        connections.append(
            {
                "conn_id": str(item["conn_id"]),
                "conn_type": str(item["conn_type"]),
                "host": _rewrite(_text(item.get("conn_host")), rewrites),
                "schema": _text(item.get("conn_schema")),
                "login": _text(item.get("conn_login")),
                "password": _text(item.get("conn_password")),
                "port": int(port) if port not in (None, "") else None,
                "extra": _rewrite(extra_text, rewrites),
            }
        )
    pools = []
    for i, item in enumerate(section.get("pools") or []):
        if not item.get("pool_name") or item.get("pool_slot") in (None, ""):
            raise SettingsError(f"{path}: pool #{i + 1} needs pool_name and pool_slot")
        pools.append(
            {
                "name": str(item["pool_name"]),
                "slots": int(item["pool_slot"]),
                "description": _text(item.get("pool_description")) or "",
            }
        )
    variables = []
    for i, item in enumerate(section.get("variables") or []):
        if not item.get("variable_name"):
            raise SettingsError(f"{path}: variable #{i + 1} needs variable_name")
        variables.append({"key": str(item["variable_name"]), "value": _text(item.get("variable_value")) or ""})
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
    """Write the parsed settings to the metadata database of the current AIRFLOW_HOME."""
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
    args = parser.parse_args()
    rewrites = dict(r.split("=", 1) for r in args.rewrite)
    settings = parse_settings(args.path, rewrites)
    load_into_airflow(settings)
    print(
        f"Loaded {len(settings['connections'])} connections, {len(settings['pools'])} pools and "
        f"{len(settings['variables'])} variables from {args.path}"
    )


if __name__ == "__main__":
    main()
