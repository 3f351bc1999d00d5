"""One UDP request/reply server thread: receive a datagram, ask ``serve`` for the reply, send it.

The socket is bound in the constructor (so ``port=0`` reports its port at once) and closed by
``stop()``, which wakes the blocked receive with a datagram to itself and joins the thread.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from daqwire.errors import DaqwireError

__all__ = ["PortStillReserved", "ServerStats", "UdpServer"]

logger = logging.getLogger(__name__)

#: receive buffer: the largest UDP datagram, so no request is ever cut short
RECEIVE_BUFFER_BYTES = 65536

Address = tuple[str, int]
Serve = Callable[[bytes, Address], bytes]


class PortStillReserved(DaqwireError, OSError):
    """The UDP port is taken by another socket (this or another process)."""


@dataclass
class ServerStats:
    """Counters of one server; read them at any time."""

    requests: int = 0
    replies: int = 0
    send_errors: int = 0
    serve_errors: int = 0


class UdpServer:
    """A bound UDP socket and the thread that answers each datagram with ``serve(data, addr)``."""

    def __init__(self, host: str, port: int, serve: Serve, *, name: str = "udp") -> None:
        self._serve = serve
        self._name = name
        self.stats = ServerStats()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise PortStillReserved(
                    exc.errno,
                    f"UDP port {port} on {host or 'all interfaces'} is in use by another "
                    "socket (another socket server in this or another process)",
                ) from exc
            raise
        self._sock = sock
        self.host, self.port = sock.getsockname()[:2]
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """True while the server thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start answering requests (idempotent); a stopped server cannot be restarted."""
        with self._lock:
            if self._stopping:
                raise RuntimeError(f"{self._name} on port {self.port} was stopped; make a new one")
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name=f"daqwire-{self._name}-{self.port}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close the socket; the port is free when this returns."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._wake()
            thread.join(timeout=5.0)
            if thread.is_alive():  # pragma: no cover - the wake datagram was lost
                logger.warning("%s on port %d did not stop within 5 s", self._name, self.port)
        self._sock.close()

    def _wake(self) -> None:
        target = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.sendto(b"", (target, self.port))
            except OSError:  # pragma: no cover - loopback refused
                logger.debug("wake datagram to %s:%d failed", target, self.port)

    def _run(self) -> None:
        sock = self._sock
        buf = bytearray(RECEIVE_BUFFER_BYTES)
        view = memoryview(buf)
        stats = self.stats
        serve = self._serve
        while True:
            try:
                n, addr = sock.recvfrom_into(buf)
            except OSError as exc:
                if self._stopping:
                    return
                logger.warning("%s on port %d: receive failed: %s", self._name, self.port, exc)
                continue
            if self._stopping:
                return
            stats.requests += 1
            try:
                reply = serve(bytes(view[:n]), addr)
            except Exception:  # serve must answer; never let one request kill the thread
                stats.serve_errors += 1
                logger.exception("%s on port %d: serving %s failed", self._name, self.port, addr)
                continue
            try:
                sock.sendto(reply, addr)
            except OSError as exc:
                stats.send_errors += 1
                logger.warning(
                    "%s on port %d: reply of %d bytes to %s failed: %s",
                    self._name,
                    self.port,
                    len(reply),
                    addr,
                    exc,
                )
                continue
            stats.replies += 1
