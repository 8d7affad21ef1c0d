"""get_all/aget_all fetch the objects of many references a few at a time (include/xcom_backends/fanin.py).

The task SDK's messages are answered by a stand-in for the supervisor channel, as in
test_row_confinement.py; the store is the in-memory one, slowed down and instrumented to count the
fetches in flight."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from include.xcom_backends.backend import ObjectStorageXCom
from include.xcom_backends.errors import (
    XComIntegrityError,
    XComObjectMissingError,
    XComReferenceError,
    XComStorageConfigError,
)
from include.xcom_backends.fanin import read_in_order
from include.xcom_backends.settings import XComStorageSettings
from tests.unit.memory import IDS, MemoryStore, push

pytestmark = pytest.mark.usefixtures("mem_backend")

PULL: dict[str, Any] = {"key": "return_value", "dag_id": "d", "task_id": "t", "run_id": "r"}


class CountingStore(MemoryStore):
    """The in-memory store, each read taking ``delay(key)`` seconds, counting the reads in flight."""

    lock: ClassVar[threading.Lock] = threading.Lock()
    in_flight: ClassVar[int] = 0
    most: ClassVar[int] = 0
    read: ClassVar[list[str]] = []
    delays: ClassVar[dict[str, float]] = {}

    def _get(self, key: str, start: int, length: int | None) -> bytes:
        cls = CountingStore
        with cls.lock:
            cls.in_flight += 1
            cls.most = max(cls.most, cls.in_flight)
            cls.read.append(key)
        try:
            time.sleep(cls.delays.get(key, 0.002))
            return super()._get(key, start, length)
        finally:
            with cls.lock:
                cls.in_flight -= 1


class Counted(ObjectStorageXCom):
    store_class = CountingStore
    default_conn_id = "mem_conn"


@dataclass
class Supervisor:
    """Answers GetXComSequenceSlice with the values of ``rows`` (map index -> stored value), in order."""

    rows: dict[int, Any]

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import XComSequenceSliceResult

        assert type(msg).__name__ == "GetXComSequenceSlice", msg
        assert (msg.key, msg.dag_id, msg.task_id, msg.run_id) == tuple(PULL.values())
        return XComSequenceSliceResult(root=[self.rows[i] for i in sorted(self.rows)])

    async def asend(self, msg: Any) -> Any:
        return self.send(msg)


@pytest.fixture(autouse=True)
def counting() -> Iterator[None]:
    CountingStore.in_flight = CountingStore.most = 0
    CountingStore.read.clear()
    CountingStore.delays.clear()
    yield
    assert not [t for t in threading.enumerate() if t.name.startswith("xcom-read")], "a pool thread outlived the call"


@pytest.fixture
def supervisor(monkeypatch: pytest.MonkeyPatch) -> Supervisor:
    from airflow.sdk.execution_time import task_runner

    sup = Supervisor({})
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", sup, raising=False)
    return sup


def concurrency(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__READ_CONCURRENCY", str(n))
    ObjectStorageXCom.reset()


def key_of(ref: dict[str, Any]) -> str:
    return str(ref["uri"]).split("/", 3)[3]


def fill(sup: Supervisor, n: int, value: Any = lambda i: {"i": i}) -> list[dict[str, Any]]:
    refs = [push(Counted, value(i), map_index=i) for i in range(n)]
    sup.rows.update(enumerate(refs))
    return refs


def sequential_error(sup: Supervisor, monkeypatch: pytest.MonkeyPatch) -> BaseException:
    concurrency(monkeypatch, 1)
    with pytest.raises(Exception) as err:
        Counted.get_all(**PULL)
    return err.value


# --- order, bound, inline values ------------------------------------------------------------------


def test_values_come_back_in_order_whatever_finishes_first(
    supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = fill(supervisor, 40)
    for i, ref in enumerate(refs):  # the first ones are the slowest
        CountingStore.delays[key_of(ref)] = 0.02 if i % 8 == 0 else 0.001
    concurrency(monkeypatch, 8)
    assert Counted.get_all(**PULL) == [{"i": i} for i in range(40)]
    assert CountingStore.most > 1, "the reads did not overlap"
    assert asyncio.run(Counted.aget_all(**PULL)) == [{"i": i} for i in range(40)]


@pytest.mark.parametrize("limit", [1, 3, 8])
def test_fetches_in_flight_never_exceed_read_concurrency(
    supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    fill(supervisor, 30)
    CountingStore.delays.update(dict.fromkeys(map(key_of, supervisor.rows.values()), 0.01))
    concurrency(monkeypatch, limit)
    assert Counted.get_all(**PULL) == [{"i": i} for i in range(30)]
    assert CountingStore.most == limit
    assert len(CountingStore.read) == 30


def test_nothing_is_fetched_beyond_the_window_while_the_first_value_waits() -> None:
    release, started = threading.Event(), []

    def decode(i: int) -> int:
        started.append(i)
        if i == 0:
            assert release.wait(5)
        return i * 10

    def watch() -> None:
        time.sleep(0.2)  # the other decodes are instant: whatever could start has started
        seen.extend(started)
        release.set()

    seen: list[int] = []
    watcher = threading.Thread(target=watch)
    watcher.start()
    assert read_in_order(list(range(20)), decode, lambda _: True, 4) == [i * 10 for i in range(20)]
    watcher.join()
    assert sorted(seen) == [0, 1, 2, 3]


def test_inline_values_and_default_backend_rows_go_through_unchanged(
    supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.bases.xcom import BaseXCom

    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__THRESHOLD_BYTES", "1000")
    ObjectStorageXCom.reset()
    inline = {
        1: push(Counted, (1, "tuple"), map_index=1),
        3: push(Counted, {"__type": "looks like serde"}, map_index=3),
    }
    assert all("uri" not in v for v in inline.values() if isinstance(v, dict))
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__THRESHOLD_BYTES", "0")
    concurrency(monkeypatch, 4)
    supervisor.rows.update(
        {
            0: push(Counted, "stored", map_index=0),
            **inline,
            2: BaseXCom.serialize_value({"written": "by Airflow's default backend"}),
            4: push(Counted, [4], map_index=4),
        }
    )
    default_row = {"written": "by Airflow's default backend"}
    expected = ["stored", (1, "tuple"), default_row, {"__type": "looks like serde"}, [4]]
    assert Counted.get_all(**PULL) == expected
    assert len(CountingStore.read) == 2


def test_no_values_is_none(supervisor: Supervisor) -> None:
    assert Counted.get_all(**PULL) is None
    assert asyncio.run(Counted.aget_all(**PULL)) is None


# --- errors: the sequential path's, in order --------------------------------------------------


def test_the_first_error_in_order_is_raised(supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    refs = fill(supervisor, 12)
    del MemoryStore.objects[("airflow-xcom", key_of(refs[3]))]  # missing, and slow to say so
    CountingStore.delays[key_of(refs[3])] = 0.05
    MemoryStore.objects[("airflow-xcom", key_of(refs[5]))] = b'{"i": 500}'  # corrupted, found at once
    CountingStore.delays[key_of(refs[5])] = 0
    expected = sequential_error(supervisor, monkeypatch)
    assert isinstance(expected, XComObjectMissingError)

    concurrency(monkeypatch, 8)
    with pytest.raises(XComObjectMissingError) as err:
        Counted.get_all(**PULL)
    assert str(err.value) == str(expected)
    with pytest.raises(XComObjectMissingError, match="does not exist"):
        asyncio.run(Counted.aget_all(**PULL))


def test_an_error_stops_new_fetches(supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    refs = fill(supervisor, 200)
    del MemoryStore.objects[("airflow-xcom", key_of(refs[0]))]
    concurrency(monkeypatch, 4)
    with pytest.raises(XComObjectMissingError):
        Counted.get_all(**PULL)
    assert len(CountingStore.read) < 20


def test_a_malformed_reference_after_a_failing_fetch_does_not_win(
    supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = fill(supervisor, 6)
    del MemoryStore.objects[("airflow-xcom", key_of(refs[1]))]
    CountingStore.delays[key_of(refs[1])] = 0.05
    supervisor.rows[4] = {"__xcom_storage__": 1, "uri": "mem://airflow-xcom/xcom/x.json", "size": "many"}
    expected = sequential_error(supervisor, monkeypatch)
    concurrency(monkeypatch, 8)
    with pytest.raises(type(expected)) as err:
        Counted.get_all(**PULL)
    assert str(err.value) == str(expected)
    # Without the missing object, the malformed reference is the first error, as in the loop.
    MemoryStore.objects[("airflow-xcom", key_of(refs[1]))] = b'{"i":1}'
    with pytest.raises(XComReferenceError, match="Malformed XCom storage reference"):
        Counted.get_all(**PULL)


def test_integrity_failure_is_caught_in_the_concurrent_path(
    supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = fill(supervisor, 10)
    stored = MemoryStore.objects[("airflow-xcom", key_of(refs[6]))]
    MemoryStore.objects[("airflow-xcom", key_of(refs[6]))] = stored.replace(b"6", b"7")  # same size
    expected = sequential_error(supervisor, monkeypatch)
    concurrency(monkeypatch, 8)
    with pytest.raises(XComIntegrityError, match="is corrupted") as err:
        Counted.get_all(**PULL)
    assert str(err.value) == str(expected) and refs[6]["uri"] in str(err.value)


@pytest.mark.parametrize("other", [{"task_id": "t2"}, {"dag_id": "other_dag"}, {"key": "other_key"}])
def test_a_reference_of_another_row_is_refused_in_the_concurrent_path(
    supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch, other: dict[str, Any]
) -> None:
    fill(supervisor, 8)
    victim = push(Counted, {"secret": "of the other row"}, **{**IDS, "map_index": 5, **other})
    supervisor.rows[5] = victim
    expected = sequential_error(supervisor, monkeypatch)
    assert isinstance(expected, XComReferenceError) and "not under that row's own location" in str(expected)
    CountingStore.read.clear()

    concurrency(monkeypatch, 8)
    with pytest.raises(XComReferenceError, match="not under that row's own location") as err:
        Counted.get_all(**PULL)
    assert str(err.value) == str(expected)
    assert key_of(victim) not in CountingStore.read, "the other row's object must not be read"
    with pytest.raises(XComReferenceError, match="not under that row's own location"):
        asyncio.run(Counted.aget_all(**PULL))
    assert key_of(victim) not in CountingStore.read


# --- the setting -----------------------------------------------------------------------------------

GOOD = {
    "bucket": "b",
    "prefix": "xcom",
    "conn_id": "c",
    "threshold_bytes": "0",
    "compression": "snappy",
    "dataframe_format": "parquet",
}


def test_read_concurrency_default_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__XCOM_STORAGE__READ_CONCURRENCY", raising=False)
    assert XComStorageSettings.from_airflow_config(default_conn_id="c").read_concurrency == 8
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__READ_CONCURRENCY", "16")
    assert XComStorageSettings.from_airflow_config(default_conn_id="c").read_concurrency == 16
    assert XComStorageSettings.parse(**GOOD, read_concurrency="1").read_concurrency == 1


@pytest.mark.parametrize("value", ["0", "-2", "65", "many", "2.5", ""])
def test_invalid_read_concurrency_names_the_setting_and_the_fix(value: str) -> None:
    with pytest.raises(
        XComStorageConfigError,
        match=r"\[xcom_storage\] read_concurrency = .*expected a whole number from 1 .* to 64\. "
        r"Fix AIRFLOW__XCOM_STORAGE__READ_CONCURRENCY",
    ):
        XComStorageSettings.parse(**GOOD, read_concurrency=value)


def test_an_invalid_read_concurrency_fails_the_pull(supervisor: Supervisor, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(supervisor, 2)
    concurrency(monkeypatch, 0)
    with pytest.raises(XComStorageConfigError, match="read_concurrency"):
        Counted.get_all(**PULL)
