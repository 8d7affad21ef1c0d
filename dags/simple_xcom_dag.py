"""The tutorial's first DAG: one task pushes a random number, the next pulls and prints it.

With a custom XCom backend active, the number travels through object storage: look for
"XCom 'return_value' stored at ..." in the log of ``pick_a_random_number``.
"""

from __future__ import annotations

import random

from airflow.sdk import dag, task
from pendulum import datetime


@dag(
    start_date=datetime(2022, 12, 20),
    schedule="@daily",
    catchup=False,
    tags=["xcom", "example"],
    default_args={"retries": 2},
)
def simple_xcom_dag() -> None:
    @task
    def pick_a_random_number() -> int:
        return random.randint(1, 10)  # pushed to XCom

    @task
    def print_a_number(num: int) -> None:  # pulled from XCom
        print(f"The random number is {num}")

    print_a_number(pick_a_random_number())


simple_xcom_dag()
