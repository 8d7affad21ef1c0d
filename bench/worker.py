"""One measurement in a fresh process, as a task would run: ``python -m bench.worker MODE APPROACH WORKLOAD``.

Modes (each prints one JSON object on its last line):

- ``time``: the first push and pull of the process (client, hook and connection set-up included),
  then ``--repeats`` more, timed one by one; whether the value came back identical.
- ``push-mem``: after a warm-up with a tiny value, the peak extra resident memory while pushing.
  Writes the database form to ``--stored`` for ``pull-mem``.
- ``pull-mem``: after a warm-up, the peak extra resident memory while pulling that value.

Every push ends with the database form written to a SQLite table (a JSON text column, like
Airflow's xcom table) and every pull starts by reading it back: the same for every approach.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from bench.approaches import APPROACHES
from bench.workloads import make, same

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakRSS:
    """Samples resident memory every millisecond while the block runs; ``extra`` is peak minus start."""

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self.start = self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(0.001)

    def __exit__(self, *exc: Any) -> None:
        self.peak = max(self.peak, rss())
        self._stop.set()
        self._thread.join()

    @property
    def extra(self) -> int:
        return self.peak - self.start


class MetadataDB:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS xcom (id INTEGER PRIMARY KEY, value TEXT)")

    def write(self, stored: Any) -> tuple[int, int]:
        text = json.dumps(stored)
        cur = self.db.execute("INSERT INTO xcom (value) VALUES (?)", (text,))
        self.db.commit()
        return int(cur.lastrowid or 0), len(text.encode())

    def read(self, row: int) -> Any:
        return json.loads(self.db.execute("SELECT value FROM xcom WHERE id = ?", (row,)).fetchone()[0])


def value_size(value: Any) -> int:
    if hasattr(value, "estimated_size"):  # polars
        return int(value.estimated_size())
    if hasattr(value, "memory_usage"):
        return int(value.memory_usage(deep=True).sum())
    return len(json.dumps(value).encode())


def tiny(workload: str) -> Any:
    if workload.startswith("polars_"):
        import polars as pl

        return pl.from_pandas(make("frame_10k").head(1))
    return make("frame_10k").head(1) if workload.startswith("frame_") else {"warm": "up"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["time", "push-mem", "pull-mem"])
    parser.add_argument("approach", choices=list(APPROACHES))
    parser.add_argument("workload")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--stored", type=Path)
    args = parser.parse_args()

    import airflow.sdk  # noqa: F401  (a task process has imported Airflow before any XCom call)

    value = make(args.workload) if args.mode != "pull-mem" else None  # pull-mem: nothing freed before
    approach = APPROACHES[args.approach](args.workload)
    db = MetadataDB(args.db)
    ids = {
        "key": "return_value",
        "dag_id": "bench_dag",
        "run_id": f"bench/{args.approach}",
        "task_id": f"push_{args.workload}",
        "map_index": -1,
    }

    def push(v: Any) -> tuple[int, int]:
        return db.write(approach.push(v, ids))

    def pull(row: int) -> Any:
        return approach.pull(db.read(row))

    out: dict[str, Any] = {"approach": args.approach, "workload": args.workload}
    if args.mode == "time":
        pushes, pulls = [], []
        for i in range(1 + args.repeats):
            gc.collect()
            t0 = time.perf_counter()
            row, db_bytes = push(value)
            t1 = time.perf_counter()
            back = pull(row)
            t2 = time.perf_counter()
            pushes.append(t1 - t0)
            pulls.append(t2 - t1)
            if i == 0:
                out["identical"] = same(value, back)
                out["db_bytes"] = db_bytes
                out["value_bytes"] = value_size(value)
            del back
        out.update(first_push=pushes[0], first_pull=pulls[0], push=pushes[1:], pull=pulls[1:])
    elif args.mode == "push-mem":
        pull(push(tiny(args.workload))[0])
        with PeakRSS() as mem:
            row, _ = push(value)
        assert args.stored is not None
        args.stored.write_text(json.dumps(db.read(row)))
        out["push_peak"] = mem.extra
    else:
        assert args.stored is not None
        pull(push(tiny(args.workload))[0])
        row, _ = db.write(json.loads(args.stored.read_text()))
        with PeakRSS() as mem:
            back = pull(row)
        out["pull_peak"] = mem.extra
        del back
    print(json.dumps(out))


if __name__ == "__main__":
    main()
