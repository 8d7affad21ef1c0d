"""Read-ahead for a mapped task's values read one at a time, in map-index order.

A task that gets a mapped upstream's output as an argument (``consume(produce.expand(...))``) receives
Airflow's ``LazyXComSequence``; iterating it asks the API server for one stored value at a time and
calls ``deserialize_value`` on each, so every offloaded value costs an API round trip *and* an
object-store round trip, one after the other. The database backend pays only the first.

``ReadAhead`` notices such a walk (two consecutive map indexes of one upstream's key) and, while the
walk goes on, asks the API server for the next references in one slice request and fetches their
objects in a few background threads, so that the object is usually there when the item's own
``deserialize_value`` comes:

- **Nothing is trusted from it.** A fetched object is used only for a value whose own reference (the
  one Airflow hands to ``deserialize_value`` for that item) names the same object, size and digest;
  that value then goes through the same row checks and integrity verification as any other read
  (``ObjectStorageXCom.load``). What a slice answers is checked with ``object_key_for`` against the
  upstream's own location before anything is fetched.
- **Bounded.** At most ``window`` objects are held or in flight, each at most ``MAX_OBJECT_BYTES``,
  together at most ``MAX_HELD_BYTES``; ``threads`` fetches run at a time.
- **It gives up.** A walk whose read-ahead misses (offsets that are not map indexes, a consumer that
  skips around) stops reading ahead after one window with no hit.
- **Only in a task process** (the task SDK's supervisor connection exists), and off with
  ``[xcom_storage] read_concurrency = 1``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from include.xcom_backends.dbform import Reference
from include.xcom_backends.keys import XComRow

log = logging.getLogger(__name__)

MAX_OBJECT_BYTES = 8 * 1024 * 1024
MAX_HELD_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Walk:
    """One upstream's values being read: its row identity without the map index."""

    dag_id: str
    run_id: str
    task_id: str
    key: str

    @classmethod
    def of(cls, row: XComRow) -> Walk:
        return cls(str(row.dag_id), str(row.run_id), str(row.task_id), str(row.key))


# slice(walk, start, stop): the stored values at offsets [start, stop) of the walk's upstream.
SliceFn = Callable[[Walk, int, int], Sequence[Any]]
# plan(walk, stored value): (object URI, Reference, fetch) for a reference to read ahead, else None.
PlanFn = Callable[[Walk, Any], "tuple[Reference, Callable[[], bytes | memoryview]] | None"]


class ReadAhead:
    def __init__(self, window: int, threads: int) -> None:
        self.window, self.threads = window, threads
        self._pool: ThreadPoolExecutor | None = None
        self._held: OrderedDict[str, tuple[Reference, Future[bytes | memoryview]]] = OrderedDict()
        self._walk: Walk | None = None
        self._last_index = -2
        self._asked_from = self._ahead_until = -1  # the offsets asked for in this walk
        self._walk_hits = self._walk_misses = 0
        self._gave_up: set[Walk] = set()
        self.hits = self.misses = 0

    # --- called by the backend for each reference read with no known row -------------------------
    def take(self, ref: Reference) -> bytes | memoryview | None:
        """The bytes fetched ahead for exactly ``ref`` (same object, size and digest), or None."""
        held = self._held.pop(ref.uri, None)
        if held is None:
            return None
        held_ref, future = held
        if held_ref != ref:
            future.cancel()
            return None
        try:
            data = future.result()
        except Exception:  # read again the usual way, which reports the error as any read does
            return None
        self.hits += 1
        return data

    def after(self, row: XComRow | None, hit: bool, slice_fn: SliceFn, plan: PlanFn) -> None:
        """A value of ``row`` (as its object key names it; None if it cannot be told) is being read,
        ``hit`` if its object was fetched ahead: read further ahead if this continues a walk."""
        if row is None or row.map_index is None or row.map_index < 0:
            return
        walk, index = Walk.of(row), row.map_index
        sequential = walk == self._walk and index == self._last_index + 1
        if walk != self._walk:
            self._drop_all()
            self._asked_from = self._ahead_until = -1
            self._walk_hits = self._walk_misses = 0
        self._walk, self._last_index = walk, index
        if not sequential or walk in self._gave_up:
            return
        if self._asked_from <= index <= self._ahead_until:
            self._walk_hits += hit
            self._walk_misses += not hit
        if self._walk_misses >= self.window // 2 and self._walk_misses > self._walk_hits:
            # what was asked for is not what is read: offsets are not map indexes here
            self._gave_up.add(walk)
            self._drop_all()
            return
        if self._ahead_until - index >= self.window // 2:
            return  # enough is on its way
        start = max(index + 1, self._ahead_until + 1)
        stop = index + 1 + self.window
        if start >= stop:
            return
        try:
            stored = slice_fn(walk, start, stop)
        except Exception as exc:  # read-ahead is an optimisation: the items are read one by one anyway
            log.debug("XCom read-ahead of %s stopped: %s", walk, exc)
            self._gave_up.add(walk)
            return
        if self._asked_from < 0:
            self._asked_from = start
        self._ahead_until = stop - 1
        for value in stored:
            planned = plan(walk, value)
            if planned is None:
                continue
            ref, fetch = planned
            if ref.size > MAX_OBJECT_BYTES or ref.uri in self._held:
                continue
            while self._held and (len(self._held) >= self.window or self._held_bytes() + ref.size > MAX_HELD_BYTES):
                self._drop_oldest()
            self._held[ref.uri] = (ref, self._executor().submit(fetch))

    # --- bookkeeping ------------------------------------------------------------------------------
    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="xcom-read-ahead")
        return self._pool

    def _held_bytes(self) -> int:
        return sum(ref.size for ref, _ in self._held.values())

    def _drop_oldest(self) -> None:
        _, (_, future) = self._held.popitem(last=False)
        future.cancel()
        self.misses += 1

    def _drop_all(self) -> None:
        while self._held:
            self._drop_oldest()

    def close(self) -> None:
        self._drop_all()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
