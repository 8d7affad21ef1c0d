"""Paths, ports and the well-known local development credentials of the local servers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("XCOM_LOCAL_STATE", REPO / ".local"))
# The Astro project's .env, read into every local Airflow process (another file: XCOM_LOCAL_DOTENV=path).
DOTENV = Path(os.environ.get("XCOM_LOCAL_DOTENV", REPO / ".env"))
VENV = REPO / ".venv"
NODE_BIN = REPO / "localdev" / "node" / "node_modules" / ".bin"
PYTHON = Path(sys.executable)

# --- Well-known LOCAL DEVELOPMENT credentials (never use them for a real cloud account) -----
# MinIO's default root user; SeaweedFS is started with the same keys, so the MinIO and S3
# connections in airflow_settings.yaml work against either.
DEV_S3_ACCESS_KEY = "minioadmin"
DEV_S3_SECRET_KEY = "minioadmin"
# Azurite's documented development account (public, identical in every Azurite install).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

BUCKET = "airflow-xcom"

# Ports of `make run`, the same numbers as docker-compose.override.yml. Each can be moved with an
# env var XCOM_LOCAL_<NAME>_PORT (e.g. XCOM_LOCAL_AIRFLOW_PORT=8081); the tests use free ports.
_PORTS = {"s3": 9000, "gcs": 4443, "azure": 10000, "pokeapi": 8089, "airflow": 8080}
DEFAULT_PORTS = {name: int(os.environ.get(f"XCOM_LOCAL_{name.upper()}_PORT", port)) for name, port in _PORTS.items()}

# Docker service hosts used in airflow_settings.yaml -> what they are in the no-Docker setup.
DOCKER_HOSTS = {"s3": "minio:9000", "gcs": "fake-gcs:4443", "azure": "azurite:10000"}
PUBLIC_POKEAPI = "https://pokeapi.co"


def host_rewrites(ports: dict[str, int]) -> dict[str, str]:
    """String replacements that turn the Astro (Docker) connections into local ones."""
    rewrites = {DOCKER_HOSTS[name]: f"127.0.0.1:{ports[name]}" for name in DOCKER_HOSTS}
    rewrites[PUBLIC_POKEAPI] = f"http://127.0.0.1:{ports['pokeapi']}"
    return rewrites
