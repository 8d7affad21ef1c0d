"""Object keys: ``<prefix>/<dag_id>/<run_id>/<task_id>/<map_index>/<key>/<unique>.<ext>``.

Every id segment is percent-encoded, so any character Airflow allows in an id (dots, unicode,
``:`` and ``+`` in run ids, ``/`` in XCom keys) gives a distinct, valid key that cannot leave the
prefix.
"""

from __future__ import annotations

import hashlib
import uuid
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


def object_key(
    *,
    prefix: str,
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: int | None,
    key: str,
    extension: str,
) -> str:
    parts = [
        encode_segment(dag_id),
        encode_segment(run_id),
        encode_segment(task_id),
        encode_segment(-1 if map_index is None else map_index),
        encode_segment(key),
        f"{uuid.uuid4().hex}.{extension}",
    ]
    return "/".join([prefix, *parts] if prefix else parts)


def is_inside(key: str, prefix: str) -> bool:
    """Whether ``key`` lies below ``prefix`` and cannot climb out of it."""
    segments = key.split("/")
    if any(s in ("", ".", "..") for s in segments):
        return False
    return not prefix or key.startswith(prefix + "/")
