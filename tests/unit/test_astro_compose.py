"""The Astro CLI's compose project, replayed with no Docker engine (localdev.astro_compose): our description of
the CLI's Airflow 3 compose file (localdev/astro/compose-base.yml), merged with docker-compose.override.yml by
Debian's docker-compose 1.29 (`apt-get install -y docker-compose`), and the settings file's endpoints.

With ASTRO_CLI_GIT_DIR set to a git directory of astronomer/astro-cli, the base is also compared with the
CLI's own template at ASTRO_CLI_REF (default v1.45.0), rendered the way airflow/container.go renders it."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from localdev import astro_compose
from localdev.astro_compose import (
    CLI_SERVICES,
    INSTALL_DOCKER_COMPOSE,
    NETWORK,
    compose_config,
    endpoints_name_services,
    render_base,
    settings_endpoints,
)
from localdev.config import REPO

needs_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason=f"docker-compose is not installed: {INSTALL_DOCKER_COMPOSE}"
)


def rendered(project_dir: Path = REPO) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(render_base(project_dir))
    return doc


def test_base_has_the_cli_services_on_the_airflow_network() -> None:
    """What the override relies on: the CLI's service names (api-server is the health check and the API the
    settings go through) and the `airflow` network every one of them is on."""
    doc = rendered()
    assert tuple(doc["services"]) == CLI_SERVICES
    assert CLI_SERVICES == ("postgres", "db-migration", "scheduler", "dag-processor", "api-server", "triggerer")
    assert doc["networks"] == {NETWORK: {"driver": "bridge"}}
    assert NETWORK == "airflow"
    for name, service in doc["services"].items():
        assert service["networks"] == [NETWORK], name
    assert doc["services"]["api-server"]["ports"] == ["127.0.0.1:8080:8080"]
    assert doc["services"]["postgres"]["ports"] == ["127.0.0.1:5432:5432"]
    assert set(doc["volumes"]) == {"postgres_data", "airflow_logs"}


def test_base_is_rendered_for_this_project(tmp_path: Path) -> None:
    # A project with the settings file and .env (the Astro image leaves both out of its copy of the repo).
    project = tmp_path / "project"
    (project / ".astro").mkdir(parents=True)
    shutil.copy(REPO / ".astro" / "config.yaml", project / ".astro" / "config.yaml")
    (project / "airflow_settings.yaml").write_text("airflow: {}\n")
    (project / ".env").write_text("")
    name = "airflow-object-storage-xcom_" + hashlib.md5(str(project.resolve()).encode()).hexdigest()[:6]
    assert astro_compose.astro_project_name(project) == name
    assert astro_compose.compose_project_name("My.Project_ab12cd") == "myproject_ab12cd"
    doc = rendered(project)
    scheduler = doc["services"]["scheduler"]
    assert scheduler["image"] == f"{name}/airflow:latest"
    assert f"{project}/airflow_settings.yaml:/usr/local/airflow/airflow_settings.yaml:z" in scheduler["volumes"]
    assert f"{project}/dags:/usr/local/airflow/dags:z" in doc["services"]["triggerer"]["volumes"]
    assert [s for s, svc in doc["services"].items() if svc.get("env_file") == ".env"] == [
        "scheduler",
        "dag-processor",
        "api-server",
        "triggerer",
    ]
    env = doc["x-airflow-env"]
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == name
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "True"
    assert "@" not in render_base(project).replace("@postgres:", "")


def test_settings_mount_and_env_file_only_when_the_files_exist(tmp_path: Path) -> None:
    doc = rendered(tmp_path)
    assert not any("airflow_settings.yaml" in v for v in doc["services"]["scheduler"]["volumes"])
    assert not any("env_file" in service for service in doc["services"].values())


def test_settings_endpoints() -> None:
    endpoints = settings_endpoints(REPO / "airflow_settings.yaml")
    assert endpoints == {
        ("minio", 9000): ["s3_xcom_backend_conn", "minio_xcom_backend_conn"],
        ("fake-gcs", 4443): ["gcs_xcom_backend_conn"],
        ("azurite", 10000): ["azure_xcom_backend_conn"],
        ("pokeapi.co", None): ["pokeapi"],
    }


def test_compose_config_step() -> None:
    step = compose_config()
    if shutil.which("docker-compose") is None:
        assert not step.ok and INSTALL_DOCKER_COMPOSE in step.result
        pytest.skip(step.result)
    assert step.ok, step
    assert "5 of the override: azurite, create-buckets-minio, create-container-azure, fake-gcs, minio" in step.result


def test_missing_docker_compose_is_named() -> None:
    step = compose_config(docker_compose="/nonexistent/docker-compose")
    assert not step.ok
    assert step.result == f"docker-compose is not installed: {INSTALL_DOCKER_COMPOSE}"
    assert not endpoints_name_services(docker_compose="/nonexistent/docker-compose").ok


@needs_compose
def test_endpoints_name_services_step() -> None:
    step = endpoints_name_services()
    assert step.ok, step
    assert "minio:9000 (s3_xcom_backend_conn, minio_xcom_backend_conn)" in step.result
    assert "public: pokeapi.co (pokeapi)" in step.result


def write_override(tmp_path: Path, change: Any) -> Path:
    doc = yaml.safe_load((REPO / "docker-compose.override.yml").read_text())
    change(doc)
    path = tmp_path / "docker-compose.override.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


@needs_compose
def test_a_service_off_the_airflow_network_fails(tmp_path: Path) -> None:
    override = write_override(tmp_path, lambda d: d["services"]["fake-gcs"].pop("networks"))
    step = compose_config(override=override)
    assert not step.ok and step.result == f"not on network {NETWORK}: fake-gcs"
    assert "fake-gcs:4443" in endpoints_name_services(override=override).result


@needs_compose
def test_an_invalid_override_fails(tmp_path: Path) -> None:
    override = write_override(tmp_path, lambda d: d["services"]["minio"].update(ports="9000"))
    step = compose_config(override=override)
    assert not step.ok and step.result.startswith("docker-compose config failed:"), step


@needs_compose
def test_an_endpoint_that_is_no_service_fails(tmp_path: Path) -> None:
    settings = tmp_path / "airflow_settings.yaml"
    text = (REPO / "airflow_settings.yaml").read_text()
    settings.write_text(text.replace("http://fake-gcs:4443", "http://gcs:4443").replace("minio:9000", "minio:9999"))
    step = endpoints_name_services(settings=settings)
    assert not step.ok
    assert "gcs:4443 (gcs_xcom_backend_conn): no such service" in step.result
    assert "minio:9999 (s3_xcom_backend_conn, minio_xcom_backend_conn): service minio publishes [9000, 9001]" in (
        step.result
    )


# --- drift against the CLI's own template (only with a checkout of astronomer/astro-cli) -------------------

TEMPLATE = "airflow/include/airflow3/composeyml.go.tmpl"


def render_go_template(text: str, values: dict[str, Any]) -> str:
    """Enough of Go's text/template for that file: {{ .Name }}, and if/if not/else/end on their own lines."""
    out, stack = [], [True]
    for line in text.splitlines():
        action = re.fullmatch(r"\s*\{\{-?\s*(if not|if|else|end)\s*(?:\.(\w+))?\s*-?\}\}\s*", line)
        if action:
            word, name = action.groups()
            if word.startswith("if"):
                value = bool(values[name])
                stack.append(stack[-1] and (not value if word == "if not" else value))
            elif word == "else":
                stack[-1] = not stack[-1] and stack[-2]
            else:
                stack.pop()
            continue
        if stack[-1]:
            out.append(re.sub(r"\{\{\s*\.(\w+)\s*\}\}", lambda m: str(values[m.group(1)]), line))
    return "\n".join(out) + "\n"


