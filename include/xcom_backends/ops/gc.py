"""Clean-up of orphaned objects: objects under the prefix that no XCom row references any more.

Orphans appear because ``airflow db clean``, deleting a DAG run and re-running ``airflow dags test``
remove XCom rows without calling the backend's purge. The references are read **read-only from the
metadata database** (one SELECT of the xcom table's value column): gc needs one consistent view of
every row, and it runs where Airflow runs, with the database configured; the REST API would need a
user token and paging through every XCom entry. Dry run by default; only objects older than the age
limit are candidates, so values being pushed right now (object written, row not yet committed) are safe.

A row protects an object only if the object lies under that row's own location (the check every read
and purge applies): a crafted row that names another row's object, or an orphan, protects nothing
and is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from include.xcom_backends import dbform
from include.xcom_backends.backend import ObjectStorageXCom
from include.xcom_backends.dbform import Reference, stored_value
from include.xcom_backends.errors import XComReferenceError
from include.xcom_backends.keys import XComRow, prefix_of
from include.xcom_backends.routing import DEFAULT
from include.xcom_backends.stores.base import ObjectInfo


@dataclass
class GCReport:
    location: str
    scanned: int = 0
    referenced: int = 0
    too_young: int = 0
    orphans: list[ObjectInfo] = field(default_factory=list)
    deleted: int = 0
    refused: list[str] = field(default_factory=list)  # rows whose reference protects nothing, and why

    @property
    def orphan_bytes(self) -> int:
        return sum(o.size for o in self.orphans)


@dataclass
class References:
    """The object URIs that XCom rows may keep alive, and the rows whose reference was refused."""

    uris: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)


def read_references(backend: type[ObjectStorageXCom]) -> References:
    """Every reference in the metadata database (read-only), checked against its own row."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    stores = backend.routing().stores
    found = References()
    columns = (XComModel.dag_id, XComModel.run_id, XComModel.task_id, XComModel.map_index, XComModel.key,
               XComModel.value)  # fmt: skip
    with create_session() as session:
        for dag_id, run_id, task_id, map_index, key, column in session.execute(select(*columns)).yield_per(1000):
            row = XComRow.of(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, key=key)
            try:
                ref = dbform.read(stored_value(column))
                if not isinstance(ref, Reference):
                    continue
                if ref.store in stores and not ref.uri.startswith(backend.runtime(ref.store).location):
                    continue  # another bucket or prefix (another backend's configuration): not ours to judge
                backend.object_key_for(ref, row)  # a store the configuration does not name is refused
            except XComReferenceError as exc:
                found.refused.append(str(exc))
                continue
            found.uris.add(ref.uri)
    return found


def collect_all(backend: type[ObjectStorageXCom], *, older_than: timedelta, delete: bool,
                references: References) -> list[GCReport]:  # fmt: skip
    """``collect`` for every store the configuration names, each location once (two stores may share
    a bucket and prefix)."""
    return [collect(backend, older_than=older_than, delete=delete, references=references, store=rt.name)
            for rt in backend.runtimes()]  # fmt: skip


def collect(backend: type[ObjectStorageXCom], *, older_than: timedelta, delete: bool, now: datetime | None = None,
            references: References | None = None, store: str = DEFAULT) -> GCReport:  # fmt: skip
    """The orphans under one store's prefix (``store``: a name of ``[xcom_storage] stores``)."""
    rt = backend.runtime(store)
    prefix = prefix_of(rt.settings.prefix)
    cutoff = (now or datetime.now(UTC)) - older_than
    # Objects are listed before the references are read: an object written after the listing is not
    # looked at, and one whose row is committed meanwhile is seen as referenced.
    objects = list(rt.store.list(prefix))
    refs = read_references(backend) if references is None else references
    report = GCReport(location=rt.store.uri(prefix), scanned=len(objects), refused=refs.refused)
    for obj in objects:
        if rt.store.uri(obj.key) in refs.uris:
            report.referenced += 1
        elif obj.modified > cutoff:
            report.too_young += 1
        else:
            report.orphans.append(obj)
    if delete and report.orphans:
        rt.store.delete([o.key for o in report.orphans])
        report.deleted = len(report.orphans)
    return report


def describe(report: GCReport, *, delete: bool, older_than: timedelta) -> list[str]:
    hours = older_than.total_seconds() / 3600
    lines = [
        f"Scanned {report.scanned} objects under {report.location}",
        f"  referenced by an XCom row: {report.referenced}",
        f"  unreferenced but younger than {hours:g} h (kept): {report.too_young}",
        f"  orphans: {len(report.orphans)} ({report.orphan_bytes} bytes)",
    ]
    lines += [f"    {o.size:>10} B  {o.modified:%Y-%m-%d %H:%M}  {o.key}" for o in report.orphans[:50]]
    if len(report.orphans) > 50:
        lines.append(f"    ... and {len(report.orphans) - 50} more")
    if report.refused:
        lines.append(f"  rows whose reference is not under the row's own location (they protect nothing; "
                     f"delete these rows): {len(report.refused)}")  # fmt: skip
        lines += [f"    {reason}" for reason in report.refused[:50]]
        if len(report.refused) > 50:
            lines.append(f"    ... and {len(report.refused) - 50} more")
    lines.append(
        f"Deleted {report.deleted} orphans ({report.orphan_bytes} bytes)."
        if delete
        else "Dry run: nothing deleted. Run again with --delete to delete the orphans."
    )
    return lines
