"""What the Astro CLI does with this project's image, replayed without Docker.

- ``astro dev start`` builds ``FROM astrocrpublic.azurecr.io/runtime:3.3-2``, whose ONBUILD steps run
  ``apt-get install`` of ``packages.txt`` and then plain ``pip install --no-cache-dir -r requirements.txt``
  on top of what the Runtime ships: :func:`build_image_venv` makes a fresh venv with that base, times
  both pip steps (downloads from PyPI, no cache, as the image build does) and runs ``pip check``.
- :func:`backends_in_image` imports every backend in that venv and builds the S3, MinIO, GCS and
  Azure stores from connections, the Google and Azure ones also through their providers' credentials.
- ``astro dev pytest`` runs ``pytest tests/`` in the image (astro-cli ``DockerImage.Pytest``:
  ``docker create -i --env-file .env IMAGE pytest tests/``, then ``docker cp`` of dags, tests,
  plugins, include and .astro, then ``docker start -a``): :func:`dev_pytest`.
- ``astro dev parse`` is the same run with ``.astro/test_dag_integrity_default.py``: :func:`dev_parse`.

The image is a venv; the container is a copy of the project as the image's ``COPY . .`` makes it
(``.dockerignore`` applied), run with the container's environment (AIRFLOW_HOME, the ``.env`` file),
without this repo's ``.venv``, the local servers' binaries or Node, and in a network namespace of
its own with only loopback (``unshare --net``) where that is allowed.

Standard library only: it runs under any Python (``python -m localdev.astro_image build|pytest|...``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from localdev.config import REPO
from localdev.replay import Step

RUNTIME_IMAGE = "astrocrpublic.azurecr.io/runtime:3.3-2"
# What Astro Runtime 3.3-2 ships before the ONBUILD steps (Astronomer's provider reference): Airflow
# 3.3.2 and these providers, no Amazon, Google, Azure or HTTP one. pytest is in the image too:
# `astro dev pytest` runs `pytest` in it and installs nothing (astro-cli airflow/docker_image.go);
# its version is not published, so the lock's stands in for it.
BASE_REQUIREMENTS = (
    "apache-airflow==3.3.2",
    "apache-airflow-providers-celery==3.21.0",
    "apache-airflow-providers-common-compat==1.15.0",
    "apache-airflow-providers-common-io==1.8.0",
    "apache-airflow-providers-common-sql==2.0.1",
    "apache-airflow-providers-elasticsearch==6.7.0",
    "apache-airflow-providers-openlineage==2.18.1",
    "apache-airflow-providers-smtp==3.0.1",
    "apache-airflow-providers-standard==1.15.0",
    "pytest==9.2.0",
)
# The image's pip is a current one; a new venv of Python 3.11.7 would bring pip 23.2.
PIP = "pip==26.3"
DEFAULT_VENV = REPO / ".local" / "astro-image" / "venv"
BUDGET_SECONDS = 180.0  # the requirements step of the image build, fresh venv, no pip cache
BACKTRACKING = "pip is looking at multiple versions of"
# `docker cp` of these host folders into the pytest container (DockerImage.Pytest)
PYTEST_COPIED_DIRS = ("dags", "tests", "plugins", "include", ".astro")
PARSE_TEST = ".astro/test_dag_integrity_default.py"  # airflow/constants.go DefaultTestPath
IMAGE_HOME = "/home/astro"


# --- the image build --------------------------------------------------------------------------------


def _record_path(venv: Path) -> Path:
    return venv.parent / f"{venv.name}.build.json"


def _python() -> str:
    """The interpreter of the image venv: a Python 3.12 as in the Runtime image when one runs here
    (on PATH, or one of pyenv's), else the base interpreter of this one."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which("python3.12"), *sorted(map(str, pyenv.glob("versions/3.12*/bin/python3.12")))]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "import ssl, sqlite3, venv"], capture_output=True).returncode == 0:
            return candidate
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(base) if base.exists() else sys.executable


def _python_version(python: str) -> str:
    out = subprocess.run([python, "-c", "import platform; print(platform.python_version())"], capture_output=True)
    return out.stdout.decode().strip()


def _lines(path: Path) -> list[str]:
    """A requirements-style file without its comments and blank lines (what pip and apt-get read)."""
    lines = (raw.split("#", 1)[0].strip() for raw in path.read_text().splitlines())
    return [line for line in lines if line]


def inputs_digest(python_version: str) -> str:
    """What the image venv is built from: the base, pip, Python, requirements.txt and packages.txt."""
    doc = {
        "base": BASE_REQUIREMENTS,
        "pip": PIP,
        "python": python_version,
        "requirements.txt": _lines(REPO / "requirements.txt"),
        "packages.txt": _lines(REPO / "packages.txt"),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def pip_env() -> dict[str, str]:
    """pip as in the image build: PyPI only (none of this machine's pip config files, local mirrors or
    find-links), no pip cache; the CA bundle and timeout settings stay."""
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "VIRTUAL_ENV", "PYTHONPATH")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def apt_packages() -> list[str]:
    """The Debian packages of packages.txt (the ONBUILD apt-get step)."""
    return [name for line in _lines(REPO / "packages.txt") for name in line.split()]


def _timed_pip(python: Path, args: list[str], log: Path, timeout: float = 1800) -> tuple[int, float, str]:
    """``python -m pip <args>``: exit code, wall seconds, output (also written to ``log``); a pip still
    resolving after ``timeout`` seconds (backtracking) is stopped, exit code -1."""
    t0 = time.monotonic()
    argv = [str(python), "-m", "pip", *args]
    try:
        proc = subprocess.run(argv, env=pip_env(), cwd=REPO, capture_output=True, text=True, timeout=timeout)
        rc, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, output = -1, f"{_text(exc.stdout)}{_text(exc.stderr)}\nstopped after {timeout:.0f}s"
    seconds = time.monotonic() - t0
    log.write_text(output)
    return rc, seconds, output


def _backtracked(output: str) -> list[str]:
    names = re.findall(rf"{BACKTRACKING} (\S+) ", output)
    return sorted(set(names))


def build_image_venv(path: Path = DEFAULT_VENV, *, reuse: bool = True, budget: float = BUDGET_SECONDS) -> Step:
    """The image build's Python part in a fresh venv at ``path``: the Runtime's base, then
    ``pip install --no-cache-dir -r requirements.txt``, each timed, then ``pip check``.

    A venv built from the same inputs (``<path>.build.json`` next to it) is reused; the seconds and
    times reported are then those measured by its fresh build."""
    step = "image build (pip)"
    python = _python()
    digest = inputs_digest(_python_version(python))
    record_file = _record_path(path)
    if reuse and record_file.exists() and (path / "bin" / "python").exists():
        record = json.loads(record_file.read_text())
        if record.get("digest") == digest:
            return Step(
                step,
                f"reused {path} (requirements.txt, base and pip unchanged since {record['built']})",
                record["ok"],
                f"reused; last fresh build: {record['summary']}",
                record["base_seconds"] + record["requirements_seconds"],
            )
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record_file.unlink(missing_ok=True)
    subprocess.run([python, "-m", "venv", str(path)], check=True)
    vpy = path / "bin" / "python"
    rc, _, out = _timed_pip(vpy, ["install", "--no-cache-dir", PIP], path.parent / f"{path.name}.pip.log")
    if rc:
        return Step(step, f"{python} -m venv {path}; pip install {PIP}", False, _last_line(out), 0.0)

    apt = apt_packages()
    apt_note = "packages.txt empty (no apt-get step)"
    if apt:
        query = subprocess.run(["dpkg-query", "-W", "-f=${Package}\n", *apt], capture_output=True, text=True)
        missing = sorted(set(apt) - set(query.stdout.split()))
        apt_note = f"packages.txt: {', '.join(apt)}" + (
            f" (not installed here: {', '.join(missing)}; the replay does not apt-get)" if missing else " (installed)"
        )

    base_file = path.parent / "runtime-base.txt"
    base_file.write_text("".join(f"{req}\n" for req in BASE_REQUIREMENTS))
    base_rc, base_s, base_out = _timed_pip(
        vpy, ["install", "--no-cache-dir", "-r", str(base_file)], path.parent / f"{path.name}.base.log"
    )
    if base_rc:
        return Step(step, f"pip install -r {base_file}", False, f"base install failed: {_last_line(base_out)}", base_s)
    req_rc, req_s, req_out = _timed_pip(
        vpy,
        ["install", "--no-cache-dir", "-r", "requirements.txt"],
        path.parent / f"{path.name}.requirements.log",
        timeout=max(600.0, 3 * budget),
    )
    check = subprocess.run([str(vpy), "-m", "pip", "check"], env=pip_env(), capture_output=True, text=True)
    check_out = (check.stdout + check.stderr).strip()
    backtracked = _backtracked(base_out + req_out)
    req_backtracked = _backtracked(req_out)
    # The time is reported against the target, not a pass/fail: it is mostly downloads, and networks
    # are noisy. What fails the step is what makes a build slow for every user: backtracking.
    ok = req_rc == 0 and check.returncode == 0 and not req_backtracked
    over = "" if req_s <= budget else ", OVER the target"
    summary = (
        f"base (Airflow 3.3.2 + the Runtime's 8 providers + pytest) {base_s:.1f}s, "
        f"pip install -r requirements.txt {req_s:.1f}s (target {budget:.0f}s{over}), "
        f"backtracking in the requirements step: {', '.join(req_backtracked) or 'none'}"
        + (f" (in the base: {', '.join(sorted(set(backtracked) - set(req_backtracked)))})" if backtracked else "")
        + f"; pip check: {check_out.splitlines()[0] if check_out else '(no output)'}"
        + f"; {apt_note}; Python {_python_version(str(vpy))}"
    )
    if req_rc:
        summary = f"pip install -r requirements.txt failed: {_last_line(req_out)}; " + summary
    record = {
        "digest": digest,
        "built": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "ok": ok,
        "base_seconds": round(base_s, 1),
        "requirements_seconds": round(req_s, 1),
        "backtracked": req_backtracked,
        "pip_check": check_out,
        "summary": summary,
    }
    if req_rc == 0:
        record_file.write_text(json.dumps(record, indent=2) + "\n")
    return Step(
        step,
        f"fresh venv {path}: pip install --no-cache-dir -r runtime-base.txt, then -r requirements.txt; pip check",
        ok,
        summary,
        base_s + req_s,
    )


def _text(output: str | bytes | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def _last_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


# --- the container ------------------------------------------------------------------------------------


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """``.dockerignore`` as Docker reads it: (exclude?, regex) per line, ``!`` lines re-include, the last
    matching line wins; a pattern is a cleaned path relative to the context, ``**`` any folders."""
    patterns = []
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        line = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        patterns.append((not include, re.compile(_glob_regex(line))))
    return patterns


def _glob_regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            if pattern.startswith("/", i):
                out[-1] = "(?:.*/)?"
                i += 1
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i)
            if end < 0:
                out.append(re.escape(c))
            else:
                out.append("[" + pattern[i + 1 : end].replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "^" + "".join(out) + "$"


def ignored(rel: str, patterns: Sequence[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the build context leaves out ``rel`` (a path relative to the project, with ``/``):
    it or one of its parent folders matches an exclusion not undone by a later ``!`` line."""
    parts = rel.split("/")
    result = False
    for exclude, regex in patterns:
        if any(regex.match("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            result = exclude
    return result


def copy_build_context(dest: Path) -> Path:
    """The project as the image's ``COPY . .`` puts it in the image, at ``dest``; then the folders
    that ``astro dev pytest`` copies in with ``docker cp`` (whole, whatever .dockerignore says)."""
    patterns = dockerignore_patterns()
    for root, dirs, files in os.walk(REPO):
        rel_root = Path(root).relative_to(REPO).as_posix()
        rel_root = "" if rel_root == "." else rel_root + "/"
        dirs[:] = [d for d in dirs if not ignored(rel_root + d, patterns)]
        (dest / rel_root).mkdir(parents=True, exist_ok=True)
        for name in files:
            if not ignored(rel_root + name, patterns):
                src = Path(root) / name
                if src.is_symlink():
                    (dest / rel_root / name).symlink_to(os.readlink(src))
                else:
                    shutil.copy2(src, dest / rel_root / name)
    for folder in PYTEST_COPIED_DIRS:
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, dest / folder, symlinks=True, dirs_exist_ok=True)
    return dest


def env_file(path: Path) -> dict[str, str]:
    """``docker create --env-file`` semantics: ``NAME=value`` taken literally (no quotes removed),
    ``#`` lines and blank lines skipped, a bare ``NAME`` takes the value from the caller's environment."""
    env: dict[str, str] = {}
    if not path.exists():
        return env
    for raw in path.read_text().splitlines():
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if sep:
            env[name] = value
        elif name in os.environ:
            env[name] = os.environ[name]
    return env


def container_env(venv: Path, home: Path, airflow_home: Path) -> dict[str, str]:
    """The pytest container's environment: the image's (AIRFLOW_HOME, PYTHONPATH, its Python first on PATH) and
    the project's ``.env`` (the CLI passes ``--env-file .env``); nothing of this shell's."""
    env = {
        "PATH": f"{venv / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(home),
        "AIRFLOW_HOME": str(airflow_home),
        # the Runtime image's PYTHONPATH (astro-runtime image/Dockerfile; astro-cli standalone.go mirrors it)
        "PYTHONPATH": str(airflow_home),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update(env_file(REPO / ".env"))
    return env


def offline_prefix() -> tuple[list[str], str]:
    """A command prefix that runs without any network but loopback, and what it does."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare and ip and subprocess.run([unshare, "--net", "true"], capture_output=True).returncode == 0:
        script = f'{ip} link set lo up && exec "$@"'
        return [unshare, "--net", "--", "sh", "-c", script, "sh"], "own network namespace, loopback only"
    return [], "network NOT blocked (unshare --net not permitted here)"


@contextmanager
def container(venv: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A fresh project copy (the container's /usr/local/airflow) and its environment; removed after."""
    tmp = Path(tempfile.mkdtemp(prefix="astro-container-"))
    try:
        airflow_home = copy_build_context(tmp / "usr" / "local" / "airflow")
        home = tmp / "home" / "astro"
        home.mkdir(parents=True)
        yield airflow_home, container_env(venv, home, airflow_home)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)")


def pytest_counts(output: str) -> dict[str, int]:
    """The counts of pytest's closing line (``3 passed, 1 skipped in 2.0s``)."""
    for line in reversed(output.splitlines()):
        if re.search(r"\bin [\d.]+s\b", line) and SUMMARY.search(line):
            counts = {kind: int(n) for n, kind in SUMMARY.findall(line)}
            if "error" in counts:
                counts["errors"] = counts.pop("error")
            return counts
    return {}


def _skip_reasons(output: str) -> list[str]:
    reasons: dict[str, int] = {}
    for line in output.splitlines():
        m = re.match(r"SKIPPED \[(\d+)\] [^:]+(?::\d+)?: (.*)", line)
        if m:
            reasons[m.group(2)] = reasons.get(m.group(2), 0) + int(m.group(1))
    return [f"{n} x {reason}" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])]


def _first_failure(output: str) -> str:
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line[:300]
    return _last_line(output)


def run_pytest_in_image(venv: Path, pytest_args: Sequence[str], step: str, *, timeout: float = 1800) -> Step:
    """``pytest <args>`` in a container made from the image venv, as the CLI starts it."""
    prefix, network = offline_prefix()
    with container(venv) as (workdir, env):
        argv = [*prefix, "pytest", *pytest_args]
        t0 = time.monotonic()
        try:
            proc = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
            output, rc = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as exc:
            output, rc = f"{_text(exc.stdout)}{_text(exc.stderr)}\ntimed out after {timeout:.0f}s", -1
        seconds = time.monotonic() - t0
    log = venv.parent / f"{step.replace(' ', '-')}.log"
    log.write_text(output)
    counts = pytest_counts(output)
    said = ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "no pytest summary"
    result = f"exit {rc}: {said}"
    skips = _skip_reasons(output)
    if skips:
        result += "; skipped: " + "; ".join(skips)
    if rc != 0:
        result += f"; first: {_first_failure(output)}"
    did = f"pytest {' '.join(pytest_args)} in a copy of the build context, image venv {venv}, .env, {network}"
    return Step(step, did + f" (log: {log})", rc == 0, result, seconds)


def dev_pytest(path: Path = DEFAULT_VENV, pytest_args: Sequence[str] = ()) -> Step:
    """``astro dev pytest [args]``: ``pytest tests/`` (the CLI's default file is the tests folder)."""
    return run_pytest_in_image(path, ["tests/", *pytest_args], "astro dev pytest")


def dev_parse(path: Path = DEFAULT_VENV) -> Step:
    """``astro dev parse``: ``pytest .astro/test_dag_integrity_default.py`` in the image."""
    if not (REPO / PARSE_TEST).exists():
        return Step("astro dev parse", f"pytest {PARSE_TEST}", False, f"{PARSE_TEST} is missing", 0.0)
    return run_pytest_in_image(path, [PARSE_TEST], "astro dev parse")


# What the image must do with the backends that the Runtime alone cannot: import them all, and build
# every store from a connection: those of airflow_settings.yaml as `astro dev start` loads them (the
# compose services' hosts), a GCS service-account key and an Azure account with no key, which go
# through the Google and Azure providers' credentials. Nothing is sent: clients connect on first use.
BACKENDS_CHECK = r"""
import json, os
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
keyfile = {"type": "service_account", "project_id": "image-check", "private_key_id": "1", "private_key": pem,
           "client_email": "check@image-check.iam.gserviceaccount.com", "client_id": "1",
           "token_uri": "https://oauth2.googleapis.com/token"}
azurite = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
           "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
           "BlobEndpoint=http://azurite:10000/devstoreaccount1;")
connections = {
    "s3_xcom_backend_conn": {"conn_type": "aws", "login": "minioadmin", "password": "minioadmin",
                             "extra": {"endpoint_url": "http://minio:9000", "region_name": "us-east-1"}},
    "minio_xcom_backend_conn": {"conn_type": "generic", "host": "http://minio:9000", "login": "minioadmin",
                                "password": "minioadmin"},
    "gcs_xcom_backend_conn": {"conn_type": "google_cloud_platform",
                              "extra": {"api_endpoint": "http://fake-gcs:4443", "project": "local-dev"}},
    "azure_xcom_backend_conn": {"conn_type": "wasb", "extra": {"connection_string": azurite}},
    "gcs_provider": {"conn_type": "google_cloud_platform",
                     "extra": {"keyfile_dict": json.dumps(keyfile), "project": "image-check"}},
    "azure_provider": {"conn_type": "wasb", "host": "https://imagecheck.blob.core.windows.net", "login": "imagecheck"},
}
for conn_id, doc in connections.items():
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(doc)

import include.xcom_backends as backends
classes = [getattr(backends, name) for name in backends.__all__]
from airflow.sdk import BaseHook
from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores import AzureBlobStore, GCSStore, MinIOStore, S3Store
built = []
for cls, conn_id in [(S3Store, "s3_xcom_backend_conn"), (MinIOStore, "minio_xcom_backend_conn"),
                     (GCSStore, "gcs_xcom_backend_conn"), (AzureBlobStore, "azure_xcom_backend_conn"),
                     (GCSStore, "gcs_provider"), (AzureBlobStore, "azure_provider")]:
    settings = XComStorageSettings.parse(bucket="airflow-xcom", prefix="p", conn_id=conn_id, threshold_bytes=0,
                                         compression="snappy", dataframe_format="parquet")
    store = cls(settings, BaseHook.get_connection(conn_id))
    built.append(f"{cls.__name__}({conn_id}): {type(store._client).__module__.split('.')[0]}")
import airflow.providers.amazon.aws.hooks.s3
import airflow.providers.google.cloud.hooks.gcs
import airflow.providers.microsoft.azure.hooks.wasb
print(f"{len(classes)} classes of include.xcom_backends imported; stores built: " + ", ".join(built))
"""


def backends_in_image(path: Path = DEFAULT_VENV) -> Step:
    """Every backend imported and every store built from a connection, in the image venv, offline."""
    prefix, network = offline_prefix()
    with container(path) as (workdir, env):
        t0 = time.monotonic()
        proc = subprocess.run(
            [*prefix, "python", "-c", BACKENDS_CHECK], cwd=workdir, env=env, capture_output=True, text=True
        )
        seconds = time.monotonic() - t0
    output = (proc.stdout + proc.stderr).strip()
    result = (
        proc.stdout.strip().splitlines()[-1]
        if proc.returncode == 0
        else f"exit {proc.returncode}: {_last_line(output)}"
    )
    did = f"python -c <import include.xcom_backends; build S3/MinIO/GCS/Azure stores> in the image venv, {network}"
    return Step("backends in the image", did, proc.returncode == 0, result, seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", help="build, backends, pytest, parse (default: all; build always runs)")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--fresh", action="store_true", help="rebuild the image venv even if its inputs did not change")
    args = parser.parse_args(argv)
    wanted = args.what or ["build", "backends", "pytest", "parse"]
    unknown = set(wanted) - {"build", "backends", "pytest", "parse"}
    if unknown:
        parser.error(f"unknown step(s): {', '.join(sorted(unknown))}")
    steps = [build_image_venv(args.venv, reuse=not args.fresh)]
    if steps[0].ok:
        runs = {"backends": backends_in_image, "pytest": dev_pytest, "parse": dev_parse}
        steps += [runs[name](args.venv) for name in ("backends", "pytest", "parse") if name in wanted]
    for s in steps:
        print(f"[{'ok' if s.ok else 'FAILED'}] {s.step} ({s.seconds:.1f}s)\n    {s.did}\n    {s.result}")
    return 0 if all(s.ok for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
