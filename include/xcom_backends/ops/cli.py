"""Command line for operating the XCom backends: ``python -m include.xcom_backends doctor``.

Runs outside a task, so it reads connections like Airflow's own server processes do (environment
variables, secrets backends, then the metadata database).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def backend_class(path: str | None) -> type[Any]:
    from include.xcom_backends.backend import configured_backend

    path, cls = configured_backend(path)
    if cls is None:
        sys.exit(
            f"{path} is not one of this project's object-storage XCom backends: set "
            "AIRFLOW__CORE__XCOM_BACKEND (see .env) or pass --backend."
        )
    return cls


def cmd_doctor(args: argparse.Namespace) -> int:
    from include.xcom_backends.backend import DEFAULT_XCOM_BACKEND, configured_backend
    from include.xcom_backends.ops.doctor import STEPS, run_checks

    path, cls = configured_backend(args.backend)
    if cls is None:
        what = (
            "Airflow's default backend, values in the metadata database" if path == DEFAULT_XCOM_BACKEND else "not ours"
        )
        print(
            f"Active XCom backend: {path} ({what}). It is not one of this project's object-storage backends, "
            "so nothing was checked."
        )
        if args.strict:
            print("Preflight check FAILED: --strict asks for one of this project's backends.")
            return 1
        return 0
    from include.xcom_backends.ops.ownership import ensure_deployment_id

    print(f"Checking {cls.__module__}.{cls.__name__}")
    deployment = ensure_deployment_id()
    steps = run_checks(cls, deployment=deployment, take_over=args.take_over)
    for step in steps:
        print(f"  [{'PASS' if step.ok else 'FAIL'}] {step.name:<13} {step.detail}")
    ok = len(steps) >= len(STEPS) and all(s.ok for s in steps)
    print("All checks passed." if ok else "Preflight check FAILED.")
    return 0 if ok else 1


def cmd_gc(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from include.xcom_backends.ops.gc import collect_all, describe
    from include.xcom_backends.ops.ownership import OwnershipError, deployment_id

    cls = backend_class(args.backend)
    older_than = timedelta(hours=args.older_than_hours)
    try:  # every location is checked before the references are read: a refusal comes first
        reports = collect_all(
            cls,
            older_than=older_than,
            delete=args.delete,
            deployment=deployment_id(),
            whole_bucket=args.whole_bucket,
        )
    except OwnershipError as exc:
        print(f"gc REFUSED, nothing listed or deleted: {exc}", file=sys.stderr)
        return 2
    for report in reports:
        print("\n".join(describe(report, delete=args.delete, older_than=older_than)))
    return 0


def main(argv: list[str] | None = None) -> int:
    from include.xcom_backends.errors import XComStorageConfigError

    try:
        return _main(argv)
    except XComStorageConfigError as exc:  # a wrong [core] xcom_backend: say which, and what to do
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1


def _main(argv: list[str] | None) -> int:
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")  # connections from the metadata DB too
    # Let Airflow resolve [core] xcom_backend before anything imports the backend module.
    try:
        import airflow.sdk.execution_time.xcom  # noqa: F401
    except Exception:
        from include.xcom_backends.backend import configured_backend

        configured_backend()  # raises the error that names the setting when the path cannot be imported
        raise

    parser = argparse.ArgumentParser(
        prog="python -m include.xcom_backends",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(required=True)
    doctor = sub.add_parser(
        "doctor",
        help="preflight check: connection, credentials, bucket, and a probe object written, read back, deleted",
        description="Exit code 0 when every step passes, 1 when one fails. When the active backend is not one "
        "of this project's (Airflow's default, for example), nothing is checked: exit 0, or 1 with --strict.",
    )
    doctor.add_argument("--backend", help="class path (default: AIRFLOW__CORE__XCOM_BACKEND)")
    doctor.add_argument(
        "--strict", action="store_true", help="fail (exit 1) unless the backend is one of this project's"
    )
    doctor.add_argument(
        "--take-over",
        action="store_true",
        help="claim a location whose ownership marker names another deployment (only when that deployment no "
        "longer exists, e.g. after recreating this deployment's metadata database)",
    )
    doctor.set_defaults(func=cmd_doctor)
    gc = sub.add_parser(
        "gc",
        help="list (and with --delete, delete) objects under the prefix that no XCom row references",
        description="References are read read-only from the metadata database. Dry run unless --delete.",
    )
    gc.add_argument("--backend", help="class path (default: AIRFLOW__CORE__XCOM_BACKEND)")
    gc.add_argument(
        "--older-than-hours",
        type=float,
        default=24.0,
        help="only objects last modified longer ago than this are candidates (default: 24)",
    )
    gc.add_argument("--delete", action="store_true", help="delete the orphans (default: dry run)")
    gc.add_argument(
        "--whole-bucket",
        action="store_true",
        help="allow a store whose [xcom_storage] prefix is empty (the bucket's root); still only keys of the "
        "backend's own shape are candidates",
    )
    gc.set_defaults(func=cmd_gc)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
