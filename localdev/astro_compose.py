"""Replays of what ``astro dev start`` does with this project, with no Docker engine: the compose project it
runs (its Airflow 3 compose file with our docker-compose.override.yml merged on top) and the settings file it
loads through the REST API. Each replay returns a ``localdev.replay.Step``.

The CLI's compose file is rendered from our own description of it, localdev/astro/compose-base.yml (its header
says which CLI release and file it mirrors); the merge is validated by Debian's ``docker-compose`` (1.29,
Python), whose ``config`` command merges and validates without an engine.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from localdev.config import PUBLIC_POKEAPI, REPO
from localdev.replay import Step

BASE = Path(__file__).resolve().parent / "astro" / "compose-base.yml"
OVERRIDE = "docker-compose.override.yml"  # read from the project directory, as the CLI does
SETTINGS_FILE = "airflow_settings.yaml"  # the CLI's default --settings-file
# What the CLI's Airflow 3 compose file defines, and what our override relies on.
CLI_SERVICES = ("postgres", "db-migration", "scheduler", "dag-processor", "api-server", "triggerer")
NETWORK = "airflow"
INSTALL_DOCKER_COMPOSE = "apt-get install -y docker-compose"
# Endpoints in the settings file that are not compose services on purpose.
PUBLIC_HOSTS = frozenset({PUBLIC_POKEAPI.split("://", 1)[1]})


# --- rendering the CLI's compose file for a project --------------------------------------------------------


def astro_project_name(project_dir: Path = REPO) -> str:
    """airflow/container.go ``ProjectNameUnique``: project.name of .astro/config.yaml, "_", and the first 6 hex
    digits of the md5 of the project directory."""
    name = ""
    config_file = project_dir / ".astro" / "config.yaml"
    if config_file.exists():
        doc = yaml.safe_load(config_file.read_text()) or {}
        name = str((doc.get("project") or {}).get("name") or "")
    digest = hashlib.md5(str(project_dir.resolve()).encode()).hexdigest()
    return f"{name}_{digest[:6]}"


def compose_project_name(project_name: str) -> str:
    """airflow/container.go ``normalizeName``: lower case, only [a-z0-9_-], no leading "_" or "-"."""
    return "".join(re.findall(r"[a-z0-9_-]", project_name.lower())).lstrip("_-")


def image_name(project_name: str) -> str:
    """airflow/airflow.go ``ImageName(projectName, "latest")``."""
    return f"{project_name}/airflow:latest"


def render_base(project_dir: Path = REPO) -> str:
    """The CLI's compose file for ``project_dir``, from localdev/astro/compose-base.yml."""
    project_dir = project_dir.resolve()
    name = astro_project_name(project_dir)
    fernet = base64.urlsafe_b64encode(hashlib.sha256(name.encode()).digest()).decode()
    values = {
        "project_name": name,
        "image": image_name(name),
        "airflow_home": str(project_dir),
        "settings_file": SETTINGS_FILE,
        "fernet_key": fernet,
    }
    lines = []
    for line in BASE.read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        if "@settings_file@" in line and not (project_dir / SETTINGS_FILE).exists():
            continue
        if line.strip() == "env_file: .env" and not (project_dir / ".env").exists():
            continue
        for key, value in values.items():
            line = line.replace(f"@{key}@", value)
        lines.append(line)
    return "\n".join(lines) + "\n"


def find_docker_compose(docker_compose: str = "docker-compose") -> str | None:
    return shutil.which(docker_compose)


