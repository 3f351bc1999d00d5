"""Window framing over a byte stream: reused receive buffers, resync on a bad magic, zero copy.

``WindowFramer`` is sans-IO in the style of ``asyncio.BufferedProtocol``: a transport writes
received bytes straight into ``get_buffer()``, reports them with ``buffer_updated(n)`` and
takes windows from ``next_event()``. The blocking and asyncio readers share it.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from daqwire.errors import LocalProtocolError, RemoteProtocolError, TruncatedError
from daqwire.generated.aartfaac import (
    PROTOCOL,
    WINDOW_MAX_FITS_BYTES,
    WINDOW_MAX_IMAGE_BYTES,
    WINDOW_PREFIX_SIZE,
    WINDOW_SYNC_BYTES,
    PixelOrder,
    Window,
    decode_window_from,
    window_frame_size,
)
from daqwire.sansio import NEED_DATA, NeedData

__all__ = ["FramePool", "FramerStats", "WindowFramer"]

log = logging.getLogger(__name__)

#: bytes read per receive while looking for the next window header
HEAD_CHUNK_BYTES = 64 * 1024
_SWAPPED_SYNC = WINDOW_SYNC_BYTES[::-1]


def _idle_refcount() -> int:
    """References to a pooled buffer that only the pool holds, seen from ``acquire``'s loop."""
    probe = [bytearray(1)]
    for buf in probe:
        return sys.getrefcount(buf)
    raise AssertionError("unreachable")  # pragma: no cover


_IDLE_REFS = _idle_refcount()


class FramePool:
    """Receive buffers that are reused once no decoded window refers to them any more.

    Decoded images are zero-copy views of these buffers, so a buffer is only written again
    when the windows cut from it are gone. At most ``max_buffers`` are kept for reuse.
    """

    def __init__(self, *, max_buffers: int = 4) -> None:
        if max_buffers < 1:
            raise ValueError(f"max_buffers must be >= 1, not {max_buffers}")
        self.max_buffers = max_buffers
        self._buffers: list[bytearray] = []
        self.allocated = 0
        self.reused = 0

    def acquire(self, size: int) -> bytearray:
        """A buffer of at least ``size`` bytes that nothing else refers to."""
        spare = -1
        i = -1
        for buf in self._buffers:  # the loop shape _idle_refcount() calibrates
            i += 1
            if sys.getrefcount(buf) > _IDLE_REFS:
                continue
            if size <= len(buf) <= 2 * size + HEAD_CHUNK_BYTES:
                self.reused += 1
                return buf
            spare = i
        self.allocated += 1
        fresh = bytearray(size)
        if len(self._buffers) < self.max_buffers:
            self._buffers.append(fresh)
        elif spare >= 0:
            self._buffers[spare] = fresh
        return fresh

    @property
    def pooled_bytes(self) -> int:
        """Bytes held by the buffers kept for reuse (in use or idle)."""
        return sum(len(buf) for buf in self._buffers)


@dataclass
class FramerStats:
    """Counters of one stream; they survive reconnects."""

    windows: int = 0
    bytes: int = 0
    resyncs: int = 0
    skipped_bytes: int = 0
    errors: int = 0
    truncated: int = 0


