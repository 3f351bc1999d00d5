"""An AARTFAAC imager emulator: serves windows on TCP like tkp's ``stream_emu.py``, but bounded.

It stands in for the imager when testing readers and TraP: one listening port per band, one
shared tick for all ports (so images group by DATE-OBS), and drop-oldest queues for slow clients.
Every window is built by the generated codec; the FITS text is written by astropy.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import selectors
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, get_args

import numpy as np
import numpy.typing as npt

from daqwire.aartfaac.sky import (
    _PATTERNS,
    ImagePattern,
    _check_freq,
    _check_size,
    _restfreq,
    _utc_naive,
    emulator_header,
    emulator_image,
    format_date_obs,
    sky_peak_position,
)
from daqwire.generated.aartfaac import (
    PixelOrder,
    Window,
    encode_window_into,
    encoded_window_size,
)

__all__ = [
    "EMULATOR_FREQS_HZ",
    "EMULATOR_PORTS",
    "THREAD_PREFIX",
    "Emulator",
    "EmulatorPortStats",
    "ImagePattern",
    "add_emulate_arguments",
    "emulator_header",
    "emulator_image",
    "format_date_obs",
    "parse_ports",
    "parse_size",
    "run_emulate",
    "sky_peak_position",
]

logger = logging.getLogger(__name__)

#: the ports tkp's emulator listens on, one per band
EMULATOR_PORTS: Final = (6666, 6667, 6668, 6669, 6670, 6671)
#: the band of each of those ports, in Hz (sent as RESTFREQ, like the reference)
EMULATOR_FREQS_HZ: Final = (6.0e6, 6.5e6, 7.0e6, 7.5e6, 8.0e6, 8.5e6)
#: step between the default frequencies of ports beyond the sixth
_FREQ_STEP_HZ: Final = 0.5e6
#: the prefix of the name of every thread an Emulator starts
THREAD_PREFIX: Final = "daqwire-aartfaac-emu"
#: tkp drops a connection that is silent for 5 s, so slower cadences break tkp readers
_TKP_RECV_TIMEOUT_S: Final = 5.0

_PIXEL_ORDERS: Final = get_args(PixelOrder)

_ONE_US: Final = timedelta(microseconds=1)
_EMULATOR_IDS = itertools.count(1)


# --- argument checks -----------------------------------------------------------------------------


def _default_freqs(n: int) -> list[float]:
    """The reference's per-port frequencies, extended in 0.5 MHz steps beyond six ports."""
    return [EMULATOR_FREQS_HZ[0] + _FREQ_STEP_HZ * i for i in range(n)]


def _default_clock() -> datetime:
    return datetime.now(UTC)


# --- per-port and per-client state ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmulatorPortStats:
    """Counters of one port since start (``clients``: connected now)."""

    port: int
    clients: int
    windows_sent: int
    bytes_sent: int
    #: frames a slow client never got: its queue was full, so the oldest frame went
    frames_dropped: int
    #: windows encoded for this port (ticks with a client; in free-running mode, every window)
    ticks: int
    #: connections accepted so far, and refused over ``max_clients_per_port``
    connections: int = 0
    rejected: int = 0
    #: the most frames any one client of this port ever had waiting (<= ``client_queue_len``)
    queue_high_water: int = 0


class _Client:
    """One connected client: its socket, its bounded drop-oldest queue and its sender thread."""

    def __init__(self, sock: socket.socket, peer: str, queue_len: int) -> None:
        self.sock = sock
        self.peer = peer
        self.queue: deque[memoryview] = deque(maxlen=queue_len)
        self.cond = threading.Condition()
        self.closed = False
        self.warned_slow = False
        self.thread: threading.Thread | None = None

    def offer(self, frame: memoryview) -> tuple[bool, int]:
        """Queue ``frame``, dropping the oldest when full; return (dropped?, queue length)."""
        with self.cond:
            if self.closed:
                return False, 0
            dropped = len(self.queue) == self.queue.maxlen
            self.queue.append(frame)  # a full deque with maxlen drops its oldest
            self.cond.notify()
            return dropped, len(self.queue)

    def take(self) -> memoryview | None:
        """The next frame to send, waiting for one; None once the client is closed."""
        with self.cond:
            while not self.queue and not self.closed:
                self.cond.wait()
            if self.closed:
                return None
            return self.queue.popleft()

    def close(self) -> None:
        """Wake the sender and shut the socket down (unblocks a sendall in progress)."""
        with self.cond:
            if self.closed:
                return
            self.closed = True
            self.queue.clear()
            self.cond.notify_all()
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # never connected fully, or the peer is already gone


