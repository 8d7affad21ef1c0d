"""A few calls to the Airflow 3 REST API (public API v2), for the tests and the benchmark."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


def request(
    url: str, method: str, auth_header: str = "", body: bytes | None = None, timeout: float = 60
) -> tuple[int, bytes]:
    """One HTTP request that hands back (status, body) whatever the status (4xx/5xx included), like the
    Astro CLI's ``airflowAPIRequest`` (settings/settings.go): a body goes as JSON, ``auth_header`` as the
    whole Authorization value ("Bearer ...") when not empty."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if auth_header:
        headers["Authorization"] = auth_header
    req = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def call(port: int, path: str, token: str | None = None, body: Any = None, method: str | None = None) -> Any:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
        method=method,
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def token(port: int, password: str) -> str:
    return call(port, "/auth/token", body={"username": "admin", "password": password})["access_token"]


def wait_for_run(port: int, tok: str, dag_id: str, run_id: str, timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        state = call(port, f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}", tok)["state"]
        if state in ("success", "failed"):
            return state
        time.sleep(2)
    raise TimeoutError(f"{dag_id} run {run_id} still {state} after {timeout:.0f}s")


def wait_for_dag(port: int, tok: str, dag_id: str, timeout: float = 120) -> None:
    """Until the DAG processor has parsed ``dag_id`` and the API knows it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            call(port, f"/api/v2/dags/{dag_id}", tok)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def unpause(port: int, tok: str, dag_id: str) -> None:
    call(port, f"/api/v2/dags/{dag_id}", tok, body={"is_paused": False}, method="PATCH")
