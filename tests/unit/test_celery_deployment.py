"""The Celery deployment's environments (localdev/celery_deployment.py): what a worker may reach, and
what every component must agree on. The deployment itself runs in tests/integration/test_celery.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from localdev import airflow_env as airflow_env_module
from localdev.celery_deployment import UNREACHABLE_DB, CeleryDeployment


@pytest.fixture
def deployment(tmp_path: Path) -> CeleryDeployment:
    env = {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__XCOM_BACKEND": "include.xcom_backends.S3JSONXComBackend",
        "AIRFLOW__XCOM_STORAGE__PREFIX": "xcom",
        "AIRFLOW_CONN_S3_XCOM_BACKEND_CONN": "aws://key:secret@",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://127.0.0.1:1234/execution/",
    }
    return CeleryDeployment(tmp_path, env, 1234, tmp_path / "dags", pg_port=5000, redis_port=6000)


def test_a_worker_has_no_database_and_no_credentials_of_its_own(deployment: CeleryDeployment) -> None:
    env = deployment.worker_env(2)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == UNREACHABLE_DB
    assert not [k for k in env if k.startswith("AIRFLOW_CONN_")]  # connections come from the API server
    home = deployment.worker_dir(2)
    assert env["AIRFLOW_HOME"] == str(home / "airflow") and env["TMPDIR"] == str(home / "tmp")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(home / "dags") and env["HOME"] == str(home)
    assert env["XCOM_LOCAL_WORKER_NAME"] == "worker-2"
    assert deployment.worker_dir(1) != home


def test_every_component_agrees_on_backend_broker_results_and_secret(deployment: CeleryDeployment) -> None:
    server, worker = deployment.server_env(), deployment.worker_env(1)
    for key in (
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__CORE__XCOM_BACKEND",
        "AIRFLOW__XCOM_STORAGE__PREFIX",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    ):
        assert server[key] == worker[key], key
    # Airflow's default result backend is the metadata database, which a worker cannot reach.
    assert server["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("redis://127.0.0.1:6000/")
    password = deployment.pg.password
    assert (
        server["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        == f"postgresql+psycopg2://postgres:{password}@127.0.0.1:5000/airflow"
    )
    assert server["AIRFLOW_CONN_S3_XCOM_BACKEND_CONN"] == "aws://key:secret@"


def test_the_unreachable_database_refuses_at_once() -> None:
    import socket

    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", 9), timeout=2).close()


def test_both_local_executors_are_one_deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(airflow_env_module.config, "STATE", tmp_path)
    monkeypatch.delenv("AIRFLOW_VAR_XCOM_STORAGE_DEPLOYMENT_ID", raising=False)
    local = airflow_env_module.airflow_env(tmp_path)["AIRFLOW_VAR_XCOM_STORAGE_DEPLOYMENT_ID"]
    celery = airflow_env_module.airflow_env(tmp_path / "celery")["AIRFLOW_VAR_XCOM_STORAGE_DEPLOYMENT_ID"]
    assert local == celery and len(local) == 32
    # A run in a folder of its own (the tests' isolated runs) is a deployment of its own.
    other = airflow_env_module.airflow_env(tmp_path.parent / "elsewhere")
    assert other.get("AIRFLOW_VAR_XCOM_STORAGE_DEPLOYMENT_ID") != local


def test_only_the_servers_know_the_database_password(deployment: CeleryDeployment) -> None:
    password = deployment.pg.password
    assert password and len(password) >= 24
    assert password in deployment.server_env()["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    for n in (1, 2, 3):
        assert not [k for k, v in deployment.worker_env(n).items() if password in v]
    # The same password after a restart (the database outlives it); another deployment gets another.
    again = CeleryDeployment(deployment.state, {}, 1234, deployment.dags)
    assert again.pg.password == password
    assert CeleryDeployment(deployment.state / "other", {}, 1234, deployment.dags).pg.password != password


def test_a_checkout_keeps_the_id_its_earlier_sqlite_run_claimed_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkout whose earlier ``make run`` (SQLite) claimed its bucket with the id its first doctor put
    in the database keeps that id, so that neither executor's next doctor refuses the location."""
    import subprocess
    import sys

    home = tmp_path / "airflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(home)
    for argv in (["db", "migrate"], ["variables", "set", "xcom_storage_deployment_id", "id-of-the-earlier-run"]):
        subprocess.run([sys.executable, "-m", "airflow", *argv], env=env, check=True, capture_output=True)
    monkeypatch.setattr(airflow_env_module.config, "STATE", tmp_path)
    monkeypatch.delenv("AIRFLOW_VAR_XCOM_STORAGE_DEPLOYMENT_ID", raising=False)
    for state in (tmp_path, tmp_path / "celery"):
        assert (
            airflow_env_module.airflow_env(state)["AIRFLOW_VAR_XCOM_STORAGE_DEPLOYMENT_ID"] == "id-of-the-earlier-run"
        )
