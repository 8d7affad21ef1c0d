"""Many mapped task instances pushing at once through a real scheduler with LocalExecutor, and purge
isolation between attempts and runs (S3 backend on SeaweedFS)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from localdev import airflow_api as api
from localdev.servers import Server

pytestmark = pytest.mark.integration
DAG = "xcom_concurrency"
PREFIX = "it-concurrency"


@pytest.fixture(scope="module")
def scheduler(airflow_session: Any) -> Iterator[tuple[int, str]]:
    """`airflow standalone` (scheduler, LocalExecutor with 8 slots, API server) on the session's DB."""
    env = {
        **airflow_session.env,
        "AIRFLOW__CORE__XCOM_BACKEND": "include.xcom_backends.S3JSONXComBackend",
        "AIRFLOW__XCOM_STORAGE__PREFIX": PREFIX,
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "64",
    }
    port = int(env["AIRFLOW__API__PORT"])
    health = f"http://127.0.0.1:{port}/api/v2/monitor/health"
    argv = [sys.executable, "-m", "airflow", "standalone"]
    server = Server("airflow standalone", argv, health, airflow_session.home / "standalone.log", env)
    server.start(timeout=240)
    try:
        passwords = airflow_session.home / "simple_auth_manager_passwords.json.generated"
        yield port, api.token(port, json.loads(passwords.read_text())["admin"])
    finally:
        from localdev.servers import stop_group

        assert server.pid is not None
        stop_group(server.pid, timeout=60)


def trigger(port: int, tok: str, n: int) -> str:
    return api.call(port, f"/api/v2/dags/{DAG}/dagRuns", tok, body={"logical_date": None, "conf": {"n": n}})[
        "dag_run_id"
    ]


def run_objects(buckets: Any, run_id: str) -> dict[str, int]:
    from include.xcom_backends.keys import encode_segment

    return buckets.list("s3", f"{PREFIX}/{DAG}/{encode_segment(run_id)}/")


def test_200_mapped_pushes_then_purge_is_isolated(
    scheduler: tuple[int, str], buckets: Any, airflow_session: Any
) -> None:
    import time

    port, tok = scheduler
    api.wait_for_dag(port, tok, DAG)
    api.unpause(port, tok, DAG)

    started = time.monotonic()
    run_a, run_b = trigger(port, tok, 200), trigger(port, tok, 10)
    assert api.wait_for_run(port, tok, DAG, run_a) == "success", airflow_session.home / "standalone.log"
    assert api.wait_for_run(port, tok, DAG, run_b) == "success"
    elapsed = time.monotonic() - started

    objects_a, objects_b = run_objects(buckets, run_a), run_objects(buckets, run_b)
    produced_a = sorted(k for k in objects_a if "/produce/" in k)
    assert len(produced_a) == 200, "one object per mapped task instance, none lost or overwritten"
    assert sorted(int(k.split("/")[-3]) for k in produced_a) == list(range(200))
    assert len([k for k in objects_b if "/produce/" in k]) == 10
    print(f"200 + 10 mapped tasks through LocalExecutor in {elapsed:.0f}s")

    # Re-run one attempt: clear produce[7] of run A. Its old object must go, nothing else.
    old_7 = [k for k in produced_a if "/produce/7/" in k]
    api.call(
        port,
        f"/api/v2/dags/{DAG}/clearTaskInstances",
        tok,
        body={
            "dry_run": False,
            "dag_run_id": run_a,
            "task_ids": [["produce", 7]],
            "only_failed": False,
            "reset_dag_runs": True,
            "include_downstream": True,
        },
    )
    assert api.wait_for_run(port, tok, DAG, run_a) == "success"
    after_a, after_b = run_objects(buckets, run_a), run_objects(buckets, run_b)
    new_7 = [k for k in after_a if "/produce/7/" in k]
    assert len(new_7) == 1 and new_7 != old_7, "the re-run's purge deleted the earlier attempt's object"
    others = [k for k in produced_a if "/produce/7/" not in k]
    assert sorted(k for k in after_a if "/produce/" in k and "/produce/7/" not in k) == others
    assert len([k for k in after_a if "/check/" in k]) == 1  # the cleared downstream re-ran and was purged too
    assert after_b == objects_b, "another run's objects were touched"
