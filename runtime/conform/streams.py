"""Conformance of a ``binary`` stream over TCP (AARTFAAC windows): read and check every item.

The generated ``<message>_frame_size`` cuts the stream and ``decode_<message>_from`` checks
each item; after a bad item the reader scans for the next sync marker, so later items are
still checked. The runtime here only moves bytes and counts.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from daqwire.conform.context import Context, UsageError, parse_host_port
from daqwire.conform.search import Problem
from daqwire.errors import RemoteProtocolError

__all__ = ["run"]

logger = logging.getLogger(__name__)

#: bytes asked of one recv() at most
_RECV_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class _Codec:
    """The generated functions of the one stream message of a spec."""

    name: str
    prefix_size: int
    sync: bytes | None
    #: the largest item the spec allows: the most bytes a resync may scan
    max_size: int
    frame_size: Callable[..., int | None]
    decode_from: Callable[..., tuple[Any, int]]


def _stream_codec(ctx: Context) -> _Codec:
    """The message the spec streams: the one with length fields (a framable message)."""
    model = ctx.spec.model
    framed = [m for m in model.messages if m.length_fields]
    if len(framed) != 1:
        kinds = ", ".join(m.name for m in model.messages) or "none"
        raise UsageError(
            f"{ctx.spec.protocol} is a binary spec without a TCP stream framing (its messages:"
            f" {kinds}; a stream needs exactly one message with a length field); daqwire"
            " conform reads binary streams over TCP only"
        )
    message = framed[0]
    up = message.name.upper()
    codec = ctx.spec.codec
    prefix = int(getattr(codec, f"{up}_PREFIX_SIZE"))
    limits = [
        getattr(codec, n) for n in dir(codec) if n.startswith(f"{up}_MAX_") and n.endswith("_BYTES")
    ]
    return _Codec(
        name=message.name,
        prefix_size=prefix,
        sync=getattr(codec, f"{up}_SYNC_BYTES", None),
        max_size=prefix + sum(int(v) for v in limits),
        frame_size=getattr(codec, f"{message.name}_frame_size"),
        decode_from=getattr(codec, f"decode_{message.name}_from"),
    )


class _Reader:
    """A TCP byte stream with a buffer; every wait is bounded by the idle timeout."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        #: stream offset of ``buf[0]``
        self.base = 0
        self.ended = False
        self.silent = False

    def fill(self, need: int) -> bool:
        """Read until ``need`` bytes are buffered; False if the peer closed or went silent."""
        while len(self.buf) < need:
            if self.ended or self.silent:
                return False
            try:
                chunk = self.sock.recv(min(_RECV_BYTES, max(need - len(self.buf), 65536)))
            except TimeoutError:
                self.silent = True
                return False
            if not chunk:
                self.ended = True
                return False
            self.buf += chunk
        return True

    def drop(self, nbytes: int) -> None:
        del self.buf[:nbytes]
        self.base += nbytes

    def resync(self, sync: bytes, *, limit: int) -> bool:
        """Drop bytes up to the next ``sync`` after ``buf[0]``; False if none within ``limit``."""
        scanned = 0
        start = 1
        while True:
            found = self.buf.find(sync, start)
            if found >= 0:
                self.drop(found)
                return True
            keep = len(sync) - 1
            dropped = max(len(self.buf) - keep, 0)
            scanned += dropped
            self.drop(dropped)
            start = 0
            if scanned > limit or not self.fill(len(self.buf) + 1):
                return False


def _connect(ctx: Context) -> socket.socket:
    host, port = parse_host_port(ctx.target, schemes=("tcp",))
    sock = socket.create_connection((host, port), timeout=ctx.timeout_s)
    sock.settimeout(ctx.timeout_s)
    return sock


def run(ctx: Context) -> None:
    """Read ``ctx.examples`` items from the stream at ``ctx.target``; check each one."""
    codec = _stream_codec(ctx)
    if ctx.replay is not None:
        raise UsageError("--replay does not apply to a stream; use --examples N")
    sock = _connect(ctx)
    try:
        _check_stream(ctx, codec, _Reader(sock))
    finally:
        sock.close()


def _check_stream(ctx: Context, codec: _Codec, reader: _Reader) -> None:
    name = codec.name
    index = 0
    while index < ctx.examples:
        start = reader.base
        if not reader.fill(codec.prefix_size):
            _stream_stopped(ctx, codec, reader, index)
            return
        try:
            size = codec.frame_size(reader.buf, 0, base=start)
            assert size is not None
            if not reader.fill(size):
                _stream_stopped(ctx, codec, reader, index)
                return
            frame = bytes(reader.buf[:size])
            codec.decode_from(frame, 0, base=start)
        except RemoteProtocolError as exc:
            ctx.report.checked += 1
            ctx.report.count(f"bad {name}")
            evidence = bytes(reader.buf[:256])
            resynced = codec.sync is not None and reader.resync(codec.sync, limit=codec.max_size)
            end = reader.base if resynced else start + len(reader.buf)
            _deviate(ctx, codec, exc, index, start, end, evidence)
            if not resynced:
                reason = (
                    "the spec gives no sync marker to resynchronise on"
                    if codec.sync is None
                    else f"no {name} start followed within {codec.max_size} bytes"
                    " or before the stream stopped"
                )
                ctx.report.notes.append(f"stopped reading after {name} {index}: {reason}")
                return
            index += 1
            continue
        ctx.report.checked += 1
        reader.drop(size)
        ctx.report.count(name)
        index += 1


def _deviate(
    ctx: Context,
    codec: _Codec,
    exc: RemoteProtocolError,
    index: int,
    start: int,
    end: int,
    evidence: bytes,
) -> None:
    offset = None if exc.offset is None else exc.offset - start
    where = "" if exc.offset is None else f" (stream byte {exc.offset})"
    ctx.deviate(
        Problem(
            "item",
            f"{codec.name} {index}: {exc.message}{where}",
            field_path=exc.field_path or codec.name,
            offset=offset,
            evidence=evidence,
        ),
        case=f"{codec.name} {index} (stream bytes {start}..{end})",
        reproduce=ctx.command(examples=index + 1),
    )


def _stream_stopped(ctx: Context, codec: _Codec, reader: _Reader, index: int) -> None:
    """The peer closed or went silent before ``ctx.examples`` items: a cut item deviates."""
    how = "closed the connection" if reader.ended else f"sent nothing for {ctx.timeout_s:g} s"
    if not reader.buf:
        ctx.report.notes.append(
            f"the peer {how} after {index} {codec.name}(s) ({reader.base} bytes)"
        )
        return
    start = reader.base
    data = bytes(reader.buf)
    ctx.report.checked += 1
    ctx.report.count(f"bad {codec.name}")
    try:
        codec.decode_from(data, 0, base=start)
    except RemoteProtocolError as exc:
        error = exc
    else:  # pragma: no cover - a whole item would have been taken
        return
    ctx.report.notes.append(f"the peer {how} inside {codec.name} {index}")
    _deviate(ctx, codec, error, index, start, start + len(data), data[:256])