def docker_compose_config(
    project_dir: Path = REPO, override: Path | None = None, docker_compose: str = "docker-compose"
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None, list[str]]:
    """``docker-compose -p <project> -f <CLI compose file> -f docker-compose.override.yml config``, run in the
    project directory as the CLI loads it. Returns the process, the merged file (None on failure) and argv."""
    project_dir = project_dir.resolve()
    override = override or project_dir / OVERRIDE
    with tempfile.TemporaryDirectory(prefix="astro-compose-") as tmp:
        base = Path(tmp) / "compose.yaml"
        base.write_text(render_base(project_dir))
        argv = [
            docker_compose,
            "--project-directory",
            str(project_dir),
            "-p",
            compose_project_name(astro_project_name(project_dir)),
            "-f",
            str(base),
            "-f",
            str(override),
            "config",
        ]
        proc = subprocess.run(argv, cwd=project_dir, capture_output=True, text=True, timeout=120)
    merged = yaml.safe_load(proc.stdout) if proc.returncode == 0 else None
    shown = [Path(argv[0]).name, *argv[1:5], "-f", "<rendered CLI compose.yaml>", "-f", str(override), "config"]
    return proc, merged, shown


def _networks(service: dict[str, Any]) -> set[str]:
    nets = service.get("networks") or []
    return set(nets) if isinstance(nets, (list, dict)) else set()


def _not_installed(step: str, t0: float) -> Step:
    return Step(
        step,
        "docker-compose (Debian's 1.29, the engine-free compose) is needed",
        False,
        f"docker-compose is not installed: {INSTALL_DOCKER_COMPOSE}",
        time.monotonic() - t0,
    )


def compose_config(
    project_dir: Path = REPO, override: Path | None = None, docker_compose: str = "docker-compose"
) -> Step:
    """The CLI's compose file and our override merge and validate; the CLI's services are all there and every
    service the override adds is on the ``airflow`` network."""
    t0 = time.monotonic()
    name = "compose config"
    exe = find_docker_compose(docker_compose)
    if exe is None:
        return _not_installed(name, t0)
    override = override or project_dir / OVERRIDE
    proc, merged, argv = docker_compose_config(project_dir, override, exe)
    did = " ".join(argv)
    if merged is None:
        first = next((line for line in proc.stderr.splitlines() if line.strip()), f"exit code {proc.returncode}")
        return Step(name, did, False, f"docker-compose config failed: {first}", time.monotonic() - t0)
    services = merged.get("services") or {}
    added = sorted((yaml.safe_load(override.read_text()) or {}).get("services") or {})
    problems = [f"CLI service {s} missing" for s in CLI_SERVICES if s not in services]
    if NETWORK not in (merged.get("networks") or {}):
        problems.append(f"no network {NETWORK}")
    off = [s for s in added if NETWORK not in _networks(services.get(s) or {})]
    if off:
        problems.append(f"not on network {NETWORK}: {', '.join(off)}")
    seconds = time.monotonic() - t0
    if problems:
        return Step(name, did, False, "; ".join(problems), seconds)
    result = (
        f"merged: {len(services)} services ({len(CLI_SERVICES)} of the CLI, {len(added)} of the override: "
        f"{', '.join(added)}), every one of the override's on network {NETWORK}"
    )
    return Step(name, did, True, result, seconds)


# --- the endpoints of the settings file --------------------------------------------------------------------

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^/\s@\"']*@)?(\[[^\]]*\]|[^/\s:;?#\"']+)(?::(\d+))?")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def settings_endpoints(settings: Path) -> dict[tuple[str, int | None], list[str]]:
    """(host, port) of every URL in the connections of ``settings`` (host, URI, extra values; a host given
    without a scheme counts with its conn_port), with the connections that name it."""
    from localdev.settings_loader import read_settings

    found: dict[tuple[str, int | None], list[str]] = {}
    for conn in read_settings(settings)["connections"]:
        conn_id = str(conn.get("conn_id"))
        texts = _strings({k: v for k, v in conn.items() if k not in ("conn_id", "conn_type")})
        endpoints = [
            (m.group(1).strip("[]"), int(m.group(2)) if m.group(2) else None) for t in texts for m in _URL.finditer(t)
        ]
        host = conn.get("conn_host")
        if isinstance(host, str) and host and "://" not in host:
            port = str(conn.get("conn_port") or "")
            endpoints.append((host, int(port) if port.isdigit() else None))
        for endpoint in endpoints:
            ids = found.setdefault(endpoint, [])
            if conn_id not in ids:
                ids.append(conn_id)
    return found


