"""At scale: ``python -m bench.scale`` (``make bench-scale``). A program that prints a table.

Two workloads, each run by a real scheduler on PostgreSQL, once with our backend and once with
Airflow's default database backend: ``frames``, 500 mapped tasks each pushing a ~1 MB DataFrame that
one downstream task reads (``S3PandasXComBackend``), and ``json``, 2,000 mapped tasks each pushing a
small JSON dict (``S3JSONXComBackend``, every value offloaded), where what a task process pays before
its first byte moves is all there is. PostgreSQL (for the LocalExecutor runs) and SeaweedFS are
started by this program and stopped at the end.

Executor settings (``--executors local celery``, ``--workers 2 4``):

- ``local``: ``airflow standalone`` (LocalExecutor, ``parallelism`` 8) on a PostgreSQL (Debian's,
  started here with ``initdb`` + ``pg_ctl`` on 127.0.0.1), a fresh database and AIRFLOW_HOME per run;
- ``celery``: a fresh :class:`localdev.celery_deployment.CeleryDeployment` per run (its own state
  folder, PostgreSQL and Redis; API server, scheduler, DAG processor, triggerer and N Celery workers
  that share nothing and have no database access). The same task slots as LocalExecutor: scheduler
  ``parallelism`` 8 and worker concurrency 8 / N (4 with 2 workers, 2 with 4), so every setting runs
  at most 8 tasks at a time and only the executor differs (8 / N rounded, at least 1, for an N that
  does not divide 8). The S3 connection is an ``AIRFLOW_CONN_*`` variable of the servers only: the
  workers get it from the API server (the Execution API), as in a deployment with a secrets backend.

Every run has the same DAG (bench/dags/xcom_at_scale.py) and environment (``bench.__main__.worker_env``).
Wall time is from triggering the run to its end (startup is not counted). Ours and the database
backend run back to back in each setting, the order alternating from one setting to the next so that
drift on a shared machine falls on both. Reports wall time, the xcom table's size, the number of
objects, failed task instances and the task durations Airflow records, and per setting and workload
the ratios ours/db.

Results are merged into ``--out``/scale.json and scale.md (rows of the same executor, workload and
backend are replaced, others kept; ``run`` is the date a row was measured) after every row, so an
interrupted run keeps what finished. ``--quick`` (40 tasks) writes scale-quick.json/md instead.
``--plot`` draws docs/scale-celery.png from scale.json and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.__main__ import create_bucket, worker_env
from bench.approaches import BUCKET
from localdev import airflow_api as api
from localdev import config, servers
from localdev.airflow_env import api_server_env
from localdev.buckets import s3_client
from localdev.config import REPO
from localdev.postgres import Postgres

DAG = "xcom_at_scale"
BACKENDS = {
    "ours": "include.xcom_backends.S3PandasXComBackend",
    "db": "airflow.sdk.bases.xcom.BaseXCom",
}
# workload: (default number of mapped tasks, our backend class for it)
WORKLOADS = {
    "frames": (500, "include.xcom_backends.S3PandasXComBackend"),
    "json": (2000, "include.xcom_backends.S3JSONXComBackend"),
}
SLOTS = 8  # tasks at a time in every executor setting (LocalExecutor's parallelism)
QUICK_TASKS = 40
LOCAL = "LocalExecutor"
# The LocalExecutor rows measured before rows had an executor and a date (commit bf32b41).
LEGACY_RUN = "2026-11-23"


def executor_label(kind: str, workers: int) -> str:
    return LOCAL if kind == "local" else f"Celery, {workers} worker{'s' if workers != 1 else ''}"


def executor_rank(label: str) -> tuple[int, int]:
    if label == LOCAL:
        return (0, 0)
    try:
        return (1, int(label.split(", ")[1].split()[0]))
    except (IndexError, ValueError):
        return (2, 0)


@contextmanager
def stores_up(work: Path) -> Iterator[tuple[Postgres, str]]:
    """PostgreSQL and SeaweedFS (with the benchmark's bucket) under ``work``, stopped at the end (the
    LocalExecutor runs' PostgreSQL; a Celery deployment has its own)."""
    os.chmod(work, 0o755)
    pg = Postgres(work / "pg", servers.free_port())
    s3_port = servers.free_port()
    seaweed = servers.seaweedfs(work / "state", s3_port, BUCKET)
    print(f"Starting PostgreSQL on 127.0.0.1:{pg.port} and SeaweedFS on 127.0.0.1:{s3_port} ...", flush=True)
    pg.start()
    seaweed.start()
    try:
        endpoint = f"http://127.0.0.1:{s3_port}"
        create_bucket(s3_client(endpoint))
        yield pg, endpoint
    finally:
        assert seaweed.pid is not None
        servers.stop_group(seaweed.pid)
        pg.stop()


def base_env(s3_endpoint: str, home: Path, port: int, settings: dict[str, str]) -> dict[str, str]:
    """The benchmark's worker environment, the bench DAGs folder, the API server on ``port``, ``settings``."""
    env = worker_env(s3_endpoint, home)
    env.update(
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "bench" / "dags"),
            **api_server_env(port),
            "PATH": os.pathsep.join([str(config.PYTHON.parent), os.environ.get("PATH", "")]),
            **settings,
        }
    )
    return env


