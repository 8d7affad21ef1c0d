"""localdev.settings_loader builds what the Astro CLI (settings/settings.go, v1.42.0 to v1.45.0) sends for
airflow_settings.yaml, and sends it as the CLI does: POST, then PATCH on 409, the first other status fatal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from include.xcom_backends import (
    AzureJSONXComBackend,
    GCSJSONXComBackend,
    MinIOJSONXComBackend,
    S3JSONXComBackend,
)
from localdev import config
from localdev.config import REPO
from localdev.settings_loader import (
    LoadError,
    Plan,
    SettingsError,
    Upsert,
    auth_header,
    go_json,
    load_via_api,
    parse_settings,
    plan,
)


def settings_file(tmp_path: Path, **airflow: Any) -> Path:
    path = tmp_path / "airflow_settings.yaml"
    path.write_text(yaml.safe_dump({"airflow": airflow}))
    return path


def test_project_settings_seed_every_connection_the_project_uses() -> None:
    settings = parse_settings(REPO / "airflow_settings.yaml")
    ids = {c["conn_id"] for c in settings["connections"]}
    backends = [S3JSONXComBackend, GCSJSONXComBackend, AzureJSONXComBackend, MinIOJSONXComBackend]
    assert {b.default_conn_id for b in backends} | {"pokeapi"} <= ids


def test_local_rewrites_point_docker_hosts_at_loopback() -> None:
    ports = {"s3": 1, "gcs": 2, "azure": 3, "pokeapi": 4, "airflow": 5}
    conns = {
        c["conn_id"]: c
        for c in parse_settings(REPO / "airflow_settings.yaml", config.host_rewrites(ports))["connections"]
    }
    assert json.loads(conns["s3_xcom_backend_conn"]["extra"])["endpoint_url"] == "http://127.0.0.1:1"
    assert json.loads(conns["gcs_xcom_backend_conn"]["extra"])["api_endpoint"] == "http://127.0.0.1:2"
    assert "BlobEndpoint=http://127.0.0.1:3/devstoreaccount1" in conns["azure_xcom_backend_conn"]["extra"]
    assert conns["pokeapi"]["host"] == "http://127.0.0.1:4"
    # MinIO backends talk to the same S3 server (SeaweedFS locally), with MinIO's dev keys.
    assert conns["minio_xcom_backend_conn"]["host"] == "http://127.0.0.1:1"
    assert conns["minio_xcom_backend_conn"]["login"] == config.DEV_S3_ACCESS_KEY


def test_project_connections_as_the_cli_sends_them() -> None:
    """The request bodies, byte for byte as Go's json.Marshal writes the CLI's map (keys sorted), for the
    project's file: empty fields are left out, a mapping extra is sent as its JSON text."""
    bodies = {u.id: u.body_bytes().decode() for u in plan(REPO / "airflow_settings.yaml").connections}
    assert bodies["gcs_xcom_backend_conn"] == (
        '{"conn_type":"google_cloud_platform","connection_id":"gcs_xcom_backend_conn",'
        '"extra":"{\\"api_endpoint\\":\\"http://fake-gcs:4443\\",\\"project\\":\\"local-dev\\"}"}'
    )
    assert bodies["minio_xcom_backend_conn"] == (
        '{"conn_type":"generic","connection_id":"minio_xcom_backend_conn","host":"http://minio:9000",'
        '"login":"minioadmin","password":"minioadmin"}'
    )
    assert bodies["pokeapi"] == '{"conn_type":"http","connection_id":"pokeapi","host":"https://pokeapi.co"}'


def test_connection_without_type_or_uri_is_skipped(tmp_path: Path) -> None:
    path = settings_file(
        tmp_path,
        connections=[
            {"conn_id": "no_type", "conn_host": "somewhere", "conn_extra": {"a": 1}},
            {"conn_id": "", "conn_type": "http"},  # no id: skipped without a word
            {"conn_id": "kept", "conn_type": "http"},
            {"conn_id": "by_uri", "conn_uri": "http://example:1"},
        ],
    )
    p = plan(path)
    assert [u.id for u in p.connections] == ["kept", "by_uri"]
    assert p.skipped == ["Skipping no_type: conn_type or conn_uri must be specified."]
    assert [c["conn_id"] for c in parse_settings(path)["connections"]] == ["kept", "by_uri"]


