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
