"""`python -m include.xcom_backends gc` end to end: orphans made the three ways Airflow makes them
(`airflow db clean`, deleting a DAG run, re-running `airflow dags test` for the same logical date),
then gc deletes exactly those and keeps every referenced object."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.integration
BACKEND = "include.xcom_backends.S3JSONXComBackend"
PREFIX = "it-gc"


MARKER = f"{PREFIX}/_xcom_storage_owner.json"
# Objects under the prefix that the backend did not write: gc must never delete them.
FOREIGN = {
    f"{PREFIX}/notes.txt",
    f"{PREFIX}/team-b-exports/report.csv",
    f"{PREFIX}/simple_xcom_dag/r/t/-1/return_value/notes.json",
}


def run(session: Any, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **session.env,
        "AIRFLOW__CORE__XCOM_BACKEND": BACKEND,
        "AIRFLOW__XCOM_STORAGE__PREFIX": PREFIX,
        **(env or {}),
    }
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300)


def python(session: Any, *args: str, env: dict[str, str] | None = None) -> str:
    proc = run(session, *args, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout


def test_gc_deletes_exactly_the_orphans(airflow_session: Any, buckets: Any, s3_client: Any) -> None:
    def dags_test(date: str) -> None:
        python(airflow_session, "-m", "airflow", "dags", "test", "simple_xcom_dag", date)

    def objects() -> set[str]:
        return set(buckets.list("s3", PREFIX + "/")) - FOREIGN - {MARKER}

    # 0. gc runs only where this deployment has claimed the location; doctor claims it.
    unclaimed = run(airflow_session, "-m", "include.xcom_backends", "gc")
    assert unclaimed.returncode == 2 and "has not been claimed by this deployment" in unclaimed.stderr
    assert "[PASS] owner" in python(airflow_session, "-m", "include.xcom_backends", "doctor")
    for key in FOREIGN:
        s3_client.put_object(Bucket="airflow-xcom", Key=key, Body=b"kept by every gc")

    # 1. `airflow db clean` removes the XCom rows of an old run.
    dags_test("2023-01-01")
    cleaned = objects()
    clean = ["db", "clean", "--clean-before-timestamp", "2099-01-01", "--tables", "xcom", "--skip-archive", "--yes"]
    python(airflow_session, "-m", "airflow", *clean)
    # 2. A DAG run deleted (as the UI/REST API do): its XCom rows go with it.
    dags_test("2023-02-01")
    deleted_run = objects() - cleaned
    delete_last_run = (
        "from airflow.models.dagrun import DagRun; from airflow.utils.session import create_session\n"
        "with create_session() as s:\n"
        "    r = s.query(DagRun).filter(DagRun.dag_id == 'simple_xcom_dag').order_by(DagRun.id.desc()).first()\n"
        "    s.delete(r)"
    )
    python(airflow_session, "-c", delete_last_run)
    # 3. `airflow dags test` re-run for the same logical date: the first object loses its row.
    dags_test("2023-03-01")
    first_attempt = objects() - cleaned - deleted_run
    dags_test("2023-03-01")
    kept = objects() - cleaned - deleted_run - first_attempt
    assert [len(cleaned), len(deleted_run), len(first_attempt), len(kept)] == [1, 1, 1, 1]
    orphans = cleaned | deleted_run | first_attempt

    # 4. A crafted row (UI's "Add XCom", REST API) in the kept run names an orphan: it must not protect it.
    (orphan_key,) = first_attempt
    add_crafted_row = (
        "import json; from airflow.models.dagrun import DagRun; from airflow.models.xcom import XComModel\n"
        "from airflow.utils.session import create_session\n"
        "with create_session() as s:\n"
        "    r = s.query(DagRun).filter(DagRun.dag_id == 'simple_xcom_dag').order_by(DagRun.id.desc()).first()\n"
        f"    ref = {{'__xcom_storage__': 1, 'uri': 's3://airflow-xcom/{orphan_key}', 'format': 'json', 'size': 1,"
        "            'digest': 'sha256:' + '0' * 64}\n"
        "    XComModel.set('crafted', ref, dag_id=r.dag_id, task_id='pick_a_random_number', run_id=r.run_id,"
        "                  session=s)"
    )
    python(airflow_session, "-c", add_crafted_row)

    dry = python(airflow_session, "-m", "include.xcom_backends", "gc", "--older-than-hours", "0")
    assert "orphans: 3 (" in dry and "Dry run: nothing deleted" in dry
    assert "not under the row's own location (they protect nothing; delete these rows): 1" in dry
    assert f"s3://airflow-xcom/{orphan_key}" in dry and "key='crafted'" in dry
    assert objects() == orphans | kept
    young = python(airflow_session, "-m", "include.xcom_backends", "gc", "--delete")  # default: older than 24 h
    assert "orphans: 0 (" in young and objects() == orphans | kept

    done = python(airflow_session, "-m", "include.xcom_backends", "gc", "--older-than-hours", "0", "--delete")
    assert "Deleted 3 orphans" in done
    assert objects() == kept, "gc must delete exactly the orphans and keep every referenced object"
    assert FOREIGN | {MARKER} <= set(buckets.list("s3", PREFIX + "/")), "gc deleted what the backend did not write"
    assert "not written by the backend for an XCom row (never deleted): 4" in done  # FOREIGN and the marker


def test_another_deployment_on_the_same_location_is_refused(airflow_session: Any, buckets: Any) -> None:
    """A second deployment (another metadata database, so another deployment id) pointed at the same
    bucket and prefix: doctor and gc refuse it and say what to do; nothing is deleted."""
    python(airflow_session, "-m", "include.xcom_backends", "doctor")  # this deployment owns the location
    before = buckets.list("s3", PREFIX + "/")
    other = {"AIRFLOW_VAR_XCOM_STORAGE_DEPLOYMENT_ID": "another-deployment"}
    doctor = run(airflow_session, "-m", "include.xcom_backends", "doctor", env=other)
    assert doctor.returncode == 1 and "[FAIL] owner" in doctor.stdout
    assert (
        "belongs to another Airflow deployment" in doctor.stdout
        and "own bucket or [xcom_storage] prefix" in doctor.stdout
    )
    assert "write probe" not in doctor.stdout  # it stops there
    gc = run(airflow_session, "-m", "include.xcom_backends", "gc", "--older-than-hours", "0", "--delete", env=other)
    assert gc.returncode == 2 and "gc REFUSED, nothing listed or deleted" in gc.stderr
    assert buckets.list("s3", PREFIX + "/") == before
    # Taking over is explicit, and can be given back the same way.
    assert "taken over" in python(airflow_session, "-m", "include.xcom_backends", "doctor", "--take-over", env=other)
    assert run(airflow_session, "-m", "include.xcom_backends", "doctor").returncode == 1
    python(airflow_session, "-m", "include.xcom_backends", "doctor", "--take-over")


def test_an_empty_prefix_is_refused_unless_asked(airflow_session: Any, s3_client: Any) -> None:
    root = {"AIRFLOW__XCOM_STORAGE__PREFIX": ""}
    backup = "backups/metadata-db.sql.gz"
    s3_client.put_object(Bucket="airflow-xcom", Key=backup, Body=b"a backup")
    try:
        python(airflow_session, "-m", "include.xcom_backends", "doctor", env=root)
        gc = run(airflow_session, "-m", "include.xcom_backends", "gc", "--older-than-hours", "0", "--delete", env=root)
        assert gc.returncode == 1 and "--whole-bucket" in gc.stderr
        whole = ["gc", "--older-than-hours", "0", "--delete", "--whole-bucket"]
        python(airflow_session, "-m", "include.xcom_backends", *whole, env=root)
        assert s3_client.get_object(Bucket="airflow-xcom", Key=backup)["Body"].read() == b"a backup"
    finally:
        for key in (backup, "_xcom_storage_owner.json"):
            s3_client.delete_object(Bucket="airflow-xcom", Key=key)
