"""Preflight check of the configured XCom backend: settings, connection, client, bucket, the
location's owner (``ownership.py``: claimed for this deployment where nobody has), and a probe object
written, read back and deleted. One line per step, with what to do when it fails."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from include.xcom_backends.backend import ObjectStorageXCom
from include.xcom_backends.keys import prefix_of
from include.xcom_backends.ops import ownership
from include.xcom_backends.routing import DEFAULT

# Every step in order, with what to do when it fails (the step's name is its function's key below).
FIXES = {
    "settings": "fix the setting named above (AIRFLOW__XCOM_STORAGE__* / [xcom_storage])",
    "connection": "create the connection (UI, airflow_settings.yaml, AIRFLOW_CONN_<ID>) or set [xcom_storage] conn_id",
    "client": "complete the connection's fields for this store (docs/configuration.md)",
    "bucket": "create the bucket, fix [xcom_storage] bucket, or grant list/read on it; check that the endpoint is "
    "reachable",
    "owner": "give this deployment its own bucket or [xcom_storage] prefix (docs/operations.md)",
    "write probe": "grant put-object on the prefix (docs/security.md)",
    "read probe": "grant get-object on the prefix",
    "delete probe": "grant delete-object on the prefix",
}
STEPS = tuple(FIXES)


@dataclass
class Step:
    name: str
    ok: bool
    detail: str


def run_checks(backend: type[ObjectStorageXCom], *, deployment: str, take_over: bool = False) -> list[Step]:
    """Run the checks in order: the settings (with every store and rule of ``[xcom_storage]``), then for
    each store its connection, client, bucket, owner and probe object, stopping a store at its first
    failure (its later steps depend on it). A store other than the default one prefixes its steps'
    names. ``deployment``: this deployment's id (``ownership.deployment_id``), which claims every
    location nobody has claimed (``take_over``: also those another deployment has)."""
    steps: list[Step] = []

    def check(name: str, action: Callable[[], str], fix: str) -> bool:
        try:
            steps.append(Step(name, True, action()))
        except Exception as exc:  # the step failed: say what, and what to do
            steps.append(Step(name, False, f"{type(exc).__name__}: {exc} -> {fix}"))
            return False
        return True

    def settings() -> str:
        backend.reset()
        s = backend.settings()
        routing = backend.routing()
        extra = [name for name in routing.stores if name != DEFAULT]
        routed = f"; stores {', '.join(extra)}" if extra else ""
        rules = f"; {len(routing.rules)} routing rule(s)" if routing.rules else ""
        own = f"bucket={s.bucket} prefix={s.prefix} conn_id={s.conn_id} threshold_bytes={s.threshold_bytes}"
        return own + routed + rules

    if not check("settings", settings, FIXES["settings"]):
        return steps
    for name in backend.routing().stores:
        check_store(backend, name, check, deployment=deployment, take_over=take_over)
    return steps


def check_store(
    backend: type[ObjectStorageXCom],
    name: str,
    check: Callable[[str, Callable[[], str], str], bool],
    *,
    deployment: str,
    take_over: bool,
) -> None:
    from airflow.sdk import BaseHook

    state: dict[str, Any] = {}
    spec = backend.routing().stores[name]

    def connection() -> str:
        conn = BaseHook.get_connection(spec.settings.conn_id)
        return f"{conn.conn_id} (type {conn.conn_type})"

    def client() -> str:
        state["rt"] = rt = backend.runtime(name)
        return f"{type(rt.store).__name__} -> {rt.store.endpoint}"

    def bucket() -> str:
        rt = state["rt"]
        next(iter(rt.store.list(prefix_of(rt.settings.prefix))), None)
        return f"{rt.store.uri(prefix_of(rt.settings.prefix))} can be listed"

    def owner() -> str:
        return ownership.claim(state["rt"], deployment, take_over=take_over)

    def write() -> str:
        rt = state["rt"]
        state["key"] = key = f"{prefix_of(rt.settings.prefix)}_doctor/{uuid.uuid4().hex}.json"
        state["data"] = data = f'{{"doctor": "{uuid.uuid4().hex}"}}'.encode()
        rt.store.put(key, data)
        return f"wrote {rt.store.uri(key)}"

    def read() -> str:
        rt = state["rt"]
        if rt.store.get(state["key"]) != state["data"]:
            raise RuntimeError("the probe read back differs from what was written")
        return "read back equal"

    def delete() -> str:
        rt = state["rt"]
        rt.store.delete([state["key"]])
        try:
            rt.store.get(state["key"])
        except FileNotFoundError:
            return "deleted"
        raise RuntimeError(f"{rt.store.uri(state['key'])} is still there after delete")

    actions = {
        "connection": connection,
        "client": client,
        "bucket": bucket,
        "owner": owner,
        "write probe": write,
        "read probe": read,
        "delete probe": delete,
    }
    label = "" if name == DEFAULT else f"{name}: "
    for step, action in actions.items():
        fix = FIXES[step] if name == DEFAULT else f"{FIXES[step]} (store {name!r} of [xcom_storage] stores)"
        if not check(label + step, action, fix):
            return
