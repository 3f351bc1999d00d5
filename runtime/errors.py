"""The one error hierarchy of daqwire: spec errors, and protocol errors typed by who is at fault."""

from __future__ import annotations

import asyncio
import json

__all__ = [
    "BadMagicError",
    "DaqwireError",
    "FieldValueError",
    "GeneratedCodeMismatchError",
    "JsonSyntaxError",
    "LengthLimitError",
    "LengthMismatchError",
    "LineTooLongError",
    "LocalProtocolError",
    "ProtocolError",
    "RefusedRequest",
    "RemoteProtocolError",
    "ReplyError",
    "RequestFailedError",
    "RequestRefusedError",
    "RequestRejected",
    "RequestTimeoutError",
    "ShapeMismatchError",
    "SpecError",
    "StreamClosedError",
    "StreamError",
    "StreamTimeoutError",
    "TextDecodeError",
    "TrailingDataError",
    "TruncatedError",
    "UnknownCommandError",
    "UnknownMessageError",
    "UnknownRequest",
]


class DaqwireError(Exception):
    """Base class of every error daqwire raises on purpose."""


class SpecError(DaqwireError):
    """A spec file is invalid; names the file, line, column and the path inside the spec."""

    def __init__(
        self,
        message: str,
        *,
        file: str = "<spec>",
        line: int | None = None,
        column: int | None = None,
        path: str = "",
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        where = file
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {path}: {message}" if path else f"{where}: {message}")


class GeneratedCodeMismatchError(DaqwireError, ImportError):
    """A generated module was stamped by a generator this runtime cannot work with."""


class ProtocolError(DaqwireError):
    """Something on a wire does not follow its protocol.

    ``protocol`` is the spec name, ``field_path`` the dotted path of the field
    (``window.fits_length``) and ``offset`` the byte offset in the stream or buffer.
    """

    def __init__(
        self,
        message: str,
        *,
        protocol: str = "",
        field_path: str = "",
        offset: int | None = None,
    ) -> None:
        self.message = message
        self.protocol = protocol
        self.field_path = field_path
        self.offset = offset
        super().__init__(self._format())

    def _format(self) -> str:
        parts = [p for p in (self.protocol, self.field_path) if p]
        where = ".".join(parts) if parts else ""
        if self.offset is not None:
            where += f" at byte {self.offset}"
        return f"{where}: {self.message}" if where else self.message


class LocalProtocolError(ProtocolError, ValueError):
    """The caller asked for something the protocol cannot express (raised on encode)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that do not follow the protocol (raised on decode)."""


class TruncatedError(RemoteProtocolError):
    """The input ended inside a message."""


class BadMagicError(RemoteProtocolError):
    """A constant (magic/sync) field does not hold its constant.

    ``expected`` and ``actual`` are the values; ``byte_swapped`` is true when the actual
    value is the expected one in the other byte order (a sender of the other endianness).
    """

    def __init__(
        self,
        message: str,
        *,
        expected: int | float | bytes,
        actual: int | float | bytes,
        byte_swapped: bool = False,
        protocol: str = "",
        field_path: str = "",
        offset: int | None = None,
    ) -> None:
        self.expected = expected
        self.actual = actual
        self.byte_swapped = byte_swapped
        super().__init__(message, protocol=protocol, field_path=field_path, offset=offset)


class LengthLimitError(RemoteProtocolError):
    """An announced length or value exceeds its limit; nothing was allocated for it."""

    def __init__(
        self,
        message: str,
        *,
        limit: int,
        actual: int,
        protocol: str = "",
        field_path: str = "",
        offset: int | None = None,
    ) -> None:
        self.limit = limit
        self.actual = actual
        super().__init__(message, protocol=protocol, field_path=field_path, offset=offset)


class LengthMismatchError(RemoteProtocolError):
    """Lengths in a message disagree with each other or with the element size."""


class ShapeMismatchError(LengthMismatchError):
    """An array's announced shape does not match the number of bytes announced for it."""


class FieldValueError(RemoteProtocolError):
    """A field holds a value its spec does not allow (enum, range, text, keyword)."""


class UnknownMessageError(FieldValueError):
    """A message selector (``id``, ``topicID``) names no message of the spec; ``value`` holds it."""

    def __init__(
        self,
        message: str,
        *,
        value: object,
        protocol: str = "",
        field_path: str = "",
        offset: int | None = None,
    ) -> None:
        self.value = value
        super().__init__(message, protocol=protocol, field_path=field_path, offset=offset)


class LineTooLongError(LengthLimitError, asyncio.LimitOverrunError):
    """A text line is longer than its limit; it was skipped up to the next terminator.

    It is also an ``asyncio.LimitOverrunError`` (``consumed`` = bytes discarded so far), so code
    written for asyncio streams keeps catching it.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: int,
        actual: int,
        protocol: str = "",
        field_path: str = "",
        offset: int | None = None,
    ) -> None:
        asyncio.LimitOverrunError.__init__(self, message, actual)
        self.limit = limit
        self.actual = actual
        self.message = message
        self.protocol = protocol
        self.field_path = field_path
        self.offset = offset
        self.args = (self._format(),)

    def __str__(self) -> str:
        return self._format()


class TextDecodeError(RemoteProtocolError, UnicodeDecodeError):
    """Bytes that should be text are not valid in their encoding; also a ``UnicodeDecodeError``."""

    def __init__(
        self,
        message: str,
        *,
        encoding: str,
        data: bytes,
        start: int,
        end: int,
        reason: str,
        protocol: str = "",
        field_path: str = "",
        offset: int | None = None,
    ) -> None:
        UnicodeDecodeError.__init__(self, encoding, data, start, end, reason)
        self.message = message
        self.protocol = protocol
        self.field_path = field_path
        self.offset = offset
        self.args = (self._format(),)

    def __str__(self) -> str:
        return self._format()


class JsonSyntaxError(RemoteProtocolError, json.JSONDecodeError):
    """A line is not JSON in the protocol's dialect; also a ``json.JSONDecodeError``."""

    def __init__(
        self,
        message: str,
        *,
        doc: str,
        pos: int,
        protocol: str = "",
        field_path: str = "",
        offset: int | None = None,
    ) -> None:
        json.JSONDecodeError.__init__(self, message, doc, pos)
        self.message = message
        self.protocol = protocol
        self.field_path = field_path
        self.offset = offset
        self.args = (self._format(),)

    def __str__(self) -> str:
        return self._format()


class TrailingDataError(RemoteProtocolError):
    """A buffer decoded as exactly one message holds bytes after its end."""


class ReplyError(RemoteProtocolError):
    """The peer answered with its protocol's error reply; ``reply`` holds the reply bytes."""

    def __init__(
        self, message: str, *, reply: bytes = b"", protocol: str = "", field_path: str = ""
    ) -> None:
        self.reply = reply
        super().__init__(message, protocol=protocol, field_path=field_path)


class UnknownCommandError(ReplyError):
    """The server did not know the request (PyExpLabSys ``UNKNOWN_COMMMAND``)."""


class RequestRefusedError(ReplyError):
    """The server refused the request: bad data, not allowed, no room (``ERROR#...``)."""


class RequestFailedError(ReplyError):
    """The server's handler failed on the request (``EXCEP#...``)."""


class RequestRejected(DaqwireError):
    """Raised by a server handler so that the generated dispatcher answers with an error reply."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class UnknownRequest(RequestRejected):
    """The request names something the server does not have (a codename, a command)."""


class RefusedRequest(RequestRejected):
    """The server will not serve the request (source not allowed, queue full)."""


class RequestTimeoutError(DaqwireError, TimeoutError):
    """No reply came to a request within its timeout (after any retries)."""

    def __init__(self, message: str, *, peer: str = "", attempts: int = 1) -> None:
        self.message = message
        self.peer = peer
        self.attempts = attempts
        super().__init__(f"{peer}: {message}" if peer else message)


class StreamError(DaqwireError):
    """A connection-level failure of a stream; ``stream`` names it (``host:port``)."""

    def __init__(self, message: str, *, stream: str = "") -> None:
        self.message = message
        self.stream = stream
        super().__init__(f"{stream}: {message}" if stream else message)


class StreamTimeoutError(StreamError, TimeoutError):
    """The peer sent nothing within the read timeout (a silent server)."""


class StreamClosedError(StreamError, ConnectionError):
    """The peer closed the connection; ``truncated`` is set if it did so inside a message."""

    def __init__(
        self, message: str, *, stream: str = "", truncated: TruncatedError | None = None
    ) -> None:
        self.truncated = truncated
        super().__init__(message, stream=stream)
