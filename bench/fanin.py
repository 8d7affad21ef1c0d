"""Reading many values (fan-in): ``python -m bench.fanin``. A program that prints a table, not a test.

Starts SeaweedFS on a free loopback port (state in a temporary directory, stopped at the end), writes
``--n`` (2,000) small JSON values through ``S3JSONXComBackend.serialize_value``, each as the row of
one map index of a mapped task (threshold 0: every value is an object), then reads them all back:

- (a) one by one: ``deserialize_value`` of each stored value in turn, as Airflow's
  ``LazyXComSequence`` does (and as the task SDK's ``BaseXCom.get_all`` did before this backend
  overrode it), with ``read_concurrency`` 1 (no read-ahead);
- (c) the same walk with the default ``read_concurrency`` 8, so with read-ahead (readahead.py): the
  next references come from the stand-in's slice answers. Items follow each other here with no API
  round trip between them, so less of each fetch is hidden than in a task;
- (b) ``get_all`` (the task SDK's request answered by a stand-in for the supervisor channel, as in
  tests/unit/test_fanin.py) with ``[xcom_storage] read_concurrency`` 1, 4, 8 and 16.

Every measurement runs ``--rounds`` times, the approaches interleaved; the table shows the median,
seconds for all values and milliseconds per value, and the speed-up against (a). The client is built
and warm (the writes used it) before the first read, so the table is the reads alone.

Then one cProfile of path (a) says where a value's time goes: this project's code, the obstore
client (its calls return when the server has answered: that includes the request's round trip),
the server's own CPU time (SeaweedFS's process group, from the kernel's counters, measured without
the profiler), and the rest (JSON decoding, hashing, Python's own). Writes the tables to ``--out``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import platform
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from bench.__main__ import create_bucket, worker_env
from bench.approaches import BUCKET
from localdev import servers
from localdev.config import REPO

CONCURRENCIES = (1, 4, 8, 16)
IDS: dict[str, str] = {
    "key": "return_value",
    "dag_id": "bench_fanin",
    "task_id": "mapped",
    "run_id": "manual__fanin",
}
PREFIX = "bench/fanin"


def value_of(i: int) -> dict[str, Any]:
    """A small JSON value (about 100 bytes), as a mapped task returns."""
    return {"map_index": i, "name": f"item-{i}", "tags": ["a", "b", "c"], "score": i / 7}


@dataclass
class Supervisor:
    """Answers the task SDK's GetXComSequenceSlice with the stored values, in map-index order."""

    values: list[Any]

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import XComSequenceSliceResult

        assert type(msg).__name__ == "GetXComSequenceSlice", msg
        return XComSequenceSliceResult(root=self.values[msg.start : msg.stop])