class _Port:
    """One listening port: its listener, band, header, precomputed image, clients and counters."""

    def __init__(
        self, listener: socket.socket, freq_hz: float, header: Any, image: npt.NDArray[np.float32]
    ) -> None:
        self.listener = listener
        self.address: tuple[str, int] = listener.getsockname()[:2]
        self.freq_hz = freq_hz
        self.header = header
        self.image = image
        self.lock = threading.Lock()
        self.clients: list[_Client] = []
        self.windows_sent = 0
        self.bytes_sent = 0
        self.frames_dropped = 0
        self.ticks = 0
        self.connections = 0
        self.rejected = 0
        self.queue_high_water = 0

    def stats(self) -> EmulatorPortStats:
        with self.lock:
            return EmulatorPortStats(
                port=self.address[1],
                clients=len(self.clients),
                windows_sent=self.windows_sent,
                bytes_sent=self.bytes_sent,
                frames_dropped=self.frames_dropped,
                ticks=self.ticks,
                connections=self.connections,
                rejected=self.rejected,
                queue_high_water=self.queue_high_water,
            )


# --- the emulator --------------------------------------------------------------------------------


class Emulator:
    """Serves AARTFAAC windows on one TCP port per band, like tkp's stream emulator.

    ``size`` is (NAXIS1, NAXIS2); port 0 picks a free port; ``rate_hz == 0`` is free-running
    (each client gets windows back to back, for benchmarks). ``stop()`` frees every port at once.
    """

    def __init__(
        self,
        ports: Sequence[int] = EMULATOR_PORTS,
        *,
        host: str = "127.0.0.1",
        size: tuple[int, int] = (1024, 1024),
        rate_hz: float = 1.0,
        pixel_order: PixelOrder = "naxis2_fastest",
        freqs_hz: Sequence[float] | None = None,
        pattern: ImagePattern = "sky",
        seed: int = 0,
        client_queue_len: int = 4,
        max_clients_per_port: int = 16,
        clock: Callable[[], datetime] | None = None,
        send_timeout_s: float = 30.0,
    ) -> None:
        ports = list(ports)
        if not ports:
            raise ValueError("ports must name at least one port")
        for port in ports:
            if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
                raise ValueError(
                    f"ports must be ints in 0..65535 (0 = any free port), not {port!r}"
                )
        fixed = [p for p in ports if p]
        if len(set(fixed)) != len(fixed):
            raise ValueError(f"ports must not repeat (except 0), got {ports}")
        naxes = _check_size(size)
        if not (isinstance(rate_hz, int | float) and math.isfinite(rate_hz) and rate_hz >= 0):
            raise ValueError(f"rate_hz must be finite and >= 0 (0 = free-running), not {rate_hz!r}")
        if pixel_order not in _PIXEL_ORDERS:
            raise ValueError(
                f"pixel_order must be one of {', '.join(_PIXEL_ORDERS)}, not {pixel_order!r}"
            )
        if pattern not in _PATTERNS:
            raise ValueError(f"pattern must be one of {', '.join(_PATTERNS)}, not {pattern!r}")
        freqs = _default_freqs(len(ports)) if freqs_hz is None else list(freqs_hz)
        if len(freqs) != len(ports):
            raise ValueError(
                f"freqs_hz has {len(freqs)} frequencies for {len(ports)} ports; give one per port"
            )
        for freq in freqs:
            _check_freq(freq)
        if not isinstance(client_queue_len, int) or client_queue_len < 1:
            raise ValueError(f"client_queue_len must be >= 1, not {client_queue_len!r}")
        if not isinstance(max_clients_per_port, int) or max_clients_per_port < 1:
            raise ValueError(f"max_clients_per_port must be >= 1, not {max_clients_per_port!r}")
        if not (math.isfinite(send_timeout_s) and send_timeout_s > 0):
            raise ValueError(f"send_timeout_s must be finite and > 0, not {send_timeout_s!r}")
        if 0 < rate_hz < 1 / _TKP_RECV_TIMEOUT_S:
            logger.warning(
                "rate_hz=%g sends a window less often than every %g s; tkp readers will time out",
                rate_hz,
                _TKP_RECV_TIMEOUT_S,
            )

        self._requested_ports = ports
        self._host = host
        self._size = naxes
        self._rate_hz = float(rate_hz)
        self._pixel_order: PixelOrder = pixel_order
        self._freqs = [float(f) for f in freqs]
        self._pattern: ImagePattern = pattern
        self._seed = seed
        self._queue_len = client_queue_len
        self._max_clients = max_clients_per_port
        self._clock = clock or _default_clock
        self._send_timeout_s = float(send_timeout_s)
        self._name = f"{THREAD_PREFIX}-{next(_EMULATOR_IDS)}"

        self._lock = threading.Lock()  # guards the lifecycle and the thread list
        self._started = False
        self._stopped = False
        self._stop_event = threading.Event()
        self._ports: list[_Port] = []
        self._threads: list[threading.Thread] = []  # every thread started; finished ones pruned
        self._acceptor: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._client_ids = itertools.count(1)
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._ticks_skipped = 0
        self._last_time: datetime | None = None  # guarded by _time_lock
        self._time_lock = threading.Lock()

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind every port (raises OSError if one is taken), then start the threads."""
        with self._lock:
            if self._started:
                raise RuntimeError("this Emulator was already started; make a new one")
            self._started = True
        image = self._wire_image()
        listeners: list[socket.socket] = []
        try:
            for port in self._requested_ports:
                listeners.append(self._listen(port))
        except OSError:
            for listener in listeners:
                listener.close()
            with self._lock:
                self._stopped = True
            raise
        date_obs = format_date_obs(self._clock())
        naxis1, naxis2 = self._size
        for listener, freq in zip(listeners, self._freqs, strict=True):
            header = emulator_header(naxis1, naxis2, freq_hz=freq, date_obs=date_obs)
            self._ports.append(_Port(listener, freq, header, image))
        self._wake_r, self._wake_w = socket.socketpair()
        self._acceptor = self._spawn(self._accept_loop, f"{self._name}-accept")
        if self._rate_hz > 0:
            self._ticker = self._spawn(self._tick_loop, f"{self._name}-ticker")
        for served in self._ports:
            logger.info(
                "emulating AARTFAAC on %s:%d (RESTFREQ %s Hz, %dx%d, %s, %s)",
                *served.address,
                _restfreq(served.freq_hz),
                naxis1,
                naxis2,
                f"{self._rate_hz:g} Hz" if self._rate_hz else "free-running",
                self._pixel_order,
            )

    def stop(self) -> None:
        """Close listeners and clients at once and join every thread; safe to call again."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            started = self._started
        if not started:
            return
        self._stop_event.set()
        if self._wake_w is not None:
            try:
                self._wake_w.send(b"x")
            except OSError:
                pass
        # the acceptor and ticker first, so no client is added or fed while we close them
        for owned in (self._acceptor, self._ticker):
            if owned is not None:
                owned.join()
        for port in self._ports:
            port.listener.close()
        for port in self._ports:
            with port.lock:
                clients = list(port.clients)
            for client in clients:
                client.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join()
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        logger.info("emulator stopped")

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self, *, duration_s: float | None = None) -> None:
        """Start if needed, block until stop(), Ctrl-C or ``duration_s``, then stop."""
        if not self._started:
            self.start()
        deadline = None if duration_s is None else time.monotonic() + duration_s
        try:
            while not self._stop_event.is_set():
                timeout = 1.0
                if deadline is not None:
                    timeout = min(timeout, deadline - time.monotonic())
                    if timeout <= 0:
                        break
                self._stop_event.wait(timeout)
        except KeyboardInterrupt:
            logger.info("interrupted")
        finally:
            self.stop()

    # --- properties ------------------------------------------------------------------------------

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The bound (host, port) of every port, in the order given; empty before start()."""
        return [port.address for port in self._ports]

    @property
    def stats(self) -> list[EmulatorPortStats]:
        """Counters of every port, in the order given."""
        return [port.stats() for port in self._ports]

    @property
    def freqs_hz(self) -> list[float]:
        """The band of every port in Hz, in the order given."""
        return list(self._freqs)

    @property
    def ticks_skipped(self) -> int:
        """Ticks the ticker missed because it ran late (each is skipped, never sent late)."""
        return self._ticks_skipped

    @property
    def thread_prefix(self) -> str:
        """The name prefix of every thread this emulator starts."""
        return self._name

    # --- internals -------------------------------------------------------------------------------

    def _wire_image(self) -> npt.NDArray[np.float32]:
        """The image, read-only and laid out in wire order, so encoding copies it contiguously."""
        naxis1, naxis2 = self._size
        image = emulator_image(naxis1, naxis2, pattern=self._pattern, seed=self._seed)
        if self._pixel_order == "naxis2_fastest":  # wire element k = pixel (k // N2, k % N2)
            wire = np.asfortranarray(image, dtype=np.float32)
        else:
            wire = np.ascontiguousarray(image, dtype=np.float32)
        wire.flags.writeable = False
        return wire

    def _listen(self, port: int) -> socket.socket:
        """A listening socket on (host, port) with SO_REUSEADDR, so a restart can rebind at once."""
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            self._host or None, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(sockaddr)
            listener.listen(max(8, self._max_clients))
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        return listener

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, args=args, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread

    def _now(self) -> datetime:
        """The clock, as naive UTC, never repeating or going back (a wall-clock step back)."""
        now = _utc_naive(self._clock())
        with self._time_lock:
            last = self._last_time
            if last is not None and now <= last:
                now = last + _ONE_US
            self._last_time = now
        return now

    def _accept_loop(self) -> None:
        """Accept clients on every listener until stop()."""
        assert self._wake_r is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ, None)
            for port in self._ports:
                selector.register(port.listener, selectors.EVENT_READ, port)
            while not self._stop_event.is_set():
                for key, _ in selector.select():
                    if key.data is None:
                        return
                    self._accept(key.data)

    def _accept(self, port: _Port) -> None:
        try:
            sock, addr = port.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            logger.warning("accept on port %d failed: %s", port.address[1], exc)
            return
        peer = f"{addr[0]}:{addr[1]}"
        with port.lock:
            full = len(port.clients) >= self._max_clients
            if full:
                port.rejected += 1
        if full:
            logger.warning(
                "port %d: refused %s, already %d clients (max_clients_per_port)",
                port.address[1],
                peer,
                self._max_clients,
            )
            sock.close()
            return
        sock.settimeout(self._send_timeout_s)
        client = _Client(sock, peer, self._queue_len)
        with port.lock:
            port.clients.append(client)
            port.connections += 1
        logger.info("port %d: client %s connected", port.address[1], peer)
        name = f"{self._name}-client-{port.address[1]}-{next(self._client_ids)}"
        target = self._free_run if self._rate_hz == 0 else self._send_queued
        client.thread = self._spawn(self._serve_client, name, port, client, target)

    def _serve_client(
        self, port: _Port, client: _Client, target: Callable[[_Port, _Client], None]
    ) -> None:
        """Run the client's sender; drop the client on a send error or at stop()."""
        try:
            target(port, client)
        except OSError as exc:
            if not self._stop_event.is_set():
                logger.info("port %d: dropped client %s: %s", port.address[1], client.peer, exc)
        except Exception:
            logger.exception("port %d: client %s failed", port.address[1], client.peer)
        finally:
            client.close()
            with port.lock:
                if client in port.clients:
                    port.clients.remove(client)
            with client.cond:  # close() holds this lock while it shuts the socket down
                client.sock.close()

    def _send_queued(self, port: _Port, client: _Client) -> None:
        """Ticked mode: send whatever the ticker queued for this client, oldest first."""
        while (frame := client.take()) is not None:
            client.sock.sendall(frame)
            with port.lock:
                port.windows_sent += 1
                port.bytes_sent += len(frame)

    def _free_run(self, port: _Port, client: _Client) -> None:
        """Free-running mode: encode and send windows back to back, each with a fresh DATE-OBS."""
        with port.lock:
            header = port.header.copy()  # this thread's own; the shared one is never mutated
        buffer = bytearray()
        while not client.closed:
            header["DATE-OBS"] = format_date_obs(self._now())
            msg = Window(fits=header.tostring(), image=port.image)
            size = encoded_window_size(msg)
            if len(buffer) != size:
                buffer = bytearray(size)
            encode_window_into(msg, buffer, 0, pixel_order=self._pixel_order)
            with port.lock:
                port.ticks += 1
            client.sock.sendall(buffer)
            with port.lock:
                port.windows_sent += 1
                port.bytes_sent += size

    def _tick_loop(self) -> None:
        """Tick every 1/rate_hz on a monotonic schedule; a late tick skips the missed ones."""
        period = 1.0 / self._rate_hz
        start = time.monotonic()
        k = 1
        while True:
            delay = start + k * period - time.monotonic()
            if delay > 0 and self._stop_event.wait(delay):
                return
            if self._stop_event.is_set():
                return
            due = int((time.monotonic() - start) / period)
            if due > k:
                if self._ticks_skipped == 0:
                    logger.warning("ticker is late: skipping ticks (encoding too slow for rate?)")
                logger.debug("ticker late by %.3f s: skipped %d ticks", (due - k) * period, due - k)
                self._ticks_skipped += due - k
                k = due
            try:
                self._tick()
            except Exception:
                logger.exception("tick failed")
            k += 1

    def _tick(self) -> None:
        """One tick: one DATE-OBS for all ports; one shared window per port with clients."""
        date_obs = format_date_obs(self._now())
        for port in self._ports:
            with port.lock:
                clients = list(port.clients)
            if not clients:
                continue
            port.header["DATE-OBS"] = date_obs  # only the ticker touches the shared header
            msg = Window(fits=port.header.tostring(), image=port.image)
            buffer = bytearray(encoded_window_size(msg))
            encode_window_into(msg, buffer, 0, pixel_order=self._pixel_order)
            frame = memoryview(buffer).toreadonly()  # shared by every client's queue
            dropped = 0
            high = 0
            for client in clients:
                was_dropped, queued = client.offer(frame)
                high = max(high, queued)
                if was_dropped:
                    dropped += 1
                    if not client.warned_slow:
                        client.warned_slow = True
                        logger.warning(
                            "port %d: client %s is slow; dropping its oldest windows",
                            port.address[1],
                            client.peer,
                        )
            with port.lock:
                port.ticks += 1
                port.frames_dropped += dropped
                port.queue_high_water = max(port.queue_high_water, high)


