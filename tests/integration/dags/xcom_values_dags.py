"""Test DAGs of every value kind (tests/values.py), run by tests/integration/test_backends.py.

One task pushes each value under its own key and all of them nested in dicts and lists as its return
value; the next task pulls them and fails unless each came back with the same type and value.

- ``xcom_values_serde``: what Airflow's default backend round-trips, checked as a DAG written for it
  would check (same type, ``==``): the default backend gives a zoneinfo datetime back with a pendulum
  zone and ``Decimal("1.10")`` as ``Decimal("1.1")``, which are equal. Passes on it and on ours.
- ``xcom_values_json``: plus what serde changes quietly; everything checked exactly (tests/values.py
  ``same``: zone class and name, offset, fold, Decimal digits, numpy types, key types).
- ``xcom_values_pandas``: plus polars/pyarrow frames, numpy arrays and bytes (Pandas backends).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, get_current_context, task
from pendulum import datetime


def expected(kinds: tuple[str, ...]) -> dict[str, Any]:
    from tests import values

    found: dict[str, Any] = {}
    for kind in kinds:
        found.update(getattr(values, kind)())
    return found


def as_equal(a: Any, b: Any) -> bool:
    """What a DAG written for the default backend checks: the same type, and ``==`` (for a datetime:
    the same wall time and offset, since ``==`` is False across zone classes inside a DST fold)."""
    import datetime as dt

    if type(a) is not type(b):
        return False
    if isinstance(a, dt.datetime):
        return a.isoformat() == b.isoformat()
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(as_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(as_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def values_dag(dag_id: str, kinds: tuple[str, ...], binary: bool, strict: bool = True) -> None:
    @dag(
        dag_id=dag_id,
        start_date=datetime(2024, 1, 1),
        schedule=None,
        catchup=False,
        tags=["test"],
        default_args={"retries": 0},
    )
    def _dag() -> None:
        @task
        def push_values() -> Any:
            from tests.values import nested

            ti = get_current_context()["ti"]
            for key, value in expected(kinds).items():
                ti.xcom_push(key=key, value=value)
            return nested(expected(kinds))

        @task
        def check_values() -> None:
            from tests.values import nested
            from tests.values import same as exact

            same = exact if strict else as_equal
            ti = get_current_context()["ti"]
            # Pulled, not passed as an argument: Airflow uploads a task's arguments as its rendered
            # fields in JSON, which fails on NaN under any XCom backend.
            together = ti.xcom_pull(task_ids="push_values")
            wrong = [
                key
                for key, value in expected(kinds).items()
                if not same(value, ti.xcom_pull(task_ids="push_values", key=key))
            ]
            assert not wrong, f"came back different: {wrong}"
            assert same(nested(expected(kinds)), together), together

        push_values() >> check_values()

        if binary:

            @task
            def push_binary() -> None:
                ti = get_current_context()["ti"]
                for key, value in expected(("binary_values",)).items():
                    ti.xcom_push(key=key, value=value)

            @task
            def check_binary() -> None:
                from tests.values import same

                ti = get_current_context()["ti"]
                wrong = [
                    key
                    for key, value in expected(("binary_values",)).items()
                    if not same(value, ti.xcom_pull(task_ids="push_binary", key=key))
                ]
                assert not wrong, f"came back different: {wrong}"

            push_binary() >> check_binary()

    _dag()


values_dag("xcom_values_serde", ("serde_values",), binary=False, strict=False)
values_dag("xcom_values_json", ("serde_values", "lossy_in_serde"), binary=False)
values_dag("xcom_values_pandas", ("serde_values", "lossy_in_serde"), binary=True)
