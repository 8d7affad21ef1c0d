"""The Airflow glue: one BaseXCom subclass that owns the reference format, threshold and purge.

A named backend (``S3JSONXComBackend`` ...) only says which store, which connection and whether
pandas values are encoded as frames; everything else lives here.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from airflow.sdk.bases.xcom import BaseXCom

from include.xcom_backends import dbform
from include.xcom_backends.codecs import (
    LAZY_FRAME,
    BytesCodec,
    Codec,
    CSVCodec,
    JSONCodec,
    NpyCodec,
    ParquetCodec,
    binary_kind,
    codec_for_format,
)
from include.xcom_backends.dbform import Reference
from include.xcom_backends.errors import (
    XComIntegrityError,
    XComObjectMissingError,
    XComReferenceError,
    XComStorageConfigError,
    XComStorageError,
)
from include.xcom_backends.fanin import read_in_order
from include.xcom_backends.integrity import Digester
from include.xcom_backends.keys import (
    XComRow,
    belongs_to,
    is_inside,
    object_key,
    prefix_of,
    row_location,
    row_of,
)
from include.xcom_backends.readahead import ReadAhead, Walk
from include.xcom_backends.routing import DEFAULT, INLINE, Routing, StoreSpec, kind_of
from include.xcom_backends.settings import SECTION, XComStorageSettings
from include.xcom_backends.stores.base import ObjectStore

log = logging.getLogger(__name__)

DEFAULT_XCOM_BACKEND = "airflow.sdk.bases.xcom.BaseXCom"  # Airflow's own: values in the metadata database

# The identity of the row being read or purged, where the task SDK's call into the backend does not
# carry it: set around BaseXCom.get_one/get_all (reads) and BaseXCom.delete (purge) by the overrides
# below. Unset: nothing is known of the row (a lazy sequence's items).
_ROW: ContextVar[XComRow | None] = ContextVar("xcom_storage_row", default=None)
# The task process's read-ahead of lazy sequences (readahead.py), made at its first use.
_READ_AHEAD: ReadAhead | None = None


def _pulled(dag_id: str, run_id: str, task_id: str, map_index: int | None, key: str, prior: bool) -> XComRow:
    """What a pull pins down of the row it gets: any run when it includes prior dates, any map index
    when none (all of them) is asked for."""
    return XComRow(dag_id, None if prior else run_id, task_id, map_index, key)


@dataclass(frozen=True)
class _Stored:
    """What the task SDK hands deserialize_value for a value of a sequence (its _XComValueWrapper)."""

    value: Any


def _slice_request(
    key: str,
    dag_id: str,
    task_id: str,
    run_id: str,
    include_prior_dates: bool,
    start: int | None = None,
    stop: int | None = None,
) -> Any:
    """The task SDK's request for the values of ``key`` of a task at offsets [start, stop) (default: all
    map indexes, as get_all sends it)."""
    from airflow.sdk.execution_time.comms import GetXComSequenceSlice

    return GetXComSequenceSlice(
        key=key,
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        start=start,
        stop=stop,
        step=None,
        include_prior_dates=include_prior_dates,
    )


@contextmanager
def _row(row: XComRow) -> Iterator[None]:
    token = _ROW.set(row)
    try:
        yield
    finally:
        _ROW.reset(token)


def _which_store(name: str) -> str:
    """What messages add to name a store: nothing for the backend's own, else the store of
    ``[xcom_storage] stores``."""
    return "" if name == DEFAULT else f" (store {name!r} of [{SECTION}] stores)"


@dataclass
class StoreRuntime:
    name: str  # the store's name in the routing ("default": the backend class's own)
    settings: XComStorageSettings
    store: ObjectStore

    @cached_property
    def digester(self) -> Digester:
        """The integrity digests of this store's objects: keyed when it has a customer key."""
        return Digester.for_customer_key(self.store.customer_key)

    @property
    def location(self) -> str:
        """Where this store writes: its URI prefix (two stores may share it)."""
        return self.store.uri(prefix_of(self.settings.prefix))

    def hint(self, operation: str) -> str:
        where = _which_store(self.name)
        return (
            f"Check that {self.store.endpoint} is reachable, that bucket {self.settings.bucket!r}{where} exists "
            "and that "
            f"connection {self.settings.conn_id!r} has credentials allowed to {operation} objects in it "
            f"(timeouts and attempts: [xcom_storage] timeout_seconds={self.settings.timeout_seconds:g}, "
            f"max_attempts={self.settings.max_attempts})."
        )


