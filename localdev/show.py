"""Print the XCom references in Airflow's metadata database next to the objects in the bucket.

The tutorial's "view the XCom in your object storage" step, without a UI. Run inside the Airflow
environment: ``python -m localdev.show [DAG_ID ...]`` (latest run of each DAG; all rows if none given).
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _value(raw: Any) -> Any:
    from include.xcom_backends.dbform import stored_value

    return stored_value(raw)


def xcom_rows(dag_ids: list[str]) -> list[dict[str, Any]]:
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    rows = []
    with create_session() as session:
        query = session.query(XComModel)
        if dag_ids:
            run_ids = []
            for dag_id in dag_ids:
                run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
                if run is None:
                    print(f"DAG {dag_id!r} has no runs yet.")
                    continue
                run_ids.append((dag_id, run.run_id))
            rows_q = [
                r
                for dag_id, run_id in run_ids
                for r in query.filter(XComModel.dag_id == dag_id, XComModel.run_id == run_id).all()
            ]
        else:
            rows_q = query.all()
        for r in rows_q:
            rows.append(
                {
                    "dag_id": r.dag_id,
                    "run_id": r.run_id,
                    "task_id": r.task_id,
                    "map_index": r.map_index,
                    "key": r.key,
                    "value": _value(r.value),
                    "db_bytes": len(r.value if isinstance(r.value, (str, bytes)) else json.dumps(r.value)),
                }
            )
    return rows


def main() -> None:
    from include.xcom_backends import dbform
    from include.xcom_backends.backend import configured_backend
    from include.xcom_backends.errors import XComReferenceError
    from include.xcom_backends.keys import XComRow, belongs_to, prefix_of
    from include.xcom_backends.ops import ownership
    from include.xcom_backends.routing import DEFAULT

    dag_ids = sys.argv[1:]
    backend_path, backend = configured_backend()
    rows = xcom_rows(dag_ids)
    print(f"\nXCom rows in the metadata database ({len(rows)}):")
    referenced: set[str] = set()
    for r in rows:
        try:
            form = dbform.read(r["value"])
        except XComReferenceError as exc:
            shown = f"malformed: {exc}"[:100]
        else:
            if isinstance(form, dbform.Reference):
                shown = f"{form.uri}  ({form.format}, {form.size} bytes)"
                referenced.add(form.uri)
            else:
                shown = f"inline: {r['value']!r}"[:100]
        print(f"  {r['dag_id']}.{r['task_id']}[{r['map_index']}] {r['key']}: {r['db_bytes']} B in DB -> {shown}")

    if backend is None:
        print(
            f"\nThe active XCom backend {backend_path} is not one of this project's: it keeps the values "
            "above in the metadata database, so there is no bucket to list."
        )
        return
    listed: set[str] = set()
    for rt in backend.runtimes():  # the backend's own store, and every store of [xcom_storage] stores
        objects = list(rt.store.list(prefix_of(rt.settings.prefix)))
        store = "" if rt.name == DEFAULT else f" (store {rt.name!r})"
        print(f"\nObjects under {rt.location} at {rt.store.endpoint}{store} ({len(objects)}):")
        for obj in objects:
            uri = rt.store.uri(obj.key)
            listed.add(uri)
            if obj.key == ownership.marker_key(rt):
                mark = "ownership marker"
            elif not belongs_to(obj.key, rt.settings.prefix, XComRow()):
                mark = "not written by the backend"
            else:
                mark = "referenced" if uri in referenced else ("other run" if dag_ids else "orphan")
            print(f"  {obj.size:>9} B  {uri}  [{mark}]")
    missing = referenced - listed
    if missing:
        print(f"\nWARNING: {len(missing)} references point at objects that are not in the bucket: {sorted(missing)}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
