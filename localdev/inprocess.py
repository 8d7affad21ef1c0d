"""A backend driven in this process as a worker drives it, for the tests and the benchmark.

``push`` is what a task's return does (the stored form goes through JSON, as the API server keeps
it); ``pull`` is what a downstream task's ``xcom_pull`` hands to ``deserialize_value``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Result:
    """What the task SDK hands to ``deserialize_value`` and ``purge``: the stored value only."""

    value: Any


@dataclass
class Row:
    """An XCom row as Airflow's XCom model has it: the stored value and the row's identity."""

    value: Any
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    key: str


def push(backend: Any, value: Any, ids: dict[str, Any]) -> Any:
    """``backend.serialize_value`` for the row ``ids`` (key, task_id, dag_id, run_id, map_index), as stored."""
    return json.loads(json.dumps(backend.serialize_value(value, **ids)))


def pull(backend: Any, stored: Any) -> Any:
    return backend.deserialize_value(Result(stored))
