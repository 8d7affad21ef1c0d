"""Test session set-up: an isolated AIRFLOW_HOME, and real local servers for integration tests.

The servers (SeaweedFS, fake-gcs-server, Azurite, the Pokémon API stub) are started once per
session on free 127.0.0.1 ports and stopped at the end.

In the Astro image (`astro dev pytest`) neither the servers' programs nor the dev tools that `make
install` puts in .venv are there: the tests that need them are skipped, each with a one-line reason
naming `make test`. Under `make test` (XCOM_REQUIRE_SERVERS=1) a missing one fails instead.
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


# --- What `make test` installs and the Astro image does not have ------------------------------------
# XCOM_REQUIRE_SERVERS=1 (set by `make test`): the local servers and the dev tools must be installed,
# a test that needs a missing one fails instead of being skipped.
REQUIRE_SERVERS = "XCOM_REQUIRE_SERVERS"
SERVERS_REASON = (
    "needs the local object stores (SeaweedFS, fake-gcs-server, Azurite) that `make test` installs; "
    "skipped in the image"
)
# Dev tools of requirements-local.in (not in requirements.txt, so not in the image), by import name
# (test modules importing them) and by program (tests running them, next to the interpreter).
DEV_MODULES = {"hypothesis", "markdown", "mkdocs", "playwright", "yaml", "ruff", "mypy"}
DEV_PROGRAMS = {"test_lint.py": ("ruff", "mypy", "mkdocs")}


def missing_local_servers() -> list[str]:
    """The local servers' programs that are not installed (none after `make install`)."""
    from localdev import config

    missing = []
    if not (Path(sys.executable).parent / "weed").exists():
        missing.append("SeaweedFS (weed)")
    try:
        from localdev.servers import fake_gcs_binary

        if not fake_gcs_binary().exists():
            missing.append("fake-gcs-server")
    except ImportError:
        missing.append("fake-gcs-server")
    if not (config.NODE_BIN / "azurite-blob").exists():
        missing.append("Azurite")
    return missing


def servers_required() -> bool:
    return os.environ.get(REQUIRE_SERVERS) == "1"


def need_local_servers() -> None:
    """Skip (in the image) or fail (under `make test`) when a local server's program is missing."""
    missing = missing_local_servers()
    if not missing:
        return
    if servers_required():
        pytest.fail(f"{REQUIRE_SERVERS}=1 but not installed: {', '.join(missing)} (run `make install`)", pytrace=False)
    pytest.skip(SERVERS_REASON)


def dev_tool_reason(tools: list[str]) -> str:
    return f"needs {', '.join(tools)}, dev tools `make test` installs (requirements-local.in); skipped in the image"


def need_dev_programs(item: pytest.Item) -> None:
    programs = DEV_PROGRAMS.get(item.path.name, ())
    missing = [name for name in programs if not (Path(sys.executable).parent / name).exists()]
    if not missing:
        return
    if servers_required():
        pytest.fail(f"{REQUIRE_SERVERS}=1 but not installed: {', '.join(missing)} (run `make install`)", pytrace=False)
    pytest.skip(dev_tool_reason(missing))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("integration"):
        need_local_servers()
    need_dev_programs(item)


class _DevToolsModule(pytest.Module):
    """A test module that imports a dev tool the image lacks is skipped (with the reason) rather than
    an error, outside `make test`."""

    def _getobj(self) -> Any:
        try:
            return super()._getobj()
        except self.CollectError as exc:
            tool = _missing_dev_module(exc.__cause__, self.path)
            if tool and not servers_required():
                raise pytest.skip.Exception(dev_tool_reason([tool]), allow_module_level=True) from None
            raise


def _missing_dev_module(error: BaseException | None, module_path: Path) -> str | None:
    """The dev tool whose absence ``error`` is, if the test module itself imports it (not the code it tests)."""
    if not isinstance(error, ModuleNotFoundError) or (error.name or "").split(".")[0] not in DEV_MODULES:
        return None
    frames, tb = [], error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    importer = [name for name in frames if not name.startswith("<frozen importlib")]
    if importer and Path(importer[-1]) == module_path:
        return (error.name or "").split(".")[0]
    return None


def pytest_pycollect_makemodule(module_path: Path, parent: Any) -> pytest.Module | None:
    if module_path.name.startswith("test_"):
        return _DevToolsModule.from_parent(parent, path=module_path)
    return None


def left_out_of_image(error: BaseException | None) -> str | None:
    """The project file whose absence ``error`` (or what caused it) is, if ``.dockerignore`` leaves that
    file out of the image (.env, airflow_settings.yaml): the test reads a file only the host has."""
    from localdev.astro_image import dockerignore_patterns, ignored

    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, FileNotFoundError) and error.filename:
            path = Path(os.fsdecode(error.filename))
            if path.is_relative_to(REPO) and not path.exists():
                rel = path.relative_to(REPO).as_posix()
                if ignored(rel, dockerignore_patterns()):
                    return rel
        error = error.__cause__ or error.__context__
    return None


def host_file_reason(rel: str) -> str:
    return f"needs {rel}, which .dockerignore leaves out of the image; `make test` runs it"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Outside `make test`, a test that failed only because a host-only project file is absent (in the
    image) is reported as skipped, with the file named."""
    report = yield
    if report.failed and call.excinfo is not None and call.when in ("setup", "call") and not servers_required():
        rel = left_out_of_image(call.excinfo.value)
        if rel:
            report.outcome = "skipped"
            report.longrepr = (str(item.path), (item.location[1] or 0) + 1, f"Skipped: {host_file_reason(rel)}")
    return report


@pytest.fixture(scope="session")
def local_stores() -> Iterator[Any]:
    need_local_servers()
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
