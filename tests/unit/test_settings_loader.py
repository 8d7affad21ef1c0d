from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from include.xcom_backends import (
    AzureJSONXComBackend,
    GCSJSONXComBackend,
    MinIOJSONXComBackend,
    S3JSONXComBackend,
)
from localdev import config
from localdev.config import REPO
from localdev.settings_loader import SettingsError, parse_settings


def test_project_settings_seed_every_connection_the_project_uses() -> None:
    settings = parse_settings(REPO / "airflow_settings.yaml")
    ids = {c["conn_id"] for c in settings["connections"]}
    backends = [S3JSONXComBackend, GCSJSONXComBackend, AzureJSONXComBackend, MinIOJSONXComBackend]
    assert {b.default_conn_id for b in backends} | {"pokeapi"} <= ids


def test_local_rewrites_point_docker_hosts_at_loopback() -> None:
    ports = {"s3": 1, "gcs": 2, "azure": 3, "pokeapi": 4, "airflow": 5}
    conns = {
        c["conn_id"]: c
        for c in parse_settings(REPO / "airflow_settings.yaml", config.host_rewrites(ports))["connections"]
    }
    assert json.loads(conns["s3_xcom_backend_conn"]["extra"])["endpoint_url"] == "http://127.0.0.1:1"
    assert json.loads(conns["gcs_xcom_backend_conn"]["extra"])["api_endpoint"] == "http://127.0.0.1:2"
    assert "BlobEndpoint=http://127.0.0.1:3/devstoreaccount1" in conns["azure_xcom_backend_conn"]["extra"]
    assert conns["pokeapi"]["host"] == "http://127.0.0.1:4"
    # MinIO backends talk to the same S3 server (SeaweedFS locally), with MinIO's dev keys.
    assert conns["minio_xcom_backend_conn"]["host"] == "http://127.0.0.1:1"
    assert conns["minio_xcom_backend_conn"]["login"] == config.DEV_S3_ACCESS_KEY


def test_pools_and_variables_in_astro_schema(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    connection = {"conn_id": "c", "conn_type": "http", "conn_host": "h", "conn_port": "80", "conn_extra": '{"a": 1}'}
    airflow = {
        "connections": [connection],
        "pools": [{"pool_name": "p", "pool_slot": 3, "pool_description": None}],
        "variables": [{"variable_name": "v", "variable_value": 42}],
    }
    path.write_text(yaml.safe_dump({"airflow": airflow}))
    s = parse_settings(path)
    assert s["connections"][0]["port"] == 80 and s["connections"][0]["extra"] == '{"a": 1}'
    assert s["pools"] == [{"name": "p", "slots": 3, "description": ""}]
    assert s["variables"] == [{"key": "v", "value": "42"}]


def test_incomplete_entry_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("airflow:\n  pools:\n    - pool_name: p\n")
    with pytest.raises(SettingsError, match="pool #1 needs pool_name and pool_slot"):
        parse_settings(path)
