"""Astro's DAG integrity tests: every DAG imports, has tags, and retries."""

from __future__ import annotations

import os

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS_FOLDER = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]


@pytest.fixture(scope="module")
def dag_bag() -> DagBag:
    return DagBag(dag_folder=DAGS_FOLDER)


def test_no_import_errors(dag_bag: DagBag) -> None:
    assert dag_bag.import_errors == {}, f"DAG import errors: {dag_bag.import_errors}"


def test_expected_dags_present(dag_bag: DagBag) -> None:
    assert {"simple_xcom_dag", "fetch_pokemon_data_dag"} <= set(dag_bag.dag_ids)


@pytest.mark.parametrize("dag_id", ["simple_xcom_dag", "fetch_pokemon_data_dag"])
def test_dag_has_tags(dag_bag: DagBag, dag_id: str) -> None:
    assert dag_bag.dags[dag_id].tags, f"{dag_id} has no tags"


@pytest.mark.parametrize("dag_id", ["simple_xcom_dag", "fetch_pokemon_data_dag"])
def test_dag_retries(dag_bag: DagBag, dag_id: str) -> None:
    dag = dag_bag.dags[dag_id]
    for task in dag.tasks:
        assert (task.retries or 0) >= 2, f"{dag_id}.{task.task_id} must have retries >= 2"