def test_uri_only_connection_is_parsed_into_fields(tmp_path: Path) -> None:
    uri = "postgres://user:p%40ss@DB.Example:5433/my%20db?sslmode=require&a=1&a=2"
    path = settings_file(tmp_path, connections=[{"conn_id": "u", "conn_uri": uri, "conn_extra": {"lost": 1}}])
    body = plan(path).connections[0].body
    extra = body.pop("extra")
    assert body == {
        "connection_id": "u",
        "conn_type": "postgres",
        "host": "DB.Example",  # Go's Hostname() keeps the case
        "login": "user",
        "password": "p@ss",
        "port": 5433,
        "schema": "my db",
    }
    # The query becomes the extra (a repeated key joined with ","); conn_extra is dropped with a URI.
    assert json.loads(extra) == {"sslmode": "require", "a": "1,2"}


def test_uri_is_ignored_when_any_field_is_set(tmp_path: Path) -> None:
    path = settings_file(
        tmp_path,
        connections=[{"conn_id": "m", "conn_uri": "http://ignored:1", "conn_port": "8080", "conn_type": "http"}],
    )
    assert plan(path).connections[0].body == {"connection_id": "m", "conn_type": "http", "port": 8080}


def test_values_are_read_as_viper_reads_them(tmp_path: Path) -> None:
    """Keys lower-cased at every depth (conn_extra's too), weak typing, YAML 1.2 scalars (yes stays text)."""
    path = tmp_path / "s.yaml"
    path.write_text(
        "AIRFLOW:\n"
        "  Connections:\n"
        "    - CONN_ID: c\n"
        "      conn_type: http\n"
        "      conn_login: 12\n"
        "      conn_port: '0x1F'\n"
        "      conn_extra: {Timeout: 5.0, Verify: no, Nested: {Deep_Key: '<&>'}}\n"
    )
    body = plan(path).connections[0].body
    assert body["login"] == "12" and body["port"] == 31
    assert body["extra"] == '{"nested":{"deep_key":"\\u003c\\u0026\\u003e"},"timeout":5,"verify":"no"}'


def test_a_value_viper_cannot_decode_stops_everything(tmp_path: Path) -> None:
    path = settings_file(tmp_path, connections=[{"conn_id": "c", "conn_type": "http", "conn_port": "eighty"}])
    with pytest.raises(SettingsError, match="conn_port"):
        plan(path)


def test_string_extra_is_sent_as_written(tmp_path: Path) -> None:
    path = settings_file(tmp_path, connections=[{"conn_id": "c", "conn_type": "http", "conn_extra": '{"a": 1}'}])
    assert plan(path).connections[0].body["extra"] == '{"a": 1}'


def test_pools_and_variables_in_astro_schema(tmp_path: Path) -> None:
    connection = {"conn_id": "c", "conn_type": "http", "conn_host": "h", "conn_port": "80", "conn_extra": '{"a": 1}'}
    path = settings_file(
        tmp_path,
        connections=[connection],
        pools=[{"pool_name": "p", "pool_slot": 3, "pool_description": None}],
        variables=[{"variable_name": "v", "variable_value": 42}],
    )
    s = parse_settings(path)
    assert s["connections"][0]["port"] == 80 and s["connections"][0]["extra"] == '{"a": 1}'
    assert s["pools"] == [{"name": "p", "slots": 3, "description": ""}]
    assert s["variables"] == [{"key": "v", "value": "42"}]


def test_pools_and_variables_skipped_as_the_cli_skips_them(tmp_path: Path) -> None:
    path = settings_file(
        tmp_path,
        pools=[{"pool_name": "p"}, {"pool_name": "default_pool", "pool_slot": 64}, {"pool_slot": 2}],
        variables=[
            {"variable_name": "no_value"},
            {"variable_value": "no name"},
            {"variable_name": "v", "variable_value": "x"},
        ],
    )
    p = plan(path)
    assert p.skipped == [
        "Skipping p: Pool Slot must be set.",
        "Skipping Variable Creation: No Variable Name Specified.",
    ]
    assert p.pools == [
        Upsert(
            "pools",
            "default_pool",
            {"name": "default_pool", "slots": 64, "description": "", "include_deferred": False},
            "?update_mask=slots&update_mask=include_deferred",
        )
    ]
    assert [u.id for u in p.variables] == ["v"]


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("airflow:\n  pools: [unclosed\n")
    with pytest.raises(SettingsError, match="Cannot read"):
        plan(path)


