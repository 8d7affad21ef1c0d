"""Test DAGs run by tests/integration/test_backends.py through every backend.

Each downstream task checks what it pulled against an expected value computed independently, and
fails the DAG on any difference, so a green DAG run means the values came back equal.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task
from pendulum import datetime

URI_LOOKING = "s3://airflow-xcom/xcom/some_dag/some_run/t/-1/return_value/0123.json"
JSON_VALUE: dict[str, Any] = {
    "nested": {"list": [1, 2.5, -3, None, True, False, "x"], "empty": {}, "deep": [[[]]]},
    "unicode": "Pokémon ✓ 日本語 🐍",
    "big": 2**62,
    "float": 1e-300,
    "null": None,
}


def frame() -> Any:
    """The DataFrame the test DAGs push: 1,000 rows of every dtype (tests/frames.py)."""
    from tests.frames import mixed_frame

    return mixed_frame(1000)


def roundtrip_dag(dag_id: str, with_pandas: bool) -> None:
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
        def push_json() -> dict[str, Any]:
            return JSON_VALUE

        @task
        def check_json(value: dict[str, Any]) -> None:
            assert value == JSON_VALUE, value

        @task
        def push_uri_string() -> str:
            return URI_LOOKING

        @task
        def check_uri_string(value: str) -> None:
            assert value == URI_LOOKING, value

        @task
        def numbers() -> list[int]:
            return [3, 1, 4, 1, 5]

        @task
        def square(x: int) -> int:
            return x * x

        @task
        def check_mapped(values: Any) -> None:
            assert list(values) == [9, 1, 16, 1, 25], list(values)
            assert values[2] == 16 and len(values) == 5

        @task(retries=1, retry_delay=timedelta(seconds=1))
        def flaky_push() -> str:
            ti = get_current_context()["ti"]
            ti.xcom_push(key="attempt", value={"try_number": ti.try_number})
            if ti.try_number == 1:
                raise RuntimeError("first attempt fails on purpose; the retry must purge its XCom object")
            return "ok"

        @task
        def check_attempt(**context: Any) -> None:
            value = context["ti"].xcom_pull(task_ids="flaky_push", key="attempt")
            assert value == {"try_number": 2}, value

        check_json(push_json())
        check_uri_string(push_uri_string())
        check_mapped(square.expand(x=numbers()))
        flaky_push() >> check_attempt()

        if with_pandas:
            import pandas as pd

            @task
            def push_frame() -> pd.DataFrame:
                return frame()

            @task
            def check_frame(df: pd.DataFrame) -> None:
                pd.testing.assert_frame_equal(df, frame(), check_exact=True)

            @task
            def push_series() -> pd.Series:
                return frame()["nullable"]

            @task
            def check_series(s: pd.Series) -> None:
                pd.testing.assert_series_equal(s, frame()["nullable"], check_exact=True)

            check_frame(push_frame())
            check_series(push_series())

    _dag()


roundtrip_dag("xcom_roundtrip_json", with_pandas=False)
roundtrip_dag("xcom_roundtrip_pandas", with_pandas=True)


@dag(
    dag_id="xcom_concurrency",
    start_date=datetime(2024, 1, 1),
    schedule=None,
    catchup=False,
    tags=["test"],
    params={"n": 200},
    max_active_tasks=64,
    default_args={"retries": 0},
)
def xcom_concurrency() -> None:
    """n mapped tasks push at once; the downstream task checks every value, in order."""

    @task
    def numbers(**context: Any) -> list[int]:
        return list(range(int(context["params"]["n"])))

    @task(multiple_outputs=False)
    def produce(i: int, **context: Any) -> dict[str, Any]:
        return {"i": i, "run_id": context["run_id"], "payload": f"value-{i}-" + "x" * 1000}

    @task
    def check(values: Any, **context: Any) -> int:
        n = int(context["params"]["n"])
        got = list(values)
        assert len(got) == n, len(got)
        for i, value in enumerate(got):
            assert value == {"i": i, "run_id": context["run_id"], "payload": f"value-{i}-" + "x" * 1000}, (i, value)
        return n

    check(produce.expand(i=numbers()))


xcom_concurrency()