def server_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of the process group ``pid`` leads (SeaweedFS), so far."""
    import psutil

    total = 0.0
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pid:
                times = proc.cpu_times()
                total += times.user + times.system
        except (psutil.Error, ProcessLookupError):
            continue
    return total


def category(filename: str, function: str) -> str:
    if "include/xcom_backends" in filename:
        return "this project (include/xcom_backends)"
    # obstore's functions are Rust: cProfile names them "<get>" and "<method 'bytes' of '...GetResult' ...>".
    if "obstore" in filename or "obstore" in function or function == "<get>" or "GetResult" in function:
        return "obstore client (request, wait for the server, response)"
    if filename.endswith(("json/__init__.py", "json/decoder.py")) or "_json" in function:
        return "JSON decoding"
    if "hashlib" in function or "hmac" in filename or "compare_digest" in function or "openssl" in function:
        return "hashing (integrity digest)"
    return "other (Python, dataclasses, stdlib)"


def profile(
    read_all: Callable[[], Any], seaweed_pid: int, n: int, ours_alone: Callable[[], float]
) -> tuple[list[tuple[str, float]], list[str]]:
    """Per-value milliseconds of path (a): by category under cProfile; then, without the profiler, the
    wall time, this process's CPU time (Python and obstore's Rust threads), SeaweedFS's CPU time, and
    our code alone (``ours_alone``: the store answered from memory); and the top functions of our
    own code by own time."""
    cpu0, own0, t0 = server_cpu_seconds(seaweed_pid), time.process_time(), time.perf_counter()
    read_all()
    wall_ms = (time.perf_counter() - t0) * 1000 / n
    client_ms = (time.process_time() - own0) * 1000 / n
    server_ms = (server_cpu_seconds(seaweed_pid) - cpu0) * 1000 / n

    prof = cProfile.Profile()
    prof.enable()
    read_all()
    prof.disable()
    raw: dict[Any, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    totals: dict[str, float] = {}
    ours: list[tuple[float, float, int, str]] = []
    for (filename, line, function), (_cc, calls, own, cumulative, _callers) in raw.items():
        cat = category(filename, function)
        totals[cat] = totals.get(cat, 0.0) + own
        if cat.startswith("this project"):
            ours.append((own, cumulative, calls, f"{Path(filename).name}:{line} {function}"))
    rows = [(f"profiled: {cat}", seconds * 1000 / n) for cat, seconds in sorted(totals.items(), key=lambda kv: -kv[1])]
    rows += [
        ("unprofiled: wall time", wall_ms),
        ("unprofiled: CPU time of this process (our Python, obstore's Rust client)", client_ms),
        ("unprofiled: CPU time of SeaweedFS (the server, during the obstore wait)", server_ms),
        ("unprofiled: our code alone (the store's answer from memory, no request)", ours_alone() * 1000 / n),
    ]
    top = [
        f"| `{where}` | {calls / n:g} | {own * 1000 / n:.3f} | {cum * 1000 / n:.3f} |"
        for own, cum, calls, where in sorted(ours, reverse=True)[:10]
    ]
    return rows, top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="values written and read (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds; the table shows the median")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fanin.md")
    args = parser.parse_args()
    n = args.n

    with tempfile.TemporaryDirectory(prefix="xcom-fanin-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        port = servers.free_port()
        seaweed = servers.seaweedfs(work / "state", port, BUCKET)
        endpoint = f"http://127.0.0.1:{port}"
        print(f"Starting SeaweedFS on 127.0.0.1:{port} ...", file=sys.stderr, flush=True)
        seaweed.start()
        try:
            from localdev.buckets import s3_client

            create_bucket(s3_client(endpoint))
            for name in [k for k in os.environ if k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))]:
                del os.environ[name]
            os.environ.update(worker_env(endpoint, work / "airflow"))
            os.environ["AIRFLOW__XCOM_STORAGE__PREFIX"] = PREFIX
            table, profile_rows, top = run(n, args.rounds, seaweed.pid or 0)
        finally:
            assert seaweed.pid is not None
            servers.stop_group(seaweed.pid)

    text = report(n, args.rounds, table, profile_rows, top)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"Wrote {args.out}", file=sys.stderr)


def run(n: int, rounds: int, seaweed_pid: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]], list[str]]:
    import airflow.sdk  # noqa: F401  (every task process has it)
    from airflow.sdk.execution_time import task_runner

    from include.xcom_backends import S3JSONXComBackend as Backend
    from include.xcom_backends.backend import ObjectStorageXCom
    from localdev.inprocess import Result

    logging.getLogger("include.xcom_backends").setLevel(logging.WARNING)  # one line per value otherwise
    print(f"Writing {n} values ...", file=sys.stderr, flush=True)
    stored = [json.loads(json.dumps(Backend.serialize_value(value_of(i), **IDS, map_index=i))) for i in range(n)]
    assert all(isinstance(s, dict) and "uri" in s for s in stored), "every value must go to storage"
    expected = [value_of(i) for i in range(n)]
    task_runner.SUPERVISOR_COMMS = Supervisor(stored)  # type: ignore[assignment]

    def concurrency(n: int) -> None:
        os.environ["AIRFLOW__XCOM_STORAGE__READ_CONCURRENCY"] = str(n)
        ObjectStorageXCom._routings.clear()  # the setting is read again; the store's client is kept

    def one_by_one() -> list[Any]:
        concurrency(1)  # read-ahead off: each value's object is fetched when its turn comes
        return [Backend.deserialize_value(Result(s)) for s in stored]

    def lazy_walk() -> list[Any]:
        concurrency(8)  # as a task reads a LazyXComSequence item by item, with read-ahead (the default)
        return [Backend.deserialize_value(Result(s)) for s in stored]

    concurrency_of = concurrency

    def get_all(concurrency: int) -> Callable[[], Any]:
        def read() -> Any:
            concurrency_of(concurrency)
            return Backend.get_all(key=IDS["key"], dag_id=IDS["dag_id"], task_id=IDS["task_id"], run_id=IDS["run_id"])

        return read

    approaches: list[tuple[str, Callable[[], Any]]] = [("(a) one by one (`deserialize_value` per value)", one_by_one)]
    approaches += [("(c) one by one with read-ahead (a lazy sequence's walk), read_concurrency=8", lazy_walk)]
    approaches += [(f"(b) `get_all`, read_concurrency={c}", get_all(c)) for c in CONCURRENCIES]
    seconds: dict[str, list[float]] = {label: [] for label, _ in approaches}
    for r in range(rounds):
        order = approaches if r % 2 == 0 else approaches[::-1]
        for label, read in order:
            t0 = time.perf_counter()
            values = read()
            seconds[label].append(time.perf_counter() - t0)
            assert values == expected, f"{label}: values differ"
        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    table = [(label, median(s)) for label, s in seconds.items()]
    print("Profiling path (a) ...", file=sys.stderr, flush=True)
    profile_rows, top = profile(one_by_one, seaweed_pid, n, lambda: from_memory(Backend, one_by_one))
    return table, profile_rows, top


def from_memory(backend: Any, read_all: Callable[[], Any]) -> float:
    """Seconds of ``read_all`` with the store's answers taken from memory (fetched once before): what
    our own code costs per value, without the request."""
    store = backend.runtime().store
    objects: dict[str, bytes] = {}
    real = store._get

    def remember(key: str, start: int, length: int | None) -> Any:
        objects[key] = bytes(real(key, start, length))
        return objects[key]

    store._get = remember
    try:
        read_all()
        store._get = lambda key, start, length: objects[key]
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            read_all()
            best = min(best, time.perf_counter() - t0)
        return best
    finally:
        del store._get  # the class's own again


def report(
    n: int, rounds: int, table: list[tuple[str, float]], profile_rows: list[tuple[str, float]], top: list[str]
) -> str:
    base = table[0][1]
    cpus = os.cpu_count()
    lines = [
        f"# Reading many values: {n} small JSON values from SeaweedFS (`python -m bench.fanin`)",
        "",
        f"S3JSONXComBackend, every value an object (threshold 0), SeaweedFS on 127.0.0.1, {cpus} CPUs, "
        f"Python {platform.python_version()}; median of {rounds} rounds.",
        "",
        "| read path | seconds | ms per value | speed-up vs (a) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {label} | {s:.2f} | {s * 1000 / n:.2f} | {base / s:.2f}× |" for label, s in table]
    lines += [
        "",
        "## Where the time of path (a) goes, per value",
        "",
        "| part | ms per value |",
        "|---|---:|",
    ]
    lines += [f"| {cat} | {ms:.3f} |" for cat, ms in profile_rows]
    lines += [
        "",
        "This project's functions by own time (per value; calls per value):",
        "",
        "| function | calls | own ms | cumulative ms |",
        "|---|---:|---:|---:|",
        *top,
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
