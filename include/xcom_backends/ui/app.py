"""The UI plugin's FastAPI app: what a task instance's XComs hold, previewed on the server side.

Mounted by ``plugins/xcom_storage_plugin.py`` at ``/xcom-storage`` in Airflow's API server. Pages
use Airflow's own login (the JWT cookie of the UI, or a bearer token) and authorization (read
access to the DAG's XComs, as Airflow's own XCom endpoints require); a visitor who is not logged in
is sent to the login page.

- ``/xcom-storage/``: the latest offloaded XComs of the DAGs whose XComs the user may read.
- ``/xcom-storage/ti?dag_id=&run_id=&task_id=&map_index=``: every XCom of one task instance with
  where it is stored, URI, size, format and a preview (first rows of a frame, pretty JSON), each
  bounded (``preview.py``) and all of them together too (``MAX_PAGE_PREVIEW_BYTES``).

Every answer (pages, errors, redirects) is sent with ``Cache-Control: no-store``; there is no
OpenAPI schema or docs page.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from include.xcom_backends import dbform
from include.xcom_backends.backend import ObjectStorageXCom, configured_backend
from include.xcom_backends.dbform import Reference, stored_value
from include.xcom_backends.errors import XComReferenceError, XComStorageConfigError, XComStorageError
from include.xcom_backends.keys import XComRow
from include.xcom_backends.ui.preview import MAX_INLINE_BYTES, MAX_LINE_CHARS, Preview, clip, preview_xcom

RECENT_SCAN = 2000  # XCom rows looked at for the index page
RECENT_SHOWN = 100
MAX_XCOMS_SHOWN = 200  # XComs of one task instance shown (by key)
MAX_PAGE_PREVIEW_BYTES = 2 * 1024 * 1024  # previews of one page together; the XComs after it: not read
MAP_INDEX_MAX = 2**31 - 1  # map_index is a 32-bit integer column
# Values are measured in the database before they are loaded: a row's JSON text over these is never read.
MAX_VALUE_CHARS = MAX_INLINE_BYTES  # on a task instance's page (it is previewed, or says it is too large)
MAX_REFERENCE_CHARS = 8192  # on the index page, which lists references (a few hundred characters each)

log = logging.getLogger(__name__)

templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)
templates.filters["filesize"] = lambda n: "—" if n is None else _human_size(int(n))

app = FastAPI(
    title="XCom storage",
    description="Offloaded XComs: location, size, format and a preview.",
    docs_url=None,  # no docs pages (they load a script from a CDN) and no schema: the pages are all there is
    redoc_url=None,
    openapi_url=None,
)


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
    return HTMLResponse(templates.get_template(name).render(**context), status_code=status_code)


class NoStore:
    """Every answer of the app, whatever made it (a page, an error handler, a redirect), is sent
    with ``Cache-Control: no-store``: pages show XComs the next viewer may not be allowed to read. An
    exception no handler took becomes a short 500 page here (logged), so it gets the header too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_no_store(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)["Cache-Control"] = "no-store"
            await send(message)

        try:
            await self.app(scope, receive, send_no_store)
        except Exception:
            if started:
                raise
            log.exception("XCom storage page %s failed", scope.get("path"))
            detail = "The page failed; the API server's log has the details."
            await _render("error.html", 500, status=500, detail=detail)(scope, receive, send_no_store)


