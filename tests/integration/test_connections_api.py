"""`make run` loads airflow_settings.yaml as `astro dev start` does (Astro CLI 1.42+): through Airflow's REST API
once the API server answers its health check, POST for each entry and PATCH for one that exists. Checked on a
real `localdev up` (tests/integration/localrun.py): every connection arrives with its extras, a second load
PATCHes to the same result, and what the CLI skips is skipped; a failing preflight check after the load still
stops everything. The tests share one `up` and run in file order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from localdev import config
from localdev.airflow_api import call as api
from localdev.airflow_api import request
from localdev.airflow_env import airflow_env
from localdev.astro_compose import connections_via_api
from localdev.servers import free_port
from localdev.settings_loader import auth_header, load_via_api, plan
from tests.integration.localrun import LocalRun, processes_mentioning, started

pytestmark = pytest.mark.integration
SETTINGS = config.REPO / "airflow_settings.yaml"
FIELDS = ("conn_type", "host", "schema", "login", "password", "port")

READ_CONNECTIONS = """
import json
from airflow.models import Connection
from airflow.utils.session import create_session
with create_session() as session:
    rows = session.query(Connection).all()
    print(json.dumps({c.conn_id: {
        "conn_type": c.conn_type, "host": c.host, "schema": c.schema, "login": c.login,
        "password": c.password, "port": c.port, "extra": c.extra} for c in rows}))
