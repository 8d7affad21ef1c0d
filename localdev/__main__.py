"""Run the project with no Docker: ``python -m localdev up|down|demo|status|objects``.

``make run``, ``make stop`` and ``make demo`` call these. State lives in ``.local/`` (Airflow home
with SQLite, object-store data, logs, pids).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from localdev import config
from localdev.airflow_env import active_backend, airflow_env
from localdev.servers import Server, StartError, Stores, port_free, stop_group

RUN_FILE = config.STATE / "run.json"
STORES_FILE = config.STATE / "stores.json"
LOGS = config.STATE / "logs"


def say(msg: str) -> None:
    print(msg, flush=True)


def step(name: str, argv: list[str], env: dict[str, str], log_name: str) -> None:
    """Run one long step with its output in a log file; on failure say which step and where the log is."""
    log = LOGS / log_name
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    say(f"==> {name} ...")
    with log.open("w") as out:
        rc = subprocess.call(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=config.REPO)
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise SystemExit(f"\nFAILED: step '{name}' exited with code {rc}. Full log: {log}\n--- last lines ---\n{tail}")
    say(f"    done in {time.monotonic() - t0:.1f}s (log: {log})")


def alive(pid: int | None) -> bool:
    try:
        return pid is not None and os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def running_stores() -> Stores | None:
    """The stores of an earlier `up`/`demo` if all of them still run; a half-dead set is stopped."""
    if not STORES_FILE.exists():
        return None
    data = json.loads(STORES_FILE.read_text())
    if all(alive(pid) for pid in data["pids"].values()):
        return Stores(config.STATE, data["ports"])
    say("Some local stores from an earlier run have died; restarting them.")
    for pid in data["pids"].values():
        if alive(pid):
            stop_group(pid)
    STORES_FILE.unlink()
    return None


def airflow_running() -> bool:
    if RUN_FILE.exists() and alive(json.loads(RUN_FILE.read_text())["airflow_pid"]):
        return True
    RUN_FILE.unlink(missing_ok=True)
    return False


def start_stores() -> Stores:
    ports = dict(config.DEFAULT_PORTS)
    busy = [f"{name} ({port})" for name, port in ports.items() if not port_free(port)]
    if busy:
        raise SystemExit(
            f"FAILED: these 127.0.0.1 ports are in use: {', '.join(busy)}. "
            "Run `make stop`, or stop whatever listens there (`ss -ltnp`)."
        )
    say("==> starting the local object stores")
    stores = Stores(config.STATE, ports)
    try:
        stores.start(progress=say)
    except StartError as exc:
        raise SystemExit(f"FAILED: step 'start local object stores': {exc}") from None
    return stores


def prepare_airflow(stores: Stores, env: dict[str, str]) -> None:
    from localdev.buckets import create_buckets

    say(f"==> creating bucket '{config.BUCKET}' on the S3, GCS and Azure stand-ins ...")
    try:
        create_buckets(stores.endpoints)
    except Exception as exc:
        raise SystemExit(f"FAILED: step 'create buckets': {type(exc).__name__}: {exc}. Logs: {LOGS}") from None
    step("airflow db migrate (SQLite)", [sys.executable, "-m", "airflow", "db", "migrate"], env, "db-migrate.log")


def load_settings_into_db(stores: Stores, env: dict[str, str]) -> None:
    """``make demo`` with no Airflow running (no API server): the same entries as ``load_settings``,
    written straight into the metadata database."""
    rewrites = [f"--rewrite={old}={new}" for old, new in config.host_rewrites(stores.ports).items()]
    step(
        "loading connections, pools and variables from airflow_settings.yaml",
        [sys.executable, "-m", "localdev.settings_loader", str(config.REPO / "airflow_settings.yaml"), *rewrites],
        env,
        "settings.log",
    )


def load_settings(stores: Stores, env: dict[str, str], port: int) -> None:
    """Load airflow_settings.yaml as ``astro dev start`` does once the API server is healthy: through the
    REST API (POST, and PATCH what exists), with the Docker hosts pointed at the local servers."""
    from localdev.settings_loader import LoadError, SettingsError, auth_header, load_via_api, plan

    log = LOGS / "settings.log"
    say("==> loading connections, pools and variables from airflow_settings.yaml through the REST API ...")
    t0 = time.monotonic()
    root = f"http://127.0.0.1:{port}"
    lines = []
    try:
        settings = plan(config.REPO / "airflow_settings.yaml", config.host_rewrites(stores.ports))
        lines += settings.skipped
        outcomes = load_via_api(f"{root}/api/v2", auth_header(root, api_password(env)), settings)
        lines += [outcome.line() for outcome in outcomes]
    except (SettingsError, LoadError, OSError) as exc:
        log.write_text("\n".join([*lines, f"{type(exc).__name__}: {exc}", ""]))
        raise SystemExit(f"\nFAILED: step 'load airflow_settings.yaml': {exc}. Full log: {log}") from None
    log.write_text("\n".join([*lines, ""]))
    counts = ", ".join(f"{len(getattr(settings, kind))} {kind}" for kind in ("connections", "pools", "variables"))
    skipped = f", {len(settings.skipped)} skipped" if settings.skipped else ""
    say(f"    done in {time.monotonic() - t0:.1f}s: {counts}{skipped} (log: {log})")


def preflight(env: dict[str, str]) -> None:
    """``doctor`` of the active backend, as Airflow's server processes see it (a failure stops ``up``);
    its passed checks are printed."""
    step(
        "preflight check of the active XCom backend (python -m include.xcom_backends doctor)",
        [sys.executable, "-m", "include.xcom_backends", "doctor"],
        {**env, "_AIRFLOW_PROCESS_CONTEXT": "server"},
        "doctor.log",
    )
    doctor_lines = (LOGS / "doctor.log").read_text().splitlines()
    passed = [line for line in doctor_lines if "[PASS]" in line or line.startswith("Active XCom backend:")]
    say("\n".join("    " + line for line in passed))


def password(env: dict[str, str]) -> str:
    if env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "").lower() == "true":
        return "(no login: SIMPLE_AUTH_MANAGER_ALL_ADMINS is set)"
    path = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    try:
        return json.loads(path.read_text()).get("admin", "?")
    except (OSError, ValueError):
        return f"(see {path})"


def api_password(env: dict[str, str]) -> str:
    """The admin password for /auth/token: the generated one, or "admin" (what the Astro CLI sends) when
    SIMPLE_AUTH_MANAGER_ALL_ADMINS lets any credentials in."""
    if env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "").lower() == "true":
        return "admin"
    path = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    try:
        return str(json.loads(path.read_text()).get("admin", "admin"))
    except (OSError, ValueError):
        return "admin"


def cmd_up(args: argparse.Namespace) -> None:
    if args.executor == "celery":
        cmd_up_celery(args.workers, args.concurrency)
        return
    if airflow_running():
        say(f"Already running (state in {config.STATE}). `make stop` first to restart.")
        return
    t_start = time.monotonic()
    stores = running_stores() or start_stores()
    env = airflow_env(config.STATE)
    port = config.DEFAULT_PORTS["airflow"]
    airflow: Server | None = None
    try:
        prepare_airflow(stores, env)
        airflow = Server(
            "Airflow (standalone)",
            [sys.executable, "-m", "airflow", "standalone"],
            f"http://127.0.0.1:{port}/api/v2/monitor/health",
            LOGS / "airflow-standalone.log",
            env={k: v for k, v in env.items()},
        )
        say(f"==> starting Airflow on http://127.0.0.1:{port} (first start takes ~30 s) ...")
        t0 = time.monotonic()
        airflow.start(timeout=240)
        RUN_FILE.write_text(json.dumps({"airflow_pid": airflow.pid, "port": port}, indent=2))
        say(f"    Airflow answered its health check in {time.monotonic() - t0:.1f}s")
        # As `astro dev start`: the settings file goes in through the API once the health check passes;
        # the preflight check needs those connections, so it comes after them.
        load_settings(stores, env, port)
        preflight(env)
    except (SystemExit, StartError) as exc:
        say(str(exc))
        if airflow is not None and airflow.pid is not None:
            stop_group(airflow.pid, timeout=40)
            RUN_FILE.unlink(missing_ok=True)
        stores.stop()
        raise SystemExit(1) from None
    say(
        f"""
