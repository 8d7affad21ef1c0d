"""Several DAG runs in one Airflow process, each run exactly as ``airflow dags test DAG_ID`` runs it
(the CLI's ``get_bagged_dag`` and ``DAG.test``): Airflow starts once for all of them.

An ``airflow dags test`` process spends about 10 s starting Airflow and its in-process execution
API before its first task, and a fraction of a second per run after that. The backend is resolved
once per process (``[core] xcom_backend``), so one process serves one backend; each run may set
its own environment (``[xcom_storage]`` settings are read at use), and the backend's cached
settings and client are reset between runs.

``python -m tests.integration.dagruns '[{"dag_id": ..., "env": {...}}, ...]'``. After each run a
line ``MARKER <index> <state> <run_id>`` is written to stdout and stderr, so a caller can split
the output per run.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

MARKER = "=== xcom-tests dag run"


def _mark(text: str) -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            stream.flush()
    for fd in (1, 2):
        os.write(fd, f"\n{MARKER} {text}\n".encode())


def main() -> None:
    from airflow.sdk import timezone
    from airflow.utils.cli import get_bagged_dag

    from include.xcom_backends.backend import ObjectStorageXCom

    for index, spec in enumerate(json.loads(sys.argv[1])):
        saved = {name: os.environ.get(name) for name in spec.get("env", {})}
        os.environ.update(spec.get("env", {}))
        ObjectStorageXCom.reset()
        state, run_id = "error", "-"
        try:
            dag = get_bagged_dag(None, spec["dag_id"])
            run = dag.test(logical_date=timezone.utcnow())
            state, run_id = str(run.state), str(run.run_id)
        except Exception:
            traceback.print_exc()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        _mark(f"{index} {state} {run_id}")


if __name__ == "__main__":
    main()
