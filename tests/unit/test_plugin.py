"""The UI plugin's registration (the pages themselves are tested in a browser: test_local_run.py)."""

from __future__ import annotations

import subprocess
import sys

from localdev.config import REPO


def test_task_processes_do_not_import_the_web_app() -> None:
    """Every task process imports plugins; the web app must only load in the API server."""
    code = (
        "import sys, xcom_storage_plugin as p; "
        "assert 'include.xcom_backends.ui.app' not in sys.modules; "
        "assert 'airflow.api_fastapi.core_api.security' not in sys.modules; "
        "print(p.XComStoragePlugin.name)"
    )
    env = {"PYTHONPATH": f"{REPO}:{REPO / 'plugins'}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip() == "xcom_storage", out.stderr


def test_views_are_relative_and_templated() -> None:
    sys.path.insert(0, str(REPO / "plugins"))
    try:
        from xcom_storage_plugin import XComStoragePlugin
    finally:
        sys.path.remove(str(REPO / "plugins"))
    tab, page = XComStoragePlugin.external_views
    assert tab["destination"] == "task_instance" and not tab["href"].startswith("/")
    for placeholder in ("{DAG_ID}", "{RUN_ID}", "{TASK_ID}", "{MAP_INDEX}"):
        assert placeholder in tab["href"]
    assert page["destination"] == "nav" and page["href"] == "xcom-storage/"
    assert XComStoragePlugin.fastapi_apps[0]["url_prefix"] == "/xcom-storage"
