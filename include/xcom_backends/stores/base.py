"""Where bytes go: one store per cloud, each implementing only what its SDK does differently.

As in fsspec or Dagster's ``UPathIOManager``: ``ObjectStore`` holds the behaviour every store shares
(one bucket per store, URIs, argument checks, "no such object" as ``FileNotFoundError``, deleting a
missing key is not an error) and a subclass implements the primitives: ``_put``, ``_get``,
``_delete``, ``_list`` and ``_is_not_found``. Timeouts and retries are each SDK's own machinery
(botocore, google-api-core, azure-core, urllib3), configured from ``[xcom_storage]`` by the
subclass; the messages a user reads are written once, in the backend.

The contract every store keeps is one test suite (``tests/integration/test_store_contract.py``), run
against the in-memory store of the unit tests and against the four real local servers.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

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


def as_bytes(data: Data) -> bytes:
    """For clients that only take bytes (a copy when ``data`` is a memoryview)."""
    return data if isinstance(data, bytes) else bytes(data)


def hook_on(hook_class: type[Any], connection: Connection) -> type[Any]:
    """``hook_class`` (a provider hook) working from ``connection`` as given, instead of looking the
    connection up a second time: the provider still parses it (credentials, endpoints)."""

    class OnGivenConnection(hook_class):
        def get_connection(self, conn_id: str) -> Connection:
            return connection

    return OnGivenConnection


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime  # timezone-aware


class ObjectStore(ABC):
    """The objects of one bucket (container), through one cloud's SDK client.

    Built from the ``[xcom_storage]`` settings (bucket, timeouts, attempts) and the Airflow
    connection ``settings.conn_id``, which the caller looked up once. ``client`` replaces the client
    the store would build from the connection (tests inject one). Every method raises the SDK's own
    exceptions, except that a missing object is ``FileNotFoundError``. A failed ``put`` leaves no
    object behind."""

    scheme: ClassVar[str]
    type_name: ClassVar[str]  # the "type" of [xcom_storage] stores
    endpoint: str

    def __init__(self, settings: XComStorageSettings, connection: Connection | None, client: Any = None) -> None:
        self.bucket = settings.bucket
        self.endpoint = "(injected client)"
        # Encryption at rest (encryption.py): checked against this store's type; a customer key is read
        # from the connection here and kept out of every message.
        self.encryption = settings.encryption
        self._customer_key: bytes | None = None
        if self.encryption is not None:
            self.encryption.check_type(self.type_name)
            if self.encryption.needs_customer_key:
                self._customer_key = self.encryption.customer_key(connection, settings.conn_id)
        self._client = client if client is not None else self._connect(settings, connection)

    # --- shared behaviour -----------------------------------------------------------------------
    @property
    def customer_key(self) -> bytes | None:
        """The customer encryption key this store sends (modes sse-c, csek, cpk), or None."""
        return self._customer_key

    def uri(self, key: str) -> str:
        return f"{self.scheme}://{self.bucket}/{key}"

    def put(self, key: str, data: Data) -> None:
        """Write ``data`` to ``key``, replacing what was there."""
        self._put(key, data)

    def get(self, key: str) -> Data:
        """The whole object: ``bytes``, or a read-only ``memoryview`` of the buffer the client read it
        into (no copy; hashlib, pyarrow and ``bytes()`` take either)."""
        return self._not_found_as_file_error(key, lambda: self._get(key, 0, None))

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` (>= 1) bytes from offset ``start`` (fewer at the end of the object), in one request."""
        if start < 0 or length < 1:
            raise ValueError(f"A range needs start >= 0 and length >= 1, got start={start}, length={length}")
        return bytes(self._not_found_as_file_error(key, lambda: self._get(key, start, length)))

    def delete(self, keys: Iterable[str]) -> None:
        """Delete ``keys``; a key that does not exist is not an error."""
        keys = list(keys)
        if keys:
            self._delete(keys)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (a plain string prefix, all levels)."""
        return self._list(prefix)

    def _not_found_as_file_error(self, key: str, call: Any) -> Data:
        try:
            data = call()
            return data if isinstance(data, bytes) else memoryview(data).cast("B")
        except Exception as exc:
            if self._is_not_found(exc):
                raise FileNotFoundError(f"{self.uri(key)} does not exist") from exc
            raise

    # --- what each SDK does differently ----------------------------------------------------------
    @abstractmethod
    def _connect(self, settings: XComStorageSettings, connection: Connection | None) -> Any:
        """The SDK client for the connection, with the settings' timeouts and retries; sets ``endpoint``."""

    @abstractmethod
    def _put(self, key: str, data: Data) -> None: ...

    @abstractmethod
    def _get(self, key: str, start: int, length: int | None) -> Any:
        """Bytes from ``start`` (``bytes`` or any object with the buffer protocol); ``length`` None means
        to the end."""

    @abstractmethod
    def _delete(self, keys: Sequence[str]) -> None:
        """Delete existing keys; ignore missing ones."""

    @abstractmethod
    def _list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    @abstractmethod
    def _is_not_found(self, exc: Exception) -> bool:
        """Whether ``exc`` is the SDK's "no such object" (or "no such key")."""
