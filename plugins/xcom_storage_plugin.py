"""Airflow 3 UI plugin: see what an offloaded XCom holds (URI, size, format, preview).

Adds a "Stored XComs" tab to every task instance and an "XCom storage" page under Browse. Both are
served by the FastAPI app in ``include/xcom_backends/webui.py``, mounted in the API server at
``/xcom-storage``, behind Airflow's own login and DAG-level XCom read permission.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from include.xcom_backends.webui import app

URL_PREFIX = "/xcom-storage"


class XComStoragePlugin(AirflowPlugin):
    name = "xcom_storage"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [{"app": app, "url_prefix": URL_PREFIX, "name": "XCom storage"}]
    external_views: ClassVar[list[dict[str, Any]]] = [
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