class WindowFramer:
    """Cut a byte stream into windows; scan for the magic after garbage or a bad window.

    ``next_event()`` returns a ``Window`` or ``NEED_DATA``. A bad window raises its
    ``RemoteProtocolError`` once; the framer has already moved on to scan from the byte after
    that window's start, so the next call carries on and no later valid window is lost.
    """

    def __init__(
        self,
        *,
        stream: str = "",
        pixel_order: PixelOrder = "naxis2_fastest",
        max_fits_bytes: int = WINDOW_MAX_FITS_BYTES,
        max_image_bytes: int = WINDOW_MAX_IMAGE_BYTES,
        pool: FramePool | None = None,
    ) -> None:
        if pixel_order not in ("naxis2_fastest", "naxis1_fastest"):
            raise LocalProtocolError(
                f"unknown pixel_order {pixel_order!r}", protocol=PROTOCOL, field_path="window"
            )
        self.stream = stream
        self.pixel_order: PixelOrder = pixel_order
        self.max_fits_bytes = max_fits_bytes
        self.max_image_bytes = max_image_bytes
        self.pool = pool if pool is not None else FramePool()
        self.stats = FramerStats()
        self._chunk = bytearray(HEAD_CHUNK_BYTES)
        self._chunk_view = memoryview(self._chunk)
        self._pending = bytearray()
        self._offset = 0  # stream offset of _pending[0]
        self._frame: bytearray | None = None
        self._frame_size = 0
        self._frame_start = 0
        self._filled = 0
        self._into_frame = False
        self._skipping = 0  # bytes skipped in the current run of garbage
        self._swapped = False

    @property
    def stream_offset(self) -> int:
        """Stream offset of the next byte not yet taken into a window or skipped."""
        return self._frame_start if self._frame is not None else self._offset

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a window or skipped."""
        return self._filled + len(self._pending)

    def get_buffer(self) -> memoryview:
        """Where the next received bytes go: the open window itself, or the header chunk."""
        frame = self._frame
        if frame is not None and self._filled < self._frame_size:
            self._into_frame = True
            return memoryview(frame)[self._filled : self._frame_size]
        self._into_frame = False
        return self._chunk_view[:]

    def buffer_updated(self, nbytes: int) -> None:
        """``nbytes`` were written at the start of the last ``get_buffer()``."""
        self.stats.bytes += nbytes
        if self._into_frame:
            self._filled += nbytes
        else:
            self._pending += self._chunk_view[:nbytes]

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes that are already in memory (a copy; tests and adapters)."""
        view = memoryview(data).cast("B")
        while view:
            target = self.get_buffer()
            n = min(len(target), len(view))
            target[:n] = view[:n]
            target.release()
            self.buffer_updated(n)
            view = view[n:]

    def next_event(self) -> Window | NeedData:
        """The next complete window, or ``NEED_DATA``."""
        while True:
            if self._frame is not None:
                if self._filled < self._frame_size:
                    return NEED_DATA
                return self._finish_frame()
            if not self._advance_head():
                return NEED_DATA

    def eof(self) -> TruncatedError | None:
        """The connection ended: drop any partial window and start afresh for a new one.

        Returns the truncation error of a partial window (counted), or None.
        """
        error: TruncatedError | None = None
        if self._frame is not None:
            error = self._truncation(memoryview(self._frame)[: self._filled], self._frame_start)
        elif self._pending.startswith(WINDOW_SYNC_BYTES[: len(self._pending)]) and self._pending:
            error = self._truncation(memoryview(self._pending), self._offset)
        elif self._pending:
            self._skip(len(self._pending))
        if error is not None:
            self.stats.truncated += 1
        self._end_skip_run(found=False)
        self._pending = bytearray()
        self._frame = None
        self._filled = self._frame_size = 0
        self._offset = 0
        return error

    def _truncation(self, view: memoryview, base: int) -> TruncatedError | None:
        try:
            decode_window_from(
                view,
                base=base,
                pixel_order=self.pixel_order,
                max_fits_bytes=self.max_fits_bytes,
                max_image_bytes=self.max_image_bytes,
            )
        except TruncatedError as exc:
            return exc
        except RemoteProtocolError:
            return None
        finally:
            view.release()
        return None  # pragma: no cover - a partial window never decodes

    def _advance_head(self) -> bool:
        """Find the next window start in the pending bytes and open its frame; False if short."""
        pending = self._pending
        if len(pending) < len(WINDOW_SYNC_BYTES):
            return False
        if not pending.startswith(WINDOW_SYNC_BYTES):
            if not self._skipping and pending.startswith(_SWAPPED_SYNC):
                self._swapped = True
            found = pending.find(WINDOW_SYNC_BYTES, 1)
            if found < 0:
                self._skip(len(pending) - len(WINDOW_SYNC_BYTES) + 1)
                return False
            self._skip(found)
        if len(pending) < WINDOW_PREFIX_SIZE:
            return False
        try:
            size = window_frame_size(
                pending,
                base=self._offset,
                max_fits_bytes=self.max_fits_bytes,
                max_image_bytes=self.max_image_bytes,
            )
        except RemoteProtocolError:
            self._end_skip_run(found=True)
            self.stats.errors += 1
            self._skip(1)
            raise
        assert size is not None
        self._end_skip_run(found=True)
        frame = self.pool.acquire(size)
        take = min(size, len(pending))
        frame[:take] = pending[:take]
        del pending[:take]
        self._frame = frame
        self._frame_size = size
        self._frame_start = self._offset
        self._filled = take
        self._offset += size
        return True

    def _finish_frame(self) -> Window:
        frame = self._frame
        assert frame is not None
        size = self._frame_size
        self._frame = None
        view = memoryview(frame)[:size]
        try:
            window, _ = decode_window_from(
                view,
                base=self._frame_start,
                pixel_order=self.pixel_order,
                max_fits_bytes=self.max_fits_bytes,
                max_image_bytes=self.max_image_bytes,
            )
        except RemoteProtocolError:
            self.stats.errors += 1
            # scan the bad window's own bytes again: a valid window may start inside it
            self._pending[0:0] = view
            self._offset = self._frame_start
            self._skip(1)
            raise
        finally:
            view.release()
            self._filled = 0
        self.stats.windows += 1
        return window

    def _skip(self, nbytes: int) -> None:
        if nbytes <= 0:
            return
        if not self._skipping:
            log.debug(
                "%s: no window magic at stream offset %d; scanning", self.stream, self._offset
            )
        del self._pending[:nbytes]
        self._offset += nbytes
        self._skipping += nbytes
        self.stats.skipped_bytes += nbytes

    def _end_skip_run(self, *, found: bool) -> None:
        if not self._skipping:
            return
        if found:
            self.stats.resyncs += 1
        hint = " (they began with the magic in the other byte order)" if self._swapped else ""
        log.warning(
            "%s: skipped %d bytes before %s%s",
            self.stream or PROTOCOL,
            self._skipping,
            f"a window magic at stream offset {self._offset}" if found else "the end of the stream",
            hint,
        )
        self._skipping = 0
        self._swapped = False
