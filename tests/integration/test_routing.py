"""Routing end to end (issue 15): real DAG runs against the local servers, with a rule set that sends
frames to GCS (fake-gcs-server), JSON to S3 (SeaweedFS, the backend's own store), keys matching
``secret_*`` to the database, and one DAG to a second S3 bucket. Each value must land where its rule
says and come back exact (the DAGs check that); doctor, gc and the UI plugin's preview must see every
store."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from include.xcom_backends.dbform import is_reference
from localdev import config

pytestmark = pytest.mark.integration
BACKEND = "include.xcom_backends.S3PandasXComBackend"
PREFIX = "it-routing"
TEAM_B_BUCKET = "airflow-xcom-team-b"
STORES = {
    "frames": {
        "type": "gcs",
        "conn_id": "gcs_xcom_backend_conn",
        "bucket": config.BUCKET,
        "prefix": f"{PREFIX}-frames",
        "compression": "zstd",
    },
    "team_b": {"type": "s3", "conn_id": "s3_xcom_backend_conn", "bucket": TEAM_B_BUCKET, "prefix": PREFIX},
}
RULES = [
    {"name": "secrets stay in the database", "key": "secret_*", "to": "inline"},
    {"name": "frames to GCS", "kind": "frame", "to": "frames"},
    {"name": "team b's own bucket", "dag_id": "routing_team_b", "to": "team_b"},
]
ENV = {
    "AIRFLOW__XCOM_STORAGE__PREFIX": PREFIX,
    "AIRFLOW__XCOM_STORAGE__STORES": json.dumps(STORES),
    "AIRFLOW__XCOM_STORAGE__RULES": json.dumps(RULES),
}


def python(session: Any, *args: str) -> str:
    env = {**session.env, "AIRFLOW__CORE__XCOM_BACKEND": BACKEND, **ENV}
    proc = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout


def test_each_value_lands_where_its_rule_says(airflow_session: Any, buckets: Any, s3_client: Any) -> None:
    try:
        s3_client.create_bucket(Bucket=TEAM_B_BUCKET)
    except s3_client.exceptions.BucketAlreadyOwnedByYou:
        pass
    runs = airflow_session.run_dags(
        [{"dag_id": "routing_team_a", "env": ENV}, {"dag_id": "routing_team_b", "env": ENV}], backend=BACKEND
    )
    for outcome in runs:
        assert outcome.ok, outcome.output[-4000:]
    rows_a = {r["task_id"] + "/" + r["key"]: r["value"] for r in airflow_session.xcom_rows("routing_team_a")}
    rows_b = {r["task_id"] + "/" + r["key"]: r["value"] for r in airflow_session.xcom_rows("routing_team_b")}

    # The secret is inline: the row holds the value itself, and no store has an object for it.
    assert rows_a["push_secret/secret_token"] == {"token": "not-a-real-secret-" + "x" * 40}
    frame, plain, team_b = (
        rows_a["push_frame/return_value"],
        rows_a["push_json/return_value"],
        rows_b["push_json/return_value"],
    )
    assert all(is_reference(ref) for ref in (frame, plain, team_b))
    assert frame["store"] == "frames" and frame["uri"].startswith(
        f"gs://{config.BUCKET}/{PREFIX}-frames/routing_team_a/"
    )
    assert "store" not in plain and plain["uri"].startswith(f"s3://{config.BUCKET}/{PREFIX}/routing_team_a/")
    assert team_b["store"] == "team_b" and team_b["uri"].startswith(f"s3://{TEAM_B_BUCKET}/{PREFIX}/routing_team_b/")

    # Independently of include/: each object is in its store, and nowhere else.
    gcs, s3 = buckets.list("gcs", f"{PREFIX}-frames/"), buckets.list("s3", f"{PREFIX}/")
    team_b_keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=TEAM_B_BUCKET, Prefix=f"{PREFIX}/")["Contents"]]
    assert [f"gs://{config.BUCKET}/{k}" for k in gcs] == [frame["uri"]]
    assert sorted(f"s3://{config.BUCKET}/{k}" for k in s3) == [plain["uri"]]
    assert [f"s3://{TEAM_B_BUCKET}/{k}" for k in team_b_keys] == [team_b["uri"]]
    assert gcs[frame["uri"].removeprefix(f"gs://{config.BUCKET}/")] == frame["size"]

    # doctor checks every store a rule names.
    doctor = python(airflow_session, "-m", "include.xcom_backends", "doctor")
    assert "All checks passed." in doctor and "stores frames, team_b; 3 routing rule(s)" in doctor
    for store in ("frames: ", "team_b: "):
        assert doctor.count(f"[PASS] {store}") == 7, doctor

    # gc sees every store: each referenced object is kept, an orphan in the GCS store is found.
    orphan = f"{PREFIX}-frames/routing_team_a/old_run/push_frame/-1/return_value/{'0' * 32}.parquet"
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    gcs_client = storage.Client(
        project="local-dev",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": airflow_session.stores.endpoints["gcs"]},
    )
    gcs_client.bucket(config.BUCKET).blob(orphan).upload_from_string(b"orphan")
    gc = python(airflow_session, "-m", "include.xcom_backends", "gc", "--older-than-hours", "0")
    for location in (
        f"gs://{config.BUCKET}/{PREFIX}-frames/",
        f"s3://{config.BUCKET}/{PREFIX}/",
        f"s3://{TEAM_B_BUCKET}/{PREFIX}/",
    ):
        assert f"under {location}" in gc, gc
    assert gc.count("referenced by an XCom row: 1") == 3 and orphan in gc and "rows whose reference" not in gc

    # The UI plugin previews each row from its own store.
    script = (
        "import json, os, sys\n"
        "os.environ['_AIRFLOW_PROCESS_CONTEXT'] = 'server'  # as in the API server: connections from the DB\n"
        "from include.xcom_backends import S3PandasXComBackend as B\n"
        "from include.xcom_backends.keys import XComRow\n"
        "from include.xcom_backends.ui.preview import preview_xcom\n"
        "for dag_id, task_id, key, stored in json.loads(sys.argv[1]):\n"
        "    row = XComRow.of(dag_id=dag_id, run_id=stored.pop('_run_id'), task_id=task_id, map_index=-1, key=key)\n"
        "    p = preview_xcom(B, row, stored)\n"
        "    print('PREVIEW ' + json.dumps({'where': p.where, 'error': p.error, 'rows': p.total_rows}))\n"
    )
    run_a, run_b = runs[0].run_id, runs[1].run_id
    wanted = [
        ["routing_team_a", "push_frame", "return_value", {**frame, "_run_id": run_a}],
        ["routing_team_b", "push_json", "return_value", {**team_b, "_run_id": run_b}],
        ["routing_team_a", "push_secret", "secret_token", {"token": "x", "_run_id": run_a}],
    ]
    out = python(airflow_session, "-c", script, json.dumps(wanted))
    previews = [json.loads(line.removeprefix("PREVIEW ")) for line in out.splitlines() if line.startswith("PREVIEW ")]
    assert [p["where"] for p in previews] == [
        "object storage (store 'frames')",
        "object storage (store 'team_b')",
        "database (inline)",
    ]
    assert previews[0]["error"] is None and previews[0]["rows"] == 500
    assert previews[1]["error"] is None
