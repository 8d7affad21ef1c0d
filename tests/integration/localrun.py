"""``python -m localdev`` (what `make run`, `make demo` and `make stop` call) started for a test, on free
ports, with its own state folder and optionally its own .env."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from localdev.airflow_api import call as api
from localdev.config import REPO
from localdev.servers import isolated_run


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


@dataclass
class LocalRun:
    state: Path
    ports: dict[str, int]
    env: dict[str, str]
    up_output: str = ""
    password: str = ""

    def localdev(self, *args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "localdev", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['airflow']}"

    def token(self) -> str:
        body = {"username": "admin", "password": self.password}
        return api(self.ports["airflow"], "/auth/token", body=body)["access_token"]


@contextmanager
def started(folder: Path, dotenv: Path | None = None, up_args: tuple[str, ...] = ()) -> Iterator[LocalRun]:
    """``localdev up`` (asserted to succeed), then ``localdev down`` on the way out (a no-op when the test
    already stopped everything). ``dotenv`` replaces the project's .env; ``up_args`` are given to ``up``
    (``--executor celery --workers 1``)."""
    state = folder / "state"
    ports, env = isolated_run(state)
    if dotenv is not None:
        env["XCOM_LOCAL_DOTENV"] = str(dotenv)
    run = LocalRun(state, ports, env)
    try:
        up = run.localdev("up", *up_args)
        run.up_output = up.stdout + up.stderr
        assert up.returncode == 0, run.up_output
        run.password = up.stdout.split("login: admin / ", 1)[1].split()[0]
        yield run
    finally:
        run.localdev("down", timeout=120)