# --- command line --------------------------------------------------------------------------------


def parse_ports(text: str) -> list[int]:
    """Ports from ``6666-6671``, ``6666,6668`` or a mix; 0 means any free port."""
    ports: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise argparse.ArgumentTypeError(f"empty entry in port list {text!r}")
        low_text, dash, high_text = part.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if dash else low
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad port {part!r} in {text!r}: use numbers, ranges like 6666-6671, commas"
            ) from None
        if not (0 <= low <= 65535 and 0 <= high <= 65535):
            raise argparse.ArgumentTypeError(f"port {part!r} is outside 0..65535")
        if high < low:
            raise argparse.ArgumentTypeError(f"port range {part!r} runs backwards")
        ports.extend(range(low, high + 1))
    fixed = [p for p in ports if p]
    if len(set(fixed)) != len(fixed):
        raise argparse.ArgumentTypeError(f"port list {text!r} names a port twice")
    return ports


def parse_size(text: str) -> tuple[int, int]:
    """``NAXIS1xNAXIS2`` such as ``1024x1024`` or ``64x32``."""
    parts = text.lower().split("x")
    try:
        if len(parts) != 2:
            raise ValueError
        naxis1, naxis2 = int(parts[0]), int(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad size {text!r}: use NAXIS1xNAXIS2, e.g. 1024x1024"
        ) from None
    if naxis1 < 1 or naxis2 < 1:
        raise argparse.ArgumentTypeError(f"size {text!r} must be at least 1x1")
    return naxis1, naxis2


