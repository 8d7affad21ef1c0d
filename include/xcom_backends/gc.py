"""Clean-up of orphaned objects: objects under the prefix that no XCom row references any more.

Orphans appear because ``airflow db clean``, deleting a DAG run and re-running ``airflow dags test``
remove XCom rows without calling the backend's purge. The references are read **read-only from the
metadata database** (one SELECT of the xcom table's value column): gc needs one consistent view of
every row, and it runs where Airflow runs, with the database configured; the REST API would need a
user token and paging through every XCom entry. Dry run by default; only objects older than the age
limit are candidates, so values being pushed right now (object written, row not yet committed) are safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from include.xcom_backends.backend import ObjectStorageXCom
from include.xcom_backends.reference import is_reference, stored_value
from include.xcom_backends.stores.base import ObjectInfo


@dataclass
class GCReport:
    location: str
    scanned: int = 0
    referenced: int = 0
    too_young: int = 0
    orphans: list[ObjectInfo] = field(default_factory=list)
    deleted: int = 0

    @property
    def orphan_bytes(self) -> int:
        return sum(o.size for o in self.orphans)


def referenced_uris() -> set[str]:
    """Every object URI referenced by an XCom row in the metadata database (read-only)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    uris: set[str] = set()
    with create_session() as session:
        for (column,) in session.execute(select(XComModel.value)).yield_per(1000):
            value = stored_value(column)
            if is_reference(value):
                uris.add(value["uri"])
    return uris


def collect(backend: type[ObjectStorageXCom], *, older_than: timedelta, delete: bool,
            now: datetime | None = None, references: set[str] | None = None) -> GCReport:  # fmt: skip
    rt = backend.runtime()
    prefix = f"{rt.settings.prefix}/" if rt.settings.prefix else ""
    cutoff = (now or datetime.now(UTC)) - older_than
    # Objects are listed before the references are read: an object written after the listing is not
    # looked at, and one whose row is committed meanwhile is seen as referenced.
    objects = list(rt.store.list(rt.settings.bucket, prefix))
    refs = referenced_uris() if references is None else references
    report = GCReport(location=rt.uri(rt.settings.prefix), scanned=len(objects))
    for obj in objects:
        if rt.uri(obj.key) in refs:
            report.referenced += 1
        elif obj.modified > cutoff:
            report.too_young += 1
        else:
            report.orphans.append(obj)
    if delete and report.orphans:
        rt.store.delete(rt.settings.bucket, [o.key for o in report.orphans])
        report.deleted = len(report.orphans)
    return report


def describe(report: GCReport, *, delete: bool, older_than: timedelta) -> list[str]:
    hours = older_than.total_seconds() / 3600
    lines = [
        f"Scanned {report.scanned} objects under {report.location}/",
        f"  referenced by an XCom row: {report.referenced}",
        f"  unreferenced but younger than {hours:g} h (kept): {report.too_young}",
        f"  orphans: {len(report.orphans)} ({report.orphan_bytes} bytes)",
    ]
    lines += [f"    {o.size:>10} B  {o.modified:%Y-%m-%d %H:%M}  {o.key}" for o in report.orphans[:50]]
    if len(report.orphans) > 50:
        lines.append(f"    ... and {len(report.orphans) - 50} more")
    lines.append(
        f"Deleted {report.deleted} orphans ({report.orphan_bytes} bytes)."
        if delete
        else "Dry run: nothing deleted. Run again with --delete to delete the orphans."
    )
    return lines
