"""One fixed-cost measurement in a fresh process: ``python -m bench.fixedcost_worker APPROACH``.

What a task process pays, on top of Airflow itself, the first time it pushes and pulls a small
JSON value: ``airflow.sdk`` is imported first (every task process has it, whatever the backend) and
not counted; then the clock starts, the backend class is imported, the value is pushed once
(``serialize_value``, client and connection set-up included) and pulled once
(``deserialize_value``), and the clock stops. Prints one JSON object: the seconds (import, push,
pull, total), whether the value came back equal, whether it went to storage, and how many modules
the measured section imported.

This module imports only the standard library at its top, so that nothing is imported for one
approach before the clock that another would pay after it.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from typing import Any

# approach -> the backend class, "module:attribute"
BACKENDS = {
    "db": "airflow.sdk.bases.xcom:BaseXCom",
    "s3": "include.xcom_backends:S3JSONXComBackend",
    "minio": "include.xcom_backends:MinIOJSONXComBackend",
    "gcs": "include.xcom_backends:GCSJSONXComBackend",
    "azure": "include.xcom_backends:AzureJSONXComBackend",
}
VALUE: dict[str, Any] = {"a": 1, "b": [1, 2, 3], "s": "x" * 100}
IDS: dict[str, Any] = {
    "key": "return_value",
    "dag_id": "bench_fixedcost",
    "task_id": "push_small",
    "run_id": "manual__fixedcost",
    "map_index": -1,
}
# Written to stderr when the clock starts: under ``python -X importtime`` the lines after it are
# the imports the measured section paid for.
MARK = "--- fixedcost: clock started ---"


def is_reference(stored: Any) -> bool:
    """Whether the database form is a reference to an object (not the value kept inline)."""
    return isinstance(stored, dict) and "uri" in stored and "__xcom_storage__" in stored


def main() -> None:
    approach = sys.argv[1]
    if approach not in BACKENDS:
        raise SystemExit(f"unknown approach {approach!r}; choose from {', '.join(BACKENDS)}")

    import airflow.sdk  # noqa: F401  (every task process has imported it before any XCom call: not counted)

    from localdev.inprocess import Result

    module_name, attribute = BACKENDS[approach].split(":")
    before = len(sys.modules)
    sys.stderr.write(MARK + "\n")
    sys.stderr.flush()

    t0 = time.perf_counter()
    backend = getattr(importlib.import_module(module_name), attribute)
    t1 = time.perf_counter()
    stored = backend.serialize_value(VALUE, **IDS)
    t2 = time.perf_counter()
    # The database form goes through JSON, as the API server keeps it (microseconds, not counted).
    stored = json.loads(json.dumps(stored))
    t3 = time.perf_counter()
    back = backend.deserialize_value(Result(stored))
    t4 = time.perf_counter()

    out = {
        "approach": approach,
        "import_s": t1 - t0,
        "push_s": t2 - t1,
        "pull_s": t4 - t3,
        "total_s": (t1 - t0) + (t2 - t1) + (t4 - t3),
        "identical": back == VALUE,
        "offloaded": is_reference(stored),
        "db_bytes": len(json.dumps(stored).encode()),
        "modules": len(sys.modules) - before,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