def _parse_freqs(text: str) -> list[float]:
    """Comma-separated frequencies in Hz, e.g. ``6e6,6.5e6``."""
    try:
        freqs = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad frequency list {text!r}: use Hz separated by commas, e.g. 6e6,6.5e6"
        ) from None
    if not all(math.isfinite(f) and f > 0 for f in freqs):
        raise argparse.ArgumentTypeError(f"frequencies in {text!r} must be > 0 Hz")
    return freqs


def add_emulate_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``daqwire aartfaac emulate``."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; "
        "0.0.0.0 = every interface, as tkp's emulator does)",
    )
    parser.add_argument(
        "--ports",
        type=parse_ports,
        default=list(EMULATOR_PORTS),
        metavar="PORTS",
        help="ports to serve, one image stream (band) each: a range like 6666-6671, a comma "
        "list, or both; 0 picks a free port (default 6666-6671, tkp's ports)",
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        default=(1024, 1024),
        metavar="NAXIS1xNAXIS2",
        help="image width x height in pixels (default 1024x1024)",
    )
    parser.add_argument(
        "--rate-hz",
        type=float,
        default=1.0,
        metavar="HZ",
        help="windows per second on every port, all ports with the same DATE-OBS (default 1); "
        "0 = free-running: each client gets windows as fast as it reads them",
    )
    parser.add_argument(
        "--pixel-order",
        choices=_PIXEL_ORDERS,
        default="naxis2_fastest",
        help="pixel order on the wire: naxis2_fastest = what tkp's emulator sends and tkp "
        "expects (default); naxis1_fastest = FITS file order",
    )
    parser.add_argument(
        "--freqs-hz",
        type=_parse_freqs,
        default=None,
        metavar="HZ,HZ,...",
        help="band of each port in Hz, one per port (default 6e6, 6.5e6, ... in 0.5 MHz "
        "steps, as tkp's emulator); sent as RESTFREQ and CRVAL3",
    )
    parser.add_argument(
        "--pattern",
        choices=_PATTERNS,
        default="sky",
        help="image: sky = point sources on noise, brightest off-centre so a flipped or "
        "transposed image is obvious (default); index = pixel (x, y) holds y*NAXIS1 + x; "
        "noise = gaussian noise",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the sky/noise image")
    parser.add_argument(
        "--client-queue-len",
        type=int,
        default=4,
        metavar="N",
        help="windows kept for a client that reads too slowly; beyond that its oldest window "
        "is dropped (default 4)",
    )
    parser.add_argument(
        "--max-clients-per-port",
        type=int,
        default=16,
        metavar="N",
        help="connections served per port; more are closed at once (default 16)",
    )
    parser.add_argument(
        "--duration-s",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until Ctrl-C)",
    )


