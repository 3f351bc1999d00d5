"""Drop-in replacements for ``tkp.stream``: same names and contracts, none of its failure modes.

Switching ``from tkp.stream import ...`` to ``from daqwire.aartfaac import ...`` is enough.
The differences (typed errors instead of ``assert``, [y, x] float32 images, resync instead of
reconnect, no dying threads, the last group flushed) are listed in docs/compatibility.md.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from astropy.io import fits
from dateutil import parser as dateutil_parser

from daqwire.aartfaac.connection import Connector
from daqwire.aartfaac.merging import BACK_LOG, MergedGroup, Merger
from daqwire.aartfaac.reader import DEFAULT_TIMEOUT_S, StreamImage, WindowReader
from daqwire.aartfaac.streams import MergedStreams
from daqwire.errors import FieldValueError, RemoteProtocolError, StreamClosedError
from daqwire.generated.aartfaac import (
    PROTOCOL,
    WINDOW_MAGIC,
    WINDOW_PREFIX_SIZE,
    PixelOrder,
    Window,
    decode_window_from,
    decode_window_parts,
    window_frame_size,
)

__all__ = [
    "BACK_LOG",
    "CHECKSUM",
    "connection_handler",
    "connector",
    "extract_timestamp",
    "getbytes",
    "merger",
    "read_window",
    "reconstruct_fits",
    "stream_generator",
]

log = logging.getLogger(__name__)

#: tkp's name for the window magic (a sync marker, not a checksum)
CHECKSUM = WINDOW_MAGIC


def getbytes(sock: socket.socket, n: int) -> bytes:
    """Exactly ``n`` bytes from ``sock``; ``StreamClosedError`` (an ``OSError``) on EOF."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        count = sock.recv_into(view[got:])
        if not count:
            raise StreamClosedError("Server closed connection")
        got += count
    return bytes(buf)


