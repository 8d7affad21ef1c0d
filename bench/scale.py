"""At scale: ``python -m bench.scale`` (``make bench-scale``). A program that prints a table.

Two workloads, each run by a real scheduler (``airflow standalone``, LocalExecutor) on PostgreSQL,
once with our backend and once with Airflow's default database backend: ``frames``, 500 mapped
tasks each pushing a ~1 MB DataFrame that one downstream task reads (``S3PandasXComBackend``), and
``json``, 2,000 mapped tasks each pushing a small JSON dict (``S3JSONXComBackend``, every value
offloaded), where what a task process pays before its first byte moves is all there is.
PostgreSQL (Debian's, started here with ``initdb`` + ``pg_ctl`` on 127.0.0.1) and SeaweedFS are
started by this program and stopped at the end.
Reports wall time, the xcom table's size, the number of objects, and failed task instances.
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
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def stores_up(work: Path) -> Iterator[tuple[Postgres, str]]:
    """PostgreSQL and SeaweedFS (with the benchmark's bucket) under ``work``, stopped at the end."""
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
    env = worker_env(s3_endpoint, home)
    env.update(
        {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg.url(db),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "bench" / "dags"),
            **api_server_env(port),
            "PATH": os.pathsep.join([str(config.PYTHON.parent), os.environ.get("PATH", "")]),
            **settings,
        }
    )
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
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        tok = api.token(port, password)
        api.wait_for_dag(port, tok, dag_id, timeout=300)
        api.unpause(port, tok, dag_id)
        started = time.monotonic()
        run_id = api.call(port, f"/api/v2/dags/{dag_id}/dagRuns", tok, body={"logical_date": None})["dag_run_id"]
        state = api.wait_for_run(port, tok, dag_id, run_id, timeout=timeout)
        return state, time.monotonic() - started
    finally:
        assert server.pid is not None
        servers.stop_group(server.pid, timeout=60)


def run_backend(
    name: str, workload: str, pg: Postgres, s3_endpoint: str, s3: Any, work: Path, tasks: int
) -> dict[str, Any]:
    db = f"airflow_{workload}_{name}"
    backend = WORKLOADS[workload][1] if name == "ours" else BACKENDS[name]
    settings = {
        "AIRFLOW__CORE__XCOM_BACKEND": backend,
        "AIRFLOW__XCOM_STORAGE__PREFIX": f"scale/{workload}/{name}",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "64",
        "XCOM_BENCH_TASKS": str(tasks),
        "XCOM_BENCH_KIND": workload,
    }
    state, wall = run_under_standalone(
        f"{workload}, {name}", DAG, pg, db, s3_endpoint, work / f"{workload}-{name}", settings, timeout=7200
    )
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
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"scale/{workload}/{name}/")
        for o in page.get("Contents", [])
    ]
    return {
        "workload": workload,
        "backend": name,
        "class": backend,
        "tasks": tasks,
        "state": state,
        "wall_s": round(wall, 1),
        "xcom_table_bytes": int(xcom_bytes),
        "xcom_rows": int(rows),
        "xcom_value_bytes": int(values),
        "objects": len(sizes),
        "object_bytes": sum(sizes),
        "failed_task_instances": int(failed),
        "produce_median_s": round(float(durations["produce"]), 2),
        "consume_s": round(float(durations["consume"]), 2),
    }


def table(results: list[dict[str, Any]]) -> str:
    mib = 1024 * 1024
    lines = [
        "| workload | backend | tasks | run | wall time | xcom table (PostgreSQL, total) | values in xcom rows "
        "| objects | object bytes | failed task instances | producer task (median) | reader task |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.get('workload', 'frames')} | {r['class']} | {r['tasks']} | {r['state']} | {r['wall_s']:.0f} s "
            f"| {r['xcom_table_bytes'] / mib:.1f} MiB "
            f"| {r['xcom_value_bytes'] / mib:.2f} MiB in {r['xcom_rows']} rows | {r['objects']} "
            f"| {r['object_bytes'] / mib:.1f} MiB | {r['failed_task_instances']} "
            f"| {r['produce_median_s']:.2f} s | {r['consume_s']:.1f} s |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--tasks", type=int, help="mapped tasks of every workload (default: 500 frames, 2000 json)")
    parser.add_argument("--backends", nargs="+", choices=list(BACKENDS), default=list(BACKENDS))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--keep", type=Path, help="keep each run's AIRFLOW_HOME (task logs) under this directory")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    results = []
    with tempfile.TemporaryDirectory(prefix="xcom-scale-") as tmp, stores_up(Path(tmp)) as (pg, endpoint):
        work = Path(tmp)
        s3 = s3_client(endpoint)
        for workload in args.workloads:
            tasks = args.tasks or WORKLOADS[workload][0]
            for name in args.backends:
                print(f"  {workload}, {name}: {tasks} mapped tasks + 1 reader ...", flush=True)
                r = run_backend(name, workload, pg, endpoint, s3, work, tasks)
                results.append(r)
                print(
                    f"    {r['state']} in {r['wall_s']:.0f} s, xcom table {r['xcom_table_bytes']:,} B, "
                    f"{r['objects']} objects, {r['failed_task_instances']} failed",
                    flush=True,
                )
        if args.keep:
            for home in work.iterdir():
                if (home / "logs").is_dir():
                    shutil.copytree(home / "logs", args.keep / home.name / "logs", dirs_exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(results, indent=2))
    markdown = table(results)
    (args.out / "scale.md").write_text(markdown)
    print()
    print(markdown)


if __name__ == "__main__":
    main()
