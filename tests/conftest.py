"""Test session set-up: an isolated AIRFLOW_HOME, and real local servers for integration tests.

The servers (SeaweedFS, fake-gcs-server, Azurite, the Pokémon API stub) are started once per
session on free 127.0.0.1 ports and stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localdev.config import REPO

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="xcom-tests-"))
# Before anything imports airflow: never touch ~/airflow from the test process.
os.environ["AIRFLOW_HOME"] = str(_SESSION_TMP / "unit-airflow-home")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")


@dataclass
class DagRunOutcome:
    state: str  # "success", "failed", or "error" (the run did not start)
    run_id: str
    output: str  # what the run printed (stdout and stderr)

    @property
    def ok(self) -> bool:
        return self.state == "success"


@dataclass
class AirflowSession:
    """A migrated SQLite Airflow home wired to the session's local servers."""

    env: dict[str, str]
    home: Path
    stores: Any

    def run_dag(
        self,
        dag_id: str,
        *,
        backend: str,
        extra_env: dict[str, str] | None = None,
        args: list[str] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "AIRFLOW__CORE__XCOM_BACKEND": backend, **(extra_env or {})}
        return subprocess.run(
            [sys.executable, "-m", "airflow", "dags", "test", dag_id, *(args or [])],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def run_dags(self, runs: list[dict[str, Any]], *, backend: str, timeout: float = 900) -> list[DagRunOutcome]:
        """Several DAG runs (``{"dag_id": ..., "env": {...}}``) in one Airflow process, each as
        ``airflow dags test`` runs it (tests/integration/dagruns.py): Airflow starts once."""
        import json

        from tests.integration.dagruns import MARKER

        env = {**self.env, "AIRFLOW__CORE__XCOM_BACKEND": backend}
        proc = subprocess.run(
            [sys.executable, "-m", "tests.integration.dagruns", json.dumps(runs)],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        outs, errs = proc.stdout.split(f"\n{MARKER} "), proc.stderr.split(f"\n{MARKER} ")
        outcomes = []
        for i in range(len(runs)):
            if i + 1 >= len(outs) or i + 1 >= len(errs):
                tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
                raise AssertionError(f"the DAG runs stopped before run {i} ended:\n{tail}")
            _, state, run_id = outs[i + 1].partition("\n")[0].split(" ", 2)
            out = outs[i].partition("\n")[2] if i else outs[0]
            err = errs[i].partition("\n")[2] if i else errs[0]
            outcomes.append(DagRunOutcome(state=state, run_id=run_id, output=out + err))
        return outcomes

    def xcom_rows(self, dag_id: str, run_id: str | None = None) -> list[dict[str, Any]]:
        """XCom rows of one run of dag_id (the latest if no run_id), read straight from the SQLite metadata DB."""
        import json

        with sqlite3.connect(self.home / "airflow.db") as db:
            if run_id is None:
                run_id = db.execute(
                    "select run_id from dag_run where dag_id = ? order by id desc limit 1", (dag_id,)
                ).fetchone()[0]
            rows = db.execute(
                "select task_id, map_index, key, value from xcom where dag_id = ? and run_id = ?", (dag_id, run_id)
            ).fetchall()
        # SQLite's JSON column hands back numbers as numbers and everything else as JSON text.
        return [
            {"task_id": t, "map_index": m, "key": k, "raw": str(v), "value": json.loads(v) if isinstance(v, str) else v}
            for t, m, k, v in rows
        ]


@pytest.fixture(scope="session")
def local_stores() -> Iterator[Any]:
    from localdev.servers import Stores, free_port

    stores = Stores(_SESSION_TMP / "stores", {name: free_port() for name in ("s3", "gcs", "azure", "pokeapi")})
    stores.start(progress=lambda _msg: None)
    try:
        from localdev.buckets import create_buckets

        create_buckets(stores.endpoints)
        yield stores
    finally:
        stores.stop()


@pytest.fixture(scope="session")
def airflow_session(local_stores: Any) -> AirflowSession:
    from localdev import config
    from localdev.airflow_env import airflow_env
    from localdev.servers import free_port

    state = _SESSION_TMP / "airflow-state"
    env = airflow_env(state, api_port=free_port())
    # The example DAGs plus the test DAGs, in one DAG bundle folder (dags test needs files inside it).
    dags = state / "dags"
    dags.mkdir(parents=True)
    for path in [*(REPO / "dags").glob("*.py"), *(REPO / "tests" / "integration" / "dags").glob("*.py")]:
        shutil.copy(path, dags / path.name)
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    env.pop("AIRFLOW__CORE__XCOM_BACKEND", None)
    # The DAGs retry twice; tests that expect a failure should not wait the default 300 s between tries.
    env["AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY"] = "1"
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    rewrites = [f"--rewrite={old}={new}" for old, new in config.host_rewrites(local_stores.ports).items()]
    subprocess.run(
        [sys.executable, "-m", "localdev.settings_loader", str(REPO / "airflow_settings.yaml"), *rewrites],
        env=env,
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    return AirflowSession(env=env, home=Path(env["AIRFLOW_HOME"]), stores=local_stores)


@pytest.fixture(scope="session")
def s3_client(local_stores: Any) -> Any:
    """An independent boto3 client on the local S3 server, to check what the backends stored."""
    from localdev.buckets import s3_client

    return s3_client(local_stores.endpoints["s3"])


@dataclass
class BucketReader:
    """Reads the local servers' buckets with the plain cloud SDKs, independently of include/."""

    stores: Any

    def _s3(self) -> Any:
        from localdev.buckets import s3_client

        return s3_client(self.stores.endpoints["s3"])

    def _gcs_bucket(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        from localdev import config

        client = storage.Client(
            project="local-dev",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.stores.endpoints["gcs"]},
        )
        return client.bucket(config.BUCKET)

    def _azure_container(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        from localdev import config
        from localdev.buckets import azure_connection_string

        service = BlobServiceClient.from_connection_string(azure_connection_string(self.stores.endpoints["azure"]))
        return service.get_container_client(config.BUCKET)

    def list(self, cloud: str, prefix: str) -> dict[str, int]:
        from localdev import config

        if cloud in ("s3", "minio"):
            pages = self._s3().get_paginator("list_objects_v2").paginate(Bucket=config.BUCKET, Prefix=prefix)
            return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}
        if cloud == "gcs":
            return {b.name: b.size for b in self._gcs_bucket().client.list_blobs(config.BUCKET, prefix=prefix)}
        if cloud == "azure":
            return {b.name: b.size for b in self._azure_container().list_blobs(name_starts_with=prefix)}
        raise ValueError(cloud)

    def read(self, cloud: str, key: str) -> bytes:
        from localdev import config

        if cloud in ("s3", "minio"):
            return self._s3().get_object(Bucket=config.BUCKET, Key=key)["Body"].read()
        if cloud == "gcs":
            return self._gcs_bucket().blob(key).download_as_bytes()
        if cloud == "azure":
            return self._azure_container().download_blob(key).readall()
        raise ValueError(cloud)


@pytest.fixture(scope="session")
def buckets(local_stores: Any) -> BucketReader:
    return BucketReader(local_stores)