app.add_middleware(NoStore)


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
    """The map index asked for. The UI fills {MAP_INDEX}; for a task that is not mapped it may be
    empty or left as the placeholder (-1). A number outside the column's range is a 400."""
    if raw is None or not re.fullmatch(r"\s*[-+]?[0-9]+\s*", raw):
        return -1
    digits = raw.strip().lstrip("+-").lstrip("0")
    value = int(raw) if len(digits) <= 12 else None
    if value is None or not -1 <= value <= MAP_INDEX_MAX:
        raise HTTPException(
            400,
            f"map_index must be -1 (not mapped) or a whole number from 0 to {MAP_INDEX_MAX:,}, not {clip(raw, 40)}.",
        )
    return value


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
    same_ti = (
        XComModel.dag_id == dag_id,
        XComModel.run_id == run_id,
        XComModel.task_id == task_id,
        XComModel.map_index == index,
    )
    by_key = select(XComModel.key, _text_length(XComModel.value)).where(*same_ti).order_by(XComModel.key)
    sizes = session.execute(by_key.limit(MAX_XCOMS_SHOWN + 1)).all()
    small = [key for key, chars in sizes[:MAX_XCOMS_SHOWN] if (chars or 0) <= MAX_VALUE_CHARS]
    values: dict[str, Any] = dict(
        session.execute(select(XComModel.key, XComModel.value).where(*same_ti, XComModel.key.in_(small))).all()
    )
    backend_path, backend = _active_backend()
    previews, shown = [], 0
    for key, chars in sizes[:MAX_XCOMS_SHOWN]:
        row = XComRow.of(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=index, key=key)
        if key not in values:
            too_large = (
                f"Not read: this row holds {chars:,} characters in the metadata database, more than a page previews."
            )
            previews.append(Preview(key=key, where="database", format="?", size=chars, error=too_large))
            continue
        value = values[key]
        skip = None
        if shown >= MAX_PAGE_PREVIEW_BYTES:
            skip = (
                f"Not read: the previews above already fill the {_human_size(MAX_PAGE_PREVIEW_BYTES)} a page shows. "
                "Pull this XCom in a task, or with the REST API, to see it."
            )
        preview = preview_xcom(backend, row, stored_value(value), skip=skip)
        shown += preview.rendered_bytes
        previews.append(preview)
    return _render(
        "task_instance.html",
        dag_id=dag_id,
        run_id=run_id,
        task_id=task_id,
        map_index=index,
        previews=previews,
        more_xcoms=len(sizes) > MAX_XCOMS_SHOWN,
        backend_path=backend_path,
        user=user.get_name(),
    )


def _text_length(column: Any) -> Any:
    """The length of a JSON column's text, computed by the database (SQLite, PostgreSQL, MySQL)."""
    return func.length(cast(column, Text))


def _xcom_readable_dag_ids(user: BaseUser, session: Session) -> set[str]:
    """The DAGs that have XComs and whose XComs ``user`` may read: the DAGs they may read (as
    Airflow's XCom list endpoint filters them) that have XComs, each then checked for XCom read
    the way ``/ti`` checks it (``requires_access_dag(method="GET", access_entity=XCOM)``)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.models.dag import DagModel
    from airflow.models.xcom import XComModel

    auth = get_auth_manager()
    readable = auth.get_authorized_dag_ids(user=user, method="GET", session=session)
    with_xcoms = list(session.scalars(select(XComModel.dag_id).where(XComModel.dag_id.in_(readable)).distinct()))
    teams = DagModel.get_dag_id_to_team_name_mapping(with_xcoms, session=session) if with_xcoms else {}
    return {
        dag_id
        for dag_id in with_xcoms
        if auth.is_authorized_dag(
            method="GET",
            access_entity=DagAccessEntity.XCOM,
            details=DagDetails(id=dag_id, team_name=teams.get(dag_id)),
            user=user,
        )
    }


@app.get(
    "/",
    response_class=HTMLResponse,
    # as Airflow's XCom list endpoint for all DAGs (dag_id "~"); each DAG is then checked on its own
    dependencies=[Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.XCOM))],
)
def recent_offloaded_xcoms(user: GetUserDep, session: SessionDep) -> HTMLResponse:
    from airflow.models.xcom import XComModel

    readable = _xcom_readable_dag_ids(user, session)
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
        .where(XComModel.dag_id.in_(readable), _text_length(XComModel.value) <= MAX_REFERENCE_CHARS)
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
            problem = _refusal(backend, row, ref)
            item.update(uri=clip(ref.uri, MAX_LINE_CHARS), format=clip(ref.format, 40), size=ref.size)
            item.update(problem=clip(problem, MAX_LINE_CHARS) if problem else None)
        except XComReferenceError as exc:
            item.update(uri="(malformed)", format="?", size=None, problem=clip(str(exc), MAX_LINE_CHARS))
        items.append(item)
        if len(items) == RECENT_SHOWN:
            break
    return _render("index.html", items=items, backend_path=backend_path, user=user.get_name())
