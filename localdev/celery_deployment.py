"""A CeleryExecutor deployment on this machine: ``make run EXECUTOR=celery WORKERS=2``, the Celery tests
and ``bench-scale``'s Celery rows start it with :class:`CeleryDeployment`.

What runs, each in its own process group, all on 127.0.0.1:

- PostgreSQL (Debian's, ``localdev.postgres``): the metadata database;
- Redis (Debian's ``redis-server``): the Celery broker and result backend;
- Airflow's API server, scheduler, DAG processor and triggerer, sharing one AIRFLOW_HOME;
- N Celery workers (``airflow celery worker``), each listening on the queue ``default`` and on its own
  queue (``worker-1``, ``worker-2``, ...), so a task can be pinned to one worker with ``queue=``.

A worker shares nothing with the other processes but the code (the virtualenv and the repository, as a
Docker image would): its own AIRFLOW_HOME (task logs), working directory, temp dir and copy of the DAGs
folder, and a metadata-database URL that cannot be reached (a closed port), so any database access from
a task fails loudly. Nor could it log in to the real database if it found its port: PostgreSQL asks
every connection for a password that only the API server, scheduler, DAG processor and triggerer get.
Its only ways out are the API server (the Execution API: connections, variables, XCom rows), Redis
(the Celery protocol) and the object stores. Each worker reports its own host name (``worker-N``)
as the task instance's hostname, so which worker ran which try shows in the UI and API.

Airflow 3's Celery worker itself needs, besides the broker: a result backend it can write (Airflow's
default is the metadata database, ``db+<sql_alchemy_conn>``, so here Redis is the result backend too),
the Execution API URL, and the DAGs. Its log server (``airflow serve-logs``) binds every interface,
so it is not started (``--skip-serve-logs``): task logs of a worker are in its own folder
(``<state>/workers/worker-N/airflow/logs``), or, in production, in remote logging.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from localdev.postgres import Postgres
from localdev.servers import Server, StartError, free_port, stop_group

REDIS_SERVER = Path(os.environ.get("XCOM_REDIS_SERVER", "/usr/bin/redis-server"))
DATABASE = "airflow"
# A port nothing listens on (TCP "discard", closed here): the workers' metadata-database URL.
UNREACHABLE_DB = "postgresql+psycopg2://workers-have-no-database-access@127.0.0.1:9/none"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def database_password(state: Path) -> str:
    """The metadata database's password, made once per state folder (kept with the database, which
    outlives a restart). Only the API server, scheduler, DAG processor and triggerer are given it."""
    path = state / "postgres-password"
    if not path.exists():
        state.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    return path.read_text().strip()


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def worker_queue(n: int) -> str:
    return f"worker-{n}"


@dataclass
class CeleryDeployment:
    """One deployment under ``state`` (PostgreSQL data, Redis, AIRFLOW_HOME, the workers' folders).

    ``env`` is the environment every Airflow process starts from (``localdev.airflow_env.airflow_env``:
    .env, the DAGs and plugins folders, the XCom backend settings); ``api_port`` where the API server
    listens. ``dags`` is the DAGs folder each worker gets a copy of.
    """

    state: Path
    env: dict[str, str]
    api_port: int
    dags: Path
    concurrency: int = 4
    pg_port: int = 0
    redis_port: int = 0
    secret: str = ""
    servers: dict[str, Server] = field(default_factory=dict)
    worker_numbers: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pg_port = self.pg_port or free_port()
        self.redis_port = self.redis_port or free_port()
        self.secret = self.secret or secrets.token_urlsafe(32)
        self.pg = Postgres(self.state / "postgres", self.pg_port, password=database_password(self.state))

    # --- environments -----------------------------------------------------------------------------
    def common_env(self) -> dict[str, str]:
        """What every component and worker agrees on: the executor, the broker, the result backend, the
        secret the API server signs and checks task tokens with."""
        broker = f"redis://127.0.0.1:{self.redis_port}"
        return {
            **self.env,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": f"{broker}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"{broker}/1",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
            "AIRFLOW__CELERY__DEFAULT_QUEUE": "default",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": "default",
            "AIRFLOW__API_AUTH__JWT_SECRET": self.secret,
            "AIRFLOW__CORE__PARALLELISM": self.env.get("AIRFLOW__CORE__PARALLELISM", "32"),
            # A worker killed mid-task is found within seconds, not the default five minutes.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        }

    def server_env(self) -> dict[str, str]:
        return {**self.common_env(), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.pg.url(DATABASE)}

    def worker_dir(self, n: int) -> Path:
        return self.state / "workers" / worker_queue(n)

    def worker_env(self, n: int) -> dict[str, str]:
        home = self.worker_dir(n)
        env = {k: v for k, v in self.common_env().items() if not k.startswith("AIRFLOW_CONN_")}
        env.update(
            {
                "AIRFLOW_HOME": str(home / "airflow"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": UNREACHABLE_DB,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "localdev.worker_identity.hostname",
                "XCOM_LOCAL_WORKER_NAME": worker_queue(n),
                "TMPDIR": str(home / "tmp"),
                "HOME": str(home),
            }
        )
        return env

    # --- start / stop ------------------------------------------------------------------------------
    def start(self, workers: int, progress: Callable[[str], None] = print) -> None:
        """Everything, in order; on a failure what was started is stopped again."""
        if not REDIS_SERVER.exists():
            raise StartError(
                f"{REDIS_SERVER} is missing: `make redis` installs Debian's redis-server (or set XCOM_REDIS_SERVER)."
            )
        logs = self.state / "logs"
        try:
            t0 = time.monotonic()
            self.pg.start()
            self.pg.ensure_database(DATABASE)
            progress(f"  PostgreSQL ready on 127.0.0.1:{self.pg_port} in {time.monotonic() - t0:.1f}s")
            redis_dir = self.state / "redis"
            redis_dir.mkdir(parents=True, exist_ok=True)
            argv = [str(REDIS_SERVER), "--bind", "127.0.0.1", "--port", str(self.redis_port), "--dir", str(redis_dir)]
            argv += ["--save", "", "--appendonly", "no", "--protected-mode", "yes"]
            self._start("redis", Server("Redis", argv, "", logs / "redis.log"), progress, self.redis_ping)
            self.migrate(progress)
            for name in COMPONENTS:
                self._start(name, self.component(name), progress)
            self.wait_healthy(timeout=180)
            progress("  scheduler, DAG processor and triggerer report healthy")
            for n in range(1, workers + 1):
                self.start_worker(n, progress)
        except BaseException:
            self.stop()
            raise
        self.save()

    def redis_ping(self) -> bool:
        return redis_ping(self.redis_port)

    def migrate(self, progress: Callable[[str], None]) -> None:
        import subprocess

        t0 = time.monotonic()
        log = self.state / "logs" / "db-migrate.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w") as out:
            rc = subprocess.call(
                [sys.executable, "-m", "airflow", "db", "migrate"], env=self.server_env(), stdout=out, stderr=out
            )
        if rc != 0:
            raise StartError(f"airflow db migrate (PostgreSQL) exited with code {rc}; log: {log}")
        progress(f"  airflow db migrate (PostgreSQL) done in {time.monotonic() - t0:.1f}s")

    def component(self, name: str) -> Server:
        argv = [sys.executable, "-m", "airflow", name]
        log = self.state / "logs" / f"{name}.log"
        if name == "api-server":
            url = f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"
            return Server("Airflow API server", argv, url, log, self.server_env())
        return Server(f"Airflow {name}", argv, "", log, self.server_env(), ready_check=lambda: True)

    def health(self) -> dict[str, str]:
        url = f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"
        with urllib.request.urlopen(url, timeout=5) as resp:
            data = json.loads(resp.read())
        return {part: (data.get(part) or {}).get("status") or "unknown" for part in data}

    def wait_healthy(self, timeout: float) -> None:
        deadline, health = time.monotonic() + timeout, {}
        wanted = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        while time.monotonic() < deadline:
            try:
                health = self.health()
            except OSError:
                health = {}
            if all(health.get(part) == "healthy" for part in wanted):
                return
            time.sleep(1)
        raise StartError(f"Airflow components not healthy after {timeout:.0f}s: {health}; logs: {self.state / 'logs'}")

    def start_worker(
        self,
        n: int,
        progress: Callable[[str], None] = print,
        *,
        extra_queues: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        """Worker ``n`` in a fresh folder of its own (an earlier worker-n's folder is removed first, as a
        replaced pod starts with an empty disk). It listens on ``default``, ``worker-n`` and
        ``extra_queues`` (a replacement taking over a lost worker's queue); ``env`` overrides entries of
        its environment (e.g. its Execution API URL)."""
        home = self.worker_dir(n)
        shutil.rmtree(home, ignore_errors=True)
        (home / "tmp").mkdir(parents=True)
        (home / "airflow").mkdir()
        shutil.copytree(self.dags, home / "dags", ignore=shutil.ignore_patterns("__pycache__"))
        queues = ["default", worker_queue(n), *(q for q in extra_queues if q not in ("default", worker_queue(n)))]
        argv = [sys.executable, "-m", "airflow", "celery", "worker", "--queues", ",".join(queues)]
        argv += ["--concurrency", str(self.concurrency), "--celery-hostname", f"{worker_queue(n)}@localdev"]
        argv += ["--skip-serve-logs", "--without-mingle", "--without-gossip"]
        log = self.state / "logs" / f"{worker_queue(n)}.log"
        log.unlink(missing_ok=True)
        marker = f"{worker_queue(n)}@localdev ready."

        def ready() -> bool:
            return log.exists() and marker in log.read_text(errors="replace")

        worker_env = {**self.worker_env(n), **(env or {})}
        server = Server(f"Celery worker {n}", argv, "", log, worker_env, ready_check=ready, cwd=home)
        self._start(worker_queue(n), server, progress)
        if n not in self.worker_numbers:
            self.worker_numbers.append(n)
        self.save()

    def kill_worker(self, n: int) -> None:
        """SIGKILL worker ``n`` and every process it started (its task processes included): a node lost."""
        server = self.servers.pop(worker_queue(n))
        assert server.pid is not None
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        stop_group(server.pid, timeout=10)  # reaps it
        self.save()

    def _start(
        self, key: str, server: Server, progress: Callable[[str], None], check: Callable[[], bool] | None = None
    ) -> None:
        if check is not None:
            server.ready_check = check
        t0 = time.monotonic()
        server.start(timeout=180)
        self.servers[key] = server
        progress(f"  {server.name} started in {time.monotonic() - t0:.1f}s (log: {server.log})")

    def stop(self) -> None:
        for key in reversed(list(self.servers)):
            pid = self.servers[key].pid
            if pid:
                stop_group(pid, timeout=40)
        self.servers.clear()
        if self.pg.running():
            self.pg.stop()
        (self.state / "celery.json").unlink(missing_ok=True)

    # --- the state file, for `make stop` and `make status` -------------------------------------------
    def save(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        data = {
            "pids": {key: s.pid for key, s in self.servers.items()},
            "pg_port": self.pg_port,
            "redis_port": self.redis_port,
            "api_port": self.api_port,
            "pgdata": str(self.pg.data),
        }
        (self.state / "celery.json").write_text(json.dumps(data, indent=2))


def stop_saved(state: Path) -> list[str]:
    """Stop what a deployment saved in ``state/celery.json`` (``make stop``); the names of what ran."""
    path = state / "celery.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    stopped = [key for key, pid in reversed(list(data["pids"].items())) if pid and stop_group(pid, timeout=40)]
    pg = Postgres(Path(data["pgdata"]).parent, data["pg_port"], password=database_password(state))
    if pg.running():
        pg.stop()
        stopped.append("postgres")
    path.unlink()
    return stopped