class ObjectStorageXCom(BaseXCom):
    """Offloads XCom values to object storage and keeps a small JSON reference in the database."""

    store_class: ClassVar[type[ObjectStore]]
    default_conn_id: ClassVar[str]
    encodes_pandas: ClassVar[bool] = False
    _runtimes: ClassVar[dict[tuple[type, str], StoreRuntime]] = {}
    _routings: ClassVar[dict[type, Routing]] = {}

    # --- configuration -------------------------------------------------------------------
    @classmethod
    def settings(cls) -> XComStorageSettings:
        return XComStorageSettings.from_airflow_config(default_conn_id=cls.default_conn_id)

    @classmethod
    def routing(cls) -> Routing:
        """The stores and rules of ``[xcom_storage]``, validated once per process."""
        routing = ObjectStorageXCom._routings.get(cls)
        if routing is None:
            from airflow.sdk.configuration import conf

            stores, rules = (str(conf.get(SECTION, name, fallback="") or "") for name in ("stores", "rules"))
            routing = ObjectStorageXCom._routings[cls] = Routing.parse(cls.settings(), stores, rules)
        return routing

    @classmethod
    def store_class_of(cls, spec: StoreSpec) -> type[ObjectStore]:
        if spec.type is None:
            return cls.store_class
        from include.xcom_backends.stores import STORE_CLASSES

        return STORE_CLASSES[spec.type]

    @classmethod
    def runtime(cls, name: str = DEFAULT) -> StoreRuntime:
        """Settings and client of the store ``name``, built once per process (a task runs in its own
        process) and only when a value goes to or comes from it."""
        rt = ObjectStorageXCom._runtimes.get((cls, name))
        if rt is None:
            from airflow.sdk import BaseHook

            spec = cls.routing().stores[name]
            settings, store_class = spec.settings, cls.store_class_of(spec)
            where = _which_store(name)
            try:
                # Explicitly: a missing connection must fail here, not fall back to ambient credentials.
                connection = BaseHook.get_connection(settings.conn_id)
            except Exception as exc:
                raise XComStorageConfigError(
                    f"{cls.__name__}: Airflow connection {settings.conn_id!r}{where} could not be loaded "
                    f"({type(exc).__name__}: {exc}). Create it (Admin > Connections, airflow_settings.yaml or "
                    f"AIRFLOW_CONN_{settings.conn_id.upper()}) or point [xcom_storage] conn_id at another one."
                ) from None
            try:
                store = store_class(settings, connection)
            except Exception as exc:
                raise XComStorageConfigError(
                    f"{cls.__name__}: could not create a {store_class.__name__} client from Airflow "
                    f"connection {settings.conn_id!r}{where} ({type(exc).__name__}: {exc}). Check the connection's "
                    f"fields for this store (see docs/configuration.md)."
                ) from exc
            rt = ObjectStorageXCom._runtimes[(cls, name)] = StoreRuntime(name, settings, store)
        return rt

    @classmethod
    def runtimes(cls) -> list[StoreRuntime]:
        """Every store the configuration names, each location (endpoint and URI prefix) once."""
        found: dict[tuple[str, str], StoreRuntime] = {}
        for name in cls.routing().stores:
            rt = cls.runtime(name)
            found.setdefault((rt.store.endpoint, rt.location), rt)
        return list(found.values())

    @classmethod
    def reset(cls) -> None:
        """Forget cached settings and clients (after changing configuration in the same process)."""
        global _READ_AHEAD
        ObjectStorageXCom._runtimes.clear()
        ObjectStorageXCom._routings.clear()
        if _READ_AHEAD is not None:
            _READ_AHEAD.close()
            _READ_AHEAD = None

    @classmethod
    def codec_for(cls, value: Any, settings: XComStorageSettings) -> Codec:
        kind = binary_kind(value)
        if not cls.encodes_pandas:
            return JSONCodec(refuse=cls._refuse_binary)
        if kind in ("dataframe", "series") and settings.dataframe_format == "csv":
            return CSVCodec()
        if kind in ("bytes", "bytearray"):
            return BytesCodec()
        if kind == "ndarray":
            return NpyCodec()
        if kind is not None:
            return ParquetCodec(settings.compression)
        return JSONCodec(refuse=cls._refuse_binary)

    @classmethod
    def _refuse_binary(cls, value: Any, path: str) -> None:
        """Inside a JSON value, or in a JSON backend: a frame, array or bytes value is refused, naming
        where it can go."""
        kind = binary_kind(value)
        if kind is None:
            return
        if kind == "polars.lazyframe":
            raise TypeError(f"XCom {path}: {LAZY_FRAME}")
        what = f"XCom {path} is a {type(value).__module__}.{type(value).__qualname__}"
        if cls.encodes_pandas:
            raise TypeError(
                f"{what} inside a JSON value; {cls.__name__} stores frames, arrays and bytes only "
                "as the whole XCom value: push it as an XCom of its own (return it, or xcom_push it "
                "under its own key)."
            )
        holders = [sub.__name__ for sub in cls.__subclasses__() if sub.encodes_pandas] or ["a Pandas backend"]
        raise TypeError(
            f"{what}, which {cls.__name__} (JSON only) cannot store. {holders[0]} stores pandas, polars "
            "and pyarrow frames as Parquet, numpy arrays as .npy and bytes as they are."
        )

    # --- push ------------------------------------------------------------------------------
    @classmethod
    def serialize_value(
        cls,
        value: Any,
        *,
        key: str | None = None,
        task_id: str | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        map_index: int | None = None,
    ) -> Any:
        routing = cls.routing()
        row = XComRow.of(
            dag_id=dag_id or "", run_id=run_id or "", task_id=task_id or "", map_index=map_index, key=key or ""
        )
        # A value is encoded once per (codec, format, compression) that a store asked about needs.
        encodings: dict[tuple[type, str, str], Any] = {}

        def encode(settings: XComStorageSettings) -> Any:
            codec = cls.codec_for(value, settings)
            id_ = (type(codec), settings.dataframe_format, settings.compression)
            if id_ not in encodings:
                encodings[id_] = codec.encode(value)
            return encodings[id_]

        kind = kind_of(binary_kind(value)) if cls.encodes_pandas else "json"
        target, rule = routing.route(row, kind, lambda spec: len(encode(spec.settings).data))
        if target == INLINE:
            return dbform.inline(value, encode(routing.default.settings))
        rt = cls.runtime(target)
        encoded = encode(rt.settings)
        object_name = object_key(prefix=rt.settings.prefix, row=row, extension=encoded.extension)
        uri = rt.store.uri(object_name)
        digester = rt.digester
        _, error, digest = _with_digest(encoded.data, lambda: rt.store.put(object_name, encoded.data), digester.digest)
        if error is not None:
            raise XComStorageError(
                f"Could not store XCom {key!r} of task {task_id!r} at {uri} (endpoint {rt.store.endpoint}, "
                f"bucket {rt.settings.bucket!r}, key {object_name!r}, connection {rt.settings.conn_id!r}): "
                f"{type(error).__name__}: {error}. {rt.hint('write')}"
            ) from error
        ref = Reference(
            uri=uri, format=encoded.format, size=len(encoded.data), digest=digest, kind=encoded.kind, store=target
        )
        why = f", {rule.label}" if rule is not None else ""
        log.info("XCom %r stored at %s (%s, %d bytes%s)", key, uri, encoded.format, ref.size, why)
        return ref.to_json()

    # --- pull ------------------------------------------------------------------------------
    # The task SDK hands deserialize_value only the stored value. These overrides tell it which row
    # the value comes from, as far as the request pins it down (XComRow: None = any).
    @classmethod
    def get_one(
        cls,
        *,
        key: str,
        dag_id: str,
        task_id: str,
        run_id: str,
        map_index: int | None = None,
        include_prior_dates: bool = False,
    ) -> Any:
        with _row(_pulled(dag_id, run_id, task_id, map_index, key, include_prior_dates)):
            return super().get_one(
                key=key,
                dag_id=dag_id,
                task_id=task_id,
                run_id=run_id,
                map_index=map_index,
                include_prior_dates=include_prior_dates,
            )

    @classmethod
    async def aget_one(
        cls,
        *,
        key: str,
        dag_id: str,
        task_id: str,
        run_id: str,
        map_index: int | None = None,
        include_prior_dates: bool = False,
    ) -> Any:
        with _row(_pulled(dag_id, run_id, task_id, map_index, key, include_prior_dates)):
            return await super().aget_one(
                key=key,
                dag_id=dag_id,
                task_id=task_id,
                run_id=run_id,
                map_index=map_index,
                include_prior_dates=include_prior_dates,
            )

    # get_all/aget_all: what the task SDK's BaseXCom.get_all does (one GetXComSequenceSlice, then
    # deserialize_value of each value), except that the objects of the references are fetched
    # [xcom_storage] read_concurrency at a time (fanin.py), each still through deserialize_value with
    # the row of the request, and the values come back in order.
    @classmethod
    def get_all(cls, *, key: str, dag_id: str, task_id: str, run_id: str, include_prior_dates: bool = False) -> Any:
        from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

        request = _slice_request(key, dag_id, task_id, run_id, include_prior_dates)
        with _row(_pulled(dag_id, run_id, task_id, None, key, include_prior_dates)):
            return cls._read_slice(SUPERVISOR_COMMS.send(msg=request))

    @classmethod
    async def aget_all(
        cls, *, key: str, dag_id: str, task_id: str, run_id: str, include_prior_dates: bool = False
    ) -> Any:
        from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

        request = _slice_request(key, dag_id, task_id, run_id, include_prior_dates)
        with _row(_pulled(dag_id, run_id, task_id, None, key, include_prior_dates)):
            # The reads block the event loop as the task SDK's own aget_all does, and every fetch has
            # finished when this returns (a worker thread awaited here would outlive a cancellation).
            return cls._read_slice(await SUPERVISOR_COMMS.asend(msg=request))

    @classmethod
    def _read_slice(cls, msg: Any) -> list[Any] | None:
        """The values of a GetXComSequenceSlice answer, as BaseXCom.get_all returns them (None when
        there are none), read under the row ``_ROW`` holds."""
        from airflow.sdk.execution_time.comms import XComSequenceSliceResult

        if not isinstance(msg, XComSequenceSliceResult):
            raise TypeError(f"Expected XComSequenceSliceResult, received: {type(msg)} {msg}")
        if not msg.root:
            return None
        return cls.read_values(msg.root)

    @classmethod
    def read_values(cls, values: Sequence[Any], concurrency: int | None = None) -> list[Any]:
        """``[deserialize_value(v) for v in values]`` (stored values, as the database holds them), with
        the objects of the references fetched ``concurrency`` at a time (default: ``[xcom_storage]
        read_concurrency``; 1: one after another), in the caller's ``_ROW``; the values in order, or
        the error the sequential loop would raise."""
        limit = cls.routing().default.settings.read_concurrency if concurrency is None else concurrency
        return read_in_order(values, lambda value: cls.deserialize_value(_Stored(value)), cls._fetch_ready, limit)

    @classmethod
    def _fetch_ready(cls, value: Any) -> bool:
        """Whether ``value`` is a reference to fetch in a pool thread: its store's client is built here,
        in the calling thread (a connection lookup talks to the supervisor). Anything else, and a
        reference whose store cannot be set up, is read in the calling thread, where
        ``deserialize_value`` raises what it raises."""
        if not dbform.is_reference(value):
            return False
        try:
            form = dbform.read(value)
            if not isinstance(form, Reference) or form.store not in cls.routing().stores:
                return False
            cls.runtime(form.store).digester  # noqa: B018  (built once, before the threads share it)
        except Exception:
            return False
        return True

    @classmethod
    def deserialize_value(cls, result: Any) -> Any:
        form = dbform.read(result.value)
        if isinstance(form, Reference):
            row = _ROW.get()
            return cls.load(form, row) if row is not None else cls._load_item(form)
        if isinstance(form, dbform.InlineBytes):
            return codec_for_format(form.format).decode(form.data, form.kind)
        if isinstance(form, dbform.InlineJSON):
            return form.value
        # A plain JSON value kept inline, or a row written by Airflow's default backend (serde).
        return BaseXCom.deserialize_value(result)

    @classmethod
    def object_key_for(cls, ref: Reference, row: XComRow) -> tuple[StoreRuntime, str]:
        """The store ``ref`` names and the object key of ``ref`` read from ``row``, or
        XComReferenceError: the store must be one the configuration names, and the key must lie in its
        bucket and prefix, under the location the backend itself writes for that row."""
        stores = cls.routing().stores
        if ref.store not in stores:
            raise XComReferenceError(
                f"XCom reference to {ref.uri} names store {ref.store!r}, which [{SECTION}] stores does not "
                f"define (defined: {', '.join(stores)}); refusing to read or delete it (XCom row: {row}). "
                "Add the store back to the configuration, or delete this XCom row.",
                reason=f"the reference names store {ref.store!r}, which the configuration does not define, "
                "so it was not read.",
            )
        rt = cls.runtime(ref.store)
        scheme, bucket, key = ref.split_uri()
        if scheme != rt.store.scheme or bucket != rt.settings.bucket or not is_inside(key, rt.settings.prefix):
            location = rt.store.uri(prefix_of(rt.settings.prefix))
            raise XComReferenceError(
                f"XCom reference points to {ref.uri}, outside the configured location {location} of "
                f"{cls.__name__}{'' if ref.store == DEFAULT else f' store {ref.store!r}'}; refusing to read or "
                f"delete it (XCom row: {row}). Check [xcom_storage] bucket/prefix and the active "
                "AIRFLOW__CORE__XCOM_BACKEND.",
                reason=f"the reference names {ref.uri}, outside the configured location {location}, "
                "so it was not read.",
            )
        if not belongs_to(key, rt.settings.prefix, row):
            location = rt.store.uri(row_location(rt.settings.prefix, row))
            raise XComReferenceError(
                f"XCom row ({row}) holds a reference to {ref.uri}, which is not under that row's own location "
                f"{location}; refusing to read or delete it. The backend only follows a reference for the row it "
                "wrote it for. Delete this XCom row (deleting a row in the UI or REST API does not touch storage) "
                "and re-run the task that should produce it.",
                reason=f"the reference names {ref.uri}, which is not under that row's own location {location}, "
                "so it was not read.",
            )
        return rt, key

    # --- a lazy sequence's items, read one at a time (readahead.py) ---------------------------------
    @classmethod
    def _load_item(cls, ref: Reference) -> Any:
        """An item of a lazy sequence (no row identity known): read like any value, with the object
        fetched ahead when it continues a walk through a mapped task's values."""
        ahead = cls._read_ahead()
        if ahead is None:
            return cls.load(ref, XComRow())
        prefetched = ahead.take(ref)
        try:
            rt = cls.runtime(ref.store) if ref.store in cls.routing().stores else None
            walked = None if rt is None else row_of(ref.split_uri()[2], rt.settings.prefix)
        except Exception:  # load below reports what is wrong with the reference
            walked = None
        ahead.after(walked, prefetched is not None, cls._slice_values, cls._plan_read_ahead)
        return cls.load(ref, XComRow(), prefetched)

    @classmethod
    def _read_ahead(cls) -> ReadAhead | None:
        """The task process's read-ahead, when this runs in a task (the task SDK's supervisor channel
        exists) and ``read_concurrency`` allows more than one fetch at a time."""
        global _READ_AHEAD
        from airflow.sdk.execution_time import task_runner

        if getattr(task_runner, "SUPERVISOR_COMMS", None) is None:
            return None
        limit = cls.routing().default.settings.read_concurrency
        if limit < 2:
            return None
        if _READ_AHEAD is None or _READ_AHEAD.threads != limit:
            if _READ_AHEAD is not None:
                _READ_AHEAD.close()
            _READ_AHEAD = ReadAhead(window=2 * limit, threads=limit)
        return _READ_AHEAD

    @classmethod
    def _slice_values(cls, walk: Walk, start: int, stop: int) -> Sequence[Any]:
        from airflow.sdk.execution_time.comms import XComSequenceSliceResult
        from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

        request = _slice_request(walk.key, walk.dag_id, walk.task_id, walk.run_id, False, start, stop)
        msg = SUPERVISOR_COMMS.send(msg=request)
        if not isinstance(msg, XComSequenceSliceResult):
            raise TypeError(f"Expected XComSequenceSliceResult, received: {type(msg)} {msg}")
        return msg.root

    @classmethod
    def _plan_read_ahead(cls, walk: Walk, value: Any) -> tuple[Reference, Callable[[], bytes | memoryview]] | None:
        """A stored value of ``walk``'s upstream to fetch ahead: a reference under that upstream's own
        location (``object_key_for``, in this thread: a store's client may need the supervisor)."""
        if not dbform.is_reference(value):
            return None
        try:
            form = dbform.read(value)
            if not isinstance(form, Reference):
                return None
            row = XComRow(walk.dag_id, walk.run_id, walk.task_id, None, walk.key)
            rt, key = cls.object_key_for(form, row)
        except Exception:
            return None
        return form, functools.partial(rt.store.get, key)

    @classmethod
    def load(cls, ref: Reference, row: XComRow, prefetched: bytes | memoryview | None = None) -> Any:
        """The value ``ref`` points to, read as part of ``row`` (see ``object_key_for``); ``prefetched``:
        its object's bytes, fetched ahead for exactly this reference (readahead.py)."""
        rt, key = cls.object_key_for(ref, row)
        try:
            data = rt.store.get(key) if prefetched is None else prefetched
        except FileNotFoundError:
            raise XComObjectMissingError(
                f"XCom object {ref.uri} does not exist (deleted or expired by a lifecycle rule?). "
                "Re-run the upstream task to produce it again."
            ) from None
        except Exception as exc:
            raise XComStorageError(
                f"Could not read XCom object {ref.uri} (endpoint {rt.store.endpoint}, connection "
                f"{rt.settings.conn_id!r}): {type(exc).__name__}: {exc}. {rt.hint('read')}"
            ) from exc
        if len(data) != ref.size:
            raise _corrupted(ref, data)
        codec = codec_for_format(ref.format)
        # The bytes come from our own bucket; decoding runs while they are hashed, and a mismatch wins
        # over whatever the decoder made of them.
        algorithm, digester = ref.digest_algorithm, rt.digester
        value, error, digest = _with_digest(
            data, lambda: codec.decode(data, ref.kind), lambda d: digester.digest(d, algorithm)
        )
        if not hmac.compare_digest(digest, ref.digest):
            raise _corrupted(ref, data) from error
        if error is not None:
            raise error
        return value

    # --- purge -----------------------------------------------------------------------------
    @classmethod
    def delete(cls, key: str, task_id: str, dag_id: str, run_id: str, map_index: int | None = None) -> None:
        """Airflow's XCom.delete, which calls ``purge`` with the row's value only: the identity of
        the row is passed on to ``purge`` here, so it deletes nothing outside that row's location."""
        with _row(XComRow.of(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, key=key)):
            super().delete(key=key, task_id=task_id, dag_id=dag_id, run_id=run_id, map_index=map_index)

    @classmethod
    def purge(cls, xcom: Any, *args: Any) -> None:
        """Delete the object of the XCom row ``xcom`` (called by ``delete``; an object with the row's
        ``dag_id``, ``run_id``, ``task_id``, ``map_index`` and ``key`` may also be passed)."""
        ref = dbform.read(getattr(xcom, "value", None))
        if not isinstance(ref, Reference):
            return
        row = _identity_of(xcom) or _ROW.get()
        if row is None or not row.complete:
            raise XComReferenceError(
                f"purge of {ref.uri} was called without the identity of its XCom row; refusing to delete it. "
                "Call XCom.delete(key=, task_id=, dag_id=, run_id=, map_index=) instead."
            )
        if getattr(xcom, "key", row.key) != row.key:
            raise XComReferenceError(
                f"purge of {ref.uri} was called for XCom key {xcom.key!r} while deleting row ({row}); "
                "refusing to delete it."
            )
        rt, key = cls.object_key_for(ref, row)
        rt.store.delete([key])
        log.info("Purged XCom object %s", ref.uri)


