"""The benchmark: ``python -m bench`` (``make bench``). A program that prints tables, not a test.

Starts SeaweedFS on 127.0.0.1, then for every workload runs fresh worker processes
(``bench/worker.py``): timing processes (the first push and pull of the process, then repeats) in
rounds that interleave the approaches, then per approach processes for the peak memory of a push
and of a pull. Writes ``results.json`` (raw numbers), ``results.md`` (tables) and ``bench.png``
(time against rows) to ``--out``.

Then, unless ``--no-fixedcost`` (or ``--workloads`` / ``--approaches`` narrow the run), the table of
the fixed cost per task process, per store (``bench/fixedcost.py``): ``fixedcost.json`` and
``fixedcost.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

from bench import fixedcost
from bench.approaches import APPROACHES, BUCKET, CONN_ID, object_prefix, supports
from bench.report import write_report
from bench.workloads import ALL, FRAME_ROWS, ROWS
from localdev import config, servers
from localdev.airflow_env import read_dotenv
from localdev.config import REPO

MEMORY_RUNS = 3
SLOW_S = 5.0
QUICK = ("frame_10k", "frame_100k", "json_small", "json_1mb")
FIXEDCOST_ROUNDS = 5  # about a minute and a half on 2 cores (3 with --quick)


def worker_env(s3_endpoint: str, home: Path) -> dict[str, str]:
    conn = {
        "conn_type": "aws",
        "login": config.DEV_S3_ACCESS_KEY,  # SeaweedFS's local development keys (MinIO's defaults)
        "password": config.DEV_S3_SECRET_KEY,
        "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    # The project's own process settings from .env (pyarrow's allocator), for every approach alike.
    env.update({k: v for k, v in read_dotenv(REPO / ".env").items() if not k.startswith("AIRFLOW")})
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(conn),
            "AIRFLOW__XCOM_STORAGE__BUCKET": BUCKET,
            "AIRFLOW__XCOM_STORAGE__PREFIX": "bench/ours",
            "AIRFLOW__XCOM_STORAGE__THRESHOLD_BYTES": "0",
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH": f"s3://{CONN_ID}@{BUCKET}/bench/common_io",
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD": "0",
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_COMPRESSION": "",
            "PYTHONPATH": str(REPO),
        }
    )
    return env


def create_bucket(s3: Any) -> None:
    """The bucket, unless SeaweedFS (started with -bucket) has already made it."""
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass


class Bench:
    def __init__(self, s3_endpoint: str, work: Path) -> None:
        from localdev.buckets import s3_client

        self.work = work
        self.env = worker_env(s3_endpoint, work / "airflow")
        self.s3 = s3_client(s3_endpoint)

    def worker(self, mode: str, approach: str, *args: str) -> dict[str, Any]:
        argv = [sys.executable, "-m", "bench.worker", mode, approach, *args, "--db", str(self.work / "metadata.sqlite")]
        env = {**self.env, **getattr(APPROACHES[approach], "env", {})}
        proc = subprocess.run(argv, env=env, cwd=self.work, capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"worker {mode} {approach} {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def objects(self, prefix: str) -> list[int]:
        sizes: list[int] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            sizes += [o["Size"] for o in page.get("Contents", [])]
        return sizes

    def clear(self, prefix: str) -> None:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})

    def time(self, approach: str, workload: str, repeats: int) -> dict[str, Any]:
        """One timing process: its first push and pull, then ``repeats`` more; counts the objects written."""
        prefix = object_prefix(approach)  # empty: every step clears its objects after itself
        timed = self.worker("time", approach, workload, "--repeats", str(repeats))
        sizes = self.objects(prefix) if prefix else []
        timed["objects"], timed["object_bytes"] = len(sizes), max(sizes, default=0)
        if prefix:
            self.clear(prefix)
        return timed

    def memory(self, approach: str, workload: str) -> tuple[float, float]:
        """Median peak extra memory of a push and of a pull, each in its own process."""
        stored = self.work / "stored.json"
        # Resident-memory peaks vary from process to process (allocator state): median of MEMORY_RUNS.
        push_peak = median(
            self.worker("push-mem", approach, workload, "--stored", str(stored))["push_peak"]
            for _ in range(MEMORY_RUNS)
        )
        pull_peak = median(
            self.worker("pull-mem", approach, workload, "--stored", str(stored))["pull_peak"]
            for _ in range(MEMORY_RUNS)
        )
        prefix = object_prefix(approach)
        if prefix:
            self.clear(prefix)
        return push_peak, pull_peak


def total(pushes: list[float], pulls: list[float]) -> float:
    """Median push+pull of paired calls."""
    return median(p + q for p, q in zip(pushes, pulls, strict=True))


def summarize(approach: str, workload: str, rounds: list[dict[str, Any]], peaks: tuple[float, float]) -> dict[str, Any]:
    """Medians over every timed call of every round (first calls: median over the rounds' processes)."""
    pushes = [t for r in rounds for t in r["push"]]
    pulls = [t for r in rounds for t in r["pull"]]
    calls = sum(1 + len(r["push"]) for r in rounds)
    return {
        "approach": approach,
        "workload": workload,
        "rows": FRAME_ROWS.get(workload),  # the plot's x axis: pandas frames only
        "value_bytes": rounds[0]["value_bytes"],
        "identical": all(r["identical"] for r in rounds),
        "push_s": median(pushes),
        "pull_s": median(pulls),
        "total_s": total(pushes, pulls),
        "first_push_s": median(r["first_push"] for r in rounds),
        "first_pull_s": median(r["first_pull"] for r in rounds),
        "first_s": median(r["first_push"] + r["first_pull"] for r in rounds),
        "runs": len(pushes),
        "processes": len(rounds),
        "db_bytes": max(r["db_bytes"] for r in rounds),
        "object_bytes": max(r["object_bytes"] for r in rounds),
        "objects_per_push": sum(r["objects"] for r in rounds) / calls,
        "push_peak_bytes": peaks[0],
        "pull_peak_bytes": peaks[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}, 2 rounds (a smoke run)")
    parser.add_argument("--workloads", nargs="+", choices=ALL, help="default: all")
    parser.add_argument("--approaches", nargs="+", choices=list(APPROACHES), help="default: all")
    parser.add_argument("--rounds", type=int, help="interleaved timing processes per approach (default: 3; 2 --quick)")
    parser.add_argument("--repeats", type=int, help="timed calls per process after its first (default: 5; 2 from 1M)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument(
        "--no-fixedcost",
        action="store_true",
        help=(
            "skip the fixed cost per task process, per store (python -m bench.fixedcost), which is also skipped "
            "when --workloads or --approaches narrow the run and no --fixedcost-rounds is given"
        ),
    )
    parser.add_argument(
        "--fixedcost-rounds", type=int, help=f"rounds of the fixed-cost table (default {FIXEDCOST_ROUNDS}; 3 --quick)"
    )
    args = parser.parse_args()
    if args.fixedcost_rounds is not None and args.fixedcost_rounds < 1:
        parser.error("--fixedcost-rounds must be at least 1")
    workloads = args.workloads or (QUICK if args.quick else ALL)
    approaches = args.approaches or list(APPROACHES)
    rounds = args.rounds or (2 if args.quick else 3)

    args.out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xcom-bench-") as tmp:
        work = Path(tmp)
        port = servers.free_port()
        seaweed = servers.seaweedfs(work / "state", port, BUCKET)
        print(f"Starting SeaweedFS on 127.0.0.1:{port} ...", flush=True)
        seaweed.start()
        try:
            bench = Bench(f"http://127.0.0.1:{port}", work)
            create_bucket(bench.s3)
            for workload in workloads:
                big = ROWS.get(workload, 0) >= 1_000_000
                repeats = args.repeats or (2 if big else 3 if args.quick else 5)
                active = [a for a in approaches if supports(a, workload)]
                timed: dict[str, list[dict[str, Any]]] = {a: [] for a in active}
                # Rounds interleave the approaches (in alternating order), so a slow minute of the
                # machine lands on all of them alike instead of on whichever ran then.
                for n in range(rounds):
                    # Approaches over SLOW_S per push+pull (the tutorial's CSV from 1M rows) stand far
                    # from the others whatever the noise; more rounds of them would only add minutes.
                    again = [a for a in active if n == 0 or total(timed[a][0]["push"], timed[a][0]["pull"]) < SLOW_S]
                    for approach in again if n % 2 == 0 else again[::-1]:
                        t0 = time.monotonic()
                        t = bench.time(approach, workload, repeats)
                        timed[approach].append(t)
                        print(
                            f"  {workload:<10} {approach:<15} round {n + 1}/{rounds}  "
                            f"total {total(t['push'], t['pull']):8.3f}s  "
                            f"first {t['first_push'] + t['first_pull']:7.3f}s  ({time.monotonic() - t0:.0f}s)",
                            flush=True,
                        )
                for approach in active:
                    r = summarize(approach, workload, timed[approach], bench.memory(approach, workload))
                    results.append(r)
                    print(
                        f"  {workload:<10} {approach:<15} push {r['push_s']:8.3f}s  pull {r['pull_s']:8.3f}s  "
                        f"first {r['first_s']:7.3f}s  identical={r['identical']}",
                        flush=True,
                    )
        finally:
            assert seaweed.pid is not None
            servers.stop_group(seaweed.pid)
    meta = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "rounds": rounds,
        "seconds": round(time.monotonic() - started),
    }
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    markdown = write_report(results, args.out)
    print()
    print(markdown)
    print(f"Raw numbers: {args.out / 'results.json'}; plot: {args.out / 'bench.png'} ({meta['seconds']} s)")

    if args.no_fixedcost or ((args.workloads or args.approaches) and not args.fixedcost_rounds):
        return
    print("\nFixed cost per task process, per store (python -m bench.fixedcost) ...", flush=True)
    fixed_rounds = args.fixedcost_rounds or (3 if args.quick else FIXEDCOST_ROUNDS)
    text, complete = fixedcost.run(fixed_rounds, args.out, progress=lambda line: print(line, flush=True))
    fixedcost.report(text, complete, args.out)


if __name__ == "__main__":
    main()
