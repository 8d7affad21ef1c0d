"""Test DAGs of tests/integration/test_celery.py, run by the CeleryExecutor deployment
(localdev/celery_deployment.py). Producers are pinned to one worker and consumers to the other with
``queue=`` (each worker listens on ``worker-N``); every consumer compares what it pulled with a value
computed independently and fails its task on any difference, so a green run means the values crossed
from one worker to the other exactly.

- ``celery_pinned``: a DataFrame, a JSON dict, typed values (tests/values.py), and a mapped task whose
  values one consumer reads all at once and another iterates lazily;
- ``celery_no_db``: task code that tries the metadata database (the ORM, and a raw connection to the
  worker's configured URL); both tasks must fail;
- ``celery_routed``: values a routing rule sends to another store, pushed on each worker and read on
  the other;
- ``celery_worker_lost``: a producer whose first try sleeps, so the test can cut its worker off and
  kill it mid-push; the retry (another worker) pushes again and the consumer checks it got that value.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from airflow.sdk import dag, get_current_context, task
from pendulum import datetime

W1, W2 = "worker-1", "worker-2"
JSON_VALUE: dict[str, Any] = {
    "nested": {"list": [1, 2.5, -3, None, True, False, "x"], "empty": {}},
    "unicode": "Pokémon ✓ 日本語 🐍",
    "big": 2**62,
}
MAPPED_INPUT = [3, 1, 4, 1, 5, 9]
# How long the first try of celery_worker_lost's producer sleeps before it returns (and pushes).
FIRST_TRY_SLEEP = 8
SLEEPING = "first try: sleeping before the push"
LOST_PAYLOAD = {"payload": list(range(100)), "name": "survives a lost worker"}
ROUTED_META = {"routed": True, "values": [1.5, None, "ü"]}


def frame(n: int = 1000) -> Any:
    from tests.frames import mixed_frame

    return mixed_frame(n)


def typed(binary: bool = True) -> dict[str, Any]:
    """Every kind of tests/values.py; ``binary=False``: those that can also be nested in a dict or list."""
    from tests import values

    found = {**values.serde_values(), **values.lossy_in_serde()}
    return {**found, **values.binary_values()} if binary else found


def mapped_value(x: int) -> dict[str, Any]:
    return {"x": x, "square": x * x, "text": f"value {x} " + "y" * 200}


DEFAULTS = {"retries": 0}
COMMON: dict[str, Any] = {"start_date": datetime(2024, 1, 1), "schedule": None, "catchup": False, "tags": ["test"]}


@dag(dag_id="celery_pinned", default_args=DEFAULTS, **COMMON)
def celery_pinned() -> None:
    @task(queue=W1)
    def push_frame() -> Any:
        return frame()

    @task(queue=W2)
    def check_frame(df: Any) -> None:
        import pandas as pd

        pd.testing.assert_frame_equal(df, frame(), check_exact=True)

    @task(queue=W1)
    def push_json() -> Any:  # not dict: a dict annotation would mean multiple_outputs
        return JSON_VALUE

    @task(queue=W2)
    def check_json(value: Any) -> None:
        assert value == JSON_VALUE, value

    @task(queue=W1)
    def push_values() -> Any:
        from tests.values import nested

        ti = get_current_context()["ti"]
        for key, value in typed().items():
            ti.xcom_push(key=key, value=value)
        return nested(typed(binary=False))

    @task(queue=W2)
    def check_values() -> None:
        from tests.values import nested, same

        ti = get_current_context()["ti"]
        # Pulled, not passed as arguments: a task's arguments are also stored as rendered fields (JSON).
        wrong = [k for k, v in typed().items() if not same(v, ti.xcom_pull(task_ids="push_values", key=k))]
        assert not wrong, f"came back different: {wrong}"
        together = ti.xcom_pull(task_ids="push_values")
        assert same(nested(typed(binary=False)), together), together

    @task(queue=W1)
    def numbers() -> list[int]:
        return MAPPED_INPUT

    @task(queue=W1)
    def square(x: int) -> Any:
        return mapped_value(x)

    @task(queue=W2)
    def check_all_at_once() -> None:
        ti = get_current_context()["ti"]
        got = ti.xcom_pull(task_ids="square")  # every map index in one pull
        assert list(got) == [mapped_value(x) for x in MAPPED_INPUT], got

    @task(queue=W2)
    def check_lazily(values: Any) -> None:
        seen = []
        for value in values:  # one value fetched at a time
            seen.append(value)
        assert seen == [mapped_value(x) for x in MAPPED_INPUT], seen
        assert values[2] == mapped_value(MAPPED_INPUT[2]) and len(values) == len(MAPPED_INPUT)

    check_frame(push_frame())
    check_json(push_json())
    push_values() >> check_values()
    squares = square.expand(x=numbers())
    squares >> check_all_at_once()
    check_lazily(squares)


@dag(dag_id="celery_no_db", default_args=DEFAULTS, params={"worker_database_url": ""}, **COMMON)
def celery_no_db() -> None:
    @task(queue=W1)
    def orm_query() -> None:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        with create_session() as session:
            print("dag runs seen from a worker:", session.query(DagRun).count())

    @task(queue=W2)
    def raw_connect(**context: Any) -> None:
        import os

        import sqlalchemy

        # Airflow's task runner replaces the task process's database URL (its environment included) with
        # "airflow-db-not-allowed:///"; the URL the worker was started with comes in the run's conf.
        url = context["params"]["worker_database_url"]
        print(f"in this task: {os.environ['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN']}; the worker's: {url}")
        with sqlalchemy.create_engine(url, connect_args={"connect_timeout": 5}).connect() as conn:
            print("dag runs seen from a worker:", conn.execute(sqlalchemy.text("select count(*) from dag_run")))

    orm_query()
    raw_connect()


@dag(dag_id="celery_routed", default_args=DEFAULTS, **COMMON)
def celery_routed() -> None:
    @task
    def routed() -> Any:
        get_current_context()["ti"].xcom_push(key="meta", value=ROUTED_META)
        return frame(300)

    @task
    def check_routed(df: Any, producer: str) -> None:
        import pandas as pd

        pd.testing.assert_frame_equal(df, frame(300), check_exact=True)
        assert get_current_context()["ti"].xcom_pull(task_ids=producer, key="meta") == ROUTED_META

    on_1 = routed.override(task_id="routed_on_1", queue=W1)()
    on_2 = routed.override(task_id="routed_on_2", queue=W2)()
    check_routed.override(task_id="check_on_2", queue=W2)(on_1, "routed_on_1")
    check_routed.override(task_id="check_on_1", queue=W1)(on_2, "routed_on_2")


@dag(dag_id="celery_worker_lost", default_args=DEFAULTS, **COMMON)
def celery_worker_lost() -> None:
    @task(queue=W2)
    def seed() -> Any:
        return {"seed": "read from the store before the worker is cut off"}

    @task(queue=W1, retries=1, retry_delay=timedelta(seconds=2))
    def produce(seeded: Any) -> Any:
        # Pulling ``seeded`` (an object in the store) loaded the store's connection through the API server;
        # the backend keeps that client for the rest of the task, so the push below needs only the store.
        assert seeded == {"seed": "read from the store before the worker is cut off"}, seeded
        try_number = get_current_context()["ti"].try_number
        if try_number == 1:
            print(SLEEPING)  # the test waits for this line in the task's log, then cuts the worker off
            time.sleep(FIRST_TRY_SLEEP)
        return {**LOST_PAYLOAD, "try_number": try_number}

    @task(queue=W2)
    def consume(value: Any) -> None:
        assert value == {**LOST_PAYLOAD, "try_number": 2}, value

    consume(produce(seed()))


celery_pinned()
celery_no_db()
celery_routed()
celery_worker_lost()
