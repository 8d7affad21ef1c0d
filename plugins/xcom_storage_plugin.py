"""Airflow 3 UI plugin: see what an offloaded XCom holds (URI, size, format, preview).

Adds a "Stored XComs" tab to every task instance and an "XCom storage" page under Browse. Both are
served by the FastAPI app in ``include/xcom_backends/ui/app.py``, mounted in the API server at
``/xcom-storage``, behind Airflow's own login and DAG-level XCom read permission.

Every task process loads plugins too (for macros), so this module stays cheap to import: the web
app and its imports (about 1.4 s) are loaded by the API server on the first request only.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/xcom-storage"


class LazyXComStorageApp:
    """An ASGI app that imports the real one (``include.xcom_backends.ui.app.app``) when first called."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from include.xcom_backends.ui.app import app

            self._app = app
        await self._app(scope, receive, send)


class XComStoragePlugin(AirflowPlugin):
    name = "xcom_storage"
    fastapi_apps: list[dict[str, Any]] = [  # noqa: RUF012 (AirflowPlugin declares these as instance attributes)
        {"app": LazyXComStorageApp(), "url_prefix": URL_PREFIX, "name": "XCom storage"}
    ]
    external_views: list[dict[str, Any]] = [  # noqa: RUF012
        {
            "name": "Stored XComs",
            "href": URL_PREFIX.lstrip("/")
            + "/ti?dag_id={DAG_ID}&run_id={RUN_ID}&task_id={TASK_ID}&map_index={MAP_INDEX}",
            "destination": "task_instance",
            "url_route": "stored_xcoms",
        },
        {
            "name": "XCom storage",
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "category": "browse",
            "url_route": "xcom_storage",
        },
    ]