def trigger_and_wait(port: int, home: Path, dag_id: str, timeout: float) -> tuple[str, float]:
    """Unpause ``dag_id``, trigger one run, wait for its end: (state, wall seconds from the trigger)."""
    password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
    tok = api.token(port, password)
    api.wait_for_dag(port, tok, dag_id, timeout=300)
    api.unpause(port, tok, dag_id)
    started = time.monotonic()
    run_id = api.call(port, f"/api/v2/dags/{dag_id}/dagRuns", tok, body={"logical_date": None})["dag_run_id"]
    state = api.wait_for_run(port, tok, dag_id, run_id, timeout=timeout)
    return state, time.monotonic() - started


def run_under_standalone(
    label: str,
    dag_id: str,
    pg: Postgres,
    db: str,
    s3_endpoint: str,
    home: Path,
    settings: dict[str, str],
    timeout: float,
) -> tuple[str, float]:
    """In a new database ``db`` and AIRFLOW_HOME ``home``: migrate, start ``airflow standalone`` with the
    benchmark's worker environment plus ``settings``, trigger one run of ``dag_id`` (from bench/dags)
    and wait for it; stop Airflow. Returns the run's state and wall seconds."""
    pg.sql("postgres", f"CREATE DATABASE {db}")
    port = servers.free_port()
    env = base_env(s3_endpoint, home, port, settings)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = pg.url(db)
    home.mkdir(parents=True)
    argv = [sys.executable, "-m", "airflow", "db", "migrate"]
    migrate = subprocess.run(argv, env=env, capture_output=True, text=True)
    if migrate.returncode != 0:
        raise SystemExit(f"FAILED: airflow db migrate ({label}):\n{migrate.stderr[-3000:]}")
    argv = [sys.executable, "-m", "airflow", "standalone"]
    server = servers.Server(
        f"airflow standalone ({label})",
        argv,
        f"http://127.0.0.1:{port}/api/v2/monitor/health",
        home / "standalone.log",
        env,
    )
    server.start(timeout=300)
    try:
        return trigger_and_wait(port, home, dag_id, timeout)
    finally:
        assert server.pid is not None
        servers.stop_group(server.pid, timeout=60)


def run_under_celery(
    label: str,
    dag_id: str,
    state_dir: Path,
    s3_endpoint: str,
    settings: dict[str, str],
    workers: int,
    timeout: float,
    measure: Callable[[Postgres, str], dict[str, Any]],
    keep: Path | None,
) -> tuple[str, float, dict[str, Any]]:
    """A fresh CeleryDeployment under ``state_dir`` (its own PostgreSQL, Redis, servers and ``workers``
    workers of concurrency SLOTS / workers), the benchmark's environment plus ``settings``; one run of
    ``dag_id``, measured with ``measure(pg, database)`` before everything is stopped again."""
    from localdev.celery_deployment import DATABASE, CeleryDeployment

    port = servers.free_port()
    home = state_dir / "airflow"
    env = base_env(s3_endpoint, home, port, settings)
    home.mkdir(parents=True)
    concurrency = max(1, round(SLOTS / workers))
    deployment = CeleryDeployment(state_dir, env, port, REPO / "bench" / "dags", concurrency=concurrency)
    t0 = time.monotonic()
    try:
        deployment.start(workers, progress=lambda _: None)
        print(f"    ({label}: deployment up in {time.monotonic() - t0:.0f} s, not counted)", flush=True)
        state, wall = trigger_and_wait(port, home, dag_id, timeout)
        return state, wall, measure(deployment.pg, DATABASE)
    finally:
        deployment.stop()
        if keep:
            keep_logs(state_dir, keep / state_dir.name)
        # The deployment's PostgreSQL data (640 MiB of xcom rows for frames on the database backend) is
        # not needed any more.
        shutil.rmtree(state_dir / "postgres", ignore_errors=True)


def keep_logs(src: Path, dest: Path) -> None:
    """Every ``logs`` folder under ``src`` (task logs, component logs), copied to the same place in ``dest``."""
    for logs in src.rglob("logs"):
        if logs.is_dir() and "logs" not in logs.relative_to(src).parts[:-1]:
            shutil.copytree(logs, dest / logs.relative_to(src), dirs_exist_ok=True)