def _corrupted(ref: Reference, data: bytes | memoryview) -> XComIntegrityError:
    """The error of an object that does not match its reference (built only when one does not)."""
    return XComIntegrityError(
        f"XCom object {ref.uri} is corrupted: {len(data)} bytes with a different checksum than the "
        f"{ref.size} bytes written. Re-run the upstream task to produce it again."
    )


def _identity_of(xcom: Any) -> XComRow | None:
    """The row identity carried by ``xcom`` itself (an XCom model row has it; the task SDK's
    XComResult has only key and value)."""
    dag_id, run_id, task_id, key = (getattr(xcom, name, None) for name in ("dag_id", "run_id", "task_id", "key"))
    map_index = getattr(xcom, "map_index", None)
    if not (isinstance(dag_id, str) and isinstance(run_id, str) and isinstance(task_id, str) and isinstance(key, str)):
        return None
    if not isinstance(map_index, int):
        return None
    return XComRow.of(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index, key=key)


def configured_backend(path: str | None = None) -> tuple[str, type[ObjectStorageXCom] | None]:
    """The class path that ``[core] xcom_backend`` names (or ``path``), and that class if it is one of
    this project's backends (None for any other, such as Airflow's database backend). A path that
    cannot be imported raises ``XComStorageConfigError``: Airflow's own task processes would fail on it."""
    from airflow.sdk.configuration import conf
    from airflow.sdk.module_loading import import_string

    path = path or str(conf.get("core", "xcom_backend", fallback="") or DEFAULT_XCOM_BACKEND)
    try:
        cls = import_string(path)
    except Exception as exc:
        raise XComStorageConfigError(
            f"[core] xcom_backend (AIRFLOW__CORE__XCOM_BACKEND) names {path!r}, which cannot be imported "
            f"({type(exc).__name__}: {exc}); fix the class path (see .env), or delete the line to use "
            f"Airflow's default backend"
        ) from exc
    return path, cls if isinstance(cls, type) and issubclass(cls, ObjectStorageXCom) else None


_OVERLAP_MIN = 1024 * 1024  # below this, hashing in a second thread costs more than it saves


def _with_digest(
    data: bytes | memoryview, work: Callable[[], Any], digest: Callable[[bytes | memoryview], str]
) -> tuple[Any, Exception | None, str]:
    """Run ``work`` (an upload or a decode) while ``digest(data)`` is computed in a second thread
    (hashlib, hmac, the clients' sockets and pyarrow release the GIL). Returns (result, error, digest)."""

    def attempt() -> tuple[Any, Exception | None]:
        try:
            return work(), None
        except Exception as exc:
            return None, exc

    if len(data) < _OVERLAP_MIN:
        result, error = attempt()
        return result, error, digest(data)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xcom-digest") as pool:
        pending = pool.submit(digest, data)
        result, error = attempt()
        return result, error, pending.result()
