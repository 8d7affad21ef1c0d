"""Where bytes go: one small store per cloud, each built on the official client or provider hook."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from include.xcom_backends.settings import XComStorageSettings

if TYPE_CHECKING:
    from airflow.sdk import Connection

Data = bytes | memoryview


class SeekableReader(io.RawIOBase):
    """A read-only, seekable file of a known size; subclasses implement ``readinto`` at ``_pos``."""

    def __init__(self, size: int) -> None:
        self._size, self._pos = size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos


class ByteView(SeekableReader):
    """A file over bytes or a memoryview, without copying them: lets a client stream an encoder's
    buffer (each ``read`` copies only the chunk asked for)."""

    def __init__(self, data: Data) -> None:
        self._view = memoryview(data).cast("B")
        super().__init__(len(self._view))

    def readinto(self, buffer: Any) -> int:
        chunk = self._view[self._pos : self._pos + len(buffer)]
        memoryview(buffer).cast("B")[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


def as_bytes(data: Data) -> bytes:
    """For clients that only take bytes (a copy when ``data`` is a memoryview)."""
    return data if isinstance(data, bytes) else bytes(data)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime  # timezone-aware


class ObjectStore(Protocol):
    """A bucket-addressed byte store built from the ``[xcom_storage]`` settings (timeouts, attempts)
    and the Airflow connection ``settings.conn_id``, looked up once by the caller. Implementations
    raise the client's own exceptions, except ``get`` which raises ``KeyError`` for a missing
    object. A failed ``put`` must leave no object behind."""

    scheme: str
    endpoint: str

    def __init__(self, settings: XComStorageSettings, connection: Connection) -> None: ...

    def put(self, bucket: str, key: str, data: Data) -> None: ...

    def get(self, bucket: str, key: str) -> bytes: ...

    def get_range(self, bucket: str, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from offset ``start`` (fewer at the end of the object): one ranged GET."""
        ...

    def delete(self, bucket: str, keys: Iterable[str]) -> None: ...

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]: ...
