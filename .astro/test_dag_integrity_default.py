"""Every DAG file imports: what `astro dev parse` runs in the image (``pytest .astro/test_dag_integrity_default.py``).

The Astro CLI runs this file by this name (astro-cli ``DefaultTestPath``); ``astro dev init`` would
write its own version, which calls ``DagBag(include_examples=False)``, an argument Airflow 3.3's
DagBag no longer takes. This one does the same checks on Airflow 3.3:

- every Python file of the DAGs folder is imported, as the DAG processor imports it;
- a file that fails to import fails its test, unless ``.astro/dag_integrity_exceptions.txt`` lists it
  (one path per line, relative to AIRFLOW_HOME, e.g. ``dags/draft_dag.py``; ``#`` starts a comment);
- while the files are imported, connections, Variables and unset environment variables they read at
  parse time get stand-in values, since parsing runs with no connections or Variables defined.

The local path (no Docker) runs it too: ``AIRFLOW_HOME=$PWD .venv/bin/pytest .astro/test_dag_integrity_default.py``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

AIRFLOW_HOME = Path(os.environ.get("AIRFLOW_HOME", Path.cwd())).resolve()
EXCEPTIONS_FILE = Path(".astro/dag_integrity_exceptions.txt")
_real_getenv = os.getenv


def exempted() -> set[str]:
    """The DAG files whose import errors are accepted (dag_integrity_exceptions.txt)."""
    if not EXCEPTIONS_FILE.exists():
        return set()
    lines = (raw.split("#", 1)[0].strip() for raw in EXCEPTIONS_FILE.read_text().splitlines())
    return {line for line in lines if line}


def _getenv(key: str, default: Any = None) -> Any:
    value = _real_getenv(key)
    if value:
        return value
    if default is not None:
        return default
    return f"MOCKED_{key.upper()}_VALUE"


@contextmanager
def parse_time_stand_ins() -> Iterator[None]:
    """Connections, Variables and unset env vars as parse time sees them under `astro dev parse`."""
    from airflow.models import Variable as ModelVariable
    from airflow.sdk import BaseHook, Connection, Variable

    def connection(conn_id: str, *args: Any, **kwargs: Any) -> Connection:
        return Connection(conn_id=conn_id, conn_type="generic")

    def variable(key: str, default: Any = mock.sentinel.none, deserialize_json: bool = False, **kwargs: Any) -> Any:
        if default is not mock.sentinel.none:
            return default
        return {} if deserialize_json else "NON_DEFAULT_MOCKED_VARIABLE_VALUE"

    with (
        mock.patch.object(BaseHook, "get_connection", staticmethod(connection)),
        mock.patch.object(Variable, "get", staticmethod(variable)),
        mock.patch.object(ModelVariable, "get", staticmethod(variable)),
        mock.patch.object(os, "getenv", _getenv),
    ):
        yield


def _rel(path: str) -> str:
    return os.path.relpath(path, AIRFLOW_HOME)


def import_results() -> list[tuple[str, str]]:
    """(file relative to AIRFLOW_HOME, its import error or "") for every DAG file of the DAGs folder."""
    from airflow.dag_processing.dagbag import DagBag

    logger = logging.getLogger("airflow")
    disabled, logger.disabled = logger.disabled, True
    try:
        with parse_time_stand_ins():
            bag = DagBag()
    finally:
        logger.disabled = disabled
    results = {_rel(path): str(error).strip() for path, error in bag.import_errors.items()}
    for dag in bag.dags.values():
        results.setdefault(_rel(dag.fileloc), "")
    return sorted(results.items())


RESULTS = import_results()


@pytest.mark.parametrize(("rel_path", "error"), RESULTS, ids=[path for path, _ in RESULTS])
def test_file_imports(rel_path: str, error: str) -> None:
    if error and rel_path not in exempted():
        raise AssertionError(f"{rel_path} failed to import:\n{error}")
