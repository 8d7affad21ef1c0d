"""Loopback network faults for tests: a black hole (accepts, never answers) and a TCP proxy that can
delay every connection or break bulk transfers after N bytes sent upstream. Bounded: daemon threads,
closed by the test."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.settimeout(0.2)
    return sock


@contextlib.contextmanager
def _serving(on_connection: Callable[[socket.socket], None]) -> Iterator[int]:
    """Accept connections on a free loopback port until the block ends; yield the port."""
    sock, stop = _listener(), threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            on_connection(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        sock.close()


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A port that accepts connections and reads, but never answers: hanging storage."""
    held: list[socket.socket] = []
    try:
        with _serving(held.append) as port:
            yield port
    finally:
        for conn in held:
            conn.close()


@contextlib.contextmanager
def proxy(
    upstream_port: int, *, delay: float = 0.0, cut_after: int | None = None, small_request: int = 16 * 1024
) -> Iterator[int]:
    """Forward 127.0.0.1:<port> to upstream; wait `delay` s per connection. With `cut_after`: once more
    than that many bytes in all went upstream, the data path breaks. From then on every connection is
    closed as soon as it sends more than `small_request` bytes, so bulk transfers (and their retries)
    fail mid-way while small control requests (an abort, a status query) still reach the server."""
    budget = [cut_after]
    lock = threading.Lock()

    def pump(src: socket.socket, dst: socket.socket, limited: bool) -> None:
        after_cut = 0  # what this connection sent upstream once the path was broken
        try:
            while chunk := src.recv(65536):
                if limited:
                    with lock:
                        if budget[0] is not None and len(chunk) <= budget[0]:
                            budget[0] -= len(chunk)
                        else:
                            budget[0] = None
                            after_cut += len(chunk)
                    if after_cut > small_request:
                        break
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def handle(client: socket.socket) -> None:
        time.sleep(delay)
        try:
            upstream = socket.create_connection(("127.0.0.1", upstream_port), timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        client.settimeout(None)
        threading.Thread(target=pump, args=(client, upstream, cut_after is not None), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, False), daemon=True).start()

    with _serving(lambda conn: threading.Thread(target=handle, args=(conn,), daemon=True).start()) as port:
        yield port


class Freezer:
    """The switch of a :func:`freezable_proxy`: ``freeze()`` and from then on nothing goes through, in
    either direction, on any connection (those already open included; new ones are held, never
    connected upstream). A connection that saw the freeze stays dead after ``thaw()``: no request is
    ever forwarded in part."""

    def __init__(self) -> None:
        self.frozen = threading.Event()
        self.dropped = 0  # bytes read and thrown away since the freeze

    def freeze(self) -> None:
        self.frozen.set()

    def thaw(self) -> None:
        self.frozen.clear()


@contextlib.contextmanager
def freezable_proxy(upstream_port: int) -> Iterator[tuple[int, Freezer]]:
    """Forward 127.0.0.1:<port> to upstream until frozen (:class:`Freezer`); yield the port and the switch.
    A frozen path looks like a network partition: connections stay open and every byte is lost."""
    freezer, lock = Freezer(), threading.Lock()
    held: list[socket.socket] = []

    def pump(src: socket.socket, dst: socket.socket, dead: threading.Event) -> None:
        try:
            while chunk := src.recv(65536):
                if freezer.frozen.is_set():
                    dead.set()
                if dead.is_set():
                    with lock:
                        freezer.dropped += len(chunk)
                    continue
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            if not dead.is_set():  # a dead connection is held open until the proxy closes
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

    def handle(client: socket.socket) -> None:
        with lock:
            held.append(client)
        if freezer.frozen.is_set():  # held: accepted, read, never answered
            threading.Thread(target=pump, args=(client, client, threading.Event()), daemon=True).start()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", upstream_port), timeout=10)
        except OSError:
            client.close()
            return
        with lock:
            held.append(upstream)
        upstream.settimeout(None)
        client.settimeout(None)
        dead = threading.Event()
        threading.Thread(target=pump, args=(client, upstream, dead), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, dead), daemon=True).start()

    try:
        with _serving(lambda conn: threading.Thread(target=handle, args=(conn,), daemon=True).start()) as port:
            yield port, freezer
    finally:
        for s in held:
            with contextlib.suppress(OSError):
                s.close()
