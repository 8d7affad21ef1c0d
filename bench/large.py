"""Very large values under a real scheduler: ``python -m bench.large`` (``make bench-large``). A program
that prints a table.

Starts PostgreSQL and SeaweedFS, then ``airflow standalone`` (scheduler, LocalExecutor, task heartbeats
on, with a heartbeat timeout of 30 s instead of the default 300 s, so that a push that blocked
heartbeats would fail its task) with ``S3PandasXComBackend``, and runs ``bench/dags/xcom_large.py``
once per size: a task pushes a bytes value and then a DataFrame of that many MB, and its downstream
task pulls it and checks it (SHA-256 of the bytes, of the frame's row hashes). Each task logs its own
seconds and peak resident memory above its level before the push (pull). Reports them, with the
limit of the benchmark: a push's peak extra memory at most 1.5x the value.

Airflow #64628 is the case this answers: a 300 MB XCom through the database backend went through
the task's supervisor, which could not heartbeat meanwhile, and the task was failed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from bench.scale import Postgres, run_under_standalone, stores_up
from localdev.config import REPO

DAG = "xcom_large"
BACKEND = "include.xcom_backends.S3PandasXComBackend"
PUSH_LIMIT = 1.5  # the benchmark's limit: push peak extra memory at most 1.5x the value


def run_size(mb: int, pg: Postgres, s3_endpoint: str, work: Path, kinds: list[str]) -> list[dict[str, Any]]:
    db = f"airflow_large_{mb}"
    home = work / f"large-{mb}"
    settings = {
        "AIRFLOW__CORE__XCOM_BACKEND": BACKEND,
        "AIRFLOW__XCOM_STORAGE__PREFIX": f"large/{mb}",
        "AIRFLOW__XCOM_STORAGE__TIMEOUT_SECONDS": "120",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "XCOM_LARGE_MB": str(mb),
        "XCOM_LARGE_KINDS": ",".join(kinds),
    }
    state, wall = run_under_standalone(f"large values, {mb} MB", DAG, pg, db, s3_endpoint, home, settings, timeout=3600)
    states = dict(pg.sql(db, "SELECT task_id, state FROM task_instance"))
    lines = []
    for log in sorted((home / "logs").rglob("*.log")):
        for text in log.read_text(errors="replace").splitlines():
            if "XCOM_LARGE " in text:
                try:
                    event = json.loads(text).get("event", text)
                except ValueError:
                    event = text
                lines.append(json.loads(str(event).split("XCOM_LARGE ", 1)[1]))
    results = []
    for kind in kinds:
        for step in ("push", "pull"):
            found = [line for line in lines if line["kind"] == kind and line["task"] == step]
            row = {
                "mb": mb,
                "kind": kind,
                "task": step,
                "state": states.get(f"{step}_{kind}", "missing"),
                "run": state,
                "run_wall_s": round(wall, 1),
            }
            if found:
                row.update(found[-1])
            results.append(row)
    return results


def table(results: list[dict[str, Any]]) -> str:
    mib = 1024 * 1024
    lines = [
        "| value | task | state | seconds | value size | peak extra memory | × value | limit met |",
        "|---|---|---|---:|---:|---:|---:|:-:|",
    ]
    for r in results:
        if "seconds" not in r:
            lines.append(f"| {r['mb']} MB {r['kind']} | {r['task']} | {r['state']} | – | – | – | – | **no** |")
            continue
        ratio = r["peak_extra_bytes"] / r["value_bytes"]
        if r["task"] == "push":
            met = "yes" if ratio <= PUSH_LIMIT and r["state"] == "success" else "**no**"
        else:
            met = "yes" if r.get("identical") and r["state"] == "success" else "**no**"
        lines.append(
            f"| {r['mb']} MB {r['kind']} | {r['task']} | {r['state']} | {r['seconds']:.1f} "
            f"| {r['value_bytes'] / mib:,.0f} MiB | {r['peak_extra_bytes'] / mib:,.0f} MiB | {ratio:.2f} | {met} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[300, 1024], help="value sizes in MB")
    parser.add_argument("--kinds", nargs="+", choices=["bytes", "frame"], default=["bytes", "frame"])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="xcom-large-") as tmp, stores_up(Path(tmp)) as (pg, endpoint):
        work = Path(tmp)
        for mb in args.sizes:
            print(f"  {mb} MB: {', '.join(args.kinds)} pushed and pulled under airflow standalone ...", flush=True)
            rows = run_size(mb, pg, endpoint, work, args.kinds)
            results += rows
            for r in rows:
                print(f"    {r['kind']} {r['task']}: {r['state']}, {r.get('seconds', float('nan')):.1f} s", flush=True)
    (args.out / "large.json").write_text(json.dumps(results, indent=2))
    markdown = table(results)
    (args.out / "large.md").write_text(markdown)
    print()
    print(markdown)
    failed = [r for r in results if r["state"] != "success" or r.get("identical") is False]
    if failed:
        raise SystemExit(f"FAILED: {len(failed)} task(s) did not succeed or read back a different value")


if __name__ == "__main__":
    main()
