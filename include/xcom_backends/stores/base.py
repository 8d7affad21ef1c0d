"""Where bytes go: one small store per cloud, each built on the official client or provider hook."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from include.xcom_backends.settings import XComStorageSettings


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime  # timezone-aware


class ObjectStore(Protocol):
    """A bucket-addressed byte store built from the ``[xcom_storage]`` settings (connection id,
    timeouts, attempts). Implementations raise the client's own exceptions, except ``get`` which
    raises ``KeyError`` for a missing object. A failed ``put`` must leave no object behind."""

    scheme: str
    endpoint: str

    def __init__(self, settings: XComStorageSettings) -> None: ...

    def put(self, bucket: str, key: str, data: bytes) -> None: ...

    def get(self, bucket: str, key: str) -> bytes: ...

    def get_range(self, bucket: str, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from offset ``start`` (fewer at the end of the object): one ranged GET."""
        ...

    def delete(self, bucket: str, keys: Iterable[str]) -> None: ...

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]: ...