def _recv_exactly(sock: socket.socket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        count = sock.recv_into(view[got:])
        if not count:
            raise StreamClosedError("Server closed connection")
        got += count


def read_window(sock: socket.socket) -> tuple[bytes, bytes]:
    """One window from ``sock`` as ``(fits_bytes, image_bytes)``, checked as a decode checks it.

    A bad magic raises ``BadMagicError`` (tkp: ``AssertionError``, gone under ``python -O``);
    announced lengths are capped before anything is allocated.
    """
    head = bytearray(WINDOW_PREFIX_SIZE)
    _recv_exactly(sock, memoryview(head))
    size = window_frame_size(head)
    assert size is not None
    frame = bytearray(size)
    frame[:WINDOW_PREFIX_SIZE] = head
    _recv_exactly(sock, memoryview(frame)[WINDOW_PREFIX_SIZE:])
    window, _ = decode_window_from(frame)
    fits_end = WINDOW_PREFIX_SIZE + window.fits_length
    return bytes(frame[WINDOW_PREFIX_SIZE:fits_end]), bytes(frame[fits_end:])


def _hdulist(window: Window, stream: str | None = None) -> fits.HDUList:
    """A plain ``HDUList`` (TraP checks the type exactly) with a ``stream`` attribute added."""
    header = fits.Header.fromstring(window.fits)
    hdulist = fits.HDUList([fits.PrimaryHDU(data=window.image, header=header)])
    hdulist.stream = stream  # the merger tells streams apart by it
    return hdulist


def reconstruct_fits(
    fits_bytes: bytes, image_bytes: bytes, *, pixel_order: PixelOrder = "naxis2_fastest"
) -> fits.HDUList:
    """An astropy ``HDUList`` of one window: float32 data of shape (NAXIS2, NAXIS1), i.e. [y, x].

    tkp returned the transpose (float64, NAXIS1 and NAXIS2 swapped for non-square images).
    """
    return _hdulist(decode_window_parts(fits_bytes, image_bytes, pixel_order=pixel_order))


def extract_timestamp(hdulist: fits.HDUList) -> datetime:
    """DATE-OBS of the first HDU, parsed with dateutil (as tkp does); ``FieldValueError`` if bad."""
    try:
        value = hdulist[0].header["DATE-OBS"]
    except KeyError:
        raise FieldValueError(
            "FITS keyword DATE-OBS is missing", protocol=PROTOCOL, field_path="window.fits.DATE-OBS"
        ) from None
    try:
        return dateutil_parser.parse(str(value))
    except (ValueError, OverflowError) as exc:
        raise FieldValueError(
            f"DATE-OBS {value!r} is not a date: {exc}",
            protocol=PROTOCOL,
            field_path="window.fits.DATE-OBS",
        ) from None


def connection_handler(
    sock: socket.socket,
    queue_: queue.Queue[Any],
    *,
    stream: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    pixel_order: PixelOrder = "naxis2_fastest",
) -> None:
    """Put an ``HDUList`` per window of ``sock`` into ``queue_`` until the connection ends.

    Bad windows are logged and skipped (the reader resyncs on the same connection); a closed
    or silent connection returns at once, with no 5 s sleep.
    """
    reader = WindowReader(sock, stream=stream, timeout_s=timeout_s, pixel_order=pixel_order)
    while True:
        try:
            window = reader.read()
        except RemoteProtocolError as exc:
            log.error("error reading data: %s", exc)
            continue
        except OSError as exc:  # StreamClosedError, StreamTimeoutError and socket errors
            log.error("error reading data: %s", exc)
            return
        queue_.put(_hdulist(window, reader.stream))


def connector(
    host: str,
    port: int,
    queue_: queue.Queue[Any],
    *,
    stop: threading.Event | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    pixel_order: PixelOrder = "naxis2_fastest",
    backoff_max_s: float = 5.0,
) -> None:
    """Read ``host:port`` forever (or until ``stop`` is set), reconnecting with backoff.

    Each window goes into ``queue_`` as an ``HDUList`` with a ``stream`` attribute
    (``host:port``). Bad windows never end it.
    """

    def put(item: StreamImage) -> None:
        queue_.put(_hdulist(item.window, item.stream))

    conn = Connector(
        host,
        port,
        put,
        timeout_s=timeout_s,
        pixel_order=pixel_order,
        backoff_initial_s=min(0.1, backoff_max_s),
        backoff_max_s=backoff_max_s,
    )
    if stop is None:
        conn.run()
        return
    conn.start()
    try:
        stop.wait()
    finally:
        conn.stop()


def _date_obs(hdulist: Any) -> str | None:
    try:
        value = hdulist[0].header.get("DATE-OBS")
    except Exception:  # not an HDUList: counted as a bad timestamp
        return None
    return None if value is None else str(value)


def _put_dropping_oldest(grouped_queue: queue.Queue[Any], group: list[Any]) -> None:
    while True:
        try:
            grouped_queue.put_nowait(group)
            return
        except queue.Full:
            try:
                dropped = grouped_queue.get_nowait()
            except queue.Empty:
                continue
            log.error(
                "grouped image queue full (%d), dropping oldest group (%d images)",
                grouped_queue.maxsize,
                len(dropped),
            )


def merger(
    image_queue: queue.Queue[Any],
    grouped_queue: queue.Queue[Any],
    *,
    streams: Sequence[str] | int | None = None,
    max_wait_s: float = 2.0,
    back_log: int = BACK_LOG,
) -> None:
    """Group the ``HDUList``s of ``image_queue`` by DATE-OBS into lists put on ``grouped_queue``.

    A group goes out when every stream delivered (``streams``: names or a count) or after
    ``max_wait_s``. Put ``None`` into ``image_queue`` to flush the open groups and return.
    When ``grouped_queue`` is full the oldest group in it is dropped (tkp dropped the newest).
    """
    core: Merger[Any] = Merger(streams, max_wait_s=max_wait_s, back_log=back_log)
    log.info("merger thread started")

    def drain() -> None:
        while True:
            try:
                group: MergedGroup[Any] | None = core.get_nowait()
            except queue.Empty:
                return
            if group is None:
                return
            _put_dropping_oldest(grouped_queue, list(group.images))

    while True:
        try:
            item = image_queue.get(timeout=min(max_wait_s, 0.5))
        except queue.Empty:
            core.poll()
            drain()
            continue
        if item is None:
            core.close()
            drain()
            log.info("merger stopped")
            return
        core.add(item, _date_obs(item), stream=getattr(item, "stream", None))
        drain()


def stream_generator(
    hosts: Sequence[str],
    ports: Sequence[int],
    *,
    max_wait_s: float = 2.0,
    back_log: int = BACK_LOG,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    pixel_order: PixelOrder = "naxis2_fastest",
) -> Iterator[list[fits.HDUList]]:
    """Yield lists of ``HDUList``s, one per DATE-OBS, from the imagers at ``hosts``/``ports``.

    Threads in this process (no pickling, no Manager); closing the generator stops them.
    Arguments are checked at the call, before the first ``next()``.
    """
    if len(hosts) != len(ports):
        raise ValueError(f"{len(hosts)} hosts but {len(ports)} ports")
    addresses = [(host or "127.0.0.1", int(port)) for host, port in zip(hosts, ports, strict=True)]
    streams = MergedStreams(
        addresses,
        max_wait_s=max_wait_s,
        back_log=back_log,
        timeout_s=timeout_s,
        pixel_order=pixel_order,
    )
    return _hdulist_groups(streams)


def _hdulist_groups(streams: MergedStreams) -> Iterator[list[fits.HDUList]]:
    with streams:
        for group in streams:
            yield [_hdulist(item.window, item.stream) for item in group.images]
