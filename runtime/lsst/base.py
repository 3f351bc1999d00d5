"""``BaseClientOrServer``: the stream owner shared by ``Client`` and the one-client servers.

Same public surface and semantics as ``lsst.ts.tcpip.BaseClientOrServer``; the line reader is
the generated ``LineFramer`` over big socket reads, so an over-limit line, bad UTF-8 or bad
JSON costs one error and the next read goes on at the next line.
"""

from __future__ import annotations

import abc
import asyncio
import codecs
import ctypes
import inspect
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn, Self

from daqwire.errors import (
    LineTooLongError,
    RemoteProtocolError,
    StreamClosedError,
    TruncatedError,
)
from daqwire.generated.lsst_tcpip import (
    LineFramer,
    decode_line,
    decode_text,
    dumps,
    encode_line,
    loads,
)
from daqwire.lsst.constants import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_ENCODING,
    DEFAULT_LINE_LIMIT,
    DEFAULT_MONITOR_CONNECTION_INTERVAL,
    DEFAULT_TERMINATOR,
    KEEPALIVE_OPTIONS,
    READ_CHUNK_BYTES,
)
from daqwire.sansio import NEED_DATA, STREAM_END

__all__ = [
    "BaseClientOrServer",
    "ConnectCallbackType",
    "PeerClosedError",
    "StreamStats",
    "close_stream_writer",
    "set_keepalive",
]

_log = logging.getLogger("daqwire.lsst")

ConnectCallbackType = Callable[[Any], Awaitable[None]]

#: asyncio StreamReader limit; only its flow control matters, lines are split by the framer
_STREAM_LIMIT = 4 * READ_CHUNK_BYTES


class PeerClosedError(asyncio.IncompleteReadError, StreamClosedError):
    """The peer closed the stream before a complete line or block (``partial`` = what came).

    An ``asyncio.IncompleteReadError`` as in ts_tcpip, and a daqwire ``StreamClosedError``.
    """

    def __init__(self, partial: bytes, expected: int | None = None, *, stream: str = "") -> None:
        asyncio.IncompleteReadError.__init__(self, partial, expected)
        self.message = str(self.args[0])
        self.stream = stream
        self.truncated = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.partial, self.expected), {"stream": self.stream})

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class StreamStats:
    """Counters of one client or server since it was made (all connections together)."""

    connects: int
    lines_read: int
    bytes_read: int
    bytes_written: int
    lines_skipped: int
    decode_errors: int


async def close_stream_writer(
    writer: asyncio.StreamWriter, timeout: float = DEFAULT_CLOSE_TIMEOUT
) -> None:
    """Close ``writer`` and wait at most ``timeout`` s for it; never raises on a dead socket."""
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), timeout)
    except (ConnectionError, TimeoutError, OSError):
        pass


