from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from include.xcom_backends.keys import (
    MAX_SEGMENT,
    XComRow,
    belongs_to,
    encode_segment,
    is_inside,
    object_key,
    row_location,
)

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
    [
        ("xcom/a/b.json", True),
        ("xcomx/a.json", False),
        ("other/a.json", False),
        ("xcom/../a", False),
        ("/xcom/a", False),
        ("xcom//a", False),
        ("xcom", False),
    ],
)
def test_is_inside(k: str, inside: bool) -> None:
    assert is_inside(k, "xcom") is inside


def test_long_unicode_ids_stay_within_key_limits_and_distinct() -> None:
    a, b = "ü" * 250, "ü" * 249 + "x"
    k = key(dag_id=a, task_id=a, run_id="r" * 250, key=b)
    assert len(k.encode()) <= 1024
    assert encode_segment(a) != encode_segment(b)
    assert all(len(seg) <= 160 for seg in k.split("/"))
    head, mark, digest = encode_segment(a).partition("!")
    assert mark and len(digest) == 64 and "%" not in head[-2:]  # no escape cut in half before the hash


# --- a reference is followed only for its own row ----------------------------------------------------


def test_row_location_is_the_keys_folder() -> None:
    row = XComRow.of(**IDS)
    k = key()
    assert row_location("xcom", row) == "xcom/d/r/t/-1/return_value/" and k.startswith(row_location("xcom", row))
    assert belongs_to(k, "xcom", row)
    assert belongs_to(key(prefix=""), "", row)


@pytest.mark.parametrize(
    "other",
    [
        {"dag_id": "other_dag"},
        {"run_id": "r2"},
        {"task_id": "t2"},
        {"map_index": 0},
        {"map_index": 1},
        {"key": "other_key"},
        {"key": "return_value/x"},
    ],
)
def test_an_object_of_another_row_does_not_belong(other: dict[str, Any]) -> None:
    mine = XComRow.of(**IDS)
    theirs = key(**other)
    assert not belongs_to(theirs, "xcom", mine)
    assert belongs_to(theirs, "xcom", XComRow.of(**{**IDS, **other}))


@pytest.mark.parametrize(
    "k",
    [
        "xcom/d/r/t/-1/return_value/x.json",
        "xcom/d/r/t/-1/return_value/" + "a" * 32 + ".json/more",
        "xcom/d/r/t/-1/return_value/sub/" + "a" * 32 + ".json",
        "xcom/d/r/t/-1/" + "a" * 32 + ".json",
        "xcom/d/r/t/-1/return_value/" + "A" * 32 + ".json",
        "other/d/r/t/-1/return_value/" + "a" * 32 + ".json",
        "xcom/d/r/t/-1/return_value/../" + "a" * 32 + ".json",
    ],
)
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


# --- one id, one segment: the cut of a long id is never an id's own encoding -------------------------
#
# Up to this fix, a long id was cut to ``<head>~~<16 hex of sha256>``, and ``~`` is an unescaped
# character: an id spelling out exactly that text (a few more characters than the head) had the same
# segment as the long id, so a row of the one passed ``belongs_to`` for the objects of the other.

LONG_ID = "a" * 200
# The segment the encoding before the fix gave LONG_ID, spelled out as an id of 160 characters.
CRAFTED_ID = "a" * 142 + "~~" + hashlib.sha256(LONG_ID.encode()).hexdigest()[:16]
# Objects written before the fix have keys of the legacy encoding (these literals are what it gave).
LEGACY_LONG_SEGMENT = "a" * 142 + "~~c2a908d98f5df987"
LEGACY_KEY = "xcom/{}/r/t/-1/return_value/" + "b" * 32 + ".json"

IDS_OF_EVERY_KIND = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.sampled_from("a~%.!/ü中 -_:+"), max_size=300),  # marks, escapes, long and cut
    st.text(alphabet=st.characters(codec="utf-8"), min_size=40, max_size=260),  # long unicode
    st.sampled_from(["", ".", "..", "\x00empty", "%00empty", "%2E", "~", "~~", LONG_ID, CRAFTED_ID]),
)


def legacy_encode(value: object) -> str:
    from include.xcom_backends import keys

    return keys._legacy_encode_segment(value)


def test_the_crafted_id_and_the_long_id_it_spells_have_distinct_segments() -> None:
    assert encode_segment(LONG_ID) != encode_segment(CRAFTED_ID)
    assert encode_segment(unquote(encode_segment(LONG_ID))) != encode_segment(LONG_ID)  # the new cut spelled out
    long_row, crafted_row = XComRow.of(**{**IDS, "key": LONG_ID}), XComRow.of(**{**IDS, "key": CRAFTED_ID})
    assert not belongs_to(object_key(prefix="xcom", row=long_row, extension="json"), "xcom", crafted_row)
    assert not belongs_to(object_key(prefix="xcom", row=crafted_row, extension="json"), "xcom", long_row)


def test_the_empty_id_and_the_id_spelling_its_mark_have_distinct_segments() -> None:
    assert encode_segment("") != encode_segment("\x00empty")


@settings(max_examples=400, deadline=None)
@given(st.lists(IDS_OF_EVERY_KIND, unique=True, min_size=2, max_size=40))
def test_distinct_ids_never_share_a_segment(ids: list[str]) -> None:
    assert len({encode_segment(i) for i in ids}) == len(ids)