Airflow is running ({time.monotonic() - t_start:.0f}s).
  UI:               http://127.0.0.1:{port}   login: admin / {password(env)}
  XCom backend:     {active_backend(env)}  (change it in .env, then `make stop && make run`)
  Object stores:    S3/MinIO {stores.endpoints["s3"]}  GCS {stores.endpoints["gcs"]}  Azure {stores.endpoints["azure"]}
  Stored objects:   `make objects` lists bucket '{config.BUCKET}' with the XCom references
  Run both DAGs:    `make demo`        Stop everything: `make stop`
  Logs:             {LOGS}"""
    )


def cmd_up_celery(workers: int, concurrency: int) -> None:
    """``make run EXECUTOR=celery WORKERS=N``: the same stores and settings, on a CeleryExecutor deployment
    (PostgreSQL, Redis, API server, scheduler, DAG processor, triggerer, N workers sharing nothing)."""
    from localdev.celery_deployment import CeleryDeployment

    if airflow_running():
        say(f"Already running (state in {config.STATE}). `make stop` first to restart.")
        return
    if workers < 1 or concurrency < 1:
        raise SystemExit("FAILED: WORKERS and CONCURRENCY must be whole numbers of at least 1.")
    t_start = time.monotonic()
    stores = running_stores() or start_stores()
    state = config.STATE / "celery"
    port = config.DEFAULT_PORTS["airflow"]
    env = airflow_env(state, api_port=port)
    deployment = CeleryDeployment(state, env, port, config.REPO / "dags", concurrency=concurrency)
    server_env = deployment.server_env()
    try:
        from localdev.buckets import create_buckets

        create_buckets(stores.endpoints)
        say(f"==> starting Airflow with CeleryExecutor and {workers} worker(s) (~40 s) ...")
        deployment.start(workers, progress=say)
        RUN_FILE.write_text(json.dumps({"airflow_pid": deployment.servers["api-server"].pid, "port": port}))
        load_settings(stores, server_env, port)
        preflight(server_env)
    except (SystemExit, StartError, RuntimeError) as exc:
        say(str(exc))
        deployment.stop()
        RUN_FILE.unlink(missing_ok=True)
        stores.stop()
        raise SystemExit(1) from None
    say(
        f"""
