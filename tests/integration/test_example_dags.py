"""The example DAGs under the tutorial's class names, and their failure modes (SeaweedFS as S3).

Every backend class runs both example DAGs in test_backends.py; this file checks the tutorial's
names, the stored objects' content, and that the Pokémon DAG never succeeds on bad input."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pytest

from include.xcom_backends.dbform import is_reference

pytestmark = pytest.mark.integration

S3_PANDAS = "include.xcom_backends.S3PandasXComBackend"


def object_bytes(s3_client: Any, uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()


def assert_ok(proc: Any) -> None:
    assert proc.returncode == 0, f"dags test failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"


@pytest.mark.parametrize("backend", ["include.xcom_backend_json.CustomXComBackendJSON"])
def test_simple_xcom_dag_through_s3_json(airflow_session: Any, s3_client: Any, backend: str) -> None:
    proc = airflow_session.run_dag("simple_xcom_dag", backend=backend)
    assert_ok(proc)
    (row,) = airflow_session.xcom_rows("simple_xcom_dag")
    ref = row["value"]
    assert is_reference(ref) and ref["format"] == "json"
    assert len(row["raw"]) < 1024
    number = int(object_bytes(s3_client, ref["uri"]))
    assert 1 <= number <= 10
    assert f"The random number is {number}" in proc.stdout + proc.stderr


@pytest.mark.parametrize("backend", ["include.xcom_backend_pandas.CustomXComBackendPandas"])
def test_pokemon_dag_through_s3_pandas(airflow_session: Any, s3_client: Any, backend: str) -> None:
    proc = airflow_session.run_dag("fetch_pokemon_data_dag", backend=backend)
    assert_ok(proc)
    out = proc.stdout + proc.stderr
    assert "pikachu has a base xp to height ratio of 28.0" in out
    assert "vulpix has a base xp to height ratio of 10.0" in out
    rows = {r["task_id"]: r["value"] for r in airflow_session.xcom_rows("fetch_pokemon_data_dag")}
    assert rows["extract_data"]["format"] == "json"
    assert rows["calculate_xp_per_height"]["format"] == "parquet"
    frame = pd.read_parquet(io.BytesIO(object_bytes(s3_client, rows["calculate_xp_per_height"]["uri"])))
    assert frame.to_dict("list") == {
        "pokemon": ["pikachu", "vulpix"],
        "base_experience": [112, 60],
        "height": [4, 6],
        "xp_per_height": [28.0, 10.0],
    }


def test_pokemon_dag_fails_when_api_unreachable(airflow_session: Any) -> None:
    from localdev.servers import free_port

    proc = airflow_session.run_dag(
        "fetch_pokemon_data_dag",
        backend=S3_PANDAS,
        extra_env={"AIRFLOW_CONN_POKEAPI": f"http://127.0.0.1:{free_port()}"},
    )
    out = proc.stdout + proc.stderr
    assert "ConnectionError" in out or "Connection refused" in out
    assert "ratio of" not in out