def set_keepalive(writer: asyncio.StreamWriter) -> None:
    """Set SO_KEEPALIVE and the ts_tcpip keepalive timing on the writer's socket."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in KEEPALIVE_OPTIONS:
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError as exc:  # pragma: no cover - platform without these options
        _log.debug("could not set keepalive options: %r", exc)


class _Inbox:
    """Bytes received but not yet returned: in a line framer (line reads) or raw (byte reads)."""

    __slots__ = ("eof", "framer", "limit", "raw", "skipped")

    def __init__(self, terminator: bytes, limit: int) -> None:
        self.limit = limit
        self.framer: LineFramer | None = LineFramer(terminator=terminator, max_line_bytes=limit)
        self.raw = bytearray()
        self.eof = False
        self.skipped = 0  # lines skipped by framers already dropped

    def empty(self) -> bool:
        framer = self.framer
        return not self.raw and (framer is None or framer.buffered_bytes == 0)

    @property
    def lines_skipped(self) -> int:
        framer = self.framer
        return self.skipped + (framer.lines_skipped if framer is not None else 0)

    def feed(self, data: bytes) -> None:
        framer = self.framer
        if framer is not None:
            framer.feed(data)
        else:
            self.raw += data

    def feed_eof(self) -> None:
        self.eof = True
        if self.framer is not None:
            self.framer.feed_eof()

    def to_raw(self) -> bytearray:
        """Move what the framer holds back into ``raw`` (for byte reads) and drop the framer."""
        framer = self.framer
        if framer is None:
            return self.raw
        self.framer = None
        if framer.buffered_bytes:
            framer.feed_eof()
            raw = self.raw
            while True:
                try:
                    item = framer.next_line()
                except TruncatedError as exc:
                    raw += getattr(exc, "partial", b"")
                    continue
                except LineTooLongError:
                    continue
                if item is STREAM_END or item is NEED_DATA:
                    break
                raw += item
                raw += framer.terminator
        self.skipped += framer.lines_skipped
        return self.raw

    def to_lines(self, separator: bytes) -> LineFramer:
        """The framer for lines ending in ``separator``, holding every buffered byte."""
        framer = self.framer
        if framer is not None and framer.terminator == separator:
            return framer
        self.to_raw()
        framer = LineFramer(terminator=separator, max_line_bytes=self.limit)
        if self.raw:
            framer.feed(bytes(self.raw))
            self.raw = bytearray()
        if self.eof:
            framer.feed_eof()
        self.framer = framer
        return framer


class BaseClientOrServer(abc.ABC):
    """Own one stream: typed line/JSON/ctypes reads and writes, connection state, callbacks.

    Always await ``start_task`` (scheduled by the constructor) before use.
    """

    def __init__(
        self,
        *,
        log: logging.Logger | None = None,
        connect_callback: ConnectCallbackType | None = None,
        monitor_connection_interval: float = DEFAULT_MONITOR_CONNECTION_INTERVAL,
        name: str = "",
        encoding: str = DEFAULT_ENCODING,
        terminator: bytes = DEFAULT_TERMINATOR,
        line_limit: int = DEFAULT_LINE_LIMIT,
        **kwargs: Any,
    ) -> None:
        _check_callback(connect_callback)
        if not isinstance(terminator, bytes):
            raise ValueError(f"{terminator=!r} must be a bytes")
        if not terminator:
            raise ValueError("terminator must not be empty")
        try:
            codec = codecs.lookup(encoding)
        except Exception as exc:
            raise ValueError(f"{encoding=!r} is not a valid encoding: {exc!r}") from None
        if isinstance(line_limit, bool) or not isinstance(line_limit, int) or line_limit < 1:
            raise ValueError(f"{line_limit=!r} must be a positive int")
        loop = asyncio.get_running_loop()  # RuntimeError without a running loop, as asyncio

        self.log = (log or _log).getChild(f"{type(self).__name__}({name})")
        self.name = name
        self.encoding = encoding
        self.terminator = terminator
        self.line_limit = line_limit
        self.monitor_connection_interval = monitor_connection_interval
        self._connect_callback = connect_callback
        self._utf8 = codec.name == "utf-8"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._inbox = _Inbox(terminator, line_limit)
        self._should_be_connected = False
        self._was_connected = False
        self._monitor_connection_task: asyncio.Future[None] = loop.create_future()
        self._monitor_connection_task.set_result(None)
        self._connects = 0
        self._lines_read = 0
        self._bytes_read = 0
        self._bytes_written = 0
        self._decode_errors = 0
        self._skipped_before = 0
        self.done_task: asyncio.Future[Any] = loop.create_future()
        self.start_task: asyncio.Future[Any] = self._make_start_task(**kwargs)

    def _make_start_task(self, **kwargs: Any) -> asyncio.Future[Any]:
        return asyncio.ensure_future(self.start(**kwargs))

    # --- state -------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a stream is open and not at its end (buffered unread data counts)."""
        writer = self._writer
        if writer is None or writer.is_closing():
            return False
        reader = self._reader
        return reader is not None and not (reader.at_eof() and self._inbox.empty())

    @property
    def should_be_connected(self) -> bool:
        """Set on connect, cleared by ``close()``; with ``connected`` false = unexpected loss."""
        return self._should_be_connected

    @should_be_connected.setter
    def should_be_connected(self, value: bool) -> None:
        self._should_be_connected = bool(value)

    @property
    def lines_skipped(self) -> int:
        """Over-limit lines discarded so far (all connections)."""
        return self._skipped_before + self._inbox.lines_skipped

    @property
    def stream_stats(self) -> StreamStats:
        """A snapshot of this object's counters."""
        return StreamStats(
            connects=self._connects,
            lines_read=self._lines_read,
            bytes_read=self._bytes_read,
            bytes_written=self._bytes_written,
            lines_skipped=self.lines_skipped,
            decode_errors=self._decode_errors,
        )

    @property
    def peer(self) -> str:
        """``host:port`` of the peer of the current stream, or ``""``."""
        writer = self._writer
        if writer is None:
            return ""
        address = writer.get_extra_info("peername")
        if isinstance(address, tuple) and len(address) >= 2:
            return f"{address[0]}:{address[1]}"
        return str(address or "")

    async def call_connect_callback(self) -> None:
        """Call ``connect_callback`` if ``connected`` changed since the last call (always safe)."""
        connected = self.connected
        if self._was_connected == connected:
            return
        self._was_connected = connected
        callback = self._connect_callback
        if callback is not None:
            try:
                await callback(self)
            except Exception:
                self.log.exception("connect_callback failed.")

    # --- life cycle --------------------------------------------------------------------------

    @abc.abstractmethod
    async def start(self, **kwargs: Any) -> None:
        """Connect (client) or start listening (server); run by ``start_task``."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the client or server for good and set ``done_task``."""

    async def basic_close(self) -> None:
        """Close the stream and set ``done_task`` without clearing ``should_be_connected``."""
        try:
            await self._close_client()
        finally:
            if not self.done_task.done():
                self.done_task.set_result(None)

    async def __aenter__(self) -> Self:
        await self.start_task
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _set_reader_writer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Adopt a freshly opened stream (fresh framer); sets ``should_be_connected``."""
        set_keepalive(writer)
        self._skipped_before += self._inbox.lines_skipped
        self._inbox = _Inbox(self.terminator, self.line_limit)
        self._reader = reader
        self._writer = writer
        self._should_be_connected = True
        self._connects += 1

    async def _close_client(self) -> None:
        """Close the current stream (bounded), then call the connect callback if it changed."""
        writer = self._writer
        if writer is None:
            return
        self._writer = None
        try:
            await close_stream_writer(writer)
        except Exception:
            self.log.exception("Failed to close the writer; continuing.")
        finally:
            await self.call_connect_callback()

    async def _connection_lost(self) -> None:
        """The peer went away (EOF, reset, dead socket): close our end; subclasses may react."""
        await self._close_client()

    def _start_monitoring_connection(self) -> None:
        self._monitor_connection_task.cancel()
        if self.monitor_connection_interval > 0:
            self._monitor_connection_task = asyncio.ensure_future(self._monitor_connection())

    async def _monitor_connection(self) -> None:
        """Poll ``connected`` every ``monitor_connection_interval`` s and react to a loss."""
        raise NotImplementedError

    # --- reading -----------------------------------------------------------------------------

    def _check_connected(self) -> None:
        if not self.connected:
            raise ConnectionError("Not connected")

    async def _fill(self) -> bool:
        """Read one chunk from the socket into the inbox; False at end of stream."""
        reader = self._reader
        if reader is None:
            raise ConnectionError("Not connected")
        try:
            data = await reader.read(READ_CHUNK_BYTES)
        except ConnectionError:
            await self._connection_lost()
            raise
        if not data:
            self._inbox.feed_eof()
            return False
        self._bytes_read += len(data)
        self._inbox.feed(data)
        return True

    async def _read_line(self, separator: bytes) -> bytes:
        """The next line body (separator stripped); EOF -> ``PeerClosedError``, stream closed."""
        inbox = self._inbox
        framer = inbox.framer
        if framer is None or framer.terminator != separator:
            framer = inbox.to_lines(separator)
        while True:
            try:
                item = framer.next_line()
            except TruncatedError as exc:
                await self._lost_at_eof(getattr(exc, "partial", b""), None)
            if item.__class__ is bytes:
                self._lines_read += 1
                return item
            if item is STREAM_END:
                await self._lost_at_eof(b"", None)
            await self._fill()

    async def _lost_at_eof(self, partial: bytes, expected: int | None) -> NoReturn:
        stream = self.peer
        await self._connection_lost()
        raise PeerClosedError(partial, expected, stream=stream)

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (``-1``: everything until EOF); ``b""`` at EOF."""
        self._check_connected()
        raw = self._inbox.to_raw()
        if n < 0:
            while await self._fill():
                pass
        elif n > 0 and not raw and not self._inbox.eof:
            await self._fill()
        if n < 0 or n >= len(raw):
            data = bytes(raw)
            raw.clear()
        else:
            data = bytes(raw[:n])
            del raw[:n]
        return data

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; EOF first -> ``PeerClosedError`` (``.partial``), stream closed."""
        self._check_connected()
        raw = self._inbox.to_raw()
        while len(raw) < n:
            if self._inbox.eof or not await self._fill():
                partial = bytes(raw)
                raw.clear()
                await self._lost_at_eof(partial, n)
        data = bytes(raw[:n])
        del raw[:n]
        return data

    async def readline(self) -> bytes:
        r"""Bytes up to and including ``\n``; at EOF whatever is left (maybe ``b""``)."""
        self._check_connected()
        try:
            return await self._read_line(b"\n") + b"\n"
        except PeerClosedError as exc:
            return exc.partial

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Bytes up to and including ``separator``; an over-limit line -> ``LineTooLongError``."""
        self._check_connected()
        return await self._read_line(separator) + separator

    async def read_line(self) -> bytes:
        """One line body as bytes, terminator stripped (ours; not in ts_tcpip)."""
        self._check_connected()
        return await self._read_line(self.terminator)

    async def read_str(self) -> str:
        """One line, terminator stripped, strictly decoded (``TextDecodeError`` on bad bytes)."""
        self._check_connected()
        line = await self._read_line(self.terminator)
        try:
            return self._decode_text(line)
        except RemoteProtocolError:
            self._decode_errors += 1
            raise

    async def read_json(self) -> Any:
        """One line decoded as JSON (NaN, Infinity and big ints accepted)."""
        self._check_connected()
        line = await self._read_line(self.terminator)
        try:
            if self._utf8:
                return decode_line(line)
            return loads(self._decode_text(line))
        except RemoteProtocolError:
            self._decode_errors += 1
            raise

    async def read_into(self, struct: ctypes.Structure) -> None:
        """Fill a ``ctypes.Structure`` with its raw in-memory image read from the stream."""
        size = ctypes.sizeof(struct)
        data = await self.readexactly(size)
        ctypes.memmove(ctypes.addressof(struct), data, size)

    def _decode_text(self, line: bytes) -> str:
        if self._utf8:
            return decode_text(line)
        return decode_text(line, encoding=self.encoding)

    # --- writing -----------------------------------------------------------------------------

    def _checked_writer(self) -> asyncio.StreamWriter:
        writer = self._writer
        if writer is None or not self.connected:
            raise ConnectionError("Not connected")
        return writer

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        try:
            await writer.drain()
        except ConnectionError:
            await self._connection_lost()
            raise

    async def write(self, data: bytes) -> None:
        """Write bytes and drain."""
        writer = self._checked_writer()
        writer.write(data)
        self._bytes_written += len(data)
        await self._drain(writer)

    async def writelines(self, lines: Iterable[bytes]) -> None:
        """Write several byte strings and drain once."""
        writer = self._checked_writer()
        data = b"".join(lines)  # one write: a peer gone mid-batch costs one failed send
        writer.write(data)
        self._bytes_written += len(data)
        await self._drain(writer)

    async def write_str(self, line: str) -> None:
        """Encode ``line`` strictly, append the terminator and write it."""
        await self.write(line.encode(self.encoding, "strict") + self.terminator)

    async def write_json(self, data: Any) -> None:
        """Write ``data`` as one JSON line (``json.dumps`` defaults, as ts_tcpip)."""
        if self._utf8:
            await self.write(encode_line(data, terminator=self.terminator))
        else:
            await self.write_str(dumps(data))

    async def write_from(self, *structs: ctypes.Structure) -> None:
        """Write the raw images of ctypes structures, draining once after all of them."""
        writer = self._checked_writer()
        for struct in structs:
            data = bytes(struct)
            writer.write(data)
            self._bytes_written += len(data)
        await self._drain(writer)


def _check_callback(callback: object) -> None:
    if callback is None or inspect.iscoroutinefunction(callback):
        return
    if not inspect.isfunction(callback) and not inspect.ismethod(callback):
        # an object whose __call__ is an async method is asynchronous too
        if inspect.iscoroutinefunction(getattr(callback, "__call__", None)):  # noqa: B004
            return
    raise TypeError("connect_callback must be asynchronous")


async def cancel_and_wait(task: asyncio.Future[Any] | None, timeout: float = 5.0) -> None:
    """Cancel a background task and wait (bounded) for it to finish; never the calling task."""
    if task is None or task.done() or task is asyncio.current_task():
        return
    task.cancel()
    await asyncio.wait({task}, timeout=timeout)


def stream_limit() -> int:
    """The asyncio StreamReader limit used for our streams (flow control only)."""
    return _STREAM_LIMIT
