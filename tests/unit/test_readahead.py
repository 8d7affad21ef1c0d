"""Read-ahead of a mapped task's values read one at a time (include/xcom_backends/readahead.py), as
Airflow's LazyXComSequence reads them: one item request, then ``deserialize_value`` with no row
identity. The supervisor channel is a stand-in answering slice requests from ``rows``; the store is
the in-memory one, counting reads and the threads they ran in."""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from include.xcom_backends import backend as backend_module
from include.xcom_backends import readahead
from include.xcom_backends.backend import ObjectStorageXCom
from include.xcom_backends.errors import XComIntegrityError
from include.xcom_backends.keys import XComRow, encode_segment, object_key, row_of
from tests.unit.memory import MemoryStore, push

pytestmark = pytest.mark.usefixtures("mem_backend")
Item = collections.namedtuple("Item", "value")  # what LazyXComSequence hands deserialize_value


class RecordingStore(MemoryStore):
    reads: ClassVar[list[tuple[str, str]]] = []  # (key, thread name)

    def _get(self, key: str, start: int, length: int | None) -> bytes:
        RecordingStore.reads.append((key, threading.current_thread().name))
        return super()._get(key, start, length)


class Recorded(ObjectStorageXCom):
    store_class = RecordingStore
    default_conn_id = "mem_conn"


@dataclass
class Supervisor:
    """Answers GetXComSequenceSlice for the upstream ``t`` of run ``r`` from ``rows`` (offset order),
    shifted by ``shift`` offsets when asked to misbehave."""

    rows: list[Any] = field(default_factory=list)
    slices: list[tuple[int, int]] = field(default_factory=list)
    shift: int = 0

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import XComSequenceSliceResult

        assert type(msg).__name__ == "GetXComSequenceSlice", msg
        assert (msg.dag_id, msg.run_id, msg.task_id, msg.key) == ("d", "r", "t", "return_value")
        self.slices.append((msg.start, msg.stop))
        return XComSequenceSliceResult(root=self.rows[msg.start + self.shift : msg.stop + self.shift])


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    RecordingStore.reads.clear()
    yield
    ObjectStorageXCom.reset()  # closes the read-ahead's threads
    assert not [t for t in threading.enumerate() if t.name.startswith("xcom-read-ahead")]


@pytest.fixture
def supervisor(monkeypatch: pytest.MonkeyPatch) -> Supervisor:
    from airflow.sdk.execution_time import task_runner

    sup = Supervisor()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", sup, raising=False)
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__READ_CONCURRENCY", "4")
    ObjectStorageXCom.reset()
    return sup


def fill(sup: Supervisor, n: int) -> None:
    sup.rows = [push(Recorded, {"i": i, "pad": "x" * 50}, map_index=i) for i in range(n)]
    RecordingStore.reads.clear()


def walk(sup: Supervisor, order: Iterator[int] | range) -> list[Any]:
    return [Recorded.deserialize_value(Item(sup.rows[i])) for i in order]


def test_a_walk_reads_every_object_once_mostly_ahead_and_in_order(supervisor: Supervisor) -> None:
    fill(supervisor, 100)
    assert walk(supervisor, range(100)) == [{"i": i, "pad": "x" * 50} for i in range(100)]
    keys = [key for key, _ in RecordingStore.reads]
    assert len(keys) == len(set(keys)) == 100  # nothing read twice
    ahead = [key for key, thread in RecordingStore.reads if thread.startswith("xcom-read-ahead")]
    assert len(ahead) >= 97  # the first two items, before the walk is seen, are read in the task's thread
    # A slice of the next references every few items (window 8 for read_concurrency 4), not per item.
    assert 10 <= len(supervisor.slices) <= 30
    assert backend_module._READ_AHEAD is not None and backend_module._READ_AHEAD.hits >= 97


def test_random_access_reads_nothing_ahead(supervisor: Supervisor) -> None:
    fill(supervisor, 30)
    order = [5, 17, 2, 29, 11, 0, 8]
    assert walk(supervisor, iter(order)) == [{"i": i, "pad": "x" * 50} for i in order]
    assert supervisor.slices == [] and len(RecordingStore.reads) == len(order)


def test_offsets_that_are_not_map_indexes_stop_the_read_ahead(supervisor: Supervisor) -> None:
    fill(supervisor, 60)
    supervisor.shift = 25  # every slice answers other items than those the walk reads next
    assert walk(supervisor, range(40)) == [{"i": i, "pad": "x" * 50} for i in range(40)]
    assert len(supervisor.slices) <= 3  # one window missed in full: no more asking


