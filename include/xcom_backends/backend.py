"""The Airflow glue: one BaseXCom subclass that owns the reference format, threshold and purge.

A named backend (``S3JSONXComBackend`` ...) only says which store, which connection and whether
pandas values are encoded as frames; everything else lives here.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

from airflow.sdk.bases.xcom import BaseXCom

from include.xcom_backends.codecs import (
    Codec,
    CSVCodec,
    Encoded,
    JSONCodec,
    ParquetCodec,
    codec_for_format,
    is_pandas_value,
)
from include.xcom_backends.errors import (
    XComIntegrityError,
    XComObjectMissingError,
    XComReferenceError,
    XComStorageConfigError,
    XComStorageError,
)
from include.xcom_backends.keys import is_inside, object_key
from include.xcom_backends.reference import MARKER, Reference, is_reference
from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.base import ObjectStore

log = logging.getLogger(__name__)

_INLINE = "inline"


@dataclass
class _Runtime:
    settings: XComStorageSettings
    store: ObjectStore

    def uri(self, key: str) -> str:
        return f"{self.store.scheme}://{self.settings.bucket}/{key}"

    def hint(self, operation: str) -> str:
        return (
            f"Check that {self.store.endpoint} is reachable, that bucket {self.settings.bucket!r} exists and that "
            f"connection {self.settings.conn_id!r} has credentials allowed to {operation} objects in it "
            f"(timeouts and attempts: [xcom_storage] timeout_seconds={self.settings.timeout_seconds:g}, "
            f"max_attempts={self.settings.max_attempts})."
        )


class ObjectStorageXCom(BaseXCom):
    """Offloads XCom values to object storage and keeps a small JSON reference in the database."""

    store_class: ClassVar[type[ObjectStore]]
    default_conn_id: ClassVar[str]
    encodes_pandas: ClassVar[bool] = False
    _runtimes: ClassVar[dict[type, _Runtime]] = {}

    # --- configuration -------------------------------------------------------------------
    @classmethod
    def settings(cls) -> XComStorageSettings:
        return XComStorageSettings.from_airflow_config(default_conn_id=cls.default_conn_id)

    @classmethod
    def runtime(cls) -> _Runtime:
        """Settings and store client, built once per process (a task runs in its own process)."""
        rt = ObjectStorageXCom._runtimes.get(cls)
        if rt is None:
            from airflow.sdk import BaseHook

            settings = cls.settings()
            try:
                # Explicitly: a missing connection must fail here, not fall back to ambient credentials.
                connection = BaseHook.get_connection(settings.conn_id)
            except Exception as exc:
                raise XComStorageConfigError(
                    f"{cls.__name__}: Airflow connection {settings.conn_id!r} could not be loaded "
                    f"({type(exc).__name__}: {exc}). Create it (Admin > Connections, airflow_settings.yaml or "
                    f"AIRFLOW_CONN_{settings.conn_id.upper()}) or point [xcom_storage] conn_id at another one."
                ) from None
            try:
                store = cls.store_class(settings, connection)
            except Exception as exc:
                raise XComStorageConfigError(
                    f"{cls.__name__}: could not create a {cls.store_class.__name__} client from Airflow "
                    f"connection {settings.conn_id!r} ({type(exc).__name__}: {exc}). Check the connection's "
                    f"fields for this store (see README, Configuration)."
                ) from exc
            rt = ObjectStorageXCom._runtimes[cls] = _Runtime(settings, store)
        return rt

    @classmethod
    def reset(cls) -> None:
        """Forget cached settings and clients (after changing configuration in the same process)."""
        ObjectStorageXCom._runtimes.clear()

    @classmethod
    def codec_for(cls, value: Any, settings: XComStorageSettings) -> Codec:
        if cls.encodes_pandas and is_pandas_value(value):
            if settings.dataframe_format == "csv":
                return CSVCodec()
            return ParquetCodec("none" if settings.compression == "none" else settings.compression)
        return JSONCodec()

    # --- push ------------------------------------------------------------------------------
    @classmethod
    def serialize_value(  # type: ignore[override]
        cls,
        value: Any,
        *,
        key: str | None = None,
        task_id: str | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        map_index: int | None = None,
    ) -> Any:
        rt = cls.runtime()
        encoded = cls.codec_for(value, rt.settings).encode(value)
        if len(encoded.data) < rt.settings.threshold_bytes:
            return _inline(value, encoded)
        object_name = object_key(
            prefix=rt.settings.prefix,
            dag_id=dag_id or "",
            run_id=run_id or "",
            task_id=task_id or "",
            map_index=map_index,
            key=key or "",
            extension=encoded.extension,
        )
        uri = rt.uri(object_name)
        _, error, digest = _with_sha256(
            encoded.data, lambda: rt.store.put(rt.settings.bucket, object_name, encoded.data)
        )
        if error is not None:
            raise XComStorageError(
                f"Could not store XCom {key!r} of task {task_id!r} at {uri} (endpoint {rt.store.endpoint}, "
                f"bucket {rt.settings.bucket!r}, key {object_name!r}, connection {rt.settings.conn_id!r}): "
                f"{type(error).__name__}: {error}. {rt.hint('write')}"
            ) from error
        ref = Reference(uri=uri, format=encoded.format, size=len(encoded.data), sha256=digest, kind=encoded.kind)
        log.info("XCom %r stored at %s (%s, %d bytes)", key, uri, encoded.format, ref.size)
        return ref.to_json()

    # --- pull ------------------------------------------------------------------------------
    @classmethod
    def deserialize_value(cls, result: Any) -> Any:  # type: ignore[override]
        value = result.value
        if is_reference(value):
            return cls.load(Reference.from_json(value))
        if isinstance(value, dict) and value.get(MARKER) == _INLINE:
            if "base64" in value:
                data = base64.b64decode(value["base64"])
                return codec_for_format(value["format"]).decode(data, value.get("kind", "value"))
            return value["value"]
        # A plain JSON value kept inline, or a row written by Airflow's default backend (serde).
        return BaseXCom.deserialize_value(result)

    @classmethod
    def confined_key(cls, ref: Reference) -> str:
        """The object key of ``ref``, refusing anything outside the configured bucket and prefix."""
        rt = cls.runtime()
        scheme, bucket, key = ref.split_uri()
        if scheme != rt.store.scheme or bucket != rt.settings.bucket or not is_inside(key, rt.settings.prefix):
            raise XComReferenceError(
                f"XCom reference points to {ref.uri}, outside the configured location "
                f"{rt.uri(rt.settings.prefix)}/ of {cls.__name__}; refusing to read or "
                f"delete it. Check [xcom_storage] bucket/prefix and the active AIRFLOW__CORE__XCOM_BACKEND."
            )
        return key

    @classmethod
    def load(cls, ref: Reference) -> Any:
        rt = cls.runtime()
        key = cls.confined_key(ref)
        try:
            data = rt.store.get(rt.settings.bucket, key)
        except KeyError:
            raise XComObjectMissingError(
                f"XCom object {ref.uri} does not exist (deleted or expired by a lifecycle rule?). "
                "Re-run the upstream task to produce it again."
            ) from None
        except Exception as exc:
            raise XComStorageError(
                f"Could not read XCom object {ref.uri} (endpoint {rt.store.endpoint}, connection "
                f"{rt.settings.conn_id!r}): {type(exc).__name__}: {exc}. {rt.hint('read')}"
            ) from exc
        corrupted = XComIntegrityError(
            f"XCom object {ref.uri} is corrupted: {len(data)} bytes with a different checksum than the "
            f"{ref.size} bytes written. Re-run the upstream task to produce it again."
        )
        if len(data) != ref.size:
            raise corrupted
        codec = codec_for_format(ref.format)
        # The bytes come from our own bucket; decoding runs while they are hashed, and a mismatch wins
        # over whatever the decoder made of them.
        value, error, digest = _with_sha256(data, lambda: codec.decode(data, ref.kind))
        if digest != ref.sha256:
            raise corrupted from error
        if error is not None:
            raise error
        return value

    # --- purge -----------------------------------------------------------------------------
    @classmethod
    def purge(cls, xcom: Any, *args: Any) -> None:
        value = getattr(xcom, "value", None)
        if not is_reference(value):
            return
        ref = Reference.from_json(value)
        rt = cls.runtime()
        key = cls.confined_key(ref)
        rt.store.delete(rt.settings.bucket, [key])
        log.info("Purged XCom object %s", ref.uri)


_OVERLAP_MIN = 1024 * 1024  # below this, hashing in a second thread costs more than it saves


def _with_sha256(data: bytes | memoryview, work: Callable[[], Any]) -> tuple[Any, Exception | None, str]:
    """Run ``work`` (an upload or a decode) while the SHA-256 of ``data`` is computed in a second
    thread (hashlib, the clients' sockets and pyarrow release the GIL). Returns (result, error, digest)."""

    def attempt() -> tuple[Any, Exception | None]:
        try:
            return work(), None
        except Exception as exc:
            return None, exc

    if len(data) < _OVERLAP_MIN:
        result, error = attempt()
        return result, error, hashlib.sha256(data).hexdigest()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xcom-sha256") as pool:
        digest = pool.submit(lambda: hashlib.sha256(data).hexdigest())
        result, error = attempt()
        return result, error, digest.result()


# Keys that would make a plain JSON value look like one of our references or like Airflow serde
# output on the way back; values containing them are wrapped so they come back exactly as pushed.
_RESERVED = (b'"__xcom_storage__"', b'"__classname__"', b'"__type"', b'"__var"', b'"__data__"')


def _inline(value: Any, encoded: Encoded) -> Any:
    """The database form of a value below the threshold: no request to storage."""
    if encoded.format != "json":
        # DataFrame/Series: our own codec's bytes (Airflow's serde has no Series support).
        b64 = base64.b64encode(encoded.data).decode("ascii")
        return {MARKER: _INLINE, "format": encoded.format, "kind": encoded.kind, "base64": b64}
    if any(marker in encoded.data for marker in _RESERVED):
        return {MARKER: _INLINE, "value": value}
    return value