@pytest.mark.skipif(not os.environ.get("ASTRO_CLI_GIT_DIR"), reason="ASTRO_CLI_GIT_DIR (astro-cli git dir) not set")
def test_base_matches_the_cli_template() -> None:
    ref = os.environ.get("ASTRO_CLI_REF", "v1.45.0")
    git = ["git", "--git-dir", os.environ["ASTRO_CLI_GIT_DIR"], "show", f"{ref}:{TEMPLATE}"]
    template = subprocess.run(git, capture_output=True, text=True, check=True).stdout
    name = astro_compose.astro_project_name()
    values = {
        "ProjectName": name,
        "AirflowImage": astro_compose.image_name(name),
        "AirflowHome": str(REPO),
        "AirflowEnvFile": "env_file: .env",
        "AirflowExposePort": False,
        "AirflowAPIServerPort": "8080",
        "PostgresUser": "postgres",
        "PostgresPassword": "postgres",
        "PostgresHost": "postgres",
        "PostgresPort": "5432",
        "PostgresRepository": "docker.io/postgres",
        "PostgresTag": "12.6",
        "SettingsFile": "airflow_settings.yaml",
        "SettingsFileExist": True,
        "MountLabel": "z",
        "DuplicateImageVolumes": True,
    }
    theirs, ours = yaml.safe_load(render_go_template(template, values)), rendered()

    def comparable(doc: dict[str, Any]) -> dict[str, Any]:
        doc = {k: v for k, v in doc.items() if not k.startswith("x-")}
        for service in doc["services"].values():
            env = service.get("environment")
            if isinstance(env, dict):  # as compose-go reads it: text values; the Fernet key is ours
                service["environment"] = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in env.items()}
                service["environment"].pop("AIRFLOW__CORE__FERNET_KEY", None)
        return doc

    assert comparable(ours) == comparable(theirs)
