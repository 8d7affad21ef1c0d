"""The ways to move a value between two tasks that the benchmark compares, each behind push/pull.

``push`` returns what a task would hand to Airflow for the metadata database (the value's database
form); ``pull`` takes that back and returns the value. Module imports happen when an approach is
built; clients, hooks and connections are created by the calls themselves, as in a task process.

- ``db``: Airflow's default backend (``BaseXCom``: serde, the value inside the database).
- ``common_io``: the common.io provider's ``XComObjectStorageBackend``, threshold 0, no compression.
- ``tutorial_csv``: the tutorial's ``CustomXComBackendPandas`` (seed 003) as written, ported just
  enough to run on Airflow 3 (``BaseXCom`` from ``airflow.sdk``, our bucket).
- ``s3hook_parquet``: seed 000's Parquet-through-S3Hook backend, with its pull fixed to read bytes
  (``S3Hook.read_key`` decodes text and cannot read Parquet).
- ``ours``: ``S3PandasXComBackend`` (Parquet) for frames, ``S3JSONXComBackend`` for JSON.
- ``floor``: the least work any object-store backend must do: encode (Parquet or JSON) into memory,
  one put and one get of those bytes with a plain boto3 client configured like ours (timeouts,
  retries, checksum policy), decode. A polars frame: polars' ``write_parquet`` and ``read_parquet``.

Only ``floor`` and ``ours`` carry a polars frame (the others have no serializer for one).
"""

from __future__ import annotations

import io
import json
import os
import uuid
from typing import Any

from localdev.inprocess import Result

BUCKET = "airflow-xcom"
CONN_ID = "s3_xcom_backend_conn"
PREFIX = "bench"


def is_frame(workload: str) -> bool:
    return workload.startswith(("frame_", "polars_"))


def is_polars(workload: str) -> bool:
    return workload.startswith("polars_")


class DefaultDB:
    name, label = "db", "Airflow default (database)"
    env: dict[str, str] = {}  # noqa: RUF012  (extra environment of this approach's worker)

    def __init__(self, workload: str) -> None:
        from airflow.sdk.bases.xcom import BaseXCom

        self.xcom = BaseXCom

    def push(self, value: Any, ids: dict[str, Any]) -> Any:
        return self.xcom.serialize_value(value, **ids)

    def pull(self, stored: Any) -> Any:
        return self.xcom.deserialize_value(Result(stored))


class CommonIO(DefaultDB):
    name, label = "common_io", "common.io ObjectStorage"

    def __init__(self, workload: str) -> None:
        from airflow.providers.common.io.xcom.backend import XComObjectStorageBackend

        self.xcom = XComObjectStorageBackend


class Ours(DefaultDB):
    name, label = "ours", "ours (Parquet / JSON)"

    def __init__(self, workload: str) -> None:
        from include.xcom_backends import S3JSONXComBackend, S3PandasXComBackend

        self.xcom = S3PandasXComBackend if is_frame(workload) else S3JSONXComBackend


class OursInline(Ours):
    """Ours with a 64 KiB threshold: a small value stays in the database, with no storage request."""

    name, label = "ours_inline", "ours, below threshold (inline)"
    env = {"AIRFLOW__XCOM_STORAGE__THRESHOLD_BYTES": str(64 * 1024)}  # noqa: RUF012


class TutorialCSV:
    """Seed 003's CustomXComBackendPandas, logic unchanged: S3Hook per call, temporary files, CSV."""

    name, label = "tutorial_csv", "tutorial CSV (seed 003)"
    PREFIX = "xcom_s3://"

    def __init__(self, workload: str) -> None:
        import pandas as pd
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from airflow.sdk.bases.xcom import BaseXCom

        self.pd, self.S3Hook, self.BaseXCom = pd, S3Hook, BaseXCom

    def push(self, value: Any, ids: dict[str, Any]) -> Any:
        hook = self.S3Hook(aws_conn_id=CONN_ID)
        if isinstance(value, self.pd.DataFrame):
            filename = "data_" + str(uuid.uuid4()) + ".csv"
            s3_key = f"{ids['run_id']}/{ids['task_id']}/{filename}"
            value.to_csv(filename)
        else:
            filename = "data_" + str(uuid.uuid4()) + ".json"
            s3_key = f"{ids['run_id']}/{ids['task_id']}/{filename}"
            with open(filename, "a+") as f:
                json.dump(value, f)
        hook.load_file(filename=filename, key=s3_key, bucket_name=BUCKET, replace=True)
        os.remove(filename)
        return self.BaseXCom.serialize_value(value=self.PREFIX + s3_key)

    def pull(self, stored: Any) -> Any:
        result = self.BaseXCom.deserialize_value(Result(stored))
        hook = self.S3Hook(aws_conn_id=CONN_ID)
        key = result.replace(self.PREFIX, "")
        filename = hook.download_file(key=key, bucket_name=BUCKET, local_path="/tmp")
        if key.split(".")[-1] == "csv":
            output = self.pd.read_csv(filename)
        else:
            with open(filename) as f:
                output = json.load(f)
        os.remove(filename)
        return output


