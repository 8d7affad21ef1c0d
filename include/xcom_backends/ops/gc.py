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

gc deletes only what this backend wrote, for this deployment:
- only keys of the exact shape the backend writes (the row's five id segments under the prefix, then
  a ``<uuid>.<ext>`` name); anything else under the prefix is counted and never touched;
- only at a location this deployment has claimed (``ownership.py``): a missing marker, or one that
  names another deployment, stops gc before it lists anything;
- never at the bucket's root (an empty prefix) unless ``whole_bucket`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from include.xcom_backends import dbform
from include.xcom_backends.backend import ObjectStorageXCom, StoreRuntime
from include.xcom_backends.dbform import Reference, stored_value
from include.xcom_backends.errors import XComReferenceError, XComStorageConfigError
from include.xcom_backends.keys import XComRow, belongs_to, prefix_of
from include.xcom_backends.ops import ownership
from include.xcom_backends.routing import DEFAULT
from include.xcom_backends.stores.base import ObjectInfo


@dataclass
class GCReport:
    location: str
    scanned: int = 0
    referenced: int = 0
    too_young: int = 0
    not_ours: int = 0  # objects under the prefix that the backend does not write (never deleted)
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
    columns = (
        XComModel.dag_id,
        XComModel.run_id,
        XComModel.task_id,
        XComModel.map_index,
        XComModel.key,
        XComModel.value,
    )
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


def collect_all(
    backend: type[ObjectStorageXCom],
    *,
    older_than: timedelta,
    delete: bool,
    deployment: str | None,
    references: References | None = None,
    whole_bucket: bool = False,
) -> list[GCReport]:
    """``collect`` for every store the configuration names, each location once (two stores may share
    a bucket and prefix). Every location is checked before any is listed, and before the references
    are read (``references`` None: read once, for every location)."""
    runtimes = backend.runtimes()
    for rt in runtimes:
        guard(rt, deployment, whole_bucket=whole_bucket)
    refs = read_references(backend) if references is None else references
    return [_sweep(rt, older_than=older_than, delete=delete, references=refs) for rt in runtimes]


def guard(rt: StoreRuntime, deployment: str | None, *, whole_bucket: bool) -> None:
    """Raise unless gc may look at ``rt``'s location: a prefix (or ``whole_bucket``) and this
    deployment's ownership marker there."""
    if not rt.settings.prefix and not whole_bucket:
        raise XComStorageConfigError(
            f"{rt.location} is the root of bucket {rt.settings.bucket!r} ([xcom_storage] prefix is empty"
            f"{'' if rt.name == DEFAULT else f' for store {rt.name!r}'}): gc does not run on a whole bucket unless "
            "asked with --whole-bucket. Prefer a prefix of its own for XCom values."
        )
    ownership.check(rt, deployment)


def collect(
    backend: type[ObjectStorageXCom],
    *,
    older_than: timedelta,
    delete: bool,
    deployment: str | None,
    now: datetime | None = None,
    references: References | None = None,
    store: str = DEFAULT,
    whole_bucket: bool = False,
) -> GCReport:
    """The orphans under one store's prefix (``store``: a name of ``[xcom_storage] stores``)."""
    rt = backend.runtime(store)
    guard(rt, deployment, whole_bucket=whole_bucket)
    # Objects are listed before the references are read: an object written after the listing is not
    # looked at, and one whose row is committed meanwhile is seen as referenced.
    objects = list(rt.store.list(prefix_of(rt.settings.prefix)))
    refs = read_references(backend) if references is None else references
    return _sweep(rt, older_than=older_than, delete=delete, references=refs, now=now, objects=objects)


def _sweep(
    rt: StoreRuntime,
    *,
    older_than: timedelta,
    delete: bool,
    references: References,
    now: datetime | None = None,
    objects: list[ObjectInfo] | None = None,
) -> GCReport:
    """The orphans under ``rt``'s prefix, a location ``guard`` has let through (deleted with ``delete``)."""
    prefix = prefix_of(rt.settings.prefix)
    cutoff = (now or datetime.now(UTC)) - older_than
    objects = list(rt.store.list(prefix)) if objects is None else objects
    report = GCReport(location=rt.store.uri(prefix), scanned=len(objects), refused=references.refused)
    for obj in objects:
        if not belongs_to(obj.key, rt.settings.prefix, XComRow()):
            report.not_ours += 1  # not a key the backend writes for an XCom row: never a candidate
        elif rt.store.uri(obj.key) in references.uris:
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
        f"  not written by the backend for an XCom row (never deleted): {report.not_ours}",
        f"  referenced by an XCom row: {report.referenced}",
        f"  unreferenced but younger than {hours:g} h (kept): {report.too_young}",
        f"  orphans: {len(report.orphans)} ({report.orphan_bytes} bytes)",
    ]
    lines += [f"    {o.size:>10} B  {o.modified:%Y-%m-%d %H:%M}  {o.key}" for o in report.orphans[:50]]
    if len(report.orphans) > 50:
        lines.append(f"    ... and {len(report.orphans) - 50} more")
    if report.refused:
        lines.append(
            f"  rows whose reference is not under the row's own location (they protect nothing; "
            f"delete these rows): {len(report.refused)}"
        )
        lines += [f"    {reason}" for reason in report.refused[:50]]
        if len(report.refused) > 50:
            lines.append(f"    ... and {len(report.refused) - 50} more")
    lines.append(
        f"Deleted {report.deleted} orphans ({report.orphan_bytes} bytes)."
        if delete
        else "Dry run: nothing deleted. Run again with --delete to delete the orphans."
    )
    return lines
