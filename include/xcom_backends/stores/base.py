"""Where bytes go: one small store per cloud, each built on the official client or provider hook."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class ObjectStore(Protocol):
    """A bucket-addressed byte store. Implementations raise the client's own exceptions,
    except ``get`` which raises ``KeyError`` for a missing object."""

    scheme: str
    endpoint: str

    def put(self, bucket: str, key: str, data: bytes) -> None: ...

    def get(self, bucket: str, key: str) -> bytes: ...

    def delete(self, bucket: str, keys: Iterable[str]) -> None: ...

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]: ...

    def ensure_bucket(self, bucket: str) -> None: ...
