"""Object keys: ``<prefix>/<dag_id>/<run_id>/<task_id>/<map_index>/<key>/<unique>.<ext>``.

Every id segment is percent-encoded, so any character Airflow allows in an id (dots, unicode,
``:`` and ``+`` in run ids, ``/`` in XCom keys) gives a distinct, valid key that cannot leave the
prefix.

The first five segments are the XCom row's identity: the objects of a row live under that row's
own location and nowhere else. ``belongs_to`` is the check every read, preview, purge and gc applies
before it follows a reference, so a row can never reach another row's (another DAG's) object. That
holds because ``encode_segment`` is one-to-one (its docstring says why); ``_legacy_encode_segment`` is
the encoding of keys written before it was, which are still read.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from urllib.parse import quote, unquote

# Characters an id keeps as they are; every other byte of its UTF-8 is escaped as %XX (upper-case hex).
# ``~`` is kept too: Python's quote never escapes it (nor ASCII letters, digits and "_.-").
_SAFE = "-_.~:=@,"

# S3 and GCS keys are at most 1024 bytes, Azure blob names 1024 characters: one encoded id may take
# 160 bytes (ids of up to 250 unicode characters encode to far more); longer ones are cut and suffixed
# with a hash of the full id, so distinct ids stay distinct. A key is then at most the prefix and 855
# bytes: five segments, six "/" and "<32 hex>.<extension of up to 16>".
MAX_SEGMENT = 160
# The mark of a cut id: ``!`` is never in an id's own encoding (quote escapes it as %21), so no id can
# spell out the cut of another one. The whole SHA-256 follows: finding two ids with one cut is as hard
# as a SHA-256 collision.
_CUT_MARK = "!"
_DIGEST_CHARS = 64
_EMPTY = "%00empty"


def _cut(raw: str, text: str) -> str:
    """``<head>!<sha256 of raw>``, at most MAX_SEGMENT characters; ``head`` begins ``text`` (the
    id's encoding), without an escape cut in half."""
    head = text[: MAX_SEGMENT - len(_CUT_MARK) - _DIGEST_CHARS]
    head = head[: head.rfind("%")] if "%" in head[-2:] else head
    return f"{head}{_CUT_MARK}{hashlib.sha256(raw.encode('utf-8')).hexdigest()}"


def encode_segment(value: object) -> str:
    """Encode one id as a single bounded path segment that cannot be '', '.' or '..'.

    One-to-one, in three disjoint kinds of segments:

    * the id's percent-encoding ``quote(id)``, where it is at most MAX_SEGMENT long: distinct ids give
      distinct encodings, none with a ``!``, none ``%2E`` or ``%2E%2E`` (``.`` is never escaped), and
      none equal to a mark below (those ids are cut);
    * the marks ``%00empty``, ``%2E``, ``%2E%2E`` of the ids '', '.' and '..';
    * a cut ``<head>!<sha256 of the id>``: the only segments with a ``!``, distinct for distinct ids.

    Two kinds of ids whose encoding fits are cut all the same, because the encoding before this one
    gave their segment to another id as well (``_legacy_encode_segment``): ``'\\x00empty'``, whose
    ``quote`` is the mark of '', and an id whose ``quote`` has the shape of a legacy cut
    (``<head>~~<16 hex>``). Cutting them keeps every new key clear of the legacy keys of other ids.
    """
    raw = str(value)
    text = quote(raw, safe=_SAFE)
    if text in ("", ".", ".."):
        return text.replace(".", "%2E") or _EMPTY
    if len(text) > MAX_SEGMENT or text == _EMPTY or _has_legacy_cut_shape(text):
        return _cut(raw, text)
    return text


# --- the encoding before the cut mark was "!" -----------------------------------------------------

_LEGACY_CUT = re.compile(r"[^/]{140,142}~~[0-9a-f]{16}")


def _has_legacy_cut_shape(text: str) -> bool:
    """Whether ``text`` has the shape of a legacy cut: the legacy encoding of a long id, or of an id
    written to look like one."""
    return _LEGACY_CUT.fullmatch(text) is not None


def _legacy_encode_segment(value: object) -> str:
    """The encoding of ids before the cut mark was ``!``: keys written then are still read.

    A long id was cut to ``<head>~~<16 hex of its sha256>``, and ``~`` was also an id's own character:
    an id spelling out that text had the same segment as the long one (and ``'\\x00empty'`` the one of
    ''). ``belongs_to`` therefore accepts a legacy segment only where it is a cut (see
    ``_legacy_segment``). Only reads use this; new objects get ``encode_segment``'s keys."""
    raw = str(value)
    text = quote(raw, safe=_SAFE)
    if text in ("", ".", ".."):
        text = text.replace(".", "%2E") or _EMPTY
    if len(text) > MAX_SEGMENT:
        digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]
        head = text[: MAX_SEGMENT - 18]
        head = head[: head.rfind("%")] if "%" in head[-2:] else head  # never cut an escape in half
        text = f"{head}~~{digest}"
    return text


