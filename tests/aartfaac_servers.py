"""Scriptable loopback TCP servers for the AARTFAAC reader and connector tests.

A ``LoopbackServer`` listens on 127.0.0.1 and plays a script to every connection it accepts:
``bytes`` steps are sent (optionally cut into chunks of ``chunk`` bytes, each its own
``send``), ``float`` steps pause for that many seconds, and ``HOLD`` keeps the connection open
without sending anything until the client leaves or the server stops. When the script ends
the server closes the connection. ``stop()`` closes the listener and every connection and
joins every thread; ``start()`` after ``stop()`` listens again on the same port.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType

from daqwire.generated.aartfaac import Window, decode_window_from

__all__ = [
    "HOLD",
    "LoopbackServer",
    "ServerFactory",
    "Step",
    "connected",
    "decode_all",
    "free_port",
    "same_window",
    "wait_until",
]

HOST = "127.0.0.1"


def decode_all(data: bytes) -> list[Window]:
    """Every window of a clean byte string, each decoded on its own (the reference)."""
    windows = []
    offset = 0
    while offset < len(data):
        window, offset = decode_window_from(data, offset)
        windows.append(window)
    return windows


def same_window(got: Window, ref: Window) -> bool:
    """Equal FITS text and bit-identical pixels (NaN payloads and -0.0 included)."""
    return (
        got.fits == ref.fits
        and got.image.shape == ref.image.shape
        and got.image.dtype == ref.image.dtype
        and got.image.tobytes() == ref.image.tobytes()
    )


class _Hold:
    """Script step: stay connected and silent until the client leaves or the server stops."""

    def __repr__(self) -> str:
        return "HOLD"


HOLD = _Hold()

Step = bytes | float | _Hold
Script = Sequence[Step]


def free_port() -> int:
    """A loopback port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


def wait_until(
    cond: Callable[[], object], timeout_s: float = 10.0, interval_s: float = 0.005
) -> None:
    """Poll ``cond`` until it is true; fail the test if ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s: {cond}")
        time.sleep(interval_s)


class LoopbackServer:
    """A TCP server thread on 127.0.0.1 that plays a script to each accepted connection.

    ``script`` is either one script for every connection or a callable that gets the
    0-based number of the connection (counted over restarts) and returns its script.
    """

    def __init__(
        self,
        script: Script | Callable[[int], Script],
        *,
        port: int = 0,
        chunk: int | None = None,
    ) -> None:
        self._script = script
        self.port = port
        self.chunk = chunk
        self.accepted = 0
        self.finished = 0  # connections whose script ran to the end
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._acceptors: list[threading.Thread] = []
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()

    @property
    def address(self) -> tuple[str, int]:
        return HOST, self.port

    @property
    def listening(self) -> bool:
        return self._listener is not None

    def start(self) -> LoopbackServer:
        """Listen (again, on the same port after a stop) and accept in a thread."""
        if self._listener is not None:
            raise RuntimeError("already listening")
        listener = socket.create_server((HOST, self.port))  # SO_REUSEADDR on POSIX
        listener.settimeout(0.02)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop = threading.Event()
        thread = threading.Thread(
            target=self._accept_loop,
            args=(listener, self._stop),
            name=f"aartfaac-test-server-{self.port}",
            daemon=True,
        )
        self._acceptors.append(thread)
        thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, close every connection and join every thread (idempotent)."""
        self._stop.set()
        for thread in self._acceptors:  # no new connection after this
            thread.join(10)
            assert not thread.is_alive(), f"{thread.name} did not stop"
        self._acceptors.clear()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes a blocked send
            except OSError:
                pass
        for thread in self._threads:
            thread.join(10)
            assert not thread.is_alive(), f"{thread.name} did not stop"
        self._threads.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> LoopbackServer:
        return self.start() if self._listener is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _accept_loop(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                number = self.accepted
                self.accepted += 1
                self._conns.add(conn)
            script = self._script(number) if callable(self._script) else self._script
            thread = threading.Thread(
                target=self._play,
                args=(conn, script, stop),
                name=f"aartfaac-test-conn-{self.port}-{number}",
                daemon=True,
            )
            with self._lock:
                self._threads.append(thread)
            thread.start()
        listener.close()

    def _play(self, conn: socket.socket, script: Script, stop: threading.Event) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.settimeout(10)
            for step in script:
                if stop.is_set():
                    return
                if isinstance(step, bytes | bytearray):
                    size = self.chunk or max(1, len(step))
                    for start in range(0, len(step), size):
                        conn.sendall(step[start : start + size])
                elif isinstance(step, _Hold):
                    conn.settimeout(0.02)
                    while not stop.is_set():
                        try:
                            if not conn.recv(1):
                                return  # the client left
                        except TimeoutError:
                            continue
                else:
                    stop.wait(float(step))
            with self._lock:
                self.finished += 1
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the client went away or the server stopped
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()


class ServerFactory:
    """Makes ``LoopbackServer``s and stops them all on exit (for a pytest fixture)."""

    def __init__(self) -> None:
        self.servers: list[LoopbackServer] = []

    def __call__(
        self,
        script: Script | Callable[[int], Script],
        *,
        port: int = 0,
        chunk: int | None = None,
        start: bool = True,
    ) -> LoopbackServer:
        server = LoopbackServer(script, port=port, chunk=chunk)
        self.servers.append(server)
        return server.start() if start else server

    def close(self) -> None:
        for server in self.servers:
            server.stop()

    def __enter__(self) -> ServerFactory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def connected(server: LoopbackServer, timeout_s: float = 10.0) -> Iterator[socket.socket]:
    """A client socket connected to ``server`` (closed on exit)."""
    sock = socket.create_connection(server.address, timeout=timeout_s)
    try:
        yield sock
    finally:
        sock.close()
