"""A minimal live server: receives the datagrams LiveSocket sends and keeps the latest values.

The reference's live server is not public; this receiver is what daqwire offers in its place
(and what tests use): one thread, one UDP socket, ``decode_live_update`` for every datagram.
Bad datagrams are counted and logged, never fatal; a full queue drops its oldest update.
"""

from __future__ import annotations

import collections
import logging
import queue
import selectors
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

from daqwire.errors import RemoteProtocolError
from daqwire.generated.pyexplabsys import Update, decode_live_update

__all__ = ["LiveServer", "LiveServerStats"]

log = logging.getLogger(__name__)

#: receive buffer: more than the largest UDP payload, so no update is ever cut
RECEIVE_BUFFER_BYTES: Final = 65536


@dataclass(frozen=True, slots=True)
class LiveServerStats:
    """A snapshot of a LiveServer's counters."""

    #: datagrams received
    datagrams: int
    #: valid updates received (queued, or queued and later dropped)
    updates: int
    #: datagrams that were not a valid update
    errors: int
    #: updates dropped (oldest first) because the queue was full
    dropped: int


class LiveServer:
    """Receive LiveSocket updates on a UDP port; ``latest`` and a bounded queue of ``Update``.

    The socket binds in the constructor (``port=0`` picks a free port, read it from ``.port``);
    ``start()`` starts the receiving thread, ``stop()`` stops it and frees the port at once.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, max_updates: int = 10000) -> None:
        if isinstance(max_updates, bool) or not isinstance(max_updates, int) or max_updates < 1:
            raise ValueError(f"max_updates must be an int >= 1, not {max_updates!r}")
        self.max_updates = max_updates
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, port))
            self._sock.setblocking(False)
        except BaseException:
            self._sock.close()
            raise
        self.host: str = self._sock.getsockname()[0]
        self.port: int = self._sock.getsockname()[1]
        # a byte on this pair wakes the thread out of select() at once when stop() is called
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._queue: collections.deque[Update] = collections.deque()
        self._latest: dict[str, dict[str, Any]] = {}
        self._datagrams = 0
        self._updates = 0
        self._errors = 0
        self._dropped = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the receiving thread (no-op if running); a stopped server cannot restart."""
        with self._lock:
            if self._closed:
                raise RuntimeError("a stopped LiveServer cannot be restarted; make a new one")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"LiveServer:{self.port}", daemon=True
                )
                self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close the socket (the port is free when this returns); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stopping = True
            thread = self._thread
        try:
            self._wake_w.send(b"\0")
        except OSError:  # pragma: no cover - the pair is ours and open until below
            pass
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._sock.close()
        self._wake_r.close()
        self._wake_w.close()
        with self._ready:
            self._ready.notify_all()

    @property
    def running(self) -> bool:
        """True while the receiving thread runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- reading what came in ------------------------------------------------------------------

    @property
    def latest(self) -> dict[str, dict[str, Any]]:
        """A copy of the last value of each codename per host: host -> codename -> value."""
        with self._lock:
            return {host: dict(values) for host, values in self._latest.items()}

    @property
    def stats(self) -> LiveServerStats:
        """A snapshot of the counters."""
        with self._lock:
            return LiveServerStats(self._datagrams, self._updates, self._errors, self._dropped)

    def get(self, *, timeout_s: float | None = None) -> Update:
        """The oldest queued update; waits up to ``timeout_s`` (None: forever), else queue.Empty."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._ready:
            while not self._queue:
                if self._closed:
                    raise queue.Empty
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise queue.Empty
                self._ready.wait(remaining)
            return self._queue.popleft()

    def updates(self) -> list[Update]:
        """Every queued update, oldest first; the queue is empty afterwards."""
        with self._lock:
            items = list(self._queue)
            self._queue.clear()
            return items

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        """Receive until stop(): wait on the socket and the wake-up pair, drain what is ready."""
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in selector.select():
                    if key.fileobj is self._sock:
                        self._receive_ready()
        log.debug("LiveServer on port %d stopped", self.port)

    def _receive_ready(self) -> None:
        """Handle every datagram waiting on the socket."""
        while not self._stopping:
            try:
                data, source = self._sock.recvfrom(RECEIVE_BUFFER_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("LiveServer on port %d: receive failed: %s", self.port, exc)
                return
            self._handle(data, source)

    def _handle(self, data: bytes, source: Any) -> None:
        """Decode one datagram and record it, or count and log why it is not an update."""
        try:
            update = decode_live_update(data)
            if not isinstance(update.host, str):
                raise ValueError(f"the host {update.host!r} is not a string")
            if not isinstance(update.data, Mapping):
                raise ValueError(f"the data {update.data!r:.60} is not an object")
        except (RemoteProtocolError, ValueError) as exc:
            with self._lock:
                self._datagrams += 1
                self._errors += 1
            log.warning("LiveServer on port %d: bad datagram from %s: %s", self.port, source, exc)
            return
        with self._ready:
            self._datagrams += 1
            self._updates += 1
            self._latest.setdefault(update.host, {}).update(update.data)
            if len(self._queue) >= self.max_updates:
                self._queue.popleft()
                self._dropped += 1
            self._queue.append(update)
            self._ready.notify()
