"""Object keys: ``<prefix>/<dag_id>/<run_id>/<task_id>/<map_index>/<key>/<unique>.<ext>``.

Every id segment is percent-encoded, so any character Airflow allows in an id (dots, unicode,
``:`` and ``+`` in run ids, ``/`` in XCom keys) gives a distinct, valid key that cannot leave the
prefix.

The first five segments are the XCom row's identity: the objects of a row live under that row's
own location and nowhere else. ``belongs_to`` is the check every read, preview, purge and gc applies
before it follows a reference, so a row can never reach another row's (another DAG's) object.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from urllib.parse import quote

_SAFE = "-_.~:=@,"


# S3 and GCS keys are at most 1024 bytes, Azure blob names 1024 characters: one encoded id may take
# 160 bytes (ids of up to 250 unicode characters encode to far more); longer ones are cut and suffixed
# with a hash of the full id, so distinct ids stay distinct.
MAX_SEGMENT = 160


def encode_segment(value: object) -> str:
    """Encode one id as a single bounded path segment that cannot be '', '.' or '..'."""
    raw = str(value)
    text = quote(raw, safe=_SAFE)
    if text in ("", ".", ".."):
        text = text.replace(".", "%2E") or "%00empty"
    if len(text) > MAX_SEGMENT:
        digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]
        head = text[: MAX_SEGMENT - 18]
        head = head[: head.rfind("%")] if "%" in head[-2:] else head  # never cut an escape in half
        text = f"{head}~~{digest}"
    return text


@dataclass(frozen=True)
class XComRow:
    """What is known of the XCom row a reference was read from; ``None`` means "not known here".

    A push, a purge and the UI know the whole identity. A pull knows the DAG, task and key it asked
    for, but not the run when it includes prior dates, nor the map index when it pulls every index;
    a lazy sequence's items come with no identity at all (see README, Security)."""

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
        fields = (self.dag_id, self.run_id, self.task_id, self.map_index, self.key)
        return [None if value is None else encode_segment(value) for value in fields]

    def __str__(self) -> str:
        fields = {"dag_id": self.dag_id, "run_id": self.run_id, "task_id": self.task_id,
                  "map_index": self.map_index, "key": self.key}  # fmt: skip
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
    ``prefix``, exactly the row's five id segments (where known), then one ``<uuid>.<ext>`` name."""
    if not is_inside(key, prefix):
        return False
    segments = key.removeprefix(prefix_of(prefix)).split("/")
    if len(segments) != 6 or not _OBJECT_NAME.fullmatch(segments[5]):
        return False
    return all(want is None or want == got for want, got in zip(row.segments(), segments, strict=False))


def is_inside(key: str, prefix: str) -> bool:
    """Whether ``key`` lies below ``prefix`` and cannot climb out of it."""
    segments = key.split("/")
    if any(s in ("", ".", "..") for s in segments):
        return False
    return key.startswith(prefix_of(prefix))