def _totals(stats: Sequence[EmulatorPortStats]) -> tuple[int, int, int, int]:
    """(windows, bytes, clients, dropped) summed over ports."""
    return (
        sum(s.windows_sent for s in stats),
        sum(s.bytes_sent for s in stats),
        sum(s.clients for s in stats),
        sum(s.frames_dropped for s in stats),
    )


def run_emulate(args: argparse.Namespace) -> int:
    """Run the emulator from parsed options: print where it listens, a status line, a summary."""
    try:
        emulator = Emulator(
            args.ports,
            host=args.host,
            size=args.size,
            rate_hz=args.rate_hz,
            pixel_order=args.pixel_order,
            freqs_hz=args.freqs_hz,
            pattern=args.pattern,
            seed=args.seed,
            client_queue_len=args.client_queue_len,
            max_clients_per_port=args.max_clients_per_port,
        )
        emulator.start()
    except (ValueError, OSError) as exc:
        print(f"daqwire aartfaac emulate: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    tty = out.isatty()
    naxis1, naxis2 = args.size
    mode = f"{args.rate_hz:g} Hz" if args.rate_hz else "free-running"
    print(
        f"AARTFAAC emulator: {naxis1}x{naxis2} {args.pattern} images, {mode}, {args.pixel_order}",
        file=out,
    )
    for (host, port), freq in zip(emulator.addresses, emulator.freqs_hz, strict=True):
        print(f"  listening on {host}:{port}  RESTFREQ {_restfreq(freq)} Hz", file=out)
    if args.duration_s is None:
        print("Ctrl-C to stop", file=out)
    out.flush()
    started = last_t = time.monotonic()
    last = _totals(emulator.stats)
    deadline = None if args.duration_s is None else started + args.duration_s
    try:
        while True:
            wait = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if wait <= 0:
                break
            time.sleep(wait)
            if tty:
                now = time.monotonic()
                totals = _totals(emulator.stats)
                span = max(now - last_t, 1e-9)
                line = (
                    f"{(totals[0] - last[0]) / span:8.1f} windows/s "
                    f"{(totals[1] - last[1]) / span / 1e6:8.2f} MB/s  "
                    f"clients {totals[2]:3d}  dropped {totals[3]}  "
                    f"skipped ticks {emulator.ticks_skipped}"
                )
                print(f"\r{line}   ", end="", file=out, flush=True)
                last, last_t = totals, now
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    if tty:
        print(file=out)
    elapsed = time.monotonic() - started
    windows, nbytes, _, dropped = _totals(emulator.stats)
    connections = sum(s.connections for s in emulator.stats)
    print(
        f"served {windows} windows ({nbytes / 1e6:.1f} MB) in {elapsed:.1f} s to "
        f"{connections} connections; {dropped} windows dropped for slow clients, "
        f"{emulator.ticks_skipped} ticks skipped",
        file=out,
        flush=True,
    )
    return 0
