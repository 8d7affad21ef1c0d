"""The environment every local Airflow process gets: .env, AIRFLOW_HOME, paths, loopback binding."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from localdev import config


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an Astro ``.env`` file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def api_server_env(port: int) -> dict[str, str]:
    """Airflow's API server on 127.0.0.1:``port``, and the task processes pointed at it."""
    return {
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
    }


def local_deployment_id() -> str:
    """The deployment id of this checkout's local Airflow, whichever executor runs it: ``make run`` on
    SQLite and ``make run EXECUTOR=celery`` on PostgreSQL are one deployment to the object stores (the
    owner marker that doctor writes and gc checks), not two that would refuse each other's bucket."""
    path = config.STATE / "deployment-id"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_id_of_earlier_run() or uuid.uuid4().hex)
    return path.read_text().strip()


def _id_of_earlier_run() -> str | None:
    """The id that the SQLite database of an earlier ``make run`` holds (its first ``doctor`` made it,
    before this checkout kept the id in a file), so that the location it claimed stays this checkout's.
    Read by Airflow itself, which decrypts the Variable with that AIRFLOW_HOME's key."""
    home = config.STATE / "airflow"
    if not (home / "airflow.db").exists():
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(home), "_AIRFLOW_PROCESS_CONTEXT": "server"})
    argv = [str(config.PYTHON), "-m", "airflow", "variables", "get", "xcom_storage_deployment_id"]
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return lines[-1] if done.returncode == 0 and lines else None


def airflow_env(state: Path, *, api_port: int = config.DEFAULT_PORTS["airflow"]) -> dict[str, str]:
    home = state / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(read_dotenv(config.DOTENV))
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(config.REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(config.REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "4"),
            **api_server_env(api_port),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(config.REPO), env.get("PYTHONPATH")])),
            "PATH": os.pathsep.join([str(config.PYTHON.parent), env.get("PATH", "")]),
        }
    )
    if state == config.STATE or config.STATE in state.parents:
        env.setdefault("AIRFLOW_VAR_XCOM_STORAGE_DEPLOYMENT_ID", local_deployment_id())
    return env


def active_backend(env: dict[str, str]) -> str:
    """The XCom backend Airflow uses with ``env``: the .env line, or Airflow's default without one."""
    path = env.get("AIRFLOW__CORE__XCOM_BACKEND") or "airflow.sdk.bases.xcom.BaseXCom"
    if path == "airflow.sdk.bases.xcom.BaseXCom":
        return f"{path} (Airflow's default: values in the metadata database)"
    return path
