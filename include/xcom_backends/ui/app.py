"""The UI plugin's FastAPI app: what a task instance's XComs hold, previewed on the server side.

Mounted by ``plugins/xcom_storage_plugin.py`` at ``/xcom-storage`` in Airflow's API server. Pages
use Airflow's own login (the JWT cookie of the UI, or a bearer token) and authorization (read
access to the DAG's XComs); a visitor who is not logged in is sent to the login page.

- ``/xcom-storage/``: the latest offloaded XComs of the DAGs the user may read.
- ``/xcom-storage/ti?dag_id=&run_id=&task_id=&map_index=``: every XCom of one task instance with
  where it is stored, URI, size, format and a preview (first rows of a frame, pretty JSON).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select

from include.xcom_backends import dbform
from include.xcom_backends.backend import ObjectStorageXCom, configured_backend
from include.xcom_backends.dbform import Reference, stored_value
from include.xcom_backends.errors import XComReferenceError, XComStorageConfigError, XComStorageError
from include.xcom_backends.keys import XComRow
from include.xcom_backends.ui.preview import preview_xcom

RECENT_SCAN = 2000  # XCom rows looked at for the index page
RECENT_SHOWN = 100

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)
_templates.filters["filesize"] = lambda n: "—" if n is None else _human_size(int(n))

app = FastAPI(title="XCom storage", description="Offloaded XComs: location, size, format and a preview.")


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _refusal(backend: type[ObjectStorageXCom] | None, row: XComRow, ref: Reference) -> str | None:
    """Why ``ref``, read from ``row``, would not be followed (it is not under the row's own location),
    or None. Nothing is read from storage."""
    if backend is None:
        return None
    try:
        backend.object_key_for(ref, row)
    except XComReferenceError as exc:
        return exc.reason
    except XComStorageError:
        return None  # the backend cannot be configured here; the task instance page says why
    return None


def _active_backend() -> tuple[str, type[ObjectStorageXCom] | None]:
    """The active backend's class path (or what is wrong with the configuration, shown at the top of
    the page, and then no object is read) and its class when it is one of ours. The routing
    (``[xcom_storage] stores`` / ``rules``) is validated here too."""
    try:
        path, cls = configured_backend()
        if cls is not None:
            cls.routing()
        return path, cls
    except XComStorageConfigError as exc:
        return str(exc), None


def _render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(name).render(**context), status_code=status_code)


def _ti_link(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    return "ti?" + urlencode({"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index})


@app.exception_handler(HTTPException)
async def _to_login_or_page(request: Request, exc: HTTPException) -> Response:
    """Not logged in: go to Airflow's login and come back. Other errors: a short page."""
    if exc.status_code == 401:
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
    return _render("error.html", status_code=exc.status_code, status=exc.status_code, detail=exc.detail)


def _map_index(raw: str | None) -> int:
    # The UI fills {MAP_INDEX}; for a task that is not mapped it may be empty or left as the placeholder.
    try:
        return int(raw) if raw not in (None, "") else -1
    except ValueError:
        return -1


@app.get(
    "/ti",
    response_class=HTMLResponse,
    dependencies=[Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.XCOM))],
)
def task_instance_xcoms(
    user: GetUserDep,
    session: SessionDep,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: str | None = None,
) -> HTMLResponse:
    from airflow.models.xcom import XComModel

    index = _map_index(map_index)
    rows = session.execute(
        select(XComModel.key, XComModel.value)
        .where(XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.task_id == task_id)
        .where(XComModel.map_index == index)
        .order_by(XComModel.key)
    ).all()
    backend_path, backend = _active_backend()
    previews = [
        preview_xcom(backend, XComRow.of(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=index, key=key),
                     stored_value(value))
        for key, value in rows
    ]  # fmt: skip
    return _render(
        "task_instance.html",
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        map_index=index,
        previews=previews,
        backend_path=backend_path,
        user=user.get_name(),
    )


@app.get("/", response_class=HTMLResponse)
def recent_offloaded_xcoms(user: GetUserDep, session: SessionDep) -> HTMLResponse:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.models.xcom import XComModel

    readable = get_auth_manager().get_authorized_dag_ids(user=user, method="GET", session=session)
    rows = session.execute(
        select(
            XComModel.dag_id,
            XComModel.run_id,
            XComModel.task_id,
            XComModel.map_index,
            XComModel.key,
            XComModel.value,
            XComModel.timestamp,
        )
        .where(XComModel.dag_id.in_(readable))
        .order_by(XComModel.timestamp.desc())
        .limit(RECENT_SCAN)
    ).all()
    backend_path, backend = _active_backend()
    items = []
    for r in rows:
        value = stored_value(r.value)
        if not dbform.is_reference(value):
            continue
        row = XComRow.of(dag_id=r.dag_id, run_id=r.run_id, task_id=r.task_id, map_index=r.map_index, key=r.key)
        link = _ti_link(r.dag_id, r.run_id, r.task_id, r.map_index)
        item: dict[str, Any] = {"row": row, "link": link, "timestamp": r.timestamp}
        try:
            ref = Reference.from_json(value)
            item.update(uri=ref.uri, format=ref.format, size=ref.size, problem=_refusal(backend, row, ref))
        except XComReferenceError as exc:
            item.update(uri="(malformed)", format="?", size=None, problem=str(exc))
        items.append(item)
        if len(items) == RECENT_SHOWN:
            break
    return _render("index.html", items=items, backend_path=backend_path, user=user.get_name())