class FakeAirflow:
    """Answers as Airflow's API does: 201 for a POST, 409 for a POST of an id in ``existing``
    ("resource/id"), 200 for a PATCH; or ``fail`` to everything."""

    def __init__(self, existing: tuple[str, ...] = (), fail: int | None = None) -> None:
        self.existing = set(existing)
        self.fail = fail
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []

    def __call__(self, url: str, method: str, auth: str = "", body: bytes | None = None) -> tuple[int, bytes]:
        doc = json.loads(body or b"{}")
        self.calls.append((method, url, auth, doc))
        if self.fail:
            return self.fail, b'{"detail": "nope"}'
        if url.endswith("/auth/token"):
            return 201, b'{"access_token": "tok"}'
        if method == "PATCH":
            return 200, b"{}"
        key = f"{url.rsplit('/', 1)[1]}/{doc.get('connection_id') or doc.get('name') or doc.get('key')}"
        if key in self.existing:
            return 409, b"{}"
        self.existing.add(key)
        return 201, b"{}"


def test_upsert_posts_then_patches_on_conflict(tmp_path: Path) -> None:
    path = settings_file(
        tmp_path,
        connections=[{"conn_id": "new", "conn_type": "http"}],
        pools=[{"pool_name": "default_pool", "pool_slot": 8}],
        variables=[{"variable_name": "v", "variable_value": "x"}],
    )
    api = FakeAirflow(existing=("pools/default_pool",))  # Airflow always has default_pool
    outcomes = load_via_api("http://h/api/v2", "Bearer t", plan(path), api)
    assert [(o.resource, o.method) for o in outcomes] == [
        ("pools", "PATCH"),
        ("variables", "POST"),
        ("connections", "POST"),
    ]
    assert [(m, u) for m, u, _, _ in api.calls] == [
        ("POST", "http://h/api/v2/pools"),
        ("PATCH", "http://h/api/v2/pools/default_pool?update_mask=slots&update_mask=include_deferred"),
        ("POST", "http://h/api/v2/variables"),
        ("POST", "http://h/api/v2/connections"),
    ]
    assert {auth for _, _, auth, _ in api.calls} == {"Bearer t"}
    # The same file again: everything exists now, every entry is PATCHed with the same body.
    again = load_via_api("http://h/api/v2", "Bearer t", plan(path), api)
    assert [o.method for o in again] == ["PATCH", "PATCH", "PATCH"]
    assert api.calls[-1] == ("PATCH", "http://h/api/v2/connections/new", "Bearer t", api.calls[3][3])


def test_any_other_status_stops_the_load_with_the_cli_message() -> None:
    entries = Plan(connections=[Upsert("connections", "c", {"connection_id": "c"}), Upsert("connections", "d", {})])
    api = FakeAirflow(fail=422)
    with pytest.raises(LoadError, match=r"error creating connections c \(HTTP 422\)"):
        load_via_api("http://h/api/v2", "", entries, api)
    assert len(api.calls) == 1


def test_auth_header_as_the_cli_gets_it() -> None:
    api = FakeAirflow()
    assert auth_header("http://h:1", request=api) == "Bearer tok"
    assert api.calls == [("POST", "http://h:1/auth/token", "", {"username": "admin", "password": "admin"})]
    # On failure the CLI sends no Authorization header at all.
    assert auth_header("http://h:1", request=FakeAirflow(fail=401)) == ""


def test_go_json_writes_what_json_marshal_writes() -> None:
    assert go_json({"b": 1.0, "a": [1.5, 1e16, 1e-7, 2.5e21], "c": {"x": None, "y": True}, "é": "<>&"}) == (
        '{"a":[1.5,10000000000000000,1e-7,2.5e+21],"b":1,"c":{"x":null,"y":true},"é":"\\u003c\\u003e\\u0026"}'
    )
