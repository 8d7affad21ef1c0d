"""``make astro-check``: every step the Astro CLI takes for this project, replayed with the real tools
that run without Docker, and a table of what each did.

- image build: Astro Runtime 3.3-2's Airflow and providers, then ``pip install --no-cache-dir -r
  requirements.txt`` as the image's ONBUILD step runs it (plain pip), timed, and ``pip check``
  (``localdev.astro_image``);
- the Google and Azure backends (every backend class) in that image environment;
- ``astro dev pytest``: ``pytest tests/`` in a copy of the project as the image holds it
  (``.dockerignore`` applied), with only the image's packages, no local servers, no network;
- ``astro dev parse``: ``.astro/test_dag_integrity_default.py`` in the same environment;
- the compose project: the CLI's Airflow 3 compose file merged with ``docker-compose.override.yml``
  by a real compose implementation, and every endpoint of ``airflow_settings.yaml`` a service of it
  (``localdev.astro_compose``);
- connections: ``make run`` on free ports loads ``airflow_settings.yaml`` through the REST API after
  the health check, as ``astro dev start`` does, then the same load again (each connection exists:
  PATCH), and every connection is read back over the API and compared.

Usage: ``python -m localdev.astro_check [--skip STEP ...] [--fresh]``; exit code 0 when every step
passed. The table is also written to ``.local/astro-check.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from localdev import astro_compose, astro_image, config
from localdev.replay import Step
from localdev.servers import isolated_run

STEPS = ("image", "backends", "pytest", "parse", "compose", "endpoints", "connections")


def connections_step() -> Step:
    """``localdev up`` on free ports in a state folder of its own (it loads the settings through the API
    after the health check), the load again (PATCH), then each connection read back and compared."""
    from localdev.airflow_api import call
    from localdev.settings_loader import plan

    t0 = time.monotonic()
    did = "make run on free ports (settings via REST after the health check), the load again, each connection read back"
    with tempfile.TemporaryDirectory(prefix="astro-check-") as tmp:
        ports, env = isolated_run(Path(tmp) / "state")

        def localdev(*args: str) -> subprocess.CompletedProcess[str]:
            argv = [sys.executable, "-m", "localdev", *args]
            return subprocess.run(argv, env=env, cwd=config.REPO, capture_output=True, text=True, timeout=600)

        try:
            up = localdev("up")
            if up.returncode != 0:
                tail = (up.stdout + up.stderr).strip().splitlines()[-1:]
                return Step("connections", did, False, f"make run failed: {' '.join(tail)}", time.monotonic() - t0)
            password = up.stdout.split("login: admin / ", 1)[1].split()[0]
            root = f"http://127.0.0.1:{ports['airflow']}"
            rewrites = config.host_rewrites(ports)
            again = astro_compose.connections_via_api(root, password=password, rewrites=rewrites)
            if not again.ok:
                return Step("connections", did, False, again.result, time.monotonic() - t0)
            token = call(ports["airflow"], "/auth/token", body={"username": "admin", "password": password})
            wanted = plan(config.REPO / astro_compose.SETTINGS_FILE, rewrites).connections
            different = []
            for item in wanted:
                got = call(ports["airflow"], f"/api/v2/connections/{item.id}", token["access_token"])
                want_extra = json.loads(item.body.get("extra") or "{}")
                got_extra = json.loads(got.get("extra") or "{}")
                # The API redacts secrets in what it returns ("***"); every other value must be equal.
                extra_ok = got_extra.keys() == want_extra.keys() and all(
                    got_extra[k] in (want_extra[k], "***") for k in want_extra
                )
                fields = ("conn_type", "host", "schema", "login", "port")
                if not extra_ok or any(got.get(name) != item.body.get(name) for name in fields):
                    different.append(item.id)
            ok = not different
            result = f"{again.result}; read back: {len(wanted) - len(different)}/{len(wanted)} identical"
            if different:
                result += f" (different: {', '.join(different)})"
            return Step("connections", did, ok, result, time.monotonic() - t0)
        finally:
            localdev("down")


def table(steps: list[Step]) -> str:
    lines = ["| step | what it did | result | seconds |", "|---|---|---|---:|"]
    for s in steps:
        result = ("passed: " if s.ok else "**FAILED**: ") + s.result
        lines.append(f"| {s.step} | {s.did} | {result} | {s.seconds:.0f} |".replace("\n", " "))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", nargs="+", choices=STEPS, default=[], help="steps not to run")
    parser.add_argument("--fresh", action="store_true", help="build the image environment anew, even if unchanged")
    args = parser.parse_args(argv)
    venv = astro_image.DEFAULT_VENV
    runs: dict[str, Callable[[], Step]] = {
        "image": lambda: astro_image.build_image_venv(venv, reuse=not args.fresh),
        "backends": lambda: astro_image.backends_in_image(venv),
        "pytest": lambda: astro_image.dev_pytest(venv),
        "parse": lambda: astro_image.dev_parse(venv),
        "compose": astro_compose.compose_config,
        "endpoints": astro_compose.endpoints_name_services,
        "connections": connections_step,
    }
    steps: list[Step] = []
    image_ok = True
    for name in STEPS:
        if name in args.skip:
            continue
        if name in ("backends", "pytest", "parse") and not image_ok:
            steps.append(Step(name, "not run", False, "the image environment could not be built", 0.0))
            continue
        print(f"==> {name} ...", flush=True)
        step = runs[name]()
        print(f"    [{'ok' if step.ok else 'FAILED'}] {step.result} ({step.seconds:.0f}s)", flush=True)
        steps.append(step)
        if name == "image":
            image_ok = step.ok
    text = table(steps)
    out = config.STATE / "astro-check.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print()
    print(text)
    print(f"(also in {out})")
    return 0 if all(s.ok for s in steps) else 1


if __name__ == "__main__":
    sys.exit(main())