Airflow is running with CeleryExecutor ({time.monotonic() - t_start:.0f}s).
  UI:               http://127.0.0.1:{port}   login: admin / {password(server_env)}
  XCom backend:     {active_backend(server_env)}
  Workers:          {workers}, queues `default` and `worker-1` ... `worker-{workers}`, {concurrency} task(s) each;
                    no metadata-database access; folders in {state / "workers"}
  Metadata DB:      PostgreSQL 127.0.0.1:{deployment.pg_port}    Broker: Redis 127.0.0.1:{deployment.redis_port}
  Object stores:    S3/MinIO {stores.endpoints["s3"]}  GCS {stores.endpoints["gcs"]}  Azure {stores.endpoints["azure"]}
  Stop everything:  `make stop`        Logs: {state / "logs"}"""
    )


def cmd_down(_: argparse.Namespace) -> None:
    from localdev.celery_deployment import stop_saved

    stopped = stop_saved(config.STATE / "celery")
    if RUN_FILE.exists():
        pid = json.loads(RUN_FILE.read_text())["airflow_pid"]
        if stop_group(pid, timeout=40):
            stopped.append("Airflow")
        RUN_FILE.unlink()
    if STORES_FILE.exists():
        data = json.loads(STORES_FILE.read_text())
        for name, pid in data["pids"].items():
            if pid and stop_group(pid):
                stopped.append(name)
        STORES_FILE.unlink()
    say(f"Stopped: {', '.join(stopped)}" if stopped else "Nothing was running.")


def cmd_demo(_: argparse.Namespace) -> None:
    stores = running_stores()
    started_here = stores is None
    if stores is None:
        stores = start_stores()
    env = airflow_env(config.STATE)
    try:
        if not airflow_running():
            prepare_airflow(stores, env)
            load_settings_into_db(stores, env)
        say(f"XCom backend: {active_backend(env)}")
        for dag_id in ("simple_xcom_dag", "fetch_pokemon_data_dag"):
            step(
                f"airflow dags test {dag_id}",
                [sys.executable, "-m", "airflow", "dags", "test", dag_id],
                env,
                f"demo-{dag_id}.log",
            )
        show(env, "simple_xcom_dag", "fetch_pokemon_data_dag")
    finally:
        if started_here:
            stores.stop()


def cmd_objects(_: argparse.Namespace) -> None:
    if running_stores() is None:
        raise SystemExit("The local object stores are not running: `make run` (or `make demo`) first.")
    show(airflow_env(config.STATE))


def show(env: dict[str, str], *dag_ids: str) -> None:
    # A tool outside a task reads connections from the metadata DB like Airflow's own server processes.
    env = {**env, "_AIRFLOW_PROCESS_CONTEXT": "server"}
    rc = subprocess.call([sys.executable, "-m", "localdev.show", *dag_ids], env=env, cwd=config.REPO)
    if rc:
        raise SystemExit(f"FAILED: listing the XComs and objects (exit code {rc}); see the output above.")


def operate(command: str, extra: list[str]) -> None:
    """Run `python -m include.xcom_backends <command>` against the running local setup."""
    if running_stores() is None:
        raise SystemExit("The local object stores are not running: `make run` (or `make demo`) first.")
    env = {**airflow_env(config.STATE), "_AIRFLOW_PROCESS_CONTEXT": "server"}
    argv = [sys.executable, "-m", "include.xcom_backends", command, *extra]
    raise SystemExit(subprocess.call(argv, env=env, cwd=config.REPO))


def cmd_status(_: argparse.Namespace) -> None:
    stores = running_stores()
    say(f"stores:  {'running ' + json.dumps(stores.endpoints) if stores else 'stopped'}")
    url = f"http://127.0.0.1:{config.DEFAULT_PORTS['airflow']}"
    say(f"airflow: {'running on ' + url if airflow_running() else 'stopped'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m localdev", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(required=True)
    up = sub.add_parser("up", help="start the object stores and Airflow (UI on 127.0.0.1:8080)")
    up.add_argument("--executor", choices=["local", "celery"], default="local")
    up.add_argument("--workers", type=int, default=2, help="Celery workers (with --executor celery)")
    up.add_argument("--concurrency", type=int, default=4, help="tasks at a time per Celery worker")
    up.set_defaults(func=cmd_up)
    for name, func, text in [
        ("down", cmd_down, "stop every process `up` or `demo` started"),
        ("demo", cmd_demo, "run both example DAGs headless and list the objects they stored"),
        ("objects", cmd_objects, "list the objects in the bucket with the XCom references that point at them"),
        ("status", cmd_status, "say what is running"),
    ]:
        sub.add_parser(name, help=text).set_defaults(func=func)
    for name, text in [
        ("doctor", "preflight check of the active XCom backend"),
        ("gc", "orphaned objects: dry run, or delete with --delete"),
    ]:
        sub.add_parser(name, help=f"{text} (python -m include.xcom_backends {name})", add_help=False).set_defaults(
            func=lambda args, name=name: operate(name, args.rest)
        )
    args, rest = parser.parse_known_args()
    args.rest = rest
    args.func(args)


if __name__ == "__main__":
    main()