def measurements(pg: Postgres, db: str, s3: Any, prefix: str) -> dict[str, Any]:
    xcom_bytes, rows, values = pg.sql(
        db, "SELECT pg_total_relation_size('xcom'), count(*), coalesce(sum(octet_length(value::text)), 0) FROM xcom"
    )[0]
    failed = pg.sql(db, "SELECT count(*) FROM task_instance WHERE state IS DISTINCT FROM 'success'")[0][0]
    # Task durations as Airflow records them (the task process, without executor queueing).
    durations = dict(
        pg.sql(
            db,
            "SELECT task_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM end_date - start_date)) "
            "FROM task_instance GROUP BY task_id",
        )
    )
    sizes = [
        o["Size"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{prefix}/")
        for o in page.get("Contents", [])
    ]

    def seconds(task: str, digits: int) -> float | None:
        return round(float(durations[task]), digits) if durations.get(task) is not None else None

    return {
        "xcom_table_bytes": int(xcom_bytes),
        "xcom_rows": int(rows),
        "xcom_value_bytes": int(values),
        "objects": len(sizes),
        "object_bytes": sum(sizes),
        "failed_task_instances": int(failed),
        "produce_median_s": seconds("produce", 2),
        "consume_s": seconds("consume", 2),
    }


def run_backend(
    name: str,
    workload: str,
    setting: tuple[str, int],
    pg: Postgres,
    s3_endpoint: str,
    s3: Any,
    work: Path,
    tasks: int,
    keep: Path | None,
) -> dict[str, Any]:
    kind, workers = setting
    tag = "local" if kind == "local" else f"celery{workers}"
    backend = WORKLOADS[workload][1] if name == "ours" else BACKENDS[name]
    prefix = f"scale/{tag}/{workload}/{name}"
    settings = {
        "AIRFLOW__CORE__XCOM_BACKEND": backend,
        "AIRFLOW__XCOM_STORAGE__PREFIX": prefix,
        "AIRFLOW__CORE__PARALLELISM": str(SLOTS),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "64",
        "XCOM_BENCH_TASKS": str(tasks),
        "XCOM_BENCH_KIND": workload,
    }
    label = f"{executor_label(kind, workers)}, {workload}, {name}"
    if kind == "local":
        db = f"airflow_{workload}_{name}"
        home = work / f"{tag}-{workload}-{name}"
        state, wall = run_under_standalone(label, DAG, pg, db, s3_endpoint, home, settings, timeout=7200)
        measured = measurements(pg, db, s3, prefix)
        if keep:
            keep_logs(home, keep / home.name)
    else:
        state, wall, measured = run_under_celery(
            label,
            DAG,
            work / f"{tag}-{workload}-{name}",
            s3_endpoint,
            settings,
            workers,
            timeout=7200,
            measure=lambda db_pg, db: measurements(db_pg, db, s3, prefix),
            keep=keep,
        )
    return {
        "executor": executor_label(kind, workers),
        "workers": workers if kind == "celery" else None,
        "worker_concurrency": max(1, round(SLOTS / workers)) if kind == "celery" else None,
        "run": datetime.now(UTC).strftime("%Y-%m-%d"),
        "workload": workload,
        "backend": name,
        "class": backend,
        "tasks": tasks,
        "state": state,
        "wall_s": round(wall, 1),
        **measured,
    }


def _s(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt) + " s"


def table(results: list[dict[str, Any]]) -> str:
    mib = 1024 * 1024
    lines = [
        "| executor | workload | backend | tasks | run | state | wall time | xcom table (PostgreSQL, total) "
        "| values in xcom rows | objects | object bytes | failed task instances | producer task (median) "
        "| reader task |",
        "|---|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.get('executor', LOCAL)} | {r.get('workload', 'frames')} | {r['class']} | {r['tasks']} "
            f"| {r.get('run', LEGACY_RUN)} | {r['state']} | {r['wall_s']:.0f} s "
            f"| {r['xcom_table_bytes'] / mib:.1f} MiB "
            f"| {r['xcom_value_bytes'] / mib:.2f} MiB in {r['xcom_rows']} rows | {r['objects']} "
            f"| {r['object_bytes'] / mib:.1f} MiB | {r['failed_task_instances']} "
            f"| {_s(r['produce_median_s'], '.2f')} | {_s(r['consume_s'], '.1f')} |"
        )
    return "\n".join(lines) + "\n"


def ratios(results: list[dict[str, Any]]) -> str:
    """Per executor setting and workload with both backends: wall ours/db, producer median ours − db,
    reader ours/db."""
    lines = [
        "| executor | workload | wall time ours/db | producer median ours − db | reader task ours/db |",
        "|---|---|---:|---:|---:|",
    ]
    pairs: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in results:
        pairs.setdefault((r.get("executor", LOCAL), r.get("workload", "frames")), {})[r["backend"]] = r
    for (executor, workload), by in pairs.items():
        ours, db = by.get("ours"), by.get("db")
        if not ours or not db:
            continue
        produce = (
            f"{ours['produce_median_s'] - db['produce_median_s']:+.2f} s"
            if ours["produce_median_s"] is not None and db["produce_median_s"] is not None
            else "–"
        )
        reader = f"{ours['consume_s'] / db['consume_s']:.2f}x" if ours["consume_s"] and db["consume_s"] else "–"
        lines.append(f"| {executor} | {workload} | {ours['wall_s'] / db['wall_s']:.2f}x | {produce} | {reader} |")
    return "\n".join(lines) + "\n"


def merged(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``old`` rows (those without an executor are the first LocalExecutor run's) with ``new`` replacing
    rows of the same executor, workload and backend; in executor, workload, backend order."""

    def key(r: dict[str, Any]) -> tuple[str, str, str]:
        return (r["executor"], r["workload"], r["backend"])

    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in old:
        r = {"executor": LOCAL, "workers": None, "worker_concurrency": None, "run": LEGACY_RUN, **r}
        r.setdefault("workload", "frames")
        rows[key(r)] = r
    for r in new:
        rows[key(r)] = r
    workloads, backends = list(WORKLOADS), list(BACKENDS)
    return sorted(
        rows.values(),
        key=lambda r: (
            executor_rank(r["executor"]),
            workloads.index(r["workload"]) if r["workload"] in workloads else 99,
            backends.index(r["backend"]) if r["backend"] in backends else 99,
        ),
    )


def write(out: Path, stem: str, new: list[dict[str, Any]]) -> str:
    path = out / f"{stem}.json"
    old = json.loads(path.read_text()) if path.exists() else []
    results = merged(old, new)
    path.write_text(json.dumps(results, indent=2) + "\n")
    markdown = table(results) + "\nRatios, ours against the database backend (same executor setting):\n\n"
    markdown += ratios(results)
    (out / f"{stem}.md").write_text(markdown)
    return markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--tasks", type=int, help="mapped tasks of every workload (default: 500 frames, 2000 json)")
    parser.add_argument("--backends", nargs="+", choices=list(BACKENDS), default=list(BACKENDS))
    parser.add_argument("--executors", nargs="+", choices=["local", "celery"], default=["local", "celery"])
    parser.add_argument("--workers", nargs="+", type=int, default=[2, 4], help="Celery worker counts (default 2 4)")
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK_TASKS} tasks, scale-quick.*")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--keep", type=Path, help="keep each run's logs (task logs) under this directory")
    parser.add_argument("--plot", action="store_true", help="draw docs/scale-celery.png from scale.json and exit")
    args = parser.parse_args()
    if args.plot:
        from bench.report import plot_scale

        path = REPO / "docs" / "scale-celery.png"
        plot_scale(json.loads((args.out / "scale.json").read_text()), path)
        print(path)
        return
    if any(n < 1 for n in args.workers):
        raise SystemExit("FAILED: --workers takes whole numbers of at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "scale-quick" if args.quick else "scale"
    if args.quick:
        (args.out / f"{stem}.json").unlink(missing_ok=True)
    settings_list = [("local", 0)] if "local" in args.executors else []
    settings_list += [("celery", n) for n in args.workers] if "celery" in args.executors else []

    results: list[dict[str, Any]] = []
    markdown = ""
    with (
        tempfile.TemporaryDirectory(prefix="xcom-scale-") as tmp,
        stores_up(Path(tmp)) as (
            pg,
            endpoint,
        ),
    ):
        work = Path(tmp)
        s3 = s3_client(endpoint)
        for i, setting in enumerate(settings_list):
            backends = args.backends if i % 2 == 0 else list(reversed(args.backends))
            for workload in args.workloads:
                tasks = args.tasks or (QUICK_TASKS if args.quick else WORKLOADS[workload][0])
                for name in backends:
                    print(
                        f"  {executor_label(*setting)}, {workload}, {name}: {tasks} mapped tasks + 1 reader ...",
                        flush=True,
                    )
                    r = run_backend(name, workload, setting, pg, endpoint, s3, work, tasks, args.keep)
                    results.append(r)
                    markdown = write(args.out, stem, results)
                    print(
                        f"    {r['state']} in {r['wall_s']:.0f} s, xcom table {r['xcom_table_bytes']:,} B, "
                        f"{r['objects']} objects, {r['failed_task_instances']} failed, producer median "
                        f"{_s(r['produce_median_s'], '.2f')}, reader {_s(r['consume_s'], '.1f')}",
                        flush=True,
                    )
    print()
    print(markdown)


if __name__ == "__main__":
    main()
