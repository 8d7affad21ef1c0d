"""The primitives of every store that goes through ``obstore`` (Apache Arrow's Rust ``object_store``).

obstore speaks S3, Azure Blob and GCS with one API, so ``put``/``get``/``delete``/``list`` and the
"no such object" mapping are written once here; a cloud's subclass only turns its Airflow connection
into an obstore store (``_connect``). Why obstore: importing it and building a client takes about
0.02 s in a fresh process, against 0.45 s for boto3 and 0.6 s for azure-storage-blob (see
docs/configuration.md, Choosing a backend), and every task process pays that before its first
byte moves.

Timeouts and retries are obstore's own (``ClientConfig``, ``RetryConfig``): the read timeout of
every request is ``timeout_seconds``, the connect timeout ``connect_timeout``, and a failed request
is retried ``max_attempts - 1`` times with exponential backoff (5xx, dropped connections, timeouts
of reads). Values of ``multipart_threshold`` bytes and more go as a multipart upload (S3) or as
blocks committed in one final call (Azure), in ``part_size`` parts, ``max_concurrency`` at a time;
obstore aborts the upload when a part fails, so a failed push leaves no object.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from include.xcom_backends.stores.base import Data, ObjectInfo, ObjectStore

if TYPE_CHECKING:
    from include.xcom_backends.settings import XComStorageSettings

# obstore's messages end with a multi-line debug dump, and a request URL may carry a SAS signature
# in its query string: a user reads the first line, without queries.
_QUERY = re.compile(r"\?[^\s\"'<>]*")


def readable_error(exc: BaseException) -> str:
    """The first line of an obstore error, with every URL query string removed (SAS signatures)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return _QUERY.sub("?…", text)


@contextmanager
def readable_errors() -> Iterator[None]:
    """Re-raise an obstore error as the same class (a missing object is a ``FileNotFoundError``, a
    refused one a ``PermissionDeniedError``, ...) with one readable line; the raw error is not
    chained, so no log shows its URLs."""
    from obstore.exceptions import BaseError

    try:
        yield
    except (BaseError, OSError, NotImplementedError) as exc:
        raise type(exc)(readable_error(exc)) from None


class ObstoreStore(ObjectStore):
    """A store whose client is an obstore store; subclasses implement ``_connect`` only."""

    multipart_threshold: ClassVar[int] = 128 * 1024 * 1024
    part_size: ClassVar[int] = 16 * 1024 * 1024
    max_concurrency: ClassVar[int] = 8

    @staticmethod
    def client_options(settings: XComStorageSettings, endpoint: str) -> dict[str, Any]:
        return {
            "allow_http": endpoint.startswith("http://"),
            "connect_timeout": timedelta(seconds=settings.connect_timeout),
            "read_timeout": timedelta(seconds=settings.timeout_seconds),
            # obstore's default total timeout of a request is 30 s: a 1 GB part would never make it.
            # The read timeout above is what catches a store that stops answering.
            "timeout": timedelta(hours=6),
        }

    @staticmethod
    def retry_config(settings: XComStorageSettings) -> dict[str, Any]:
        return {
            "max_retries": settings.max_attempts - 1,
            "retry_timeout": timedelta(seconds=settings.timeout_seconds * settings.max_attempts),
            "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5), "base": 2},
        }

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        with readable_errors():
            return fn(self._client, *args, **kwargs)

    def _put(self, key: str, data: Data) -> None:
        import obstore

        multipart = len(data) >= self.multipart_threshold
        self._call(
            obstore.put,
            key,
            memoryview(data).cast("B"),
            use_multipart=multipart,
            chunk_size=self.part_size,
            max_concurrency=self.max_concurrency,
        )

    def _get(self, key: str, start: int, length: int | None) -> Any:
        """An ``obstore.Bytes``: the buffer the response was read into, shared with Python, not copied."""
        import obstore

        if length is not None:
            return self._call(obstore.get_range, key, start=start, length=length)
        if start:
            return self._call(lambda store, k: obstore.get(store, k, options={"range": {"offset": start}}).bytes(), key)
        return self._call(lambda store, k: obstore.get(store, k).bytes(), key)

    def _delete(self, keys: Sequence[str]) -> None:
        import obstore

        try:
            self._call(obstore.delete, list(keys))
        except FileNotFoundError:
            # Azure's batch delete reports a missing blob as a failure of the whole call: delete one
            # by one then, skipping the ones that are gone.
            for key in keys:
                try:
                    self._call(obstore.delete, key)
                except FileNotFoundError:
                    pass

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        import obstore

        # obstore lists whole path segments ("a/b" lists "a/b/..."), the contract is a string prefix.
        parent = prefix.rpartition("/")[0]
        batches = iter(self._call(obstore.list, prefix=parent or None))
        while True:
            with readable_errors():
                batch = next(batches, None)
            if batch is None:
                return
            for meta in batch:
                if meta["path"].startswith(prefix):
                    yield ObjectInfo(meta["path"], meta["size"], meta["last_modified"])

    def _is_not_found(self, exc: Exception) -> bool:
        return isinstance(exc, FileNotFoundError)