def _legacy_segment(value: object) -> str | None:
    """The legacy segment the objects of an id written before this encoding may have, where it is not
    already ``encode_segment``'s: a long id's legacy cut (``None`` for every other id).

    An id that fits has the same segment in both encodings, except the ids this encoding cuts because
    their legacy segment is another id's as well (``'\\x00empty'`` and ids shaped like a legacy cut).
    Their legacy objects are ambiguous and left to the other id ('' and the long id): taking them for
    the crafted id would let anyone who names an id after a long id's cut follow references into that
    id's objects, the hole this encoding closes. The other way round, a long id's row reaches objects
    of a crafted id only if someone who knew the long id wrote them before the fix. Two long ids with
    one legacy cut need a 64-bit second preimage of SHA-256."""
    text = quote(str(value), safe=_SAFE)
    return _legacy_encode_segment(value) if len(text) > MAX_SEGMENT else None


@dataclass(frozen=True)
class XComRow:
    """What is known of the XCom row a reference was read from; ``None`` means "not known here".

    A push, a purge and the UI know the whole identity. A pull knows the DAG, task and key it asked
    for, but not the run when it includes prior dates, nor the map index when it pulls every index;
    a lazy sequence's items come with no identity at all (see docs/security.md)."""

    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    map_index: int | None = None
    key: str | None = None

    @classmethod
    def of(cls, *, dag_id: str, run_id: str, task_id: str, map_index: int | None, key: str) -> XComRow:
        """A complete identity; ``map_index`` None is an unmapped task (-1), as Airflow stores it."""
        return cls(dag_id, run_id, task_id, -1 if map_index is None else int(map_index), key)

    @property
    def complete(self) -> bool:
        return None not in (self.dag_id, self.run_id, self.task_id, self.map_index, self.key)

    def segments(self) -> list[str | None]:
        """The five encoded id segments of this row's location (``None`` where not known)."""
        return [None if value is None else encode_segment(value) for value in self._fields()]

    def legacy_segments(self) -> list[str | None]:
        """Where they differ from ``segments``, the segments objects written for this row before the
        current encoding may have (see ``_legacy_segment``); ``None`` elsewhere."""
        return [None if value is None else _legacy_segment(value) for value in self._fields()]

    def _fields(self) -> tuple[object, ...]:
        return (self.dag_id, self.run_id, self.task_id, self.map_index, self.key)

    def __str__(self) -> str:
        fields = {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "map_index": self.map_index,
            "key": self.key,
        }
        return ", ".join(f"{name}={'?' if value is None else repr(value)}" for name, value in fields.items())


def prefix_of(prefix: str) -> str:
    """The key prefix of everything the backend writes under the ``[xcom_storage] prefix`` setting:
    ``"<prefix>/"``, or ``""`` for an empty prefix (the bucket's root)."""
    return f"{prefix}/" if prefix else ""


def row_location(prefix: str, row: XComRow) -> str:
    """The folder, ending in ``/``, under which the backend writes ``row``'s objects (``*`` where the
    row's identity is not known)."""
    return prefix_of(prefix) + "".join(f"{seg or '*'}/" for seg in row.segments())


def object_key(*, prefix: str, row: XComRow, extension: str) -> str:
    """A new, unique object key under ``row``'s location (``row`` must be complete)."""
    if not row.complete:
        raise ValueError(f"An object key needs the whole XCom row identity, got {row}")
    return f"{row_location(prefix, row)}{uuid.uuid4().hex}.{extension}"


_OBJECT_NAME = re.compile(r"[0-9a-f]{32}\.[a-z0-9]{1,16}")


def belongs_to(key: str, prefix: str, row: XComRow) -> bool:
    """Whether ``key`` is an object the backend itself could have written for ``row``: below
    ``prefix``, exactly the row's five id segments (where known), then one ``<uuid>.<ext>`` name.

    A segment is the id's ``encode_segment``, or, for a long id, the legacy cut objects written before
    that encoding have (``_legacy_segment``)."""
    if not is_inside(key, prefix):
        return False
    segments = key.removeprefix(prefix_of(prefix)).split("/")
    if len(segments) != 6 or not _OBJECT_NAME.fullmatch(segments[5]):
        return False
    wanted = zip(row.segments(), row.legacy_segments(), segments[:5], strict=True)
    return all(want is None or got in (want, legacy) for want, legacy, got in wanted)


def is_inside(key: str, prefix: str) -> bool:
    """Whether ``key`` lies below ``prefix`` and cannot climb out of it."""
    segments = key.split("/")
    if any(s in ("", ".", "..") for s in segments):
        return False
    return key.startswith(prefix_of(prefix))


def row_of(key: str, prefix: str) -> XComRow | None:
    """The row whose location ``key`` is under, when ``key`` has the shape the backend writes and every
    id segment can be read back (the ids' own encodings; None for a cut id or anything else). Only a
    hint for what to read next (readahead.py): whatever it names is still checked with ``belongs_to``
    against the row a value is read for."""
    if not is_inside(key, prefix):
        return None
    segments = key.removeprefix(prefix_of(prefix)).split("/")
    if len(segments) != 6 or not _OBJECT_NAME.fullmatch(segments[5]):
        return None
    ids = []
    for segment in segments[:5]:
        raw = "" if segment == _EMPTY else unquote(segment, errors="strict")
        if encode_segment(raw) != segment:  # a cut id, or not an encoding this module writes
            return None
        ids.append(raw)
    dag_id, run_id, task_id, map_index, xcom_key = ids
    if not re.fullmatch(r"-1|[0-9]{1,10}", map_index):
        return None
    return XComRow(dag_id, run_id, task_id, int(map_index), xcom_key)
