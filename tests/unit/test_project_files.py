"""The Astro project files agree with each other and with the code."""

from __future__ import annotations

import importlib
import re
from typing import Any

import yaml

import include.xcom_backends as backends
from include.xcom_backends.backend import ObjectStorageXCom
from localdev import config
from localdev.airflow_env import read_dotenv
from localdev.astro_image import dockerignore_patterns, ignored
from localdev.config import REPO

BACKEND_LINE = re.compile(r"^(#\s*)?AIRFLOW__CORE__XCOM_BACKEND=(\S+)$")


def env_backend_lines() -> list[tuple[bool, str]]:
    lines = []
    for raw in (REPO / ".env").read_text().splitlines():
        m = BACKEND_LINE.match(raw.strip())
        if m:
            lines.append((m.group(1) is None, m.group(2)))
    return lines


def test_env_has_one_active_backend_and_a_line_per_class() -> None:
    lines = env_backend_lines()
    assert [path for active, path in lines if active] == ["include.xcom_backends.S3PandasXComBackend"]
    offered = {f"include.xcom_backends.{name}" for name in backends.__all__ if name != "ObjectStorageXCom"}
    assert offered <= {path for _, path in lines}
    assert read_dotenv(REPO / ".env")["AIRFLOW__CORE__XCOM_BACKEND"] == "include.xcom_backends.S3PandasXComBackend"


def test_every_backend_line_imports_an_object_storage_backend() -> None:
    for _, path in env_backend_lines():
        module, name = path.rsplit(".", 1)
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, ObjectStorageXCom), path


def test_compose_override_serves_the_hosts_the_connections_use() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.override.yml").read_text())
    services = compose["services"]
    for name, host_port in config.DOCKER_HOSTS.items():
        host, port = host_port.split(":")
        service = {"s3": "minio"}.get(name, host)
        assert service in services, f"no compose service {service} for {name}"
        assert any(str(p).split(":")[-1].split()[0] == port for p in services[service]["ports"])
        assert services[service]["networks"] == ["airflow"]
    settings = (REPO / "airflow_settings.yaml").read_text()
    for host_port in config.DOCKER_HOSTS.values():
        assert host_port in settings


ASTRO_FILES = [
    "Dockerfile",
    "requirements.txt",
    "packages.txt",
    ".env",
    "airflow_settings.yaml",
    ".astro/config.yaml",
    # what `astro dev parse` runs (astro-cli DefaultTestPath) and the files it exempts
    ".astro/test_dag_integrity_default.py",
    ".astro/dag_integrity_exceptions.txt",
]


def test_astro_layout() -> None:
    patterns = dockerignore_patterns()
    for path in [*ASTRO_FILES, ".dockerignore", ".gitignore", "dags", "include", "plugins", "tests"]:
        if ignored(path, patterns) and not (REPO / path).exists():
            continue  # in the image (astro dev pytest): .dockerignore leaves it out
        assert (REPO / path).exists(), path
    assert (REPO / "Dockerfile").read_text().splitlines()[-1].startswith("FROM astrocrpublic.azurecr.io/runtime:3.3-")


def test_the_image_gets_what_astro_dev_parse_and_pytest_run() -> None:
    patterns = dockerignore_patterns()
    for path in [".astro/test_dag_integrity_default.py", ".astro/dag_integrity_exceptions.txt", "dags", "tests"]:
        assert not ignored(path, patterns), f".dockerignore leaves {path} out of the image"
    # the host-only files the CLI reads itself (--env-file .env, connections pushed from airflow_settings.yaml)
    for path in [".env", "airflow_settings.yaml", ".venv", ".local", "localdev/node/node_modules"]:
        assert ignored(path, patterns), f"{path} would be copied into the image"


def _pins(path: Any) -> dict[str, str]:
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip()
    return pins


def test_requirements_pin_what_the_lock_installs() -> None:
    """astro dev start (requirements.txt) and make run/test (the lock) run on the same libraries."""
    image, lock = _pins(REPO / "requirements.txt"), _pins(REPO / "requirements-local.lock")
    for needed in (
        "apache-airflow-providers-amazon",
        "apache-airflow-providers-google",
        "apache-airflow-providers-microsoft-azure",
        "boto3",
        "google-cloud-storage",
        "azure-storage-blob",
        "obstore",
        "pandas",
        "pyarrow",
    ):
        assert needed in image, f"requirements.txt does not pin {needed}"
    assert {name: image[name] for name in image} == {name: lock.get(name) for name in image}
    for raw in (REPO / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        assert not line or "==" in line, f"requirements.txt: {line!r} is not pinned"
