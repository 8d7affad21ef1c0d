"""A reference is followed (read, previewed, purged) only for the XCom row the backend wrote it for.

Crafted references into another DAG, run, task, map index or key are refused on every path, and no
object is read or deleted. The task SDK's calls are driven through its real ``BaseXCom`` code with a
recording stand-in for the supervisor channel (the real path runs in tests/integration)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

from include.xcom_backends.errors import XComReferenceError
from include.xcom_backends.ui import preview
from include.xcom_backends.ui.preview import preview_xcom
from localdev.inprocess import Result
from tests.unit.memory import IDS, MemJSON, MemoryStore, MemPandas, push, row, stored_row

pytestmark = pytest.mark.usefixtures("mem_backend")

OTHER_ROWS = {
    "another DAG": {"dag_id": "other_dag"},
    "another run": {"run_id": "r2"},
    "another task": {"task_id": "t2"},
    "another map index": {"map_index": 4},
    "another key": {"key": "other_key"},
}


@dataclass
class Supervisor:
    """Answers the task SDK's XCom messages from a dict of rows and records deletions."""

    rows: dict[tuple[str, str, str, int, str], Any]
    deleted: list[Any] = field(default_factory=list)

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import XComResult, XComSequenceSliceResult

        name = type(msg).__name__
        if name == "GetXCom":
            ident = (msg.dag_id, msg.run_id, msg.task_id, -1 if msg.map_index is None else msg.map_index, msg.key)
            return XComResult(key=msg.key, value=self.rows.get(ident))
        if name == "GetXComSequenceSlice":
            wanted = (msg.dag_id, msg.run_id, msg.task_id, msg.key)
            values = [v for (d, r, t, _, k), v in sorted(self.rows.items()) if (d, r, t, k) == wanted]
            return XComSequenceSliceResult(root=values)
        if name == "DeleteXCom":
            self.deleted.append(msg)
            return None
        raise AssertionError(f"unexpected message {msg!r}")


@pytest.fixture
def supervisor(monkeypatch: pytest.MonkeyPatch) -> Supervisor:
    from airflow.sdk.execution_time import task_runner

    sup = Supervisor({})
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", sup, raising=False)
    return sup


def ident(**kw: Any) -> tuple[str, str, str, int, str]:
    ids = {**IDS, **kw}
    return ids["dag_id"], ids["run_id"], ids["task_id"], ids["map_index"], ids["key"]


@pytest.mark.parametrize("other", OTHER_ROWS.values(), ids=OTHER_ROWS.keys())
def test_crafted_reference_is_refused_for_pull_preview_and_purge(supervisor: Supervisor, other: dict[str, Any]) -> None:
    victim = push(MemJSON, {"secret": "of the other row"}, **other)
    mine = push(MemJSON, "mine")
    objects = dict(MemoryStore.objects)
    crafted = victim  # the other row's reference, written into my row (UI's "Add XCom", REST API, a task)
    supervisor.rows[ident()] = crafted

    with pytest.raises(XComReferenceError, match="not under that row's own location") as err:
        MemJSON.get_one(**{k: v for k, v in IDS.items()})
    assert victim["uri"] in str(err.value) and "dag_id='d'" in str(err.value) and "key='return_value'" in str(err.value)

    p = preview_xcom(MemJSON, row(), crafted)
    assert p.error and "not under that row's own location" in p.error and p.text is None and p.rows == []

    with pytest.raises(XComReferenceError, match="not under that row's own location"):
        MemJSON.delete(**IDS)
    assert supervisor.deleted == []  # the row stays, so the refusal is seen (docs/security.md)
    with pytest.raises(XComReferenceError):
        MemJSON.purge(stored_row(crafted))

    assert MemoryStore.objects == objects, "nothing may be deleted"
    assert "delete" not in MemoryStore.calls
    assert [c for c in MemoryStore.calls if c != "put"] == [], "nothing of the other row may be read"
    # The rightful rows still work.
    supervisor.rows[ident()] = mine
    assert MemJSON.get_one(**IDS) == "mine"
    supervisor.rows[ident(**other)] = victim
    assert MemJSON.get_one(**{**IDS, **other}) == {"secret": "of the other row"}


def test_delete_purges_its_own_object_with_the_rows_identity(supervisor: Supervisor) -> None:
    supervisor.rows[ident()] = push(MemJSON, [1, 2])
    keep = push(MemJSON, [3], task_id="t2")
    MemJSON.delete(**IDS)
    assert len(supervisor.deleted) == 1
    assert list(MemoryStore.objects) == [("airflow-xcom", keep["uri"].split("/", 3)[3])]


def test_purge_without_the_rows_identity_deletes_nothing() -> None:
    ref = push(MemJSON, [1])
    with pytest.raises(XComReferenceError, match="without the identity of its XCom row"):
        MemJSON.purge(Result(ref))
    from include.xcom_backends.backend import _row

    with _row(row()), pytest.raises(XComReferenceError, match="key 'other'"):  # delete() of one key, purge of another
        MemJSON.purge(_KeyOnly("other", ref))
    assert len(MemoryStore.objects) == 1 and "delete" not in MemoryStore.calls


@dataclass
class _KeyOnly:
    key: str
    value: Any


def test_pull_of_all_map_indexes_and_prior_dates_checks_what_it_knows(supervisor: Supervisor) -> None:
    for i in range(3):
        supervisor.rows[ident(map_index=i)] = push(MemJSON, i, map_index=i)
    assert MemJSON.get_all(key="return_value", dag_id="d", task_id="t", run_id="r") == [0, 1, 2]
    supervisor.rows[ident(map_index=3)] = push(MemJSON, "not mine", task_id="t2", map_index=3)
    with pytest.raises(XComReferenceError, match="task_id='t'"):
        MemJSON.get_all(key="return_value", dag_id="d", task_id="t", run_id="r")
    # include_prior_dates: the row may be of any run, but still of this DAG, task and key.
    supervisor.rows[ident(map_index=7)] = push(MemJSON, "earlier run", run_id="r0", map_index=7)
    assert MemJSON.get_one(**{**IDS, "map_index": 7}, include_prior_dates=True) == "earlier run"
    with pytest.raises(XComReferenceError):
        MemJSON.get_one(**{**IDS, "map_index": 7})


def test_a_value_without_identity_is_confined_to_the_shape_of_our_keys() -> None:
    ref = push(MemJSON, [1], dag_id="any")
    assert MemJSON.deserialize_value(Result(ref)) == [1]  # e.g. an item of a lazy sequence
    bad = {**ref, "uri": ref["uri"].rsplit("/", 1)[0] + "/not-a-uuid.json"}
    with pytest.raises(XComReferenceError):
        MemJSON.deserialize_value(Result(bad))


def test_one_malformed_row_does_not_break_the_others() -> None:
    good = push(MemJSON, {"a": 1})
    malformed = {"__xcom_storage__": 1, "uri": "mem://airflow-xcom/xcom/x.json", "size": "many"}
    p = preview_xcom(MemJSON, row(), malformed)
    assert p.error and "Malformed XCom storage reference" in p.error
    assert preview_xcom(MemJSON, row(), good).error is None


def test_a_decoding_key_error_is_not_a_missing_object(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = push(MemPandas, pd.DataFrame({"a": [1, 2]}))

    def broken(_preview: Any, _frame: Any) -> None:
        raise KeyError("a column")

    monkeypatch.setattr(preview, "_fill_frame", broken)
    p = preview_xcom(MemPandas, row(), ref)
    assert p.error == "KeyError: 'a column'" and "does not exist" not in p.error