class S3HookParquet(TutorialCSV):
    """Seed 000's S3XComBackend: ``to_parquet(index=False)`` and S3Hook per call."""

    name, label = "s3hook_parquet", "Parquet via S3Hook (seed 000)"

    def push(self, value: Any, ids: dict[str, Any]) -> Any:
        key = f"{PREFIX}/s3hook_parquet/{uuid.uuid4()}.parquet"
        hook = self.S3Hook(aws_conn_id=CONN_ID)
        hook.load_bytes(value.to_parquet(index=False), key=key, bucket_name=BUCKET, replace=True)
        return self.BaseXCom.serialize_value(key)

    def pull(self, stored: Any) -> Any:
        key = self.BaseXCom.deserialize_value(Result(stored))
        hook = self.S3Hook(aws_conn_id=CONN_ID)
        data = hook.get_key(key, bucket_name=BUCKET).get()["Body"].read()
        return self.pd.read_parquet(io.BytesIO(data))


class Floor:
    name, label = "floor", "floor (encode + put + get + decode)"

    def __init__(self, workload: str) -> None:
        self.frame, self.polars = is_frame(workload), is_polars(workload)
        self._client: Any = None

    # boto3 and pyarrow are imported by the first call, as our backend does (and any backend must).
    @property
    def pa(self) -> Any:
        import pyarrow

        return pyarrow

    @property
    def pq(self) -> Any:
        import pyarrow.parquet

        return pyarrow.parquet

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            from include.xcom_backends.settings import XComStorageSettings

            conn = json.loads(os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"])
            settings = XComStorageSettings.from_airflow_config(default_conn_id=CONN_ID)
            # The boto3 client our S3 store used before it moved to obstore (issue 14): the floor stays
            # defined as it was, so ours is measured against the same yardstick.
            config = Config(
                connect_timeout=settings.connect_timeout,
                read_timeout=settings.timeout_seconds,
                retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
                max_pool_connections=16,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            self._client = boto3.client(
                "s3",
                endpoint_url=conn["extra"]["endpoint_url"],
                aws_access_key_id=conn["login"],
                aws_secret_access_key=conn["password"],
                region_name="us-east-1",
                config=config,
            )
        return self._client

    def push(self, value: Any, ids: dict[str, Any]) -> Any:
        if self.polars:
            buffer = io.BytesIO()
            value.write_parquet(buffer, compression="snappy")
            data = buffer.getvalue()
        elif self.frame:
            sink = self.pa.BufferOutputStream()
            self.pq.write_table(self.pa.Table.from_pandas(value), sink, compression="snappy")
            data = sink.getvalue().to_pybytes()
        else:
            data = json.dumps(value).encode()
        key = f"{PREFIX}/floor/{uuid.uuid4()}"
        self.client.put_object(Bucket=BUCKET, Key=key, Body=data)
        return key

    def pull(self, stored: Any) -> Any:
        data = self.client.get_object(Bucket=BUCKET, Key=stored)["Body"].read()
        if self.polars:
            import polars as pl

            return pl.read_parquet(data)  # bytes: read without a copy, as our backend does
        if self.frame:
            return self.pq.read_table(self.pa.BufferReader(data)).to_pandas()
        return json.loads(data)


APPROACHES: dict[str, type[Any]] = {
    a.name: a for a in (Floor, Ours, OursInline, S3HookParquet, DefaultDB, CommonIO, TutorialCSV)
}


def supports(approach: str, workload: str) -> bool:
    if is_polars(workload) or workload.endswith("_arrow"):  # measured against the floor and our NumPy-backed run
        return approach in ("floor", "ours")
    if approach == "s3hook_parquet":
        return is_frame(workload)
    return approach != "ours_inline" or workload == "json_small"


def object_prefix(approach: str) -> str | None:
    """Where an approach's objects go in the bucket (None: it writes no objects)."""
    if approach == "db":
        return None
    return f"{PREFIX}/ours/" if approach == "ours_inline" else f"{PREFIX}/{approach}/"
