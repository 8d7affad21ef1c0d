"""All eight backends, each against its real local server, through real DAG runs (`airflow dags test`;
a backend's four runs share one Airflow process, see dagruns.py).

Covers JSON values, DataFrames/Series with every dtype, a URI-looking string, a mapped task (read
through Airflow's lazy XCom sequence), purge on re-run (the retried task's first object is gone
from the bucket), the threshold (nothing reaches storage), and both example DAGs.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from include.xcom_backends.dbform import is_reference

pytestmark = pytest.mark.integration

SCHEMES = {"s3": "s3", "minio": "s3", "gcs": "gs", "azure": "az"}
BACKENDS = [
    ("S3JSONXComBackend", "s3", False),
    ("S3PandasXComBackend", "s3", True),
    ("GCSJSONXComBackend", "gcs", False),
    ("GCSPandasXComBackend", "gcs", True),
    ("AzureJSONXComBackend", "azure", False),
    ("AzurePandasXComBackend", "azure", True),
    ("MinIOJSONXComBackend", "minio", False),
    ("MinIOPandasXComBackend", "minio", True),
]
IDS = [b[0] for b in BACKENDS]


PREFIXES = {
    "roundtrip": "it",
    "threshold": "it-threshold",
    "examples": "it-examples",
    "values": "it-values",
    "values_inline": "it-values-inline",
}


@pytest.fixture(scope="module")
def dag_runs(airflow_session: Any) -> Callable[[str, bool], dict[str, Any]]:
    """Every DAG run of one backend, made in one Airflow process on first use (each run as
    `airflow dags test` makes it; see tests/integration/dagruns.py) and kept for its tests."""
    done: dict[str, dict[str, Any]] = {}

    def runs_of(name: str, pandas: bool) -> dict[str, Any]:
        if name not in done:
            roundtrip = "xcom_roundtrip_pandas" if pandas else "xcom_roundtrip_json"
            values = "xcom_values_pandas" if pandas else "xcom_values_json"
            inline = {"AIRFLOW__XCOM_STORAGE__THRESHOLD_BYTES": "10000000"}
            prefix = {what: {"AIRFLOW__XCOM_STORAGE__PREFIX": f"{p}/{name}"} for what, p in PREFIXES.items()}
            plan = {
                "roundtrip": {"dag_id": roundtrip, "env": prefix["roundtrip"]},
                "threshold": {
                    "dag_id": roundtrip,
                    "env": {**prefix["threshold"], "AIRFLOW__XCOM_STORAGE__THRESHOLD_BYTES": "10000000"},
                },
                "simple": {"dag_id": "simple_xcom_dag", "env": prefix["examples"]},
                "pokemon": {"dag_id": "fetch_pokemon_data_dag", "env": prefix["examples"]},
                "values": {"dag_id": values, "env": prefix["values"]},
                "values_inline": {"dag_id": values, "env": {**prefix["values_inline"], **inline}},
                "values_serde": {"dag_id": "xcom_values_serde", "env": prefix["values"]},
            }
            outcomes = airflow_session.run_dags(list(plan.values()), backend=f"include.xcom_backends.{name}")
            done[name] = dict(zip(plan, outcomes, strict=True))
        return done[name]

    return runs_of


def key_of(uri: str, cloud: str) -> str:
    scheme, rest = uri.split("://", 1)
    assert scheme == SCHEMES[cloud], uri
    bucket, key = rest.split("/", 1)
    assert bucket == "airflow-xcom"
    return key


@pytest.mark.parametrize(("name", "cloud", "pandas"), BACKENDS, ids=IDS)
def test_roundtrip_dag(airflow_session: Any, dag_runs: Any, buckets: Any, name: str, cloud: str, pandas: bool) -> None:
    dag_id = "xcom_roundtrip_pandas" if pandas else "xcom_roundtrip_json"
    prefix = f"it/{name}"
    run = dag_runs(name, pandas)["roundtrip"]
    out = run.output
    assert run.ok, out[-6000:]
    assert "first attempt fails on purpose" in out  # the retry really happened

    rows = airflow_session.xcom_rows(dag_id, run.run_id)
    objects = buckets.list(cloud, prefix + "/")
    referenced = {}
    for row in rows:
        ref = row["value"]
        assert is_reference(ref), row
        assert len(row["raw"]) < 1024
        key = key_of(ref["uri"], cloud)
        assert key.startswith(f"{prefix}/{dag_id}/"), key
        assert objects.get(key) == ref["size"], f"{key} missing or wrong size in the bucket"
        referenced[key] = ref
    # Exactly the referenced objects: the failed first attempt's object was purged on retry.
    assert set(objects) == set(referenced)
    attempt_keys = [k for k in objects if "/flaky_push/" in k and "/attempt/" in k]
    assert len(attempt_keys) == 1
    assert buckets.read(cloud, attempt_keys[0]) == b'{"try_number":2}'

    # One object per map index, readable as plain files.
    squares = sorted(k for k in objects if "/square/" in k)
    assert [k.split("/")[-3] for k in squares] == ["0", "1", "2", "3", "4"]
    uri_obj = next(k for k in objects if "/push_uri_string/" in k)
    assert buckets.read(cloud, uri_obj).startswith(b'"s3://')
    if pandas:
        frame_key = next(k for k in objects if "/push_frame/" in k)
        assert frame_key.endswith(".parquet") and referenced[frame_key]["format"] == "parquet"
        frame = pd.read_parquet(io.BytesIO(buckets.read(cloud, frame_key)))
        assert len(frame) == 1000 and str(frame["cat"].dtype) == "category"
        assert next(k for k in objects if "/push_series/" in k).endswith(".parquet")


@pytest.mark.parametrize(("name", "cloud", "pandas"), BACKENDS, ids=IDS)
def test_threshold_keeps_small_values_in_database(
    airflow_session: Any, dag_runs: Any, buckets: Any, name: str, cloud: str, pandas: bool
) -> None:
    dag_id = "xcom_roundtrip_pandas" if pandas else "xcom_roundtrip_json"
    prefix = f"it-threshold/{name}"
    run = dag_runs(name, pandas)["threshold"]
    assert run.ok, run.output[-6000:]
    assert buckets.list(cloud, prefix + "/") == {}
    assert not any(is_reference(r["value"]) for r in airflow_session.xcom_rows(dag_id, run.run_id))


@pytest.mark.parametrize(("name", "cloud", "pandas"), BACKENDS, ids=IDS)
def test_example_dags(dag_runs: Any, buckets: Any, name: str, cloud: str, pandas: bool) -> None:
    prefix = f"it-examples/{name}"
    simple = dag_runs(name, pandas)["simple"]
    assert simple.ok, simple.output[-6000:]
    pokemon = dag_runs(name, pandas)["pokemon"]
    out = pokemon.output
    # Each run's own output: the runs of one process are told apart.
    assert "The random number is" in simple.output and "The random number is" not in out
    if pandas:
        assert pokemon.ok, out[-6000:]
        assert "pikachu has a base xp to height ratio of 28.0" in out
        assert any(k.endswith(".parquet") for k in buckets.list(cloud, prefix + "/fetch_pokemon_data_dag/"))
    else:
        # A JSON backend cannot hold the DataFrame: the documented TypeError, never a wrong value.
        assert not pokemon.ok
        assert "TypeError" in out and "PandasXComBackend" in out
        assert "ratio of" not in out
    assert any(k.endswith(".json") for k in buckets.list(cloud, prefix + "/simple_xcom_dag/"))


@pytest.mark.parametrize(("name", "cloud", "pandas"), BACKENDS, ids=IDS)
def test_every_value_kind_comes_back_with_its_type(
    airflow_session: Any, dag_runs: Any, buckets: Any, name: str, cloud: str, pandas: bool
) -> None:
    """tests/values.py through a real DAG run: serde's types, what serde loses, and (Pandas backends)
    polars/pyarrow frames, numpy arrays and bytes; each alone and nested in dicts and lists, compared
    by type and value in the downstream task. Stored in the bucket, and inline below the threshold."""
    dag_id = "xcom_values_pandas" if pandas else "xcom_values_json"
    for run_name, prefix in (("values", "it-values"), ("values_inline", "it-values-inline")):
        run = dag_runs(name, pandas)[run_name]
        assert run.ok, run.output[-6000:]
        objects = buckets.list(cloud, f"{prefix}/{name}/")
        rows = airflow_session.xcom_rows(dag_id, run.run_id)
        if run_name == "values_inline":
            assert objects == {} and not any(is_reference(r["value"]) for r in rows)
            continue
        formats = {r["value"]["format"] for r in rows if is_reference(r["value"])}
        assert formats == ({"json", "parquet", "npy", "bin"} if pandas else {"json"}), formats
        # Typed JSON is still JSON any tool reads: the Decimal keeps its digits as a string.
        decimal_key = next(k for k in objects if "/push_values/" in k and "/decimal/" in k)
        assert json.loads(buckets.read(cloud, decimal_key))["__data__"] == "1.10"
        if pandas:
            raw = next(k for k in objects if "/push_binary/" in k and "/bytes/" in k)
            assert buckets.read(cloud, raw) == bytes(range(256))


def test_the_serde_values_dag_passes_on_the_default_backend_and_on_ours(airflow_session: Any, dag_runs: Any) -> None:
    """The same DAG, unchanged: on Airflow's database backend, and on S3 JSON (every backend also
    runs a stricter superset of it in test_every_value_kind_comes_back_with_its_type)."""
    runs = [{"dag_id": "xcom_values_serde", "env": {}}]
    (default,) = airflow_session.run_dags(runs, backend="airflow.sdk.bases.xcom.BaseXCom")
    assert default.ok, default.output[-6000:]
    ours = dag_runs("S3JSONXComBackend", False)["values_serde"]
    assert ours.ok, ours.output[-6000:]