def test_an_object_tampered_with_is_refused_though_fetched_ahead(supervisor: Supervisor) -> None:
    fill(supervisor, 10)
    victim = json.loads(json.dumps(supervisor.rows[6]))
    key = str(victim["uri"]).split("/", 3)[3]
    store_key = next(k for k in MemoryStore.objects if k[1] == key)
    MemoryStore.objects[store_key] = (
        json.dumps({"i": 666, "pad": "x" * 50}).encode()[: victim["size"]].ljust(victim["size"], b" ")
    )
    walk(supervisor, range(6))
    with pytest.raises(XComIntegrityError, match="corrupted"):
        walk(supervisor, iter([6]))


def test_bytes_fetched_for_another_reference_are_not_used(supervisor: Supervisor) -> None:
    fill(supervisor, 12)
    walk(supervisor, range(4))  # objects 5.. are on their way
    other = dict(supervisor.rows[7])
    other["digest"] = "sha256:" + "0" * 64  # the same object named with another digest
    with pytest.raises(XComIntegrityError):
        Recorded.deserialize_value(Item(other))


def test_the_read_ahead_only_fetches_under_the_upstreams_own_location(supervisor: Supervisor) -> None:
    fill(supervisor, 8)
    elsewhere = push(Recorded, {"secret": 1}, dag_id="another_dag", map_index=5)
    supervisor.rows[5] = elsewhere  # a row of this upstream pointing at another DAG's object
    RecordingStore.reads.clear()
    walk(supervisor, range(4))
    assert not [key for key, _ in RecordingStore.reads if key.split("/")[1] == "another_dag"]


def test_large_objects_are_not_read_ahead(supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readahead, "MAX_OBJECT_BYTES", 10)
    fill(supervisor, 10)
    assert walk(supervisor, range(10)) == [{"i": i, "pad": "x" * 50} for i in range(10)]
    assert not [key for key, thread in RecordingStore.reads if thread.startswith("xcom-read-ahead")]


def test_read_concurrency_1_turns_it_off(supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__READ_CONCURRENCY", "1")
    ObjectStorageXCom.reset()
    fill(supervisor, 20)
    walk(supervisor, range(20))
    assert supervisor.slices == [] and all(t == threading.current_thread().name for _, t in RecordingStore.reads)


def test_outside_a_task_process_there_is_no_read_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.execution_time import task_runner

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", None, raising=False)
    rows = [push(Recorded, {"i": i}, map_index=i) for i in range(10)]
    assert [Recorded.deserialize_value(Item(r)) for r in rows] == [{"i": i} for i in range(10)]
    assert backend_module._READ_AHEAD is None


@pytest.mark.parametrize(
    "ids",
    [
        {"dag_id": "d", "run_id": "manual__2026-01-01T00:00:00+00:00", "task_id": "t", "map_index": 3, "key": "k"},
        {"dag_id": "", "run_id": "é/..", "task_id": ".", "map_index": None, "key": "a/b%c"},
        {"dag_id": "dag.with.dots", "run_id": "r", "task_id": "..", "map_index": 0, "key": "return_value"},
    ],
)
def test_row_of_reads_back_the_ids_the_key_was_made_for(ids: dict[str, Any]) -> None:
    row = XComRow.of(**ids)
    assert row_of(object_key(prefix="p/q", row=row, extension="json"), "p/q") == row


def test_row_of_tells_nothing_of_cut_ids_or_foreign_keys() -> None:
    long = XComRow.of(dag_id="d", run_id="r", task_id="x" * 300, map_index=1, key="k")
    assert row_of(object_key(prefix="p", row=long, extension="json"), "p") is None
    marked = XComRow.of(dag_id="\x00empty", run_id="r", task_id="t", map_index=1, key="k")  # cut: see keys.py
    assert row_of(object_key(prefix="p", row=marked, extension="json"), "p") is None
    assert row_of("p/d/r/t/1/k/notes.txt", "p") is None
    assert row_of("other/d/r/t/1/k/" + "a" * 32 + ".json", "p") is None
    assert row_of("p/d/r/t/one/k/" + "a" * 32 + ".json", "p") is None
    assert row_of(f"p/d/r/t/1/{encode_segment('k')}x%zz/" + "a" * 32 + ".json", "p") is None
