"""Blocking and asyncio readers of AARTFAAC windows from a TCP socket (recv_into, zero copy)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from daqwire.aartfaac.framing import FramePool, FramerStats, WindowFramer
from daqwire.errors import RemoteProtocolError, StreamClosedError, StreamTimeoutError
from daqwire.generated.aartfaac import (
    WINDOW_MAX_FITS_BYTES,
    WINDOW_MAX_IMAGE_BYTES,
    PixelOrder,
    Window,
    window_fits_keywords,
)
from daqwire.sansio import NEED_DATA

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "AsyncWindowReader",
    "StreamImage",
    "WindowReader",
    "stream_name",
]

log = logging.getLogger(__name__)

#: read timeout: a stream that sends nothing for this long is reported as silent
DEFAULT_TIMEOUT_S = 10.0


def stream_name(host: str, port: int) -> str:
    """The ``host:port`` name a stream goes by in logs, errors and statistics."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _peer_stream(sock: socket.socket) -> str:
    """The ``host:port`` name of the socket's peer (``aartfaac`` if it has none)."""
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "aartfaac"
    return stream_name(str(host), int(port))


def _closed(framer: WindowFramer, stream: str) -> StreamClosedError:
    """The peer closed the connection: end the framer's stream and say whether a window was cut."""
    truncated = framer.eof()
    detail = f" inside a window ({truncated})" if truncated else ""
    return StreamClosedError(
        f"server closed the connection{detail}", stream=stream, truncated=truncated
    )


def _silent(stream: str, timeout_s: float | None) -> StreamTimeoutError:
    return StreamTimeoutError(f"sent nothing for {timeout_s} s", stream=stream)


@dataclass(frozen=True, slots=True)
class StreamImage:
    """One decoded window and the stream it came from; ``image`` views the receive buffer."""

    stream: str
    window: Window
    sequence: int

    @property
    def image(self) -> npt.NDArray[np.float32]:
        """The [y, x] float32 pixels (a zero-copy view of the receive buffer)."""
        return self.window.image

    @property
    def date_obs(self) -> str:
        """DATE-OBS as the sender wrote it."""
        return window_fits_keywords(self.window.fits).date_obs


class WindowReader:
    """Read windows from a connected blocking socket into reused buffers.

    Garbage is skipped by scanning for the magic; a bad window raises its
    ``RemoteProtocolError`` and the next ``read()`` carries on after it. A silent peer
    raises ``StreamTimeoutError`` after ``timeout_s``; a closed one ``StreamClosedError``.
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        stream: str | None = None,
        pixel_order: PixelOrder = "naxis2_fastest",
        max_fits_bytes: int = WINDOW_MAX_FITS_BYTES,
        max_image_bytes: int = WINDOW_MAX_IMAGE_BYTES,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        framer: WindowFramer | None = None,
        pool: FramePool | None = None,
    ) -> None:
        if stream is None:
            stream = _peer_stream(sock)
        self.stream = stream
        self.timeout_s = timeout_s
        sock.settimeout(timeout_s)
        self._sock = sock
        self.framer = framer or WindowFramer(
            stream=stream,
            pixel_order=pixel_order,
            max_fits_bytes=max_fits_bytes,
            max_image_bytes=max_image_bytes,
            pool=pool,
        )

    @property
    def stats(self) -> FramerStats:
        """Counters of this stream (windows, bytes, resyncs, skipped bytes, errors)."""
        return self.framer.stats

    def read(self) -> Window:
        """The next window; raises on a bad window, a silent peer or the end of the stream."""
        framer = self.framer
        while True:
            event = framer.next_event()
            if event is not NEED_DATA:
                assert isinstance(event, Window)
                return event
            target = framer.get_buffer()
            try:
                nbytes = self._sock.recv_into(target)
            except TimeoutError:
                raise _silent(self.stream, self.timeout_s) from None
            finally:
                target.release()
            if not nbytes:
                raise _closed(framer, self.stream)
            framer.buffer_updated(nbytes)

    def __iter__(self) -> Iterator[Window]:
        """Windows until the peer closes the stream cleanly; bad windows are logged and skipped.

        A timeout, a socket error or a close inside a window ends the loop with its error.
        """
        while True:
            try:
                yield self.read()
            except RemoteProtocolError as exc:
                log.warning("%s: bad window skipped: %s", self.stream, exc)
            except StreamClosedError as exc:
                if exc.truncated is not None:
                    raise
                return


class AsyncWindowReader:
    """The asyncio twin of ``WindowReader``: ``await read()`` on a non-blocking socket."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        stream: str | None = None,
        pixel_order: PixelOrder = "naxis2_fastest",
        max_fits_bytes: int = WINDOW_MAX_FITS_BYTES,
        max_image_bytes: int = WINDOW_MAX_IMAGE_BYTES,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        pool: FramePool | None = None,
    ) -> None:
        if stream is None:
            stream = _peer_stream(sock)
        sock.setblocking(False)
        self.stream = stream
        self.timeout_s = timeout_s
        self._sock = sock
        self.framer = WindowFramer(
            stream=stream,
            pixel_order=pixel_order,
            max_fits_bytes=max_fits_bytes,
            max_image_bytes=max_image_bytes,
            pool=pool,
        )

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        connect_timeout_s: float = 5.0,
        pixel_order: PixelOrder = "naxis2_fastest",
        max_fits_bytes: int = WINDOW_MAX_FITS_BYTES,
        max_image_bytes: int = WINDOW_MAX_IMAGE_BYTES,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
    ) -> AsyncWindowReader:
        """Connect to an imager (or emulator) at ``host:port`` and return a reader of it."""
        loop = asyncio.get_running_loop()
        name = stream_name(host, port)
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        last: OSError | None = None
        for family, kind, proto, _canon, address in infos:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(sock, address), connect_timeout_s)
            except TimeoutError:
                sock.close()
                raise StreamTimeoutError(
                    f"connect took longer than {connect_timeout_s} s", stream=name
                ) from None
            except OSError as exc:
                sock.close()
                last = exc
                continue
            return cls(
                sock,
                stream=name,
                pixel_order=pixel_order,
                max_fits_bytes=max_fits_bytes,
                max_image_bytes=max_image_bytes,
                timeout_s=timeout_s,
            )
        raise last or OSError(f"{name}: no address to connect to")

    @property
    def stats(self) -> FramerStats:
        """Counters of this stream (windows, bytes, resyncs, skipped bytes, errors)."""
        return self.framer.stats

    async def read(self) -> Window:
        """The next window; raises as ``WindowReader.read`` does."""
        loop = asyncio.get_running_loop()
        framer = self.framer
        while True:
            event = framer.next_event()
            if event is not NEED_DATA:
                assert isinstance(event, Window)
                return event
            target = framer.get_buffer()
            try:
                nbytes = await asyncio.wait_for(
                    loop.sock_recv_into(self._sock, target), self.timeout_s
                )
            except TimeoutError:
                raise _silent(self.stream, self.timeout_s) from None
            finally:
                target.release()
            if not nbytes:
                raise _closed(framer, self.stream)
            framer.buffer_updated(nbytes)

    async def __aiter__(self) -> AsyncIterator[Window]:
        """Windows until the peer closes the stream cleanly; bad windows are logged and skipped."""
        while True:
            try:
                yield await self.read()
            except RemoteProtocolError as exc:
                log.warning("%s: bad window skipped: %s", self.stream, exc)
            except StreamClosedError as exc:
                if exc.truncated is not None:
                    raise
                return

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self._sock.close()

    async def __aenter__(self) -> AsyncWindowReader:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
