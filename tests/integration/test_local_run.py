"""The README's no-Docker commands end to end: `up` serves the UI with both DAGs, `demo` runs them
and lists the stored objects, `down` leaves no process behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from localdev.servers import free_port
from tests.integration.airflow_api import call as api

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if text in cmdline or text.encode() in environ:
            found.append(f"{proc.name}: {cmdline[:150]}")
    return found


def test_up_demo_down(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ports = {name: free_port() for name in ("s3", "gcs", "azure", "pokeapi", "airflow")}
    env = {**os.environ, "XCOM_LOCAL_STATE": str(state)}
    env.update({f"XCOM_LOCAL_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    for var in ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER"):
        env.pop(var, None)

    def localdev(*args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "localdev", *args], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip

    try:
        up = localdev("up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"http://127.0.0.1:{ports['airflow']}" in up.stdout
        assert "XCom backend:     include.xcom_backends.S3PandasXComBackend" in up.stdout
        password = up.stdout.split("login: admin / ", 1)[1].split()[0]

        token = api(ports["airflow"], "/auth/token", body={"username": "admin", "password": password})["access_token"]
        dags = api(ports["airflow"], "/api/v2/dags", token)
        assert {"simple_xcom_dag", "fetch_pokemon_data_dag"} <= {d["dag_id"] for d in dags["dags"]}
        conns = api(ports["airflow"], "/api/v2/connections", token)
        assert {"s3_xcom_backend_conn", "gcs_xcom_backend_conn", "azure_xcom_backend_conn",
                "minio_xcom_backend_conn", "pokeapi"} <= {c["connection_id"] for c in conns["connections"]}  # fmt: skip

        demo = localdev("demo")
        assert demo.returncode == 0, demo.stdout + demo.stderr
        referenced = [line for line in demo.stdout.splitlines() if line.endswith("[referenced]")]
        assert len(referenced) == 3, demo.stdout  # random number, Pokémon dict, Pokémon DataFrame
        assert any(".parquet" in line for line in referenced)
        assert (
            "pikachu has a base xp to height ratio of 28.0"
            in (state / "logs" / "demo-fetch_pokemon_data_dag.log").read_text()
        )
    finally:
        down = localdev("down", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "Airflow" in down.stdout and "SeaweedFS" in down.stdout
    assert processes_mentioning(str(state)) == []
    assert localdev("down").stdout.strip() == "Nothing was running."
