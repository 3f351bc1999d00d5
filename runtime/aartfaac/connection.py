"""Keep one AARTFAAC stream connected: reconnect with capped backoff, survive bad windows."""

from __future__ import annotations

import logging
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from daqwire.aartfaac.framing import FramePool, WindowFramer
from daqwire.aartfaac.reader import DEFAULT_TIMEOUT_S, StreamImage, WindowReader, stream_name
from daqwire.errors import RemoteProtocolError, StreamClosedError, StreamTimeoutError
from daqwire.generated.aartfaac import WINDOW_MAX_FITS_BYTES, WINDOW_MAX_IMAGE_BYTES, PixelOrder

__all__ = ["Connector", "StreamStats", "backoff_delay"]

log = logging.getLogger(__name__)


def backoff_delay(
    attempt: int,
    *,
    initial_s: float = 0.1,
    max_s: float = 5.0,
    jitter: float = 0.5,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before reconnect ``attempt`` (0 = first retry): doubling, capped, jittered.

    The delay is ``min(max_s, initial_s * 2**attempt)`` scaled by a random factor in
    ``[1 - jitter, 1]``, so that many readers of one restarted imager do not reconnect in step.
    """
    base = min(max_s, initial_s * 2.0 ** min(attempt, 62))
    draw = (rng or random).random()
    return base * (1.0 - jitter * draw)


@dataclass(frozen=True, slots=True)
class StreamStats:
    """A snapshot of one stream's counters."""

    stream: str
    connected: bool
    windows: int
    bytes: int
    resyncs: int
    skipped_bytes: int
    errors: int
    truncated: int
    timeouts: int
    connects: int
    reconnects: int
    connect_failures: int
    sink_errors: int
    last_error: str | None


class Connector:
    """Read one imager's stream for as long as it runs and hand every window to ``sink``.

    A bad window is logged and counted and reading goes on (the framer resyncs); a closed,
    refused or silent connection is retried with capped exponential backoff and jitter. The
    backoff restarts after a connection that delivered a window. Nothing kills the thread
    but ``stop()``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        sink: Callable[[StreamImage], object],
        *,
        pixel_order: PixelOrder = "naxis2_fastest",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float = 5.0,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        backoff_jitter: float = 0.5,
        max_fits_bytes: int = WINDOW_MAX_FITS_BYTES,
        max_image_bytes: int = WINDOW_MAX_IMAGE_BYTES,
        max_buffers: int = 4,
        rng: random.Random | None = None,
    ) -> None:
        if timeout_s <= 0 or connect_timeout_s <= 0:
            raise ValueError("timeout_s and connect_timeout_s must be > 0")
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError("need 0 < backoff_initial_s <= backoff_max_s")
        if not 0 <= backoff_jitter < 1:
            raise ValueError("backoff_jitter must be in [0, 1)")
        self.host = host or "127.0.0.1"  # tkp's '' meant this machine
        self.port = port
        self.stream = stream_name(self.host, port)
        self.sink = sink
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.backoff_jitter = backoff_jitter
        self._rng = rng or random.Random()
        self._framer = WindowFramer(
            stream=self.stream,
            pixel_order=pixel_order,
            max_fits_bytes=max_fits_bytes,
            max_image_bytes=max_image_bytes,
            pool=FramePool(max_buffers=max_buffers),
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._connected = False
        self._timeouts = 0
        self._connects = 0
        self._connect_failures = 0
        self._sink_errors = 0
        self._last_error: str | None = None
        self._sequence = 0

    @property
    def stats(self) -> StreamStats:
        """Counters of this stream since the connector was made."""
        f = self._framer.stats
        with self._lock:
            return StreamStats(
                stream=self.stream,
                connected=self._connected,
                windows=f.windows,
                bytes=f.bytes,
                resyncs=f.resyncs,
                skipped_bytes=f.skipped_bytes,
                errors=f.errors,
                truncated=f.truncated,
                timeouts=self._timeouts,
                connects=self._connects,
                reconnects=max(0, self._connects - 1),
                connect_failures=self._connect_failures,
                sink_errors=self._sink_errors,
                last_error=self._last_error,
            )

    def start(self) -> None:
        """Run in a thread of its own (named after the stream)."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError(f"connector of {self.stream} was already started")
            self._thread = threading.Thread(
                target=self.run, name=f"aartfaac-connector-{self.stream}", daemon=True
            )
        self._thread.start()

    def stop(self, timeout_s: float | None = 10.0) -> None:
        """Stop reading, close the connection and join the thread (idempotent)."""
        self._stop.set()
        with self._lock:
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    @property
    def running(self) -> bool:
        """True while the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        """Connect, read and reconnect until ``stop()``; runs in the calling thread."""
        attempt = 0
        while not self._stop.is_set():
            sock = self._connect()
            if sock is not None:
                delivered = self._serve(sock)
                if delivered:
                    attempt = 0
            if self._stop.is_set():
                break
            delay = backoff_delay(
                attempt,
                initial_s=self.backoff_initial_s,
                max_s=self.backoff_max_s,
                jitter=self.backoff_jitter,
                rng=self._rng,
            )
            attempt += 1
            log.info("%s: reconnecting in %.2f s", self.stream, delay)
            self._stop.wait(delay)
        log.debug("%s: connector stopped", self.stream)

    def _connect(self) -> socket.socket | None:
        log.info("%s: connecting", self.stream)
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
        except OSError as exc:
            with self._lock:
                self._connect_failures += 1
                self._last_error = f"connect: {exc}"
            log.warning("%s: cannot connect: %s", self.stream, exc)
            return None
        with self._lock:
            if self._stop.is_set():
                sock.close()
                return None
            self._sock = sock
            self._connects += 1
            self._connected = True
        log.info("%s: connected", self.stream)
        return sock

    def _serve(self, sock: socket.socket) -> bool:
        """Read windows until the connection fails; True if at least one was delivered."""
        reader = WindowReader(
            sock, stream=self.stream, timeout_s=self.timeout_s, framer=self._framer
        )
        delivered = False
        try:
            while not self._stop.is_set():
                try:
                    window = reader.read()
                except RemoteProtocolError as exc:
                    self._note(f"bad window: {exc}")
                    log.warning("%s: bad window skipped: %s", self.stream, exc)
                    continue
                except StreamTimeoutError as exc:
                    with self._lock:
                        self._timeouts += 1
                    self._note(str(exc))
                    log.warning("%s", exc)
                    return delivered
                except StreamClosedError as exc:
                    if not self._stop.is_set():
                        self._note(str(exc))
                        log.warning("%s", exc)
                    return delivered
                except OSError as exc:
                    if not self._stop.is_set():
                        self._note(str(exc))
                        log.warning("%s: connection lost: %s", self.stream, exc)
                    return delivered
                self._sequence += 1
                delivered = True
                try:
                    self.sink(StreamImage(self.stream, window, self._sequence))
                except Exception:
                    with self._lock:
                        self._sink_errors += 1
                    log.exception("%s: the sink failed on window %d", self.stream, self._sequence)
                del window
            return delivered
        finally:
            self._framer.eof()
            with self._lock:
                self._sock = None
                self._connected = False
            sock.close()

    def _note(self, error: str) -> None:
        with self._lock:
            self._last_error = error
