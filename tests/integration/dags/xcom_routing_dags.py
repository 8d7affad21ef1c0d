"""Test DAGs for routing (tests/integration/test_routing.py): values of several kinds, each checked
downstream against an expected value computed independently, so a green run means each came back equal.

``routing_team_a`` pushes a frame, a JSON dict and a ``secret_token``; ``routing_team_b`` pushes a
JSON dict. Where each lands is up to ``[xcom_storage] rules``, which the test sets.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import dag, task
from pendulum import datetime

JSON_VALUE: dict[str, Any] = {"rows": list(range(50)), "name": "Pokémon ✓", "nested": {"x": [1.5, None, True]}}
SECRET = {"token": "not-a-real-secret-" + "x" * 40}
TEAM_B = {"team": "b", "values": [2**62, -1, 0.25]}


def frame() -> Any:
    from tests.frames import mixed_frame

    return mixed_frame(500)


@dag(
    dag_id="routing_team_a",
    start_date=datetime(2024, 1, 1),
    schedule=None,
    catchup=False,
    tags=["test"],
    default_args={"retries": 0},
)
def routing_team_a() -> None:
    @task
    def push_frame() -> Any:
        return frame()

    @task
    def push_json() -> Any:  # not dict: a dict annotation would mean multiple_outputs
        return JSON_VALUE

    @task
    def push_secret(ti: Any = None) -> None:
        ti.xcom_push(key="secret_token", value=SECRET)

    @task
    def check(value_frame: Any, value_json: dict[str, Any], ti: Any = None) -> None:
        import pandas as pd

        pd.testing.assert_frame_equal(value_frame, frame())
        assert value_json == JSON_VALUE, value_json
        secret = ti.xcom_pull(task_ids="push_secret", key="secret_token")
        assert secret == SECRET, "the secret did not come back equal"

    secret = push_secret()
    checked = check(push_frame(), push_json())
    secret >> checked


@dag(
    dag_id="routing_team_b",
    start_date=datetime(2024, 1, 1),
    schedule=None,
    catchup=False,
    tags=["test"],
    default_args={"retries": 0},
)
def routing_team_b() -> None:
    @task
    def push_json() -> Any:  # not dict: a dict annotation would mean multiple_outputs
        return TEAM_B

    @task
    def check(value: dict[str, Any]) -> None:
        assert value == TEAM_B, value

    check(push_json())


routing_team_a()
routing_team_b()
