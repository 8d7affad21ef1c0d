"""The backend under CeleryExecutor with workers that share nothing (localdev/celery_deployment.py):
PostgreSQL, Redis, Airflow's API server, scheduler, DAG processor and triggerer, and two Celery
workers, each with its own home, temp dir and copy of the DAGs, and a metadata-database URL that
answers nothing. Started once for the module; the DAG runs of the first tests are triggered together
at the start, each test waits for its own.

Values cross from one worker to the other through the object store and the API server only (the test
DAGs in tests/integration/celery_dags pin producers and consumers with ``queue=``); task code cannot
reach the metadata database; the UI plugin on the API server previews what the workers wrote; routing
rules hold on every worker; and a worker killed in the middle of a push leaves an orphan that the
retry on another worker does not read and that gc finds and deletes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localdev import config
from localdev.airflow_api import call as api
from localdev.airflow_api import request, unpause, wait_for_dag, wait_for_run
from localdev.airflow_api import token as api_token
from localdev.celery_deployment import UNREACHABLE_DB
from localdev.config import REPO
from tests.conftest import REQUIRE_SERVERS, servers_required
from tests.integration.celery_dags.celery_test_dags import FIRST_TRY_SLEEP, LOST_PAYLOAD, SLEEPING
from tests.integration.localrun import processes_mentioning
from tests.integration.netfaults import Freezer, freezable_proxy

pytestmark = pytest.mark.integration
BACKEND = "include.xcom_backends.S3PandasXComBackend"
PREFIX = "it-celery"
ROUTED_PREFIX = "it-celery-routed"
STORES = {
    "routed": {"type": "gcs", "conn_id": "gcs_xcom_backend_conn", "bucket": config.BUCKET, "prefix": ROUTED_PREFIX}
}
RULES = [{"name": "routed tasks to GCS", "dag_id": "celery_routed", "task_id": "routed_on_*", "to": "routed"}]
EXAMPLES = ("simple_xcom_dag", "fetch_pokemon_data_dag")
TEST_DAGS = ("celery_pinned", "celery_no_db", "celery_routed", "celery_worker_lost")
# Triggered together when the deployment is up; celery_worker_lost is triggered by its own test.
STARTED_RUNS = {**{dag: f"{dag}-it" for dag in EXAMPLES}, **{dag: f"{dag}-it" for dag in TEST_DAGS[:3]}}


def need_programs() -> None:
    """PostgreSQL and redis-server, which `make test` installs (`make postgres redis`): skipped without
    them in the image, a failure under XCOM_REQUIRE_SERVERS=1."""
    from localdev.celery_deployment import REDIS_SERVER
    from localdev.postgres import PG_BIN

    missing = [str(p) for p in (PG_BIN / "initdb", REDIS_SERVER) if not p.exists()]
    if not missing:
        return
    if servers_required():
        pytest.fail(f"{REQUIRE_SERVERS}=1 but not installed: {', '.join(missing)} (run `make postgres redis`)")
    pytest.skip(f"needs {', '.join(missing)} (PostgreSQL and Redis, which `make test` installs); skipped in the image")


@dataclass
class Celery:
    deployment: Any  # localdev.celery_deployment.CeleryDeployment
    token: str
    freezer: Freezer  # between worker-1 and the API server's Execution API

    @property
    def port_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def port(self) -> int:
        return int(self.deployment.api_port)

    def api(self, path: str, body: Any = None, method: str | None = None) -> Any:
        return api(self.port, path, self.token, body, method)

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None) -> None:
        self.api(f"/api/v2/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None, "conf": conf or {}})

    def wait(self, dag_id: str, run_id: str, timeout: float = 240) -> str:
        return wait_for_run(self.port, self.token, dag_id, run_id, timeout=timeout)

    def run_path(self, dag_id: str, run_id: str) -> str:
        return f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"

    def tis(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self.api(f"{self.run_path(dag_id, run_id)}/taskInstances?limit=100")["task_instances"])

    def ti_state(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return dict(self.api(f"{self.run_path(dag_id, run_id)}/taskInstances/{task_id}"))

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        return self.api(f"{self.run_path(dag_id, run_id)}/taskInstances/{task_id}/xcomEntries/{key}")["value"]

    def failure(self, dag_id: str, run_id: str) -> str:
        """What went wrong, for an assertion message: the states and the end of the worker logs."""
        states = {(t["task_id"], t["map_index"]): (t["state"], t["hostname"]) for t in self.tis(dag_id, run_id)}
        logs = sorted(self.deployment.state.glob(f"workers/*/airflow/logs/dag_id={dag_id}/run_id={run_id}/**/*.log"))
        return f"{states}\n" + "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-2500:]}" for p in logs)

    def python(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**self.deployment.server_env(), "_AIRFLOW_PROCESS_CONTEXT": "server"}
        return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def celery(local_stores: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Celery]:
    need_programs()
    from localdev.__main__ import api_password
    from localdev.airflow_env import airflow_env
    from localdev.celery_deployment import CeleryDeployment
    from localdev.servers import free_port
    from localdev.settings_loader import auth_header, load_via_api, plan

    root = tmp_path_factory.mktemp("celery")
    dags = root / "dags"  # the example DAGs and the test DAGs: the folder each worker gets a copy of
    dags.mkdir()
    for path in [*(REPO / "dags").glob("*.py"), *(Path(__file__).parent / "celery_dags").glob("*.py")]:
        shutil.copy(path, dags / path.name)
    port = free_port()
    env = airflow_env(root / "state", api_port=port)
    env.update(
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__XCOM_BACKEND": BACKEND,
            "AIRFLOW__XCOM_STORAGE__PREFIX": PREFIX,
            "AIRFLOW__XCOM_STORAGE__STORES": json.dumps(STORES),
            "AIRFLOW__XCOM_STORAGE__RULES": json.dumps(RULES),
        }
    )
    deployment = CeleryDeployment(root / "state", env, port, dags)
    quiet = lambda _msg: None  # noqa: E731
    with freezable_proxy(port) as (proxy_port, freezer):
        try:
            deployment.start(0, progress=quiet)
            # Worker 1 reaches the Execution API through a proxy the worker-lost test can freeze.
            proxied = {"AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{proxy_port}/execution/"}
            deployment.start_worker(1, quiet, env=proxied)
            deployment.start_worker(2, quiet)
            # Connections as `make run` loads them: through the REST API into the metadata database; the
            # workers get them from the API server only.
            base, password = f"http://127.0.0.1:{port}", api_password(deployment.server_env())
            settings = plan(REPO / "airflow_settings.yaml", config.host_rewrites(local_stores.ports))
            load_via_api(f"{base}/api/v2", auth_header(base, password), settings)
            cluster = Celery(deployment, api_token(port, password), freezer)
            for dag_id in (*EXAMPLES, *TEST_DAGS):
                wait_for_dag(port, cluster.token, dag_id)
                unpause(port, cluster.token, dag_id)
            # The metadata-database URL worker 2 was started with, for the task that tries it directly.
            no_db = {"worker_database_url": deployment.worker_env(2)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]}
            for dag_id, run_id in STARTED_RUNS.items():
                cluster.trigger(dag_id, run_id, no_db if dag_id == "celery_no_db" else None)
            yield cluster
        finally:
            deployment.stop()


def test_example_dags_succeed_across_both_workers(celery: Celery) -> None:
    hosts = set()
    for dag_id in EXAMPLES:
        assert celery.wait(dag_id, STARTED_RUNS[dag_id]) == "success", celery.failure(dag_id, STARTED_RUNS[dag_id])
        # Unpausing also made the scheduled run of the last interval: it must succeed too.
        for run in celery.api(f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]:
            assert celery.wait(dag_id, run["dag_run_id"]) == "success", celery.failure(dag_id, run["dag_run_id"])
            hosts |= {ti["hostname"] for ti in celery.tis(dag_id, run["dag_run_id"])}
    assert hosts == {"worker-1", "worker-2"}, hosts
    frame_ref = celery.xcom("fetch_pokemon_data_dag", STARTED_RUNS["fetch_pokemon_data_dag"], "calculate_xp_per_height")
    assert frame_ref["uri"].startswith(f"s3://{config.BUCKET}/{PREFIX}/fetch_pokemon_data_dag/")
    assert frame_ref["format"] == "parquet"


def test_values_cross_from_worker_1_to_worker_2(celery: Celery, buckets: Any) -> None:
    dag_id, run_id = "celery_pinned", STARTED_RUNS["celery_pinned"]
    assert celery.wait(dag_id, run_id) == "success", celery.failure(dag_id, run_id)
    tis = celery.tis(dag_id, run_id)
    consumers = {"check_frame", "check_json", "check_values", "check_all_at_once", "check_lazily"}
    for ti in tis:
        wanted = "worker-2" if ti["task_id"] in consumers else "worker-1"
        assert (ti["state"], ti["hostname"]) == ("success", wanted), ti
    assert len([ti for ti in tis if ti["task_id"] == "square"]) == 6
    # Every value the producers pushed is an object in the bucket, under the run's own location.
    objects = buckets.list("s3", f"{PREFIX}/{dag_id}/{run_id}/")
    found = {tuple(key.split("/")[3:6]) for key in objects}
    from tests.values import binary_values, lossy_in_serde, serde_values

    keys = [*serde_values(), *lossy_in_serde(), *binary_values(), "return_value"]
    expected = {("push_frame", "-1", "return_value"), ("push_json", "-1", "return_value")}
    expected |= {("numbers", "-1", "return_value")} | {("square", str(i), "return_value") for i in range(6)}
    expected |= {("push_values", "-1", urllib.parse.quote(key, safe="")) for key in keys}
    assert found == expected, found ^ expected
    frame_ref = celery.xcom(dag_id, run_id, "push_frame")
    assert frame_ref["format"] == "parquet" and frame_ref["uri"].split("/", 3)[3] in objects


def test_task_code_cannot_reach_the_metadata_database(celery: Celery) -> None:
    dag_id, run_id = "celery_no_db", STARTED_RUNS["celery_no_db"]
    assert celery.wait(dag_id, run_id) == "failed"
    states = {ti["task_id"]: (ti["state"], ti["hostname"]) for ti in celery.tis(dag_id, run_id)}
    assert states == {"orm_query": ("failed", "worker-1"), "raw_connect": ("failed", "worker-2")}, states

    def log(worker: int, task_id: str) -> str:
        folder = celery.deployment.worker_dir(worker) / "airflow" / "logs"
        (path,) = folder.glob(f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/attempt=1.log")
        return path.read_text(errors="replace")

    # The ORM: Airflow's task runner blocks it in the task process.
    assert "Direct database access via the ORM is not allowed" in log(1, "orm_query")
    # A raw connection to the URL the worker is configured with: nothing answers there.
    raw = log(2, "raw_connect")
    assert "in this task: airflow-db-not-allowed:///; the worker's: " + UNREACHABLE_DB in raw
    assert '"exc_type": "OperationalError"' in raw or '"exc_type":"OperationalError"' in raw, raw[-3000:]
    assert "Connection refused" in raw, raw[-3000:]
    assert "dag runs seen from a worker" not in log(1, "orm_query") + raw
    # A process that found the real database's port but was not given its password (as a worker is
    # not: see test_celery_deployment.py) cannot log in, over TCP or the Unix socket.
    import psycopg2

    pg = celery.deployment.pg
    for where in ({"host": "127.0.0.1"}, {"host": str(pg.sock)}):
        with pytest.raises(psycopg2.OperationalError, match="password"):
            psycopg2.connect(port=pg.port, user="postgres", dbname="airflow", connect_timeout=5, **where)


def test_ui_plugin_previews_what_workers_wrote(celery: Celery) -> None:
    import http.client

    dag_id, run_id = "celery_pinned", STARTED_RUNS["celery_pinned"]
    assert celery.wait(dag_id, run_id) == "success"

    def page(task_id: str, map_index: int = -1) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", celery.port, timeout=60)
        query = urllib.parse.urlencode({"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index})
        conn.request("GET", f"/xcom-storage/ti?{query}", headers={"Authorization": f"Bearer {celery.token}"})
        resp = conn.getresponse()
        body = resp.read().decode()
        assert resp.status == 200, body[:2000]
        return body.split('data-key="return_value"', 1)[1].split("</section>", 1)[0]

    frame_card = page("push_frame")
    assert celery.xcom(dag_id, run_id, "push_frame")["uri"] in frame_card
    assert 'class="preview"' in frame_card and "1,000 × 7 columns" in frame_card, frame_card[:3000]
    for cell in ("nullable", "Europe/Berlin", "日本"):
        assert cell in frame_card, cell
    json_card = page("push_json")
    assert 'class="json"' in json_card and "Pokémon ✓ 日本語 🐍" in json_card, json_card[:3000]
    mapped_card = page("square", 4)
    assert "&#34;square&#34;: 25" in mapped_card or '"square": 25' in mapped_card, mapped_card[:3000]


def test_routing_rules_hold_on_every_worker(celery: Celery, buckets: Any) -> None:
    dag_id, run_id = "celery_routed", STARTED_RUNS["celery_routed"]
    assert celery.wait(dag_id, run_id) == "success", celery.failure(dag_id, run_id)
    hosts = {ti["task_id"]: ti["hostname"] for ti in celery.tis(dag_id, run_id)}
    assert hosts == {
        "routed_on_1": "worker-1",
        "check_on_2": "worker-2",
        "routed_on_2": "worker-2",
        "check_on_1": "worker-1",
    }
    routed = buckets.list("gcs", f"{ROUTED_PREFIX}/{dag_id}/{run_id}/")
    assert {tuple(k.split("/")[3:6]) for k in routed} == {
        (task, "-1", key) for task in ("routed_on_1", "routed_on_2") for key in ("return_value", "meta")
    }, routed
    for task in ("routed_on_1", "routed_on_2"):
        for key in ("return_value", "meta"):
            ref = celery.xcom(dag_id, run_id, task, key)
            assert ref["store"] == "routed" and ref["uri"].split("/", 3)[3] in routed, ref
    assert buckets.list("s3", f"{PREFIX}/{dag_id}/") == {}, "a routed value also landed in the default store"


def test_worker_killed_mid_push_retry_on_another_worker_and_gc(celery: Celery, buckets: Any) -> None:
    """Worker 1 is cut off from the API server while its task runs: the value's object is uploaded (the
    store is reached directly) but the XCom row write hangs. Worker 1 is then killed (SIGKILL, the whole
    group); a replacement worker-3 takes over queue worker-1; the scheduler finds the lost task by its
    missing heartbeats and retries it there. The consumer must read try 2's value; the object of try 1
    is an orphan that gc lists and deletes, and nothing else."""
    dag_id, run_id = "celery_worker_lost", "celery_worker_lost-it"
    location = f"{PREFIX}/{dag_id}/{run_id}/produce/-1/return_value/"
    celery.trigger(dag_id, run_id)
    log = (
        celery.deployment.worker_dir(1) / f"airflow/logs/dag_id={dag_id}/run_id={run_id}/task_id=produce/attempt=1.log"
    )
    deadline = time.monotonic() + 90
    while not (log.exists() and SLEEPING in log.read_text(errors="replace")):
        assert time.monotonic() < deadline, celery.failure(dag_id, run_id)
        time.sleep(0.2)
    celery.freezer.freeze()
    deadline = time.monotonic() + 60 + FIRST_TRY_SLEEP
    while not (first := buckets.list("s3", location)):
        assert time.monotonic() < deadline, celery.failure(dag_id, run_id)
        time.sleep(0.2)
    while celery.freezer.dropped == 0:  # the supervisor's next call (the row write) reaches the proxy, lost
        assert time.monotonic() < deadline, celery.failure(dag_id, run_id)
        time.sleep(0.2)
    assert celery.ti_state(dag_id, run_id, "produce")["state"] == "running"
    entry = f"{celery.port_url}{celery.run_path(dag_id, run_id)}/taskInstances/produce/xcomEntries/return_value"
    assert request(entry, "GET", f"Bearer {celery.token}")[0] == 404  # object uploaded, no row
    celery.deployment.kill_worker(1)
    celery.deployment.start_worker(3, lambda _msg: None, extra_queues=["worker-1"])

    assert celery.wait(dag_id, run_id, timeout=150) == "success", celery.failure(dag_id, run_id)
    tries = celery.api(f"{celery.run_path(dag_id, run_id)}/taskInstances/produce/tries")["task_instances"]
    assert [(t["try_number"], t["hostname"]) for t in tries] == [(1, "worker-1"), (2, "worker-3")], tries
    assert tries[0]["state"] != "success" and tries[1]["state"] == "success", tries
    assert celery.ti_state(dag_id, run_id, "consume")["hostname"] == "worker-2"
    live = celery.xcom(dag_id, run_id, "produce")["uri"].split("/", 3)[3]
    (orphan,) = first
    assert set(buckets.list("s3", location)) == {orphan, live} and live != orphan
    assert json.loads(buckets.read("s3", live)) == {**LOST_PAYLOAD, "try_number": 2}
    assert json.loads(buckets.read("s3", orphan)) == {**LOST_PAYLOAD, "try_number": 1}

    # gc (where the scheduler runs: the metadata database) after doctor claimed the location.
    doctor = celery.python("-m", "include.xcom_backends", "doctor")
    assert doctor.returncode == 0, (doctor.stdout + doctor.stderr)[-4000:]
    dry = celery.python("-m", "include.xcom_backends", "gc", "--older-than-hours", "0")
    assert dry.returncode == 0, (dry.stdout + dry.stderr)[-4000:]
    listed = [line.split()[-1] for line in dry.stdout.splitlines() if line.startswith("    ") and " B  " in line]
    assert listed == [orphan] and "orphans: 1 (" in dry.stdout, dry.stdout
    assert set(buckets.list("s3", location)) == {orphan, live}
    done = celery.python("-m", "include.xcom_backends", "gc", "--older-than-hours", "0", "--delete")
    assert done.returncode == 0 and "Deleted 1 orphans" in done.stdout, done.stdout + done.stderr
    assert set(buckets.list("s3", location)) == {live}


def test_stop_leaves_no_process(celery: Celery) -> None:
    state = celery.deployment.state
    celery.deployment.stop()
    assert processes_mentioning(str(state)) == []


def test_make_run_with_the_celery_executor(tmp_path: Path) -> None:
    """`make run EXECUTOR=celery WORKERS=1` (``python -m localdev up --executor celery --workers 1``) on a
    state folder of its own: it says what runs, the example DAG runs on the worker, `make stop` (down)
    leaves nothing."""
    need_programs()
    from tests.integration.localrun import started

    with started(tmp_path, up_args=("--executor", "celery", "--workers", "1", "--concurrency", "2")) as run:
        assert "Airflow is running with CeleryExecutor" in run.up_output, run.up_output
        assert "[PASS] owner" in run.up_output, run.up_output
        port, token = run.ports["airflow"], run.token()
        health = api(port, "/api/v2/monitor/health", token)
        assert {part: health[part]["status"] for part in ("scheduler", "dag_processor", "triggerer")} == {
            "scheduler": "healthy",
            "dag_processor": "healthy",
            "triggerer": "healthy",
        }
        wait_for_dag(port, token, "simple_xcom_dag")
        unpause(port, token, "simple_xcom_dag")
        api(port, "/api/v2/dags/simple_xcom_dag/dagRuns", token, {"dag_run_id": "via-make-run", "logical_date": None})
        assert wait_for_run(port, token, "simple_xcom_dag", "via-make-run", timeout=180) == "success"
        tis = api(port, "/api/v2/dags/simple_xcom_dag/dagRuns/via-make-run/taskInstances", token)["task_instances"]
        assert {ti["hostname"] for ti in tis} == {"worker-1"}
        down = run.localdev("down", timeout=120)
        assert down.returncode == 0 and "worker-1" in down.stdout and "postgres" in down.stdout, down.stdout
    assert processes_mentioning(str(run.state)) == []
