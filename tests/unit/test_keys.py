from __future__ import annotations

from typing import Any

import pytest

from include.xcom_backends.keys import XComRow, belongs_to, encode_segment, is_inside, object_key, row_location

IDS: dict[str, Any] = {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1, "key": "return_value"}


def key(prefix: str = "xcom", extension: str = "json", **kw: object) -> str:
    return object_key(prefix=prefix, row=XComRow.of(**{**IDS, **kw}), extension=extension)


def test_layout() -> None:
    k = key(run_id="scheduled__2024-01-01T00:00:00+00:00", map_index=3)
    parts = k.split("/")
    assert parts[:6] == ["xcom", "d", "scheduled__2024-01-01T00:00:00%2B00:00", "t", "3", "return_value"]
    assert parts[6].endswith(".json") and len(parts) == 7


def test_unique_per_call() -> None:
    assert key() != key()


@pytest.mark.parametrize("evil", ["..", ".", "", "a/../../b", "/abs", "x/y", "spaced name", "ünï.cödé", "a" * 250])
def test_segments_cannot_escape_or_collide(evil: str) -> None:
    seg = encode_segment(evil)
    assert "/" not in seg and seg not in ("", ".", "..")
    assert is_inside(key(dag_id=evil, task_id=evil, key=evil), "xcom")


def test_distinct_ids_give_distinct_segments() -> None:
    ids = ["a b", "a+b", "a%2Bb", "a.b", "a_b", "a-b", "..", "%2E%2E", "A", "a"]
    assert len({encode_segment(i) for i in ids}) == len(ids)


@pytest.mark.parametrize(
    ("k", "inside"),
    [("xcom/a/b.json", True), ("xcomx/a.json", False), ("other/a.json", False), ("xcom/../a", False),
     ("/xcom/a", False), ("xcom//a", False), ("xcom", False)],
)  # fmt: skip
def test_is_inside(k: str, inside: bool) -> None:
    assert is_inside(k, "xcom") is inside


def test_long_unicode_ids_stay_within_key_limits_and_distinct() -> None:
    a, b = "ü" * 250, "ü" * 249 + "x"
    k = key(dag_id=a, task_id=a, run_id="r" * 250, key=b)
    assert len(k.encode()) <= 1024
    assert encode_segment(a) != encode_segment(b)
    assert all(len(seg) <= 160 for seg in k.split("/"))
    assert "%" not in encode_segment(a)[-20:-18]  # no escape cut in half before the hash


# --- a reference is followed only for its own row ----------------------------------------------------


def test_row_location_is_the_keys_folder() -> None:
    row = XComRow.of(**IDS)
    k = key()
    assert row_location("xcom", row) == "xcom/d/r/t/-1/return_value/" and k.startswith(row_location("xcom", row))
    assert belongs_to(k, "xcom", row)
    assert belongs_to(key(prefix=""), "", row)


@pytest.mark.parametrize(
    "other",
    [{"dag_id": "other_dag"}, {"run_id": "r2"}, {"task_id": "t2"}, {"map_index": 0}, {"map_index": 1},
     {"key": "other_key"}, {"key": "return_value/x"}],
)  # fmt: skip
def test_an_object_of_another_row_does_not_belong(other: dict[str, Any]) -> None:
    mine = XComRow.of(**IDS)
    theirs = key(**other)
    assert not belongs_to(theirs, "xcom", mine)
    assert belongs_to(theirs, "xcom", XComRow.of(**{**IDS, **other}))


@pytest.mark.parametrize(
    "k",
    ["xcom/d/r/t/-1/return_value/x.json", "xcom/d/r/t/-1/return_value/" + "a" * 32 + ".json/more",
     "xcom/d/r/t/-1/return_value/sub/" + "a" * 32 + ".json", "xcom/d/r/t/-1/" + "a" * 32 + ".json",
     "xcom/d/r/t/-1/return_value/" + "A" * 32 + ".json", "other/d/r/t/-1/return_value/" + "a" * 32 + ".json",
     "xcom/d/r/t/-1/return_value/../" + "a" * 32 + ".json"],
)  # fmt: skip
def test_only_the_exact_shape_the_backend_writes_belongs(k: str) -> None:
    assert not belongs_to(k, "xcom", XComRow.of(**IDS))


def test_partly_known_rows_check_what_is_known() -> None:
    k = key(run_id="scheduled__2024", map_index=3)
    assert belongs_to(k, "xcom", XComRow(dag_id="d", task_id="t", key="return_value"))  # any run, any index
    assert belongs_to(k, "xcom", XComRow())  # nothing known: the shape and the prefix only
    assert not belongs_to(k, "xcom", XComRow(dag_id="other", task_id="t", key="return_value"))
    assert row_location("xcom", XComRow(dag_id="d", key="k")) == "xcom/d/*/*/*/k/"


def test_an_object_key_needs_the_whole_identity() -> None:
    with pytest.raises(ValueError, match="whole XCom row identity"):
        object_key(prefix="xcom", row=XComRow(dag_id="d"), extension="json")
