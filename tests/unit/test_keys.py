from __future__ import annotations

import pytest

from include.xcom_backends.keys import encode_segment, is_inside, object_key


def key(**kw: object) -> str:
    args = {"prefix": "xcom", "dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1,
            "key": "return_value", "extension": "json", **kw}  # fmt: skip
    return object_key(**args)  # type: ignore[arg-type]


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
