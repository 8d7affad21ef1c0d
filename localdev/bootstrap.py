#!/usr/bin/env python3
"""Create the local environment from the committed lock files (stdlib only; runs with system python3).

Steps: virtualenv .venv -> uv (pinned) -> `uv pip sync --compile-bytecode requirements-local.lock` ->
bytecode of the project's own packages -> `npm ci` for Azurite. Each step is skipped when its inputs did
not change; each logs to .local/logs/install-*.log.

Bytecode: pip compiles what it installs, uv does not unless asked. Without ``.pyc`` files, and with
``PYTHONDONTWRITEBYTECODE=1`` (set on many CI machines and images), every Airflow process, every task
process included, compiles each module it imports from source again: about 0.1 s of CPU per task
process for Airflow's task runner and this project's backend (measured in bench.scale's task logs).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
LOGS = Path(os.environ.get("XCOM_LOCAL_STATE", REPO / ".local")) / "logs"
LOCK = REPO / "requirements-local.lock"
NODE_DIR = REPO / "localdev" / "node"
UV_VERSION = "0.13.8"
# The packages of this repository that Airflow's processes import (compiled at every install: cheap,
# only what changed is written again).
PROJECT_PACKAGES = ("include", "plugins", "dags", "bench", "localdev")
# Bumped when the way the lock is installed changes, so that an existing .venv is synced again.
INSTALL_FORM = "compile-bytecode"


def digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()


def run(title: str, argv: list[str], log_name: str, env: dict[str, str] | None = None) -> None:
    """Run a step, streaming its output (progress) and keeping it in a log file."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / log_name
    print(f"==> {title}", flush=True)
    t0 = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
            env={**os.environ, **(env or {})},
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            print(f"    {line.rstrip()}"[:160], flush=True)
        rc = proc.wait()
    if rc != 0:
        sys.exit(f"\nFAILED: install step '{title}' exited with code {rc}. Full log: {log}")
    print(f"    done in {time.monotonic() - t0:.1f}s", flush=True)


def main() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (runs under whatever python3 the machine has)
        sys.exit(f"FAILED: Python 3.11+ is needed, this is {sys.version.split()[0]} ({sys.executable}).")
    t0 = time.monotonic()
    py = VENV / "bin" / "python"
    if not py.exists():
        run("creating virtualenv .venv", [sys.executable, "-m", "venv", str(VENV)], "install-venv.log")
    uv = VENV / "bin" / "uv"
    version = subprocess.run([str(uv), "--version"], capture_output=True, text=True).stdout if uv.exists() else ""
    if UV_VERSION not in version:
        pip_install = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
        run(f"installing uv {UV_VERSION} into .venv", [*pip_install, f"uv=={UV_VERSION}"], "install-uv.log")

    stamp = VENV / ".lock-sha256"
    wanted = f"{digest(LOCK)} {INSTALL_FORM}"
    if not stamp.exists() or stamp.read_text() != wanted:
        run(
            "installing Airflow 3.3, providers and tools from requirements-local.lock (uv, with bytecode; ~2 min "
            "on a new machine)",
            [str(uv), "pip", "sync", "--compile-bytecode", "--python", str(py), str(LOCK)],
            "install-python.log",
        )
        stamp.write_text(wanted)
    # compileall writes .pyc files even under PYTHONDONTWRITEBYTECODE (it is asked to). Its exit status
    # is not checked: a file that does not compile (a DAG being edited) is reported where it is
    # imported, by Airflow (an import error in the UI) or by the tests, as it would be without this step.
    subprocess.run([str(py), "-m", "compileall", "-q", "-j", "0", *PROJECT_PACKAGES], cwd=REPO, capture_output=True)

    npm = shutil.which("npm")
    if npm is None:
        sys.exit(
            "FAILED: npm (Node.js 18+) is needed for Azurite, the local Azure Blob server: "
            "install Node.js (e.g. `apt-get install nodejs npm`)."
        )
    node_stamp = NODE_DIR / "node_modules" / ".lock-sha256"
    node_digest = digest(NODE_DIR / "package-lock.json")
    if not node_stamp.exists() or node_stamp.read_text() != node_digest:
        run(
            "installing Azurite from npm (localdev/node/package-lock.json)",
            [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)],
            "install-node.log",
        )
        node_stamp.write_text(node_digest)
    print(f"Environment ready in {time.monotonic() - t0:.1f}s: {VENV}", flush=True)


CHROMIUM = Path(os.environ.get("XCOM_CHROMIUM", "/usr/bin/chromium"))
PG_BIN = Path(os.environ.get("XCOM_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = Path(os.environ.get("XCOM_REDIS_SERVER", "/usr/bin/redis-server"))
DOCKER_COMPOSE = Path(os.environ.get("XCOM_DOCKER_COMPOSE", "/usr/bin/docker-compose"))


def ensure_debian_package(package: str, needed: Path, purpose: str, env_var: str) -> None:
    """Install ``package`` with apt-get (as root, or with passwordless sudo) unless ``needed`` exists."""
    if needed.exists():
        return
    apt = shutil.which("apt-get")
    if apt is None:
        sys.exit(
            f"FAILED: {purpose} needs {needed} and there is no apt-get to install {package}. "
            f"Install {package} and set {env_var} to where it is."
        )
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run(f"apt-get update (for {package})", [*sudo, apt, "update", "-q"], "install-apt-update.log", env)
    install = [*sudo, apt, "install", "-y", "-q", "--no-install-recommends", package]
    run(f"installing {package} from Debian ({purpose})", install, f"install-{package}.log", env)
    if not needed.exists():
        sys.exit(f"FAILED: {package} was installed but {needed} does not exist; set {env_var} to where it is.")


if __name__ == "__main__":
    if sys.argv[1:] == ["--browser"]:  # Playwright's own browser download is not used
        ensure_debian_package("chromium", CHROMIUM, "the UI plugin's browser test", "XCOM_CHROMIUM")
    elif sys.argv[1:] == ["--postgres"]:
        purpose = "the Celery deployment and the at-scale benchmark"
        ensure_debian_package("postgresql", PG_BIN / "initdb", purpose, "XCOM_PG_BIN")
    elif sys.argv[1:] == ["--redis"]:  # the Celery broker and result backend
        ensure_debian_package("redis-server", REDIS_SERVER, "the Celery deployment's broker", "XCOM_REDIS_SERVER")
    elif sys.argv[1:] == ["--compose"]:  # Compose v1 (Python): validates and merges compose files, no engine
        purpose = "the check of the Astro CLI's compose project"
        ensure_debian_package("docker-compose", DOCKER_COMPOSE, purpose, "XCOM_DOCKER_COMPOSE")
    else:
        main()