"""


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    with started(tmp_path_factory.mktemp("connections-api")) as run:
        yield run


def rewrites(run: LocalRun) -> dict[str, str]:
    return config.host_rewrites(run.ports)


def stored(run: LocalRun) -> dict[str, dict[str, Any]]:
    """Every connection as the metadata database holds it (decrypted), read by Airflow's ORM."""
    env = {**airflow_env(run.state, api_port=run.ports["airflow"]), "_AIRFLOW_PROCESS_CONTEXT": "server"}
    proc = subprocess.run(
        [sys.executable, "-c", READ_CONNECTIONS], env=env, cwd=config.REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    rows: dict[str, dict[str, Any]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return rows


def assert_arrived(rows: dict[str, dict[str, Any]], settings: Path, run: LocalRun) -> None:
    """Each connection the CLI sends for ``settings`` is stored field by field, its extra as the same dict."""
    for item in plan(settings, rewrites(run)).connections:
        row = rows[item.id]
        for name in FIELDS:
            assert row[name] == item.body.get(name), (item.id, name)
        want = json.loads(item.body["extra"]) if "extra" in item.body else None
        assert (json.loads(row["extra"]) if row["extra"] else None) == want, item.id


def test_make_run_posts_every_connection_after_the_health_check(local_run: LocalRun) -> None:
    out = local_run.up_output
    health = out.index("Airflow answered its health check")
    loading = out.index("loading connections, pools and variables from airflow_settings.yaml through the REST API")
    doctor = out.index("preflight check of the active XCom backend")
    assert health < loading < doctor
    entries = plan(SETTINGS, rewrites(local_run))
    assert [u.id for u in entries.connections] == [
        "s3_xcom_backend_conn",
        "minio_xcom_backend_conn",
        "gcs_xcom_backend_conn",
        "azure_xcom_backend_conn",
        "pokeapi",
    ]
    log = (local_run.state / "logs" / "settings.log").read_text().splitlines()
    assert log == [f"Added Connection: {u.id} (POST 201)" for u in entries.connections]


def test_every_connection_arrives_with_its_extras(local_run: LocalRun) -> None:
    rows = stored(local_run)
    assert_arrived(rows, SETTINGS, local_run)
    s3 = json.loads(rows["s3_xcom_backend_conn"]["extra"])
    assert s3 == {"endpoint_url": f"http://127.0.0.1:{local_run.ports['s3']}", "region_name": "us-east-1"}
    # The API reads them back the same, with its usual redaction of secrets.
    token = local_run.token()
    for item in plan(SETTINGS, rewrites(local_run)).connections:
        got = api(local_run.ports["airflow"], f"/api/v2/connections/{item.id}", token)
        for name in ("conn_type", "host", "schema", "login", "port"):
            assert got[name] == item.body.get(name), (item.id, name)
        want = json.loads(item.body.get("extra") or "{}")
        extra = json.loads(got["extra"] or "{}")
        assert extra.keys() == want.keys(), item.id
        assert all(extra[k] in (want[k], "***") for k in want), item.id


def as_dicts(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: {**row, "extra": json.loads(row["extra"]) if row["extra"] else None} for k, row in rows.items()}


def test_a_second_load_patches_to_the_same_result(local_run: LocalRun) -> None:
    before = stored(local_run)
    step = connections_via_api(local_run.url, local_run.password, rewrites=rewrites(local_run))
    assert step.ok, step
    assert step.result == "5 connections, 0 pools, 0 variables: 0 created (POST), 5 updated (PATCH), 0 skipped"
    # Same fields, same extras; Airflow's PATCH writes the merged extra back as json.dumps text (", " and
    # ": " separators) where the POST stored the CLI's compact text, so compare extras as dicts.
    assert as_dicts(stored(local_run)) == as_dicts(before)


def test_what_the_cli_skips_is_not_sent(local_run: LocalRun, tmp_path: Path) -> None:
    settings = tmp_path / "airflow_settings.yaml"
    airflow = {
        "connections": [
            {"conn_id": "skipped_no_type", "conn_host": "somewhere", "conn_login": "x"},
            {"conn_id": "by_uri", "conn_uri": "postgres://u:p%40w@db.example:5433/mydb?sslmode=require"},
            {"conn_id": "by_fields", "conn_type": "http", "conn_port": "8080", "conn_extra": {"Timeout": 5}},
        ],
        "pools": [{"pool_name": "no_slots"}, {"pool_name": "test_pool", "pool_slot": 3}],
        "variables": [{"variable_name": "no_value"}, {"variable_name": "test_var", "variable_value": 42}],
    }
    settings.write_text(yaml.safe_dump({"airflow": airflow}))
    step = connections_via_api(local_run.url, local_run.password, settings=settings)
    assert step.ok, step
    assert step.result == "2 connections, 1 pools, 1 variables: 4 created (POST), 0 updated (PATCH), 2 skipped"
    token = local_run.token()
    status, _ = request(f"{local_run.url}/api/v2/connections/skipped_no_type", "GET", f"Bearer {token}")
    assert status == 404
    status, _ = request(f"{local_run.url}/api/v2/pools/no_slots", "GET", f"Bearer {token}")
    assert status == 404
    rows = stored(local_run)
    assert_arrived(rows, settings, local_run)
    assert rows["by_uri"]["password"] == "p@w" and json.loads(rows["by_uri"]["extra"]) == {"sslmode": "require"}
    assert json.loads(rows["by_fields"]["extra"]) == {"timeout": 5}  # viper lower-cases keys
    port = local_run.ports["airflow"]
    assert api(port, "/api/v2/pools/test_pool", token)["slots"] == 3
    assert api(port, "/api/v2/variables/test_var", token)["value"] == "42"


def test_default_pool_is_patched_with_the_cli_update_mask(local_run: LocalRun, tmp_path: Path) -> None:
    settings = tmp_path / "airflow_settings.yaml"
    pool = {"pool_name": "default_pool", "pool_slot": 77, "pool_description": "not applied"}
    settings.write_text(yaml.safe_dump({"airflow": {"pools": [pool]}}))
    root = local_run.url
    outcomes = load_via_api(f"{root}/api/v2", auth_header(root, local_run.password), plan(settings))
    assert [(o.method, o.status) for o in outcomes] == [("PATCH", 200)]
    got = api(local_run.ports["airflow"], "/api/v2/pools/default_pool", local_run.token())
    assert got["slots"] == 77 and got["description"] == "Default pool"


def test_a_field_removed_from_the_file_stays_after_the_patch(local_run: LocalRun, tmp_path: Path) -> None:
    """The CLI's PATCH carries only the fields the file sets, so Airflow keeps the others: removing a password
    or an extra from airflow_settings.yaml does not remove it from an existing Airflow (`astro dev start` on a
    kept database behaves the same; `astro dev kill` or the UI clears it)."""
    settings = tmp_path / "airflow_settings.yaml"
    conn = {"conn_id": "shrinking", "conn_type": "http", "conn_password": "old", "conn_extra": {"a": 1, "b": 2}}
    settings.write_text(yaml.safe_dump({"airflow": {"connections": [conn]}}))
    assert connections_via_api(local_run.url, local_run.password, settings=settings).ok
    settings.write_text(
        yaml.safe_dump({"airflow": {"connections": [{**conn, "conn_password": None, "conn_extra": None}]}})
    )
    step = connections_via_api(local_run.url, local_run.password, settings=settings)
    assert step.ok and "1 updated (PATCH)" in step.result, step
    row = stored(local_run)["shrinking"]
    assert row["password"] == "old" and json.loads(row["extra"]) == {"a": 1, "b": 2}


def test_the_load_fails_without_a_valid_login(local_run: LocalRun) -> None:
    """As the CLI: a failed /auth/token means no Authorization header, and the first 401 stops the load."""
    step = connections_via_api(local_run.url, "not-the-password", rewrites=rewrites(local_run))
    assert not step.ok
    assert step.result.startswith("LoadError: error creating connections s3_xcom_backend_conn (HTTP 401)")


def test_ids_need_no_quoting() -> None:
    """The CLI puts the id in the PATCH URL as it is: Airflow's connection ids are [\\w.-]+ anyway."""
    for item in plan(SETTINGS).upserts():
        assert urllib.parse.quote(item.id, safe="") == item.id


def test_a_failing_preflight_check_stops_airflow_and_the_stores(tmp_path: Path) -> None:
    """The doctor now runs after Airflow is up (it needs the connections the API load brings); when it fails,
    `make run` still exits 1 and leaves nothing running."""
    dotenv = tmp_path / ".env"
    dotenv.write_text(config.DOTENV.read_text() + "\nAIRFLOW__XCOM_STORAGE__BUCKET=no-such-bucket\n")
    state = tmp_path / "state"
    ports = {name: free_port() for name in ("s3", "gcs", "azure", "pokeapi", "airflow")}
    env = {**os.environ, "XCOM_LOCAL_STATE": str(state), "XCOM_LOCAL_DOTENV": str(dotenv)}
    env.update({f"XCOM_LOCAL_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    for var in ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__XCOM_BACKEND"):
        env.pop(var, None)
    run = LocalRun(state, ports, env)
    try:
        up = run.localdev("up")
        out = up.stdout + up.stderr
        assert up.returncode == 1, out
        assert "FAILED: step 'preflight check of the active XCom backend" in out
        assert out.index("through the REST API") < out.index("FAILED: step 'preflight check")
        assert not (state / "run.json").exists() and not (state / "stores.json").exists()
        assert processes_mentioning(str(state)) == []
    finally:
        run.localdev("down", timeout=120)
