"""Fixed cost per task process, per store (issue 14): ``python -m bench.fixedcost``. A program, not a test.

For each store (S3 and MinIO backends on SeaweedFS, GCS on fake-gcs-server, Azure on Azurite) and
for Airflow's default database backend (``BaseXCom``), a fresh ``python`` process
(``bench/fixedcost_worker.py``) imports ``airflow.sdk`` (not counted: every task process has it),
then times the import of the backend class, one push and one pull of a small JSON value
(threshold 0: it goes to storage). Target: ours within 0.1 s of the database backend, per store.

It starts the three local servers itself (free ports on 127.0.0.1, state in a temporary directory),
creates the bucket on each, runs one untimed warm-up process per approach, then ``--rounds`` rounds
that interleave the approaches (each round runs every approach once, in alternating order, so a slow
moment of the machine lands on all alike), then one ``python -X importtime`` process per approach to
name the packages the measured section imported. It stops every server at the end, also on error,
Ctrl-C or SIGTERM. Writes ``fixedcost.json`` (raw numbers) and ``fixedcost.md`` (the tables) to ``--out``.

Python bytecode: the workers compile into a private cache (``PYTHONPYCACHEPREFIX`` in the temporary
directory, filled by the warm-up), so every approach runs from ``.pyc`` files like a task process in a
deployed image (pip compiles them at install time), whatever ``PYTHONDONTWRITEBYTECODE`` says and
however many ``.pyc`` files the virtualenv has. ``--source`` keeps the environment as it is instead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from types import FrameType
from typing import Any

from bench.fixedcost_worker import BACKENDS, MARK, VALUE
from localdev import config, servers
from localdev.airflow_env import read_dotenv
from localdev.config import REPO

LIMIT_S = 0.1  # the target: ours within this many seconds of the database backend, per store
DEFAULT_ROUNDS = 7
PREFIX = "bench/fixedcost"
WORKER_TIMEOUT_S = 300


@dataclass(frozen=True)
class Approach:
    name: str
    label: str
    server: str
    conn_id: str | None


APPROACHES = {
    a.name: a
    for a in (
        Approach("db", "Airflow default (database)", "–", None),
        Approach("s3", "S3JSONXComBackend", "SeaweedFS", "s3_xcom_backend_conn"),
        Approach("minio", "MinIOJSONXComBackend", "SeaweedFS", "minio_xcom_backend_conn"),
        Approach("gcs", "GCSJSONXComBackend", "fake-gcs-server", "gcs_xcom_backend_conn"),
        Approach("azure", "AzureJSONXComBackend", "Azurite", "azure_xcom_backend_conn"),
    )
}
assert set(APPROACHES) == set(BACKENDS)


# --- the servers --------------------------------------------------------------------------------
@contextmanager
def local_stores(state: Path, progress: Callable[[str], None] = print) -> Iterator[dict[str, int]]:
    """SeaweedFS, fake-gcs-server and Azurite on free loopback ports, each bucket created; all stopped
    on the way out, whatever happened (a server is recorded before it starts, so a half-started one
    is stopped too)."""
    from localdev.buckets import create_buckets

    ports = {name: servers.free_port() for name in ("s3", "gcs", "azure")}
    started: list[servers.Server] = []
    try:
        for server in (
            servers.seaweedfs(state, ports["s3"], config.BUCKET),
            servers.fake_gcs(state, ports["gcs"]),
            servers.azurite(state, ports["azure"]),
        ):
            t0 = time.monotonic()
            started.append(server)
            server.start()
            progress(f"  {server.name} ready on {server.ready_url.split('/')[2]} in {time.monotonic() - t0:.1f}s")
        create_buckets(endpoints(ports))
        yield ports
    finally:
        for server in reversed(started):
            if server.pid is not None:
                servers.stop_group(server.pid)


def endpoints(ports: dict[str, int]) -> dict[str, str]:
    return servers.Stores(Path(), {"pokeapi": 0, **ports}).endpoints


@contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM raises SystemExit (in the main thread), so ``finally`` blocks stop the servers."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- the workers --------------------------------------------------------------------------------
def worker_env(ports: dict[str, int], work: Path, *, pycache: bool) -> dict[str, str]:
    """The environment of every worker: the connections of airflow_settings.yaml pointed at the local
    servers (``AIRFLOW_CONN_<ID>``), threshold 0, the project's non-Airflow .env settings."""
    from localdev.settings_loader import connection_env

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    env.update({k: v for k, v in read_dotenv(REPO / ".env").items() if not k.startswith("AIRFLOW")})
    conns = connection_env(ports)
    for approach in APPROACHES.values():
        if approach.conn_id:
            name = f"AIRFLOW_CONN_{approach.conn_id.upper()}"
            env[name] = conns[name]
    env.update(
        {
            "AIRFLOW_HOME": str(work / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(work / "airflow" / "dags"),
            "AIRFLOW__XCOM_STORAGE__BUCKET": config.BUCKET,
            "AIRFLOW__XCOM_STORAGE__PREFIX": PREFIX,
            "AIRFLOW__XCOM_STORAGE__THRESHOLD_BYTES": "0",
            "PYTHONPATH": str(REPO),
        }
    )
    if pycache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def run_worker(approach: str, env: dict[str, str], cwd: Path, *, importtime: bool = False) -> dict[str, Any]:
    argv = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "bench.fixedcost_worker", approach]
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        raise RuntimeError(f"worker {approach} failed: {tail[0]}\n{proc.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if not out["identical"]:
        raise RuntimeError(f"worker {approach}: the value did not come back equal")
    if approach != "db" and not out["offloaded"]:
        raise RuntimeError(f"worker {approach}: the value stayed in the database (threshold_bytes not 0?)")
    if importtime:
        out["imports"] = import_profile(proc.stderr)
    return out


_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def package_of(module: str) -> str:
    """The package a module is counted under: its top level, one level deeper for namespace packages
    (``google.cloud.storage``, ``azure.storage``) and for this project (``include.xcom_backends``)."""
    parts = module.split(".")
    if parts[0] in ("google", "azure", "include") and len(parts) > 1:
        depth = 3 if parts[:2] == ["google", "cloud"] and len(parts) > 2 else 2
        return ".".join(parts[:depth])
    return parts[0]


def import_profile(stderr: str) -> dict[str, float]:
    """Seconds of import (self time) per package after the worker's clock started, largest first."""
    lines = stderr.splitlines()
    start = lines.index(MARK) + 1 if MARK in lines else len(lines)
    seconds: dict[str, float] = {}
    for line in lines[start:]:
        m = _IMPORTTIME.match(line)
        if m:
            package = package_of(m.group(4))
            seconds[package] = seconds.get(package, 0.0) + int(m.group(1)) / 1e6
    return dict(sorted(seconds.items(), key=lambda kv: -kv[1]))


# --- the run ------------------------------------------------------------------------------------
@dataclass
class Workers:
    """Runs worker processes; an approach whose worker fails is recorded and not run again, so one
    broken store leaves the others' numbers standing (it is reported as failed)."""

    env: dict[str, str]
    cwd: Path
    progress: Callable[[str], None]
    errors: dict[str, str] = field(default_factory=dict)

    def run(self, approach: str, *, importtime: bool = False) -> dict[str, Any] | None:
        if approach in self.errors:
            return None
        try:
            return run_worker(approach, self.env, self.cwd, importtime=importtime)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            self.errors[approach] = str(exc).splitlines()[0]
            self.progress(f"  {approach:<6} FAILED: {exc}")
            return None


def measure(
    rounds: int, *, approaches: list[str] | None = None, pycache: bool = True, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """Start the servers, run the warm-up, the rounds and the import profiles; stop the servers."""
    names = approaches or list(APPROACHES)
    timed: dict[str, list[dict[str, Any]]] = {a: [] for a in names}
    imports: dict[str, dict[str, float]] = {}
    started = time.monotonic()
    with sigterm_as_exit(), tempfile.TemporaryDirectory(prefix="xcom-fixedcost-") as tmp:
        work = Path(tmp)
        progress("Starting SeaweedFS, fake-gcs-server and Azurite on 127.0.0.1 ...")
        with local_stores(work / "state", progress) as ports:
            workers = Workers(worker_env(ports, work, pycache=pycache), work, progress)
            # Untimed: fills the bytecode cache, AIRFLOW_HOME and the OS file cache for every approach.
            for approach in names:
                workers.run(approach)
            progress(f"  warm-up done ({time.monotonic() - started:.0f}s)")
            for n in range(rounds):
                for approach in names if n % 2 == 0 else names[::-1]:
                    t = workers.run(approach)
                    if t is not None:
                        timed[approach].append(t)
                        progress(
                            f"  {approach:<6} round {n + 1}/{rounds}  first push+pull {t['total_s']:.3f}s  (import "
                            f"{t['import_s']:.3f}  push {t['push_s']:.3f}  pull {t['pull_s']:.3f})"
                        )
            for approach in names:
                profiled = workers.run(approach, importtime=True)
                if profiled is not None:
                    imports[approach] = profiled["imports"]
    meta = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "rounds": rounds,
        "bytecode": "private cache, warmed" if pycache else "as the environment has it",
        "seconds": round(time.monotonic() - started),
        "limit_s": LIMIT_S,
    }
    return {"meta": meta, "summary": summarize(timed, workers.errors), "imports": imports, "raw": timed}


def summarize(timed: dict[str, list[dict[str, Any]]], errors: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per approach: medians over its processes, and its difference from the database backend's."""
    errors = errors or {}
    rows: list[dict[str, Any]] = []
    for approach, runs in timed.items():
        row: dict[str, Any] = {"approach": approach, "processes": len(runs), "error": errors.get(approach)}
        if runs:
            totals = [r["total_s"] for r in runs]
            row.update(
                first_s=median(totals),
                import_s=median(r["import_s"] for r in runs),
                push_s=median(r["push_s"] for r in runs),
                pull_s=median(r["pull_s"] for r in runs),
                min_s=min(totals),
                max_s=max(totals),
                modules=median(r["modules"] for r in runs),
                db_bytes=max(r["db_bytes"] for r in runs),
            )
        rows.append(row)
    db = next((r for r in rows if r["approach"] == "db" and "first_s" in r), None)
    for row in rows:
        if db is not None and "first_s" in row and row["approach"] != "db":
            row["vs_db_s"] = row["first_s"] - db["first_s"]
            row["x_db"] = row["first_s"] / db["first_s"]
            row["within"] = row["vs_db_s"] <= LIMIT_S
    return rows


def table(summary: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | store (local) | first push+pull s | import s | push s | pull s | min–max s | modules imported "
        f"| vs db s | × db | within {LIMIT_S:g} s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|:-:|",
    ]
    for r in summary:
        a = APPROACHES[r["approach"]]
        if "first_s" not in r:
            error = (r["error"] or "no measurement").replace("|", "\\|")
            lines.append(f"| {a.label} | {a.server} | **failed**: {error} |" + " |" * 7 + " **no** |")
            continue
        if "vs_db_s" in r:
            ratio = f"{r['x_db']:,.0f}" if r["x_db"] >= 100 else f"{r['x_db']:.2f}"
            vs = f"{r['vs_db_s']:+.3f} | {ratio} | {'yes' if r['within'] else '**no**'}"
        else:
            vs = "– | – | –" if r["approach"] == "db" else "– | – | ?"
        lines.append(
            f"| {a.label} | {a.server} | {r['first_s']:.3f} | {r['import_s']:.3f} | {r['push_s']:.3f} "
            f"| {r['pull_s']:.3f} | {r['min_s']:.3f}–{r['max_s']:.3f} | {r['modules']:.0f} | {vs} |"
        )
    return "\n".join(lines) + "\n"


def imports_table(imports: dict[str, dict[str, float]], top: int = 4) -> str:
    lines = [
        "| backend | imports in the measured section, ms (self time, summed) | largest packages, ms |",
        "|---|---:|---|",
    ]
    for approach, packages in imports.items():
        biggest = ", ".join(f"{name} {seconds * 1000:.1f}" for name, seconds in list(packages.items())[:top])
        lines.append(f"| {APPROACHES[approach].label} | {sum(packages.values()) * 1000:.1f} | {biggest or '–'} |")
    return "\n".join(lines) + "\n"


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    text = (
        "### Fixed cost per task process, per store\n\n"
        f"The first push and pull of a small JSON value ({len(json.dumps(VALUE))} B of JSON) in a fresh process, "
        "import of the backend class included (`airflow.sdk` imported before the clock, as in every task "
        f"process). Median over {meta['rounds']} interleaved rounds; Python {meta['python']}, {meta['cpus']} CPUs, "
        f"bytecode: {meta['bytecode']}. Target: within {meta['limit_s']:g} s of the database backend. "
        "Each column is its own median (the parts need not add up to the total's).\n\n" + table(result["summary"])
    )
    db = next((r for r in result["summary"] if r["approach"] == "db" and "first_s" in r), None)
    if db is not None and db["modules"] == 0:
        text += (
            "\nThe database backend's class (`BaseXCom`) comes with `airflow.sdk`: it imports nothing here, and "
            "its first push+pull is Airflow's serde of the value, in microseconds.\n"
        )
    if result.get("imports"):
        text += (
            "\nWhat the measured section imported (one `python -X importtime` process per backend; "
            "importtime itself adds overhead):\n\n" + imports_table(result["imports"])
        )
    return text


def run(
    rounds: int,
    out: Path,
    *,
    approaches: list[str] | None = None,
    pycache: bool = True,
    progress: Callable[[str], None] = print,
) -> tuple[str, bool]:
    """Measure, write ``fixedcost.json`` and ``fixedcost.md`` to ``out``; the markdown, and whether every
    approach was measured (no worker failed)."""
    result = measure(rounds, approaches=approaches, pycache=pycache, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fixedcost.json").write_text(json.dumps(result, indent=2))
    text = markdown(result)
    (out / "fixedcost.md").write_text(text)
    return text, not any(r["error"] for r in result["summary"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help=f"default: {DEFAULT_ROUNDS}")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--approaches", nargs="+", choices=list(APPROACHES), help="default: all (db first)")
    parser.add_argument(
        "--source", action="store_true", help="no private bytecode cache: import as the environment does"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    text, complete = run(args.rounds, args.out, approaches=args.approaches, pycache=not args.source)
    report(text, complete, args.out)


def report(text: str, complete: bool, out: Path) -> None:
    """Print the table; exit non-zero when a backend could not be measured."""
    print()
    print(text)
    print(f"Raw numbers: {out / 'fixedcost.json'}")
    if not complete:
        sys.exit("Some backends could not be measured in the fixed-cost table (see the table).")


if __name__ == "__main__":
    main()
