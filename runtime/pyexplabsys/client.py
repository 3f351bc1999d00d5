"""UDP clients of the PyExpLabSys data sockets: pull and push (blocking and asyncio), and the
reference's ``DateDataPullClient``.

Every byte is built and parsed by the generated ``Request`` objects; this module only moves
datagrams. One request is one datagram and at most one reply: the client waits ``timeout_s``
for it, and an idempotent request (every pull command, push ``name``/``status``/``commands``)
is sent again up to ``retries`` times, each time from a fresh socket, so that a late reply to an
earlier attempt (or request) can never be read as the reply to a later one. Pushes are sent
once: a lost reply does not mean the data was not stored.
"""

from __future__ import annotations

import asyncio
import logging
import selectors
import socket
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final, Literal, Self, TypeVar

from daqwire.errors import LocalProtocolError, RequestTimeoutError
from daqwire.generated.pyexplabsys import (
    DATE_PULL_PORT,
    MAX_DATAGRAM_BYTES,
    PROTOCOL,
    PUSH_PORT,
    Ack,
    AsyncPullClientStub,
    AsyncPushClientStub,
    OldData,
    PullClientStub,
    PushClientStub,
    PushRequests,
    Request,
    RetJson,
    RetRaw,
    RetString,
)

__all__ = [
    "DATE_DATA_PULL_CLIENT_TIMEOUT_S",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT_S",
    "RECEIVE_BUFFER_BYTES",
    "AsyncPullClient",
    "AsyncPushClient",
    "DateDataPullClient",
    "PullClient",
    "PushClient",
    "ReturnFormat",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: receive buffer: more than the largest UDP payload (65507 bytes), so no reply is ever cut
RECEIVE_BUFFER_BYTES: Final = 65536
#: seconds to wait for one reply
DEFAULT_TIMEOUT_S: Final = 1.0
#: extra attempts of an idempotent request whose reply did not come
DEFAULT_RETRIES: Final = 2
#: DateDataPullClient's wait when the caller gives ``timeout=None`` (the reference waits forever)
DATE_DATA_PULL_CLIENT_TIMEOUT_S: Final = 10.0

#: a push socket's return_format, which decides how a ``RET#`` reply is read
ReturnFormat = Literal["json", "raw", "string"]
_RETURN_FORMATS: Final = ("json", "raw", "string")


def _check_settings(host: str, port: int, timeout_s: float, retries: int) -> None:
    """Refuse settings that cannot work before any socket is made."""
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be a non-empty str, not {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port must be an int in 1..65535, not {port!r}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, not {timeout_s!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an int >= 0, not {retries!r}")


def _check_size(request: Request[Any]) -> None:
    """A request longer than one UDP datagram cannot be sent; say so before trying."""
    if len(request.data) > MAX_DATAGRAM_BYTES:
        raise LocalProtocolError(
            f"the request is {len(request.data)} bytes, longer than the largest UDP datagram "
            f"({MAX_DATAGRAM_BYTES} bytes)",
            protocol=PROTOCOL,
            field_path=request.name,
        )


def _attempts(request: Request[Any], retries: int) -> int:
    """How often ``request`` may be sent: retried only when sending it twice does no harm."""
    return 1 + retries if request.idempotent else 1


def _timeout_error(
    request: Request[Any], peer: str, timeout_s: float, attempts: int
) -> RequestTimeoutError:
    """The error for a request that got no reply in any of its attempts."""
    tries = "attempt" if attempts == 1 else "attempts"
    return RequestTimeoutError(
        f"no reply to {request.name!r} within {timeout_s} s ({attempts} {tries})",
        peer=peer,
        attempts=attempts,
    )


def _refused(peer: str, exc: OSError) -> ConnectionRefusedError:
    """ICMP port unreachable came back: nothing listens on the peer's port."""
    return ConnectionRefusedError(exc.errno, f"{peer}: no UDP server on this port ({exc.strerror})")


def _return_format(return_format: str) -> str:
    """The ``prefer`` value of a push client's return_format."""
    if return_format not in _RETURN_FORMATS:
        raise ValueError(f"return_format must be one of {_RETURN_FORMATS}, not {return_format!r}")
    return f"ret_{return_format}"


class _Settings:
    """Where a channel sends, and how long and how often it waits for a reply."""

    def __init__(self, host: str, port: int, timeout_s: float, retries: int) -> None:
        _check_settings(host, port, timeout_s, retries)
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self.retries = retries
        self.peer = f"{host}:{port}"


class _Endpoint:
    """One connected, non-blocking UDP socket and the selector that waits on it."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            # connected: the kernel drops datagrams from any other source
            self.sock.connect((host, port))
            self.selector = selectors.DefaultSelector()
            self.selector.register(self.sock, selectors.EVENT_READ)
        except BaseException:
            self.sock.close()
            raise

    def drain(self) -> None:
        """Drop datagrams (and ICMP errors) left from earlier exchanges: they answer nothing."""
        while True:
            try:
                self.sock.recv(RECEIVE_BUFFER_BYTES)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            log.debug("dropped a stray datagram before a request")

    def send(self, data: bytes, deadline: float) -> None:
        """Send one datagram, waiting for room in the send buffer until ``deadline``."""
        while True:
            try:
                self.sock.send(data)
                return
            except BlockingIOError:
                if not _wait(self.sock, selectors.EVENT_WRITE, deadline):
                    raise TimeoutError from None

    def receive(self, deadline: float) -> bytes:
        """The next datagram, or TimeoutError at ``deadline``."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.selector.select(remaining):
                raise TimeoutError
            try:
                return self.sock.recv(RECEIVE_BUFFER_BYTES)
            except (BlockingIOError, InterruptedError):
                continue

    def close(self) -> None:
        self.selector.close()
        self.sock.close()


def _wait(sock: socket.socket, events: int, deadline: float) -> bool:
    """True when ``sock`` is ready for ``events`` before ``deadline``."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return False
    with selectors.DefaultSelector() as selector:
        selector.register(sock, events)
        return bool(selector.select(remaining))


class _Channel(_Settings):
    """Blocking request/reply over one connected UDP socket, renewed after every lost reply."""

    def __init__(self, host: str, port: int, timeout_s: float, retries: int) -> None:
        super().__init__(host, port, timeout_s, retries)
        self._lock = threading.Lock()
        self._endpoint: _Endpoint | None = None
        self._retired: _Endpoint | None = None
        self._closed = False

    def _open(self) -> _Endpoint:
        """The connected endpoint, made on first use and after a lost reply."""
        if self._endpoint is None:
            endpoint = _Endpoint(self.host, self.port)
            # the retired socket is closed only now, so the new one cannot get its port number
            self._close_retired()
            self._endpoint = endpoint
        return self._endpoint

    def _retire(self) -> None:
        """Stop reading the current socket: a reply still on its way must land elsewhere."""
        self._close_retired()
        self._retired, self._endpoint = self._endpoint, None

    def _close_retired(self) -> None:
        if self._retired is not None:
            self._retired.close()
            self._retired = None

    def exchange(self, request: Request[Any]) -> bytes:
        """Send ``request`` and return its reply; retries as the request allows."""
        _check_size(request)
        attempts = _attempts(request, self.retries)
        with self._lock:
            for attempt in range(1, attempts + 1):
                if self._closed:
                    raise RuntimeError(f"the client of {self.peer} is closed")
                endpoint = self._open()
                deadline = time.monotonic() + self.timeout_s
                try:
                    endpoint.drain()
                    endpoint.send(request.data, deadline)
                    return endpoint.receive(deadline)
                except TimeoutError:
                    self._retire()
                    log.debug("%s: no reply to %r, attempt %d", self.peer, request.name, attempt)
                except ConnectionRefusedError as exc:
                    self._retire()
                    raise _refused(self.peer, exc) from None
                except BaseException:
                    self._retire()
                    raise
            raise _timeout_error(request, self.peer, self.timeout_s, attempts)

    def close(self) -> None:
        """Close the socket; idempotent."""
        with self._lock:
            self._closed = True
            self._retire()
            self._close_retired()


class _ReplyProtocol(asyncio.DatagramProtocol):
    """Hands the next datagram (or socket error) to the waiting request; drops the rest."""

    def __init__(self) -> None:
        self.waiter: asyncio.Future[bytes] | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(data)
        else:
            log.debug("dropped a datagram that answers no pending request")

    def error_received(self, exc: Exception) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc or ConnectionError("the UDP endpoint was closed"))


class _AsyncChannel(_Settings):
    """asyncio request/reply over one connected datagram endpoint, renewed after a lost reply."""

    def __init__(self, host: str, port: int, timeout_s: float, retries: int) -> None:
        super().__init__(host, port, timeout_s, retries)
        self._lock = asyncio.Lock()
        self._endpoint: tuple[asyncio.DatagramTransport, _ReplyProtocol] | None = None
        self._retired: asyncio.DatagramTransport | None = None
        self._closed = False

    async def _open(self) -> tuple[asyncio.DatagramTransport, _ReplyProtocol]:
        """The connected endpoint, made on first use and after a lost reply."""
        if self._endpoint is None:
            loop = asyncio.get_running_loop()
            # remote_addr connects the socket: the kernel drops datagrams from other sources
            self._endpoint = await loop.create_datagram_endpoint(
                _ReplyProtocol, remote_addr=(self.host, self.port), family=socket.AF_INET
            )
            # the retired endpoint is closed only now, so the new one cannot get its port
            self._close_retired()
        return self._endpoint

    def _retire(self) -> None:
        self._close_retired()
        if self._endpoint is not None:
            self._retired = self._endpoint[0]
            self._endpoint = None

    def _close_retired(self) -> None:
        if self._retired is not None:
            self._retired.close()
            self._retired = None

    async def exchange(self, request: Request[Any]) -> bytes:
        """Send ``request`` and return its reply; retries as the request allows."""
        _check_size(request)
        attempts = _attempts(request, self.retries)
        async with self._lock:
            for attempt in range(1, attempts + 1):
                if self._closed:
                    raise RuntimeError(f"the client of {self.peer} is closed")
                transport, protocol = await self._open()
                waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
                protocol.waiter = waiter
                try:
                    transport.sendto(request.data)
                    async with asyncio.timeout(self.timeout_s):
                        return await waiter
                except TimeoutError:
                    self._retire()
                    log.debug("%s: no reply to %r, attempt %d", self.peer, request.name, attempt)
                except ConnectionRefusedError as exc:
                    self._retire()
                    raise _refused(self.peer, exc) from None
                except BaseException:
                    self._retire()
                    raise
                finally:
                    protocol.waiter = None
            raise _timeout_error(request, self.peer, self.timeout_s, attempts)

    def close(self) -> None:
        """Close the endpoint; idempotent."""
        self._closed = True
        self._retire()
        self._close_retired()


class _ClientSettings:
    """Where a client sends, and how long and how often it waits: shared by all four clients."""

    _channel: _Settings

    @property
    def host(self) -> str:
        """The server's host name or address."""
        return self._channel.host

    @property
    def port(self) -> int:
        """The server's UDP port."""
        return self._channel.port

    @property
    def timeout_s(self) -> float:
        """Seconds to wait for each reply; may be changed between requests."""
        return self._channel.timeout_s

    @timeout_s.setter
    def timeout_s(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"timeout_s must be > 0, not {value!r}")
        self._channel.timeout_s = value

    @property
    def retries(self) -> int:
        """Extra attempts of an idempotent request whose reply did not come."""
        return self._channel.retries

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.host!r}, {self.port}, timeout_s={self.timeout_s})"


class PullClient(_ClientSettings, PullClientStub):
    """Blocking client of a pull socket (DateDataPullSocket, DataPullSocket).

    One method per command (``name()``, ``json_wn()``, ``point_raw("c")``, ...), typed results;
    ``UNKNOWN_COMMMAND`` raises ``UnknownCommandError``. Safe to share between threads.
    """

    _channel: _Channel

    def __init__(
        self,
        host: str,
        port: int = DATE_PULL_PORT,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        self._channel = _Channel(host, port, timeout_s, retries)

    def _call(self, request: Request[T]) -> T:
        return request.parse(self._channel.exchange(request))

    def request(self, request: Request[T]) -> T:
        """Send any generated request (``PullRequests.x()``) and return its parsed reply."""
        return self._call(request)

    def close(self) -> None:
        """Close the socket; idempotent."""
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class PushClient(_ClientSettings, PushClientStub):
    """Blocking client of a DataPushSocket; pushes are sent once, never retried.

    ``return_format`` is the server's (json, raw or string): it decides how a ``RET#`` reply of
    ``json_wn``/``raw_wn`` is read when the call gives no ``prefer``. ``ERROR#`` raises
    ``RequestRefusedError``, ``EXCEP#`` ``RequestFailedError``.
    """

    _channel: _Channel

    def __init__(
        self,
        host: str,
        port: int = PUSH_PORT,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        return_format: ReturnFormat = "json",
    ) -> None:
        self._prefer = _return_format(return_format)
        self._channel = _Channel(host, port, timeout_s, retries)
        self.return_format = return_format

    def _call(self, request: Request[T]) -> T:
        return request.parse(self._channel.exchange(request))

    def request(self, request: Request[T]) -> T:
        """Send any generated request (``PushRequests.x()``) and return its parsed reply."""
        return self._call(request)

    def json_wn(
        self, data: Mapping[str, Any], *, prefer: str | None = None
    ) -> Ack | RetJson | RetRaw | RetString:
        """Push a dict as ``json_wn#<json>``; a RET# reply is read per return_format."""
        return self._call(PushRequests.json_wn(data, prefer=prefer or self._prefer))

    def raw_wn(
        self, data: Mapping[str, Any], *, prefer: str | None = None
    ) -> Ack | RetJson | RetRaw | RetString:
        """Push a dict as ``raw_wn#c:type:v,...``; a RET# reply is read per return_format."""
        return self._call(PushRequests.raw_wn(data, prefer=prefer or self._prefer))

    def close(self) -> None:
        """Close the socket; idempotent."""
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncPullClient(_ClientSettings, AsyncPullClientStub):
    """asyncio client of a pull socket; one request at a time per client (others wait)."""

    _channel: _AsyncChannel

    def __init__(
        self,
        host: str,
        port: int = DATE_PULL_PORT,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        self._channel = _AsyncChannel(host, port, timeout_s, retries)

    async def _call(self, request: Request[T]) -> T:
        return request.parse(await self._channel.exchange(request))

    async def request(self, request: Request[T]) -> T:
        """Send any generated request (``PullRequests.x()``) and return its parsed reply."""
        return await self._call(request)

    async def close(self) -> None:
        """Close the endpoint; idempotent."""
        self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class AsyncPushClient(_ClientSettings, AsyncPushClientStub):
    """asyncio client of a DataPushSocket; pushes are sent once, never retried."""

    _channel: _AsyncChannel

    def __init__(
        self,
        host: str,
        port: int = PUSH_PORT,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        return_format: ReturnFormat = "json",
    ) -> None:
        self._prefer = _return_format(return_format)
        self._channel = _AsyncChannel(host, port, timeout_s, retries)
        self.return_format = return_format

    async def _call(self, request: Request[T]) -> T:
        return request.parse(await self._channel.exchange(request))

    async def request(self, request: Request[T]) -> T:
        """Send any generated request (``PushRequests.x()``) and return its parsed reply."""
        return await self._call(request)

    async def json_wn(
        self, data: Mapping[str, Any], *, prefer: str | None = None
    ) -> Ack | RetJson | RetRaw | RetString:
        """Push a dict as ``json_wn#<json>``; a RET# reply is read per return_format."""
        return await self._call(PushRequests.json_wn(data, prefer=prefer or self._prefer))

    async def raw_wn(
        self, data: Mapping[str, Any], *, prefer: str | None = None
    ) -> Ack | RetJson | RetRaw | RetString:
        """Push a dict as ``raw_wn#c:type:v,...``; a RET# reply is read per return_format."""
        return await self._call(PushRequests.raw_wn(data, prefer=prefer or self._prefer))

    async def close(self) -> None:
        """Close the endpoint; idempotent."""
        self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _reference_point(point: tuple[Any, Any] | OldData) -> Any:
    """A point as the reference client returns it (JSON decoded): ``[x, y]`` or ``"OLD_DATA"``."""
    if isinstance(point, OldData):
        return str(point)
    return list(point)


class DateDataPullClient:
    """Drop-in for PyExpLabSys ``socket_clients.DateDataPullClient``, without its 1024-byte hang.

    ``timeout=None`` waits daqwire's default of 10 s per request (the reference blocks forever);
    no reply raises ``RequestTimeoutError`` (a ``TimeoutError``, as the reference's). Like the
    reference it sends each request once unless ``retries`` says otherwise.
    """

    def __init__(
        self,
        host: str,
        expected_socket_name: str,
        port: int = DATE_PULL_PORT,
        exception_on_old_data: bool = True,
        timeout: float | None = None,
        *,
        retries: int = 0,
    ) -> None:
        self.exception_on_old_data = exception_on_old_data
        self.host_port = (host, port)
        timeout_s = DATE_DATA_PULL_CLIENT_TIMEOUT_S if timeout is None else timeout
        self._client = PullClient(host, port, timeout_s=timeout_s, retries=retries)
        try:
            self.name = self._client.name()
            if self.name != expected_socket_name:
                msg = 'The name of the socket at {} was not "{}" as expected, but "{}"'
                raise ValueError(msg.format(self.host_port, expected_socket_name, self.name))
            self.codenames: list[str] = self._client.codenames_json()
        except BaseException:
            self._client.close()
            raise
        self.codenames_set = set(self.codenames)

    def get_field(self, fieldname: str) -> Any:
        """One codename's point as ``[x, y]`` (``ValueError('Old data')`` when it is stale)."""
        if fieldname not in self.codenames_set:
            raise ValueError(f"Unknown fieldnames, valid fields are: {self.codenames}")
        data = _reference_point(self._client.point_json(fieldname))
        if data == "OLD_DATA" and self.exception_on_old_data:
            raise ValueError("Old data")
        return data

    def get_all_fields(self) -> dict[str, Any]:
        """Every codename's point as ``{codename: [x, y]}`` (stale ones raise or are "OLD_DATA")."""
        data = {name: _reference_point(point) for name, point in self._client.json_wn().items()}
        for fieldname, value in data.items():
            if value == "OLD_DATA" and self.exception_on_old_data:
                raise ValueError(f'Old data, for field "{fieldname}"')
        return data

    def get_status(self) -> dict[str, Any]:
        """The host's ``status`` reply (system and socket server status)."""
        return self._client.status()

    def close(self) -> None:
        """Close the socket (the reference never does); idempotent."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        """A codename read as an attribute (``client.temperature``), as the reference allows."""
        codenames = self.__dict__.get("codenames_set", ())
        if name in codenames:
            return self.get_field(name)
        raise AttributeError(f"{type(self).__name__} object has no attribute '{name}'")