@settings(max_examples=400, deadline=None)
@given(IDS_OF_EVERY_KIND)
def test_an_id_spelling_out_another_ids_segment_gets_another_segment(value: str) -> None:
    """The id an attacker would choose to look like ``value``'s segment: the segment read back."""
    segment = encode_segment(value)
    lookalike = unquote(segment, errors="replace")
    assume(lookalike != value)
    assert encode_segment(lookalike) != segment


@settings(max_examples=400, deadline=None)
@given(IDS_OF_EVERY_KIND)
def test_every_segment_is_one_bounded_ascii_path_segment(value: str) -> None:
    segment = encode_segment(value)
    assert segment.isascii() and "/" not in segment and segment not in ("", ".", "..")
    assert len(segment) <= MAX_SEGMENT


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8"), min_size=250, max_size=250), min_size=4, max_size=4))
def test_an_object_key_of_the_longest_ids_fits_every_store(ids: list[str]) -> None:
    dag_id, run_id, task_id, xcom_key = ids
    row = XComRow.of(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=10**6, key=xcom_key * 2)
    k = object_key(prefix="p" * 150, extension="parquet", row=row)
    assert len(k.encode("utf-8")) <= 1024


# --- objects written before the fix still read, and only for their own row -------------------------


def test_the_legacy_encoding_is_todays_encoding_before_the_fix() -> None:
    assert legacy_encode(LONG_ID) == LEGACY_LONG_SEGMENT == CRAFTED_ID
    assert legacy_encode("run~1") == "run~1" and legacy_encode("") == "%00empty" and legacy_encode("..") == "%2E%2E"
    assert legacy_encode("ü" * 100) == "%C3%BC" * 23 + "%C3~~83af2e24c464bea3"
    assert legacy_encode("scheduled__2024-01-01T00:00:00+00:00") == "scheduled__2024-01-01T00:00:00%2B00:00"


LEGACY_SEGMENTS = [
    (LONG_ID, LEGACY_LONG_SEGMENT),
    ("ü" * 100, "%C3%BC" * 23 + "%C3~~83af2e24c464bea3"),
    ("run~1", "run~1"),
    ("", "%00empty"),
    ("..", "%2E%2E"),
    ("return_value", "return_value"),
]


@pytest.mark.parametrize(("xcom_key", "segment"), LEGACY_SEGMENTS)
def test_an_object_written_before_the_fix_still_belongs_to_its_row(xcom_key: str, segment: str) -> None:
    legacy_key = f"xcom/d/r/t/-1/{segment}/{'b' * 32}.json"
    assert belongs_to(legacy_key, "xcom", XComRow.of(**{**IDS, "key": xcom_key}))
    assert belongs_to(legacy_key, "xcom", XComRow(dag_id="d", key=xcom_key))  # a pull of any run


def test_an_object_written_before_the_fix_for_a_long_id_does_not_belong_to_the_id_spelling_it() -> None:
    legacy_key = LEGACY_KEY.format(LEGACY_LONG_SEGMENT)
    assert belongs_to(legacy_key, "xcom", XComRow.of(**{**IDS, "dag_id": LONG_ID}))
    assert not belongs_to(legacy_key, "xcom", XComRow.of(**{**IDS, "dag_id": CRAFTED_ID}))
    assert not belongs_to(legacy_key, "xcom", XComRow(dag_id=CRAFTED_ID))


def test_new_objects_are_written_with_the_new_encoding_only() -> None:
    row = XComRow.of(**{**IDS, "dag_id": LONG_ID})
    assert object_key(prefix="xcom", row=row, extension="json").split("/")[1] == encode_segment(LONG_ID)
    assert encode_segment(LONG_ID) != legacy_encode(LONG_ID)
    # ids that were never cut (nearly all) keep the segment they always had
    for value in ("d", "scheduled__2024-01-01T00:00:00+00:00", "run~1", "ünï.cödé", "a/b", "", ".", ".."):
        assert encode_segment(value) == legacy_encode(value)


FIELDS = ("dag_id", "run_id", "task_id", "key")
# Ids whose legacy segment is also another id's (LONG_ID's, ""'s): the legacy encoding itself cannot
# tell which of the two wrote an object there; keys.py gives such an object to the other id only.
AMBIGUOUS_BEFORE_THE_FIX = (CRAFTED_ID, "\x00empty")


def legacy_key_of(row: XComRow) -> str:
    fields = (row.dag_id, row.run_id, row.task_id, row.map_index, row.key)
    return "xcom/" + "/".join(legacy_encode(value) for value in fields) + f"/{'b' * 32}.json"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIELDS), IDS_OF_EVERY_KIND, IDS_OF_EVERY_KIND)
def test_an_object_of_row_a_never_belongs_to_another_row_b(field: str, a: str, b: str) -> None:
    """Neither the objects row A writes now nor those it wrote before the fix (legacy keys)."""
    assume(a != b)
    row_a, row_b = XComRow.of(**{**IDS, field: a}), XComRow.of(**{**IDS, field: b})
    new_key, legacy_key = object_key(prefix="xcom", row=row_a, extension="json"), legacy_key_of(row_a)
    assert belongs_to(new_key, "xcom", row_a) and not belongs_to(new_key, "xcom", row_b)
    if a not in AMBIGUOUS_BEFORE_THE_FIX:
        assert belongs_to(legacy_key, "xcom", row_a)
    if not (a in AMBIGUOUS_BEFORE_THE_FIX and legacy_encode(a) == legacy_encode(b)):
        assert not belongs_to(legacy_key, "xcom", row_b)
