"""gc deletes only what the backend wrote, for this deployment (with the in-memory store; the same
through the CLI, a real metadata database and SeaweedFS is in tests/integration/test_gc.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include.xcom_backends.errors import XComStorageConfigError
from include.xcom_backends.ops import ownership
from include.xcom_backends.ops.doctor import run_checks
from include.xcom_backends.ops.gc import GCReport, References, collect
from tests.unit.memory import MemJSON, MemoryStore, push

pytestmark = pytest.mark.usefixtures("mem_backend")
OLD = datetime(2020, 1, 1, tzinfo=UTC)
FOREIGN = [
    "xcom/notes.txt",
    "xcom/team-b-exports/report.csv",
    "xcom/d/r/t/-1/return_value/notes.json",
    "xcom/d/r/t/-1/return_value/" + "a" * 32 + ".json/extra",
    "backups/metadata-db.sql.gz",
]


def put_old(key: str, data: bytes = b"not the backend's") -> None:
    MemoryStore.objects[("airflow-xcom", key)] = data
    MemoryStore.modified[("airflow-xcom", key)] = OLD


def keys() -> set[str]:
    return {key for (_, key) in MemoryStore.objects}


def sweep(deployment: str | None = "us", whole_bucket: bool = False) -> GCReport:
    return collect(
        MemJSON,
        older_than=timedelta(0),
        delete=True,
        deployment=deployment,
        references=References(),
        whole_bucket=whole_bucket,
    )


def test_gc_deletes_only_keys_of_the_backends_own_shape() -> None:
    for key in FOREIGN:
        put_old(key)
    orphan = push(MemJSON, {"orphan": True})
    ownership.claim(MemJSON.runtime(), "us")
    report = sweep()
    assert (report.deleted, report.not_ours) == (1, 5)  # four foreign objects and the marker
    assert keys() == {*FOREIGN, "xcom/" + ownership.MARKER_NAME}
    assert orphan["uri"].removeprefix("mem://airflow-xcom/") not in keys()


def test_gc_refuses_an_unclaimed_location() -> None:
    put_old("xcom/d/r/t/-1/return_value/" + "b" * 32 + ".json")
    with pytest.raises(ownership.OwnershipError, match=r"has not been claimed by this deployment.*doctor"):
        sweep()
    with pytest.raises(ownership.OwnershipError, match="Airflow Variable xcom_storage_deployment_id"):
        sweep(deployment=None)
    assert len(keys()) == 1


def test_two_deployments_on_one_location_are_refused_by_doctor_and_gc() -> None:
    victim = "xcom/d/r/t/-1/return_value/" + "c" * 32 + ".json"  # live in the first deployment
    put_old(victim)
    first = run_checks(MemJSON, deployment="first")
    assert all(step.ok for step in first) and "claimed" in next(s.detail for s in first if s.name == "owner")
    second = run_checks(MemJSON, deployment="second")
    assert [s.name for s in second if not s.ok] == ["owner"] and second[-1].name == "owner"
    assert "belongs to another Airflow deployment" in second[-1].detail and "'first'" in second[-1].detail
    assert "its own bucket or [xcom_storage] prefix" in second[-1].detail
    with pytest.raises(ownership.OwnershipError, match="belongs to another Airflow deployment"):
        sweep(deployment="second")
    assert victim in keys()
    assert all(s.ok for s in run_checks(MemJSON, deployment="first"))


def test_take_over_is_explicit() -> None:
    ownership.claim(MemJSON.runtime(), "gone")
    with pytest.raises(ownership.OwnershipError):
        ownership.claim(MemJSON.runtime(), "new")
    assert "taken over from deployment 'gone'" in ownership.claim(MemJSON.runtime(), "new", take_over=True)
    ownership.check(MemJSON.runtime(), "new")


def test_a_marker_we_did_not_write_is_refused() -> None:
    put_old("xcom/" + ownership.MARKER_NAME, b"x" * (ownership.MARKER_MAX_BYTES + 10))
    with pytest.raises(ownership.OwnershipError, match="not an ownership marker"):
        sweep()


def test_an_empty_prefix_needs_whole_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__PREFIX", "")
    for key in FOREIGN:
        put_old(key)
    orphan = push(MemJSON, ["at the root"])
    ownership.claim(MemJSON.runtime(), "us")
    with pytest.raises(XComStorageConfigError, match="--whole-bucket"):
        sweep()
    report = sweep(whole_bucket=True)
    assert report.deleted == 1
    assert keys() == {*FOREIGN, ownership.MARKER_NAME}
    assert orphan["uri"].removeprefix("mem://airflow-xcom/") not in keys()