def _target_ports(service: dict[str, Any]) -> set[int]:
    ports: set[int] = set()
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            ports.add(int(str(port["target"])))
        else:
            ports.add(int(str(port).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def endpoints_name_services(
    project_dir: Path = REPO,
    settings: Path | None = None,
    override: Path | None = None,
    docker_compose: str = "docker-compose",
) -> Step:
    """Every endpoint host in the settings file (minio, fake-gcs, azurite, ...) names a service of the merged
    compose project, on a port that service publishes; the Pokémon API's public host excepted."""
    t0 = time.monotonic()
    name = "settings endpoints are compose services"
    settings = settings or project_dir / SETTINGS_FILE
    override = override or project_dir / OVERRIDE
    exe = find_docker_compose(docker_compose)
    if exe is None:
        return _not_installed(name, t0)
    proc, merged, _ = docker_compose_config(project_dir, override, exe)
    if merged is None:
        first = next((line for line in proc.stderr.splitlines() if line.strip()), f"exit code {proc.returncode}")
        return Step(
            name, "docker-compose config", False, f"docker-compose config failed: {first}", time.monotonic() - t0
        )
    services = merged.get("services") or {}
    endpoints = settings_endpoints(settings)
    did = f"the URLs and hosts of {len(endpoints)} endpoints in {settings.name} against the merged services"
    good, problems, public = [], [], []
    for (host, port), ids in sorted(endpoints.items(), key=lambda item: (item[0][0], item[0][1] or 0)):
        where = f"{host}{f':{port}' if port else ''} ({', '.join(ids)})"
        if host in PUBLIC_HOSTS:
            public.append(where)
        elif host not in services:
            problems.append(f"{where}: no such service")
        elif port and _target_ports(services[host]) and port not in _target_ports(services[host]):
            problems.append(f"{where}: service {host} publishes {sorted(_target_ports(services[host]))}")
        elif NETWORK not in _networks(services[host]):
            problems.append(f"{where}: service {host} is not on network {NETWORK}")
        else:
            good.append(where)
    seconds = time.monotonic() - t0
    if problems:
        return Step(name, did, False, "; ".join(problems), seconds)
    return Step(name, did, True, f"services: {'; '.join(good)}; public: {'; '.join(public) or 'none'}", seconds)


# --- the settings file through the REST API ----------------------------------------------------------------


def connections_via_api(
    root_url: str, password: str = "admin", settings: Path | None = None, rewrites: dict[str, str] | None = None
) -> Step:
    """Load the settings file as ``astro dev start`` does after the health check (localdev.settings_loader):
    pools, variables, connections, each POSTed, PATCHed when it exists. ``root_url``: http://host:port."""
    from localdev.settings_loader import LoadError, SettingsError, auth_header, load_via_api, plan

    t0 = time.monotonic()
    settings = settings or REPO / SETTINGS_FILE
    did = f"POST/PATCH {root_url}/api/v2/{{pools,variables,connections}} from {settings.name}"
    try:
        entries = plan(settings, rewrites)
        outcomes = load_via_api(f"{root_url}/api/v2", auth_header(root_url, password), entries)
    except (SettingsError, LoadError, OSError) as exc:
        return Step("settings via REST API", did, False, f"{type(exc).__name__}: {exc}", time.monotonic() - t0)
    methods = [o.method for o in outcomes]
    result = (
        f"{len(entries.connections)} connections, {len(entries.pools)} pools, {len(entries.variables)} variables: "
        f"{methods.count('POST')} created (POST), {methods.count('PATCH')} updated (PATCH), "
        f"{len(entries.skipped)} skipped"
    )
    return Step("settings via REST API", did, True, result, time.monotonic() - t0)
