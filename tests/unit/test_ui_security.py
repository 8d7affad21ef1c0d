"""The UI plugin's app behind Airflow's real login and authorization: who may see which XComs, and
what every answer sends (no docs, no caching, no 500 on odd input, no digest, bounded pages).

The app runs in a FastAPI TestClient with Airflow's own auth machinery: a migrated SQLite metadata
database of this module's own, an auth manager (``XComByDagAuthManager``, a SimpleAuthManager) that
denies XCom read where a test needs it, and JWTs it signs. The database is migrated once per module.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from fastapi.testclient import TestClient

from include.xcom_backends import dbform
from include.xcom_backends.backend import ObjectStorageXCom
from include.xcom_backends.codecs import Encoded
from tests.unit.memory import MemoryStore, MemPandas, push

OPEN_DAG = "open_dag"  # every user below may read its XComs
SECRET_DAG = "secret_dag"  # DAG_READER may read the DAG, not its XComs
XCOM_READER = "xcom_reader"  # may read every DAG and every DAG's XComs
DAG_READER = "dag_reader"  # may read every DAG; XComs of OPEN_DAG only
NO_XCOM = "no_xcom"  # may read every DAG; no XComs at all
RUN_ID = "manual__2024-01-01"


class XComByDagAuthManager(SimpleAuthManager):
    """SimpleAuthManager (a viewer reads every DAG), with XCom read taken away per user and DAG."""

    def is_authorized_dag(
        self,
        *,
        method: Any,
        user: SimpleAuthManagerUser,
        access_entity: DagAccessEntity | None = None,
        details: DagDetails | None = None,
    ) -> bool:
        if access_entity == DagAccessEntity.XCOM:
            dag_id = details.id if details else None
            if user.username == NO_XCOM or (user.username == DAG_READER and dag_id == SECRET_DAG):
                return False
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)


@dataclass
class UI:
    client: TestClient
    tokens: dict[str, str]
    refs: dict[str, dict[str, Any]]  # the reference row of each DAG, by dag_id

    def get(self, url: str, user: str | None = XCOM_READER, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return self.client.get(url, headers=headers, follow_redirects=False, **kw)


def _ti(dag_id: str, task_id: str = "producer", map_index: Any = -1) -> str:
    return f"/ti?dag_id={dag_id}&run_id={RUN_ID}&task_id={task_id}&map_index={map_index}"


def _parquet(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame), sink, compression="zstd")
    return sink.getvalue()


# A frame of 20 rows, each the same 10 MB string: Parquet keeps it once (dictionary), zstd shrinks it to ~2 kB.
EXPANDING_PARQUET = _parquet(pd.DataFrame({"s": ["x" * 10_000_000] * 20}))


def _migrated_db(home: Path) -> str:
    conn = f"sqlite:///{home / 'airflow.db'}"
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conn}
    out = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return conn


def _add_rows(refs: dict[str, dict[str, Any]]) -> None:
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    when = datetime(2024, 1, 1, tzinfo=UTC)
    expanding = dbform.inline(None, Encoded(EXPANDING_PARQUET, "parquet", "dataframe"))
    with create_session() as session:
        session.add(DagBundleModel(name="bundle"))
        session.flush()
        for n, dag_id in enumerate((OPEN_DAG, SECRET_DAG)):
            session.add(DagModel(dag_id=dag_id, bundle_name="bundle"))
            session.flush()
            run = DagRun(dag_id=dag_id, run_id=RUN_ID, run_type="manual", logical_date=when, run_after=when)
            session.add(run)
            session.flush()
            values = {("producer", "return_value"): refs[dag_id], ("producer", "small"): {"pokemon": "pikachu"}}
            if dag_id == OPEN_DAG:
                values["big", "expanding"] = expanding
                values["big", "next"] = {"after": "the expanding value"}
            for task_id in {task_id for task_id, _ in values}:
                ti = {"dag_id": dag_id, "run_id": RUN_ID, "task_id": task_id, "map_index": -1}
                session.execute(
                    TaskInstance.__table__.insert().values(
                        id=uuid.uuid4(), try_number=1, pool="default_pool", pool_slots=1, **ti
                    )
                )
            for (task_id, key), value in values.items():
                stored = XComModel.serialize_value(value)
                ids = {"dag_id": dag_id, "run_id": RUN_ID, "task_id": task_id, "map_index": -1, "key": key}
                session.add(XComModel(dag_run_id=run.id, value=stored, timestamp=when + timedelta(n), **ids))


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    from airflow import settings
    from airflow.api_fastapi.app import create_auth_manager, purge_cached_app

    from include.xcom_backends.ui.app import app

    home = tmp_path_factory.mktemp("ui-airflow-home")
    conn = _migrated_db(home)
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", conn)
    mp.setenv("AIRFLOW__CORE__AUTH_MANAGER", f"{__name__}.{XComByDagAuthManager.__name__}")
    mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "ui-security-test-secret-" + "x" * 64)
    mp.setenv("AIRFLOW__CORE__XCOM_BACKEND", f"{MemPandas.__module__}.{MemPandas.__name__}")
    mp.setenv("AIRFLOW_CONN_MEM_CONN", "generic://")
    for name in ("BUCKET", "PREFIX", "THRESHOLD_BYTES", "DATAFRAME_FORMAT", "CONN_ID", "STORES", "RULES"):
        mp.delenv(f"AIRFLOW__XCOM_STORAGE__{name}", raising=False)
    MemoryStore.objects.clear()
    ObjectStorageXCom.reset()
    settings.dispose_orm(do_log=False)
    settings.configure_vars()
    settings.configure_orm()
    purge_cached_app()
    try:
        ids = {"task_id": "producer", "run_id": RUN_ID, "map_index": -1, "key": "return_value"}
        frame = pd.DataFrame({"pokemon": ["pikachu", "vulpix"], "xp": [28.0, 10.0]})
        refs = {dag_id: push(MemPandas, frame, dag_id=dag_id, **ids) for dag_id in (OPEN_DAG, SECRET_DAG)}
        assert all(dbform.is_reference(r) for r in refs.values())
        _add_rows(refs)
        am = create_auth_manager()
        users = {XCOM_READER: "viewer", DAG_READER: "viewer", NO_XCOM: "viewer"}
        tokens = {u: am.generate_jwt(SimpleAuthManagerUser(username=u, role=r)) for u, r in users.items()}
        yield UI(TestClient(app, raise_server_exceptions=False), tokens, refs)
    finally:
        purge_cached_app()
        settings.dispose_orm(do_log=False)
        mp.undo()
        settings.configure_vars()
        settings.configure_orm()
        MemoryStore.objects.clear()
        ObjectStorageXCom.reset()


def test_index_lists_only_dags_whose_xcoms_the_user_may_read(ui: UI) -> None:
    everything = ui.get("/", XCOM_READER)
    assert everything.status_code == 200
    assert OPEN_DAG in everything.text and SECRET_DAG in everything.text
    assert ui.refs[SECRET_DAG]["uri"] in everything.text

    dag_reader = ui.get("/", DAG_READER)
    assert dag_reader.status_code == 200
    assert OPEN_DAG in dag_reader.text and ui.refs[OPEN_DAG]["uri"] in dag_reader.text
    assert SECRET_DAG not in dag_reader.text and ui.refs[SECRET_DAG]["uri"] not in dag_reader.text
    # and the task instance page agrees
    assert ui.get(_ti(SECRET_DAG), DAG_READER).status_code == 403
    assert ui.get(_ti(OPEN_DAG), DAG_READER).status_code == 200

    no_xcom = ui.get("/", NO_XCOM)
    assert no_xcom.status_code == 403 and OPEN_DAG not in no_xcom.text and SECRET_DAG not in no_xcom.text
    assert ui.get(_ti(OPEN_DAG), NO_XCOM).status_code == 403


def test_not_logged_in_goes_to_the_login_page(ui: UI) -> None:
    answer = ui.get("/", user=None)
    assert answer.status_code == 303 and "login" in answer.headers["location"]


@pytest.mark.parametrize("map_index", [2**31, 2**63, 10**30, -(2**31) - 1, -(10**30)])
def test_map_index_out_of_range_is_a_client_error(ui: UI, map_index: int) -> None:
    answer = ui.get(_ti(OPEN_DAG, map_index=map_index))
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:500])
    assert "map_index" in answer.text


def test_map_index_placeholder_or_empty_means_not_mapped(ui: UI) -> None:
    for raw in ("", "{MAP_INDEX}", "-1"):
        answer = ui.get(_ti(OPEN_DAG, map_index=raw))
        assert answer.status_code == 200 and 'data-key="small"' in answer.text


def test_task_instance_page_does_not_show_the_digest(ui: UI) -> None:
    ref = ui.refs[OPEN_DAG]
    page = ui.get(_ti(OPEN_DAG))
    assert page.status_code == 200 and ref["uri"] in page.text and "pikachu" in page.text  # the preview is there
    digests = [v for k, v in ref.items() if k in ("sha256", "digest")]
    assert digests and all(str(d) not in page.text for d in digests)
    assert "SHA-256" not in page.text and "digest" not in page.text.lower()


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_api_docs_are_not_served(ui: UI, path: str) -> None:
    for user in (None, XCOM_READER):
        answer = ui.get(path, user)
        assert answer.status_code == 404, (path, user, answer.status_code)
        assert "swagger" not in answer.text.lower() and "redoc" not in answer.text.lower()


def test_a_page_that_fails_is_a_short_500_page(ui: UI, monkeypatch: pytest.MonkeyPatch) -> None:
    from include.xcom_backends.ui import app as ui_app

    def broken() -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(ui_app, "_active_backend", broken)
    answer = ui.get(_ti(OPEN_DAG))
    assert answer.status_code == 500 and answer.headers.get("cache-control") == "no-store"
    assert "log" in answer.text and "secret detail" not in answer.text


@pytest.mark.parametrize(
    ("path", "user", "status"),
    [
        ("/", XCOM_READER, 200),
        (_ti(OPEN_DAG), XCOM_READER, 200),
        (_ti(SECRET_DAG), DAG_READER, 403),
        ("/", None, 303),
        ("/no-such-page", XCOM_READER, 404),
        (_ti(OPEN_DAG, map_index=2**40), XCOM_READER, 400),
        ("/ti?dag_id=x", XCOM_READER, 422),
    ],
)
def test_every_answer_is_not_cached(ui: UI, path: str, user: str | None, status: int) -> None:
    answer = ui.get(path, user)
    assert answer.status_code == status
    assert answer.headers.get("cache-control") == "no-store"


def test_an_expanding_value_does_not_blow_up_the_page(ui: UI) -> None:
    import tracemalloc

    tracemalloc.start()
    try:
        page = ui.get(_ti(OPEN_DAG, task_id="big"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert page.status_code == 200
    assert len(page.content) < 400_000, len(page.content)
    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MiB"
    # the expanding value's card says what was cut, and the next value is still shown in full
    assert 'data-key="expanding"' in page.text and "…" in page.text and "truncated" in page.text.lower()
    assert 'data-key="next"' in page.text and "the expanding value" in page.text


def test_previews_after_the_page_budget_are_not_read(ui: UI, monkeypatch: pytest.MonkeyPatch) -> None:
    from include.xcom_backends.ui import app as ui_app

    monkeypatch.setattr(ui_app, "MAX_PAGE_PREVIEW_BYTES", 1000)
    page = ui.get(_ti(OPEN_DAG, task_id="big"))
    assert page.status_code == 200 and 'data-key="expanding"' in page.text and "xxxxx" in page.text
    assert 'data-key="next"' in page.text and "the expanding value" not in page.text
    assert "Not read: the previews above already fill the 1000 B a page shows" in page.text


def test_a_task_instance_with_too_many_xcoms_shows_the_first(ui: UI, monkeypatch: pytest.MonkeyPatch) -> None:
    from include.xcom_backends.ui import app as ui_app

    monkeypatch.setattr(ui_app, "MAX_XCOMS_SHOWN", 1)
    page = ui.get(_ti(OPEN_DAG))
    assert page.status_code == 200 and 'data-key="return_value"' in page.text and 'data-key="small"' not in page.text
    assert "The first 1 XComs (by key) are shown; this task instance has more." in page.text


def test_values_too_large_for_a_page_are_not_loaded_from_the_database(ui: UI, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row's JSON text is measured by the database first: one over the bound is neither loaded nor previewed."""
    from include.xcom_backends.ui import app as ui_app

    # The small row's text is under 100 characters (JSON in JSON), the reference row's about 300.
    monkeypatch.setattr(ui_app, "MAX_VALUE_CHARS", 100)
    loaded: list[str] = []
    original = ui_app.stored_value

    def stored_value(value: Any) -> Any:
        loaded.append(str(value))
        return original(value)

    monkeypatch.setattr(ui_app, "stored_value", stored_value)
    page = ui.get(_ti(OPEN_DAG))
    assert page.status_code == 200 and "more than a page previews" in page.text and "pikachu" in page.text
    assert len(loaded) == 1 and "pikachu" in loaded[0]  # only the small row was read
    assert ui.refs[OPEN_DAG]["uri"] not in page.text


def test_the_index_page_does_not_load_rows_longer_than_a_reference(ui: UI, monkeypatch: pytest.MonkeyPatch) -> None:
    from include.xcom_backends.ui import app as ui_app

    assert ui.refs[OPEN_DAG]["uri"] in ui.get("/").text
    monkeypatch.setattr(ui_app, "MAX_REFERENCE_CHARS", 50)
    assert ui.refs[OPEN_DAG]["uri"] not in ui.get("/").text
