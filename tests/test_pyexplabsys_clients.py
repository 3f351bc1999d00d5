"""PyExpLabSys clients and the live receiver over real loopback UDP.

The clients are tested first against tiny in-test servers (a UDP thread feeding the generated
``PullDispatcher``/``PushDispatcher``, or a socket that never answers, or one that answers
late on purpose), then against daqwire's own server classes. Nothing here asserts a duration:
timeouts are short so the suite stays fast, and retries are counted by the datagrams a silent
socket received.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from daqwire.errors import (
    LocalProtocolError,
    RefusedRequest,
    RequestFailedError,
    RequestRefusedError,
    RequestTimeoutError,
    UnknownCommandError,
    UnknownRequest,
)
from daqwire.generated.pyexplabsys import (
    MAX_DATAGRAM_BYTES,
    Ack,
    OldData,
    Point,
    PullDispatcher,
    PullRequests,
    PushDispatcher,
    PushRequests,
    RawValue,
    Request,
    RetJson,
    RetRaw,
    RetString,
    Update,
    encode_live_update,
)
from daqwire.pyexplabsys import DataPullSocket, DataPushSocket, DateDataPullSocket, LiveSocket
from daqwire.pyexplabsys.client import (
    AsyncPullClient,
    AsyncPushClient,
    DateDataPullClient,
    PullClient,
    PushClient,
    ReturnFormat,
)
from daqwire.pyexplabsys.live_server import LiveServer, LiveServerStats
from tests.pyexplabsys_replay import FakeClock, load_vector_file

Address = tuple[str, int]
LOCALHOST = "127.0.0.1"
#: how long a test waits for something that should happen at once (never asserted as timing)
WAIT_S = 5.0
#: the client timeout where a test expects no reply at all (keeps the suite fast)
SHORT_TIMEOUT_S = 0.05
STALE = OldData()


# ---- in-test servers -------------------------------------------------------------------------


class LoopbackServer:
    """A UDP thread on 127.0.0.1 that answers each datagram with ``serve(data)`` (None: silence)."""

    def __init__(self, serve: Callable[[bytes], bytes | None]) -> None:
        self.serve = serve
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOCALHOST, 0))
        self.port: int = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            data, source = self.sock.recvfrom(65536)
            if self._stopping:
                return
            self.requests.append(data)
            reply = self.serve(data)
            if reply is not None:
                self.sock.sendto(reply, source)

    def close(self) -> None:
        self._stopping = True
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as waker:
            waker.sendto(b"", (LOCALHOST, self.port))
        self._thread.join(WAIT_S)
        self.sock.close()


class PullData:
    """A PullHandler over a dict of points; unknown codenames are UNKNOWN_COMMMAND."""

    def __init__(self, name: str, points: Mapping[str, Point | OldData]) -> None:
        self.name = name
        self.points = dict(points)
        self.status: dict[str, Any] = {"system_status": {"load": 0.5}, "socket_server_status": {}}

    def on_name(self) -> str:
        return self.name

    def on_codenames_raw(self) -> list[str]:
        return list(self.points)

    def on_codenames_json(self) -> list[str]:
        return list(self.points)

    def on_raw(self) -> list[Point | OldData]:
        return list(self.points.values())

    def on_raw_wn(self) -> dict[str, Point | OldData]:
        return self.points

    def on_json(self) -> list[Point | OldData]:
        return list(self.points.values())

    def on_json_wn(self) -> dict[str, Point | OldData]:
        return self.points

    def on_status(self) -> dict[str, Any]:
        return self.status

    def on_point_raw(self, codename: str) -> Point | OldData:
        return self._point(codename)

    def on_point_json(self, codename: str) -> Point | OldData:
        return self._point(codename)

    def _point(self, codename: str) -> Point | OldData:
        if codename not in self.points:
            raise UnknownRequest(f"unknown codename {codename!r}")
        return self.points[codename]


class PushData:
    """A PushHandler: key ``refuse`` refuses, ``raise`` fails, ``ret`` returns, else ACK."""

    def __init__(self, return_format: str = "json") -> None:
        self.return_format = return_format
        self.pushed: list[dict[str, Any]] = []

    def on_name(self) -> str:
        return "test push"

    def on_status(self) -> dict[str, Any]:
        return {"system_status": {}, "socket_server_status": {}}

    def on_json_wn(self, data: dict[str, Any]) -> Ack | RetJson | RetRaw | RetString:
        return self._serve(data)

    def on_raw_wn(self, data: dict[str, RawValue]) -> Ack | RetJson | RetRaw | RetString:
        return self._serve(dict(data))

    def _serve(self, data: dict[str, Any]) -> Ack | RetJson | RetRaw | RetString:
        if "refuse" in data:
            raise RefusedRequest(f"refused: {data['refuse']}")
        if "raise" in data:
            raise ValueError(str(data["raise"]))
        self.pushed.append(data)
        if "ret" not in data:
            return Ack(data)
        kinds: dict[str, type[RetJson] | type[RetRaw] | type[RetString]] = {
            "json": RetJson,
            "raw": RetRaw,
            "string": RetString,
        }
        return kinds[self.return_format](data["ret"])


POINTS: dict[str, Point | OldData] = {
    "temperature": (1795265441.5, 21.25),
    "pressure": (1795265441.75, 1e-9),
    "label": (1.0, "on"),
    "stale_one": STALE,
}


@pytest.fixture
def pull_data() -> PullData:
    return PullData("test pull", POINTS)


@pytest.fixture
def pull_server(pull_data: PullData) -> Iterator[LoopbackServer]:
    server = LoopbackServer(PullDispatcher(pull_data).handle)
    yield server
    server.close()


@pytest.fixture
def push_data() -> PushData:
    return PushData()


@pytest.fixture
def push_server(push_data: PushData) -> Iterator[LoopbackServer]:
    server = LoopbackServer(PushDispatcher(push_data).handle)
    yield server
    server.close()


@pytest.fixture
def silent() -> Iterator[socket.socket]:
    """A bound UDP socket that never answers; the test counts what it received."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOCALHOST, 0))
    yield sock
    sock.close()


def port_of(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


def received(sock: socket.socket, expected: int) -> list[Address]:
    """The sources of the ``expected`` datagrams waiting on ``sock``, and of any extra ones."""
    sources: list[Address] = []
    sock.settimeout(WAIT_S)
    for _ in range(expected):
        sources.append(sock.recvfrom(65536)[1])
    sock.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            sources.append(sock.recvfrom(65536)[1])
    return sources


def wait_until(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.002)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOCALHOST, 0))
        return port_of(sock)


# ---- PullClient ------------------------------------------------------------------------------


def test_pull_client_every_command_typed(pull_server: LoopbackServer, pull_data: PullData) -> None:
    with PullClient(LOCALHOST, pull_server.port) as client:
        assert client.name() == "test pull"
        assert client.codenames_raw() == list(POINTS)
        assert client.codenames_json() == list(POINTS)
        assert client.raw() == list(POINTS.values())
        assert client.raw_wn() == POINTS
        assert client.json() == list(POINTS.values())
        assert client.json_wn() == POINTS
        assert client.status() == pull_data.status
        assert client.point_raw("temperature") == (1795265441.5, 21.25)
        assert client.point_json("pressure") == (1795265441.75, 1e-9)
        assert client.point_raw("label") == (1, "on")
        assert client.point_json("label") == (1.0, "on")
        assert client.point_raw("stale_one") == STALE
        assert isinstance(client.point_json("stale_one"), OldData)
        assert client.request(PullRequests.codenames_json()) == list(POINTS)


def test_pull_client_unknown_command(pull_server: LoopbackServer) -> None:
    with PullClient(LOCALHOST, pull_server.port) as client:
        with pytest.raises(UnknownCommandError) as info:
            client.point_raw("nope")
        assert info.value.reply == b"UNKNOWN_COMMMAND"
        with pytest.raises(UnknownCommandError):
            client.point_json("nope")
        bogus = Request("bogus", b"bogus", PullRequests.name().parse, True)
        with pytest.raises(UnknownCommandError):
            client.request(bogus)
        assert client.name() == "test pull"  # the client goes on working


@pytest.mark.parametrize("size", [1023, 1024, 1025, 2048, 8193, 65535 - 28])
def test_pull_client_reads_replies_of_any_size(
    pull_server: LoopbackServer, pull_data: PullData, size: int
) -> None:
    """The reference client hangs on replies of 1024 bytes or more; any UDP payload works here."""
    assert size <= MAX_DATAGRAM_BYTES
    pull_data.status = {"pad": "x" * (size - len('{"pad": ""}'))}
    assert len(json.dumps(pull_data.status)) == size
    with PullClient(LOCALHOST, pull_server.port, retries=0) as client:
        assert client.status() == pull_data.status


def test_request_longer_than_a_datagram_is_refused_before_sending(silent: socket.socket) -> None:
    big = Request("big", b"x" * (MAX_DATAGRAM_BYTES + 1), PullRequests.name().parse, True)
    with PullClient(LOCALHOST, port_of(silent)) as client:
        with pytest.raises(LocalProtocolError, match="longer than the largest UDP datagram"):
            client.request(big)
    with PushClient(LOCALHOST, port_of(silent)) as push:
        with pytest.raises(LocalProtocolError):
            push.json_wn({"a": "x" * MAX_DATAGRAM_BYTES})
    assert received(silent, 0) == []


@pytest.mark.parametrize("retries", [0, 2])
def test_pull_timeout_retries_from_fresh_sockets(silent: socket.socket, retries: int) -> None:
    client = PullClient(LOCALHOST, port_of(silent), timeout_s=SHORT_TIMEOUT_S, retries=retries)
    with client, pytest.raises(RequestTimeoutError) as info:
        client.name()
    assert info.value.attempts == retries + 1
    assert info.value.peer == f"{LOCALHOST}:{port_of(silent)}"
    assert f"{LOCALHOST}:{port_of(silent)}" in str(info.value)
    assert f"{retries + 1} attempt" in str(info.value)
    assert isinstance(info.value, TimeoutError)
    sources = received(silent, retries + 1)
    assert len(sources) == retries + 1
    assert len(set(sources)) == retries + 1, "each retry must come from a fresh socket"


def test_push_is_never_retried(silent: socket.socket) -> None:
    client = PushClient(LOCALHOST, port_of(silent), timeout_s=SHORT_TIMEOUT_S, retries=3)
    with client:
        with pytest.raises(RequestTimeoutError) as info:
            client.json_wn({"a": 1})
        assert info.value.attempts == 1
        assert len(received(silent, 1)) == 1
        with pytest.raises(RequestTimeoutError) as info:
            client.raw_wn({"a": 1})
        assert info.value.attempts == 1
        assert len(received(silent, 1)) == 1
        with pytest.raises(RequestTimeoutError) as info:
            client.name()  # asking the name is idempotent: retried
        assert info.value.attempts == 4
        assert len(received(silent, 4)) == 4


class LateServer:
    """Scripted answers on the ``silent`` socket for the late-reply tests (a thread).

    ``late_attempt``: attempt 1 is answered ``stale`` only after attempt 2 came; attempt 2 and
    every later datagram get ``fresh``. ``late_request``: the first request is answered only
    after the test set ``gave_up`` (the client has raised its timeout by then); the next
    request gets ``["a", "b"]``.
    """

    def __init__(self, sock: socket.socket, script: str) -> None:
        self.sock = sock
        self.sources: list[Address] = []
        self.gave_up = threading.Event()
        self.late_sent = threading.Event()
        self._done = threading.Event()
        target = self._late_attempt if script == "late_attempt" else self._late_request
        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def _receive(self) -> Address:
        source: Address = self.sock.recvfrom(65536)[1]
        self.sources.append(source)
        return source

    def _late_attempt(self) -> None:
        self.sock.settimeout(WAIT_S)
        first, second = self._receive(), self._receive()
        self.sock.sendto(b"stale", first)
        self.sock.sendto(b"fresh", second)
        self.sock.settimeout(0.01)
        while not self._done.is_set():  # a slow machine may need one more attempt
            with contextlib.suppress(TimeoutError):
                self.sock.sendto(b"fresh", self._receive())

    def _late_request(self) -> None:
        self.sock.settimeout(WAIT_S)
        source = self._receive()
        self.gave_up.wait(WAIT_S)
        self.sock.sendto(b"the late name", source)
        self.late_sent.set()
        self.sock.sendto(b'["a", "b"]', self._receive())

    def close(self) -> None:
        self._done.set()
        self._thread.join(WAIT_S)


def test_late_reply_to_an_earlier_attempt_is_not_taken(silent: socket.socket) -> None:
    """The server answers attempt 1 only after attempt 2 came; that answer must be dropped."""
    server = LateServer(silent, "late_attempt")
    try:
        with PullClient(LOCALHOST, port_of(silent), timeout_s=0.1, retries=5) as client:
            assert client.name() == "fresh"
    finally:
        server.close()
    assert len(set(server.sources)) == len(server.sources), "one fresh socket per attempt"


def test_late_reply_to_a_timed_out_request_does_not_answer_the_next(
    silent: socket.socket,
) -> None:
    server = LateServer(silent, "late_request")
    try:
        with PullClient(LOCALHOST, port_of(silent), timeout_s=SHORT_TIMEOUT_S, retries=0) as c:
            with pytest.raises(RequestTimeoutError):
                c.name()
            server.gave_up.set()
            assert server.late_sent.wait(WAIT_S)
            c.timeout_s = WAIT_S  # the next reply comes at once; never time out here
            assert c.codenames_json() == ["a", "b"]
    finally:
        server.close()


def test_no_server_on_the_port_is_connection_refused() -> None:
    port = free_port()
    with PullClient(LOCALHOST, port, timeout_s=WAIT_S) as client:
        with pytest.raises(ConnectionRefusedError, match=f"{LOCALHOST}:{port}"):
            client.name()


def test_pull_client_shared_between_threads(pull_server: LoopbackServer) -> None:
    errors: list[str] = []
    with PullClient(LOCALHOST, pull_server.port) as client:

        def ask(codename: str) -> None:
            for _ in range(20):
                got = client.point_json(codename)
                if got != POINTS[codename]:
                    errors.append(f"{codename}: {got!r}")

        threads = [threading.Thread(target=ask, args=(c,)) for c in POINTS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_S)
    assert errors == []


def test_close_is_idempotent_and_final(pull_server: LoopbackServer) -> None:
    client = PullClient(LOCALHOST, pull_server.port)
    assert client.name() == "test pull"
    client.close()
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.name()
    push = PushClient(LOCALHOST, pull_server.port)
    push.close()
    push.close()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="return_format"):
        PushClient(LOCALHOST, return_format="xml")
    with pytest.raises(ValueError, match="timeout_s"):
        PullClient(LOCALHOST, timeout_s=0)
    with pytest.raises(ValueError, match="retries"):
        PullClient(LOCALHOST, retries=-1)
    with pytest.raises(ValueError, match="port"):
        PullClient(LOCALHOST, 0)
    with pytest.raises(ValueError, match="return_format"):
        AsyncPushClient(LOCALHOST, return_format="JSON")


# ---- PushClient ------------------------------------------------------------------------------


def test_push_client_every_request_typed(push_server: LoopbackServer, push_data: PushData) -> None:
    with PushClient(LOCALHOST, push_server.port) as client:
        assert client.name() == "test push"
        assert client.commands() is None
        assert client.status() == {"system_status": {}, "socket_server_status": {}}
        assert client.json_wn({"a": 1, "b": [1.5, 2.5]}) == Ack("{'a': 1, 'b': [1.5, 2.5]}")
        assert client.raw_wn({"c": 3, "d": [1.5, 2.5], "e": "x"}) == Ack(
            "{'c': 3, 'd': [1.5, 2.5], 'e': 'x'}"
        )
        assert client.request(PushRequests.name()) == "test push"
    assert push_data.pushed == [{"a": 1, "b": [1.5, 2.5]}, {"c": 3, "d": [1.5, 2.5], "e": "x"}]


@pytest.mark.parametrize(
    ("return_format", "ret", "expected"),
    [
        ("json", {"x": [1, 2.5], "y": None}, RetJson({"x": [1, 2.5], "y": None})),
        ("raw", {"x": [1, 2], "y": 2.5}, RetRaw({"x": [1, 2], "y": 2.5})),
        ("raw", [[1, 2], [3, 4]], RetRaw([[1, 2], [3, 4]])),
        ("string", [1, "a"], RetString("[1, 'a']")),
    ],
)
def test_push_client_reads_ret_by_return_format(
    return_format: ReturnFormat, ret: Any, expected: RetJson | RetRaw | RetString
) -> None:
    server = LoopbackServer(PushDispatcher(PushData(return_format)).handle)
    try:
        with PushClient(LOCALHOST, server.port, return_format=return_format) as client:
            assert client.json_wn({"ret": ret}) == expected
        # the same reply read with an explicit prefer from a client set up for json
        with PushClient(LOCALHOST, server.port) as client:
            assert client.json_wn({"ret": ret}, prefer=f"ret_{return_format}") == expected
    finally:
        server.close()


def test_push_client_error_replies(push_server: LoopbackServer, push_data: PushData) -> None:
    with PushClient(LOCALHOST, push_server.port) as client:
        with pytest.raises(RequestRefusedError, match="refused: now") as refused:
            client.json_wn({"refuse": "now"})
        assert refused.value.reply == b"ERROR#refused: now"
        with pytest.raises(RequestFailedError, match="boom") as failed:
            client.raw_wn({"raise": "boom"})
        assert failed.value.reply == b"EXCEP#boom"
        unknown = Request("bogus", b"bogus", PushRequests.name().parse, True)
        with pytest.raises(UnknownCommandError):
            client.request(unknown)
        # '#' cannot be pushed (the reference rejects it anywhere); refused before sending
        with pytest.raises(LocalProtocolError):
            client.json_wn({"a": "#"})
        assert client.json_wn({"ok": True}) == Ack("{'ok': True}")
    assert push_data.pushed == [{"ok": True}]


# ---- asyncio clients -------------------------------------------------------------------------


def test_async_pull_client(pull_server: LoopbackServer, pull_data: PullData) -> None:
    async def main() -> None:
        async with AsyncPullClient(LOCALHOST, pull_server.port) as client:
            assert await client.name() == "test pull"
            assert await client.codenames_raw() == list(POINTS)
            assert await client.codenames_json() == list(POINTS)
            assert await client.raw() == list(POINTS.values())
            assert await client.raw_wn() == POINTS
            assert await client.json() == list(POINTS.values())
            assert await client.json_wn() == POINTS
            assert await client.status() == pull_data.status
            assert await client.point_raw("temperature") == POINTS["temperature"]
            assert await client.point_json("stale_one") == STALE
            assert await client.request(PullRequests.name()) == "test pull"
            with pytest.raises(UnknownCommandError):
                await client.point_json("nope")
            # many coroutines share one client: one request at a time, each gets its own reply
            names = list(POINTS) * 5
            got = await asyncio.gather(*(client.point_json(c) for c in names))
            assert got == [POINTS[c] for c in names]
            pull_data.status = {"pad": "x" * 65000}
            assert await client.status() == pull_data.status
        await client.close()  # idempotent
        with pytest.raises(RuntimeError, match="closed"):
            await client.name()

    asyncio.run(main())


def test_async_push_client(push_server: LoopbackServer, push_data: PushData) -> None:
    async def main() -> None:
        async with AsyncPushClient(LOCALHOST, push_server.port) as client:
            assert await client.name() == "test push"
            assert await client.commands() is None
            assert await client.status() == {"system_status": {}, "socket_server_status": {}}
            assert await client.json_wn({"a": 1}) == Ack("{'a': 1}")
            assert await client.raw_wn({"b": [1, 2]}) == Ack("{'b': [1, 2]}")
            assert await client.json_wn({"ret": [1]}) == RetJson([1])
            assert await client.json_wn({"ret": "s"}, prefer="ret_string") == RetString('"s"')
            with pytest.raises(RequestRefusedError):
                await client.json_wn({"refuse": 1})
            with pytest.raises(RequestFailedError):
                await client.json_wn({"raise": 1})

    asyncio.run(main())
    assert push_data.pushed == [{"a": 1}, {"b": [1, 2]}, {"ret": [1]}, {"ret": "s"}]


def test_async_push_client_return_format(push_server: LoopbackServer, push_data: PushData) -> None:
    push_data.return_format = "raw"

    async def main() -> None:
        async with AsyncPushClient(LOCALHOST, push_server.port, return_format="raw") as client:
            assert await client.json_wn({"ret": {"a": [1, 2]}}) == RetRaw({"a": [1, 2]})
            assert await client.json_wn({"ret": [[True]]}) == RetRaw([[True]])
            with pytest.raises(RequestFailedError, match="must be a dict or list"):
                await client.raw_wn({"ret": 1})

    asyncio.run(main())


def test_async_timeouts_retry_pulls_only(silent: socket.socket) -> None:
    async def main() -> None:
        pull = AsyncPullClient(LOCALHOST, port_of(silent), timeout_s=SHORT_TIMEOUT_S, retries=2)
        async with pull:
            with pytest.raises(RequestTimeoutError) as info:
                await pull.json_wn()
            assert info.value.attempts == 3
        push = AsyncPushClient(LOCALHOST, port_of(silent), timeout_s=SHORT_TIMEOUT_S, retries=2)
        async with push:
            with pytest.raises(RequestTimeoutError) as info:
                await push.json_wn({"a": 1})
            assert info.value.attempts == 1

    asyncio.run(main())
    sources = received(silent, 4)
    assert len(sources) == 4
    assert len(set(sources[:3])) == 3, "each retry must come from a fresh endpoint"


def test_async_late_reply_to_an_earlier_attempt_is_not_taken(silent: socket.socket) -> None:
    server = LateServer(silent, "late_attempt")

    async def main() -> None:
        async with AsyncPullClient(LOCALHOST, port_of(silent), timeout_s=0.1, retries=5) as c:
            assert await c.name() == "fresh"

    try:
        asyncio.run(main())
    finally:
        server.close()
    assert len(set(server.sources)) == len(server.sources), "one fresh endpoint per attempt"


def test_async_late_reply_to_a_timed_out_request_does_not_answer_the_next(
    silent: socket.socket,
) -> None:
    server = LateServer(silent, "late_request")

    async def main() -> None:
        async with AsyncPullClient(
            LOCALHOST, port_of(silent), timeout_s=SHORT_TIMEOUT_S, retries=0
        ) as client:
            with pytest.raises(RequestTimeoutError):
                await client.name()
            server.gave_up.set()
            loop = asyncio.get_running_loop()
            assert await loop.run_in_executor(None, server.late_sent.wait, WAIT_S)
            client.timeout_s = WAIT_S
            assert await client.codenames_json() == ["a", "b"]

    try:
        asyncio.run(main())
    finally:
        server.close()


def test_async_no_server_is_connection_refused() -> None:
    port = free_port()

    async def main() -> None:
        async with AsyncPullClient(LOCALHOST, port, timeout_s=WAIT_S) as client:
            with pytest.raises(ConnectionRefusedError):
                await client.name()

    asyncio.run(main())


# ---- DateDataPullClient ----------------------------------------------------------------------


def recorded_client_case() -> dict[str, Any]:
    cases = load_vector_file("lifecycle_and_edges")
    case = next(c for c in cases if c["case"] == "DateDataPullClient")
    observed: dict[str, Any] = case["observed"]
    return observed


@pytest.fixture
def reference_server() -> Iterator[LoopbackServer]:
    """The recording's socket: 'client test', codenames new (fresh) and old (stale)."""
    observed = recorded_client_case()
    x, y = observed["get_field_new"]
    data = PullData(observed["name"], {"new": (x, y), "old": STALE})
    server = LoopbackServer(PullDispatcher(data).handle)
    yield server
    server.close()


def test_date_data_pull_client_matches_the_recording(reference_server: LoopbackServer) -> None:
    observed = recorded_client_case()
    port = reference_server.port
    client = DateDataPullClient(LOCALHOST, observed["name"], port=port, timeout=WAIT_S)
    with client:
        assert client.name == observed["name"]
        assert client.codenames == observed["codenames"]
        assert client.codenames_set == set(observed["codenames"])
        assert client.host_port == (LOCALHOST, port)
        assert client.get_field("new") == observed["get_field_new"]
        assert client.new == observed["attr_new"]
        with pytest.raises(ValueError) as info:
            client.get_field("old")
        assert f"ValueError: {info.value}" == observed["get_field_old"]
        with pytest.raises(ValueError) as info:
            client.get_all_fields()
        assert f"ValueError: {info.value}" == observed["get_all_fields"]
        with pytest.raises(ValueError) as info:
            client.get_field("nope")
        assert f"ValueError: {info.value}" == observed["unknown_field"]
        status = client.get_status()
        assert sorted(status) == ["socket_server_status", "system_status"]
        client.exception_on_old_data = False
        assert client.get_all_fields() == observed["get_all_fields_no_exc"]
        assert client.get_field("old") == "OLD_DATA"
        assert client.old == "OLD_DATA"
        with pytest.raises(AttributeError, match="has no attribute 'nope'"):
            _ = client.nope
    with pytest.raises(ValueError) as info:
        DateDataPullClient(LOCALHOST, "wrong name", port=port, timeout=WAIT_S)
    expected = observed["wrong_expected_name"].replace("19112", str(port))
    assert f"ValueError: {info.value}" == expected


def test_date_data_pull_client_exception_flag_at_init(reference_server: LoopbackServer) -> None:
    name = recorded_client_case()["name"]
    with DateDataPullClient(LOCALHOST, name, reference_server.port, False, WAIT_S) as client:
        assert client.get_field("old") == "OLD_DATA"
        assert client.get_all_fields()["old"] == "OLD_DATA"


def test_date_data_pull_client_reads_replies_over_1024_bytes() -> None:
    """The recorded case: 40 codenames, a json_wn reply of 1880 bytes, TimeoutError upstream."""
    points: dict[str, Point | OldData] = {
        f"codename_{i:02d}": (1795265524.047224 + i, i * 1.5) for i in range(40)
    }
    server = LoopbackServer(PullDispatcher(PullData("big", points)).handle)
    try:
        with DateDataPullClient(LOCALHOST, "big", port=server.port, timeout=WAIT_S) as client:
            assert len(PullDispatcher(PullData("big", points)).handle(b"json_wn")) > 1024
            assert client.get_all_fields() == {k: list(v) for k, v in points.items()}
    finally:
        server.close()


def test_date_data_pull_client_times_out(silent: socket.socket) -> None:
    with pytest.raises(TimeoutError) as info:
        DateDataPullClient(LOCALHOST, "x", port=port_of(silent), timeout=SHORT_TIMEOUT_S)
    assert isinstance(info.value, RequestTimeoutError)
    assert info.value.attempts == 1  # like the reference: one try per call unless told
    assert len(received(silent, 1)) == 1


def test_date_data_pull_client_unknown_command_is_typed(pull_server: LoopbackServer) -> None:
    with DateDataPullClient(LOCALHOST, "test pull", port=pull_server.port) as client:
        client.codenames_set.add("ghost")  # the server does not know it
        with pytest.raises(UnknownCommandError):
            client.get_field("ghost")


# ---- LiveServer ------------------------------------------------------------------------------


def send(port: int, *datagrams: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in datagrams:
            sock.sendto(datagram, (LOCALHOST, port))


GARBAGE = [
    b"not json",
    b"[1, 2]",
    b'{"host": "h"}',
    b"\xff\xfe",
    b'{"host": 1, "data": {}}',
    b'{"host": "h", "data": [1]}',
    b"",
]


def test_live_server_receives_updates_and_counts_garbage() -> None:
    with LiveServer() as live:
        assert live.port > 0
        send(
            live.port,
            encode_live_update("host_a", {"t": [1.0, 21.5], "p": [1.0, 1e-9]}),
            *GARBAGE,
            encode_live_update("host_a", {"t": [2.0, 22.0]}),
            encode_live_update("host_b", {"t": "RESET"}),
        )
        wait_until(lambda: live.stats.datagrams == 3 + len(GARBAGE))
        assert live.stats == LiveServerStats(
            datagrams=3 + len(GARBAGE), updates=3, errors=len(GARBAGE), dropped=0
        )
        assert live.latest == {
            "host_a": {"t": [2.0, 22.0], "p": [1.0, 1e-9]},
            "host_b": {"t": "RESET"},
        }
        assert live.get(timeout_s=WAIT_S) == Update("host_a", {"t": [1.0, 21.5], "p": [1.0, 1e-9]})
        assert live.updates() == [
            Update("host_a", {"t": [2.0, 22.0]}),
            Update("host_b", {"t": "RESET"}),
        ]
        assert live.updates() == []
        with pytest.raises(queue.Empty):
            live.get(timeout_s=0.01)
        assert live.running


def test_live_server_drops_the_oldest_when_full() -> None:
    with LiveServer(max_updates=3) as live:
        send(live.port, *(encode_live_update("h", {"i": [i, i]}) for i in range(5)))
        wait_until(lambda: live.stats.updates == 5)
        assert live.stats.dropped == 2
        assert [u.data["i"][0] for u in live.updates()] == [2, 3, 4]
        assert live.latest == {"h": {"i": [4, 4]}}


def test_live_server_get_waits_for_an_update() -> None:
    with LiveServer() as live:
        timer = threading.Timer(0.02, send, (live.port, encode_live_update("h", {"a": 1})))
        timer.start()
        assert live.get(timeout_s=WAIT_S) == Update("h", {"a": 1})
        timer.join()


def test_live_server_stop_frees_the_port_and_is_final() -> None:
    live = LiveServer()
    live.start()
    live.start()  # no-op
    port = live.port
    live.stop()
    live.stop()  # idempotent
    assert not live.running
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind((LOCALHOST, port))
    with pytest.raises(RuntimeError, match="restarted"):
        live.start()
    with pytest.raises(queue.Empty):
        live.get(timeout_s=WAIT_S)  # a stopped server answers at once
    never_started = LiveServer()
    never_started.stop()
    with pytest.raises(ValueError, match="max_updates"):
        LiveServer(max_updates=0)


# ---- against daqwire's own server classes ----------------------------------------------------

NOW = 1795265441.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def date_socket(clock: FakeClock) -> Iterator[Any]:
    sock = DateDataPullSocket(
        "real date",
        ["temperature", "pressure", "stale_one"],
        timeouts=[10.0, None, 1.0],
        host=LOCALHOST,
        port=0,
        clock=clock,
    )
    sock.set_point("temperature", (NOW - 1.0, 21.5))
    sock.set_point("pressure", (NOW - 100.0, 1e-9))
    sock.set_point("stale_one", (NOW - 5.0, 3))
    with sock:
        yield sock


def test_real_date_pull_socket(date_socket: Any) -> None:
    expected: dict[str, Point | OldData] = {
        "temperature": (NOW - 1.0, 21.5),
        "pressure": (NOW - 100.0, 1e-9),
        "stale_one": STALE,
    }
    with PullClient(LOCALHOST, date_socket.port) as client:
        assert client.name() == "real date"
        assert client.codenames_raw() == list(expected)
        assert client.codenames_json() == list(expected)
        assert client.raw() == list(expected.values())
        assert client.raw_wn() == expected
        assert client.json() == list(expected.values())
        assert client.json_wn() == expected
        assert "system_status" in client.status()
        assert client.point_raw("temperature") == expected["temperature"]
        assert client.point_json("stale_one") == STALE
        with pytest.raises(UnknownCommandError):
            client.point_raw("nope")


def test_real_date_pull_socket_with_reference_client(date_socket: Any) -> None:
    with DateDataPullClient(LOCALHOST, "real date", port=date_socket.port) as client:
        assert client.codenames == ["temperature", "pressure", "stale_one"]
        assert client.temperature == [NOW - 1.0, 21.5]
        with pytest.raises(ValueError, match=r"^Old data$"):
            client.get_field("stale_one")
        with pytest.raises(ValueError, match=r'^Old data, for field "stale_one"$'):
            client.get_all_fields()
        assert "socket_server_status" in client.get_status()
    with pytest.raises(ValueError, match='was not "other" as expected, but "real date"'):
        DateDataPullClient(LOCALHOST, "other", port=date_socket.port)


def test_real_data_pull_socket_big_reply() -> None:
    codenames = [f"c{i:03d}" for i in range(400)]
    with DataPullSocket("real data", codenames, host=LOCALHOST, port=0) as sock:
        for i, codename in enumerate(codenames):
            sock.set_point(codename, (i, "x" * 100))
        with PullClient(LOCALHOST, sock.port) as client:
            points = client.json_wn()
            assert points == {c: (i, "x" * 100) for i, c in enumerate(codenames)}
        with DateDataPullClient(LOCALHOST, "real data", port=sock.port) as reference:
            assert reference.get_all_fields()["c399"] == [399, "x" * 100]


def test_real_push_socket_store_last() -> None:
    with DataPushSocket("real push", host=LOCALHOST, port=0) as sock:
        with PushClient(LOCALHOST, sock.port) as client:
            assert client.name() == "real push"
            assert client.commands() is None
            assert "system_status" in client.status()
            assert client.json_wn({"a": 1, "b": "x"}) == Ack("{'a': 1, 'b': 'x'}")
            assert sock.last == {"a": 1, "b": "x"}
            assert isinstance(client.raw_wn({"c": [1.5, 2.5]}), Ack)
            assert sock.last == {"c": [1.5, 2.5]}
            assert sock.updated == {"a": 1, "b": "x", "c": [1.5, 2.5]}
            with pytest.raises(UnknownCommandError):
                client.request(Request("bogus", b"bogus", PushRequests.name().parse, True))
            with pytest.raises(RequestRefusedError):
                client.request(Request("bad", b"json_wn#[1]", PushRequests.name().parse, False))


def test_real_push_socket_refuses_sources() -> None:
    sock = DataPushSocket("guarded", host=LOCALHOST, port=0, allowed_sources=["10.0.0.0/8"])
    with sock, PushClient(LOCALHOST, sock.port) as client:
        with pytest.raises(RequestRefusedError):
            client.json_wn({"a": 1})
    assert sock.last is None


def echo_or_raise(data: dict[str, Any]) -> Any:
    if "raise" in data:
        raise ValueError(str(data["raise"]))
    return data.get("ret", data)


@pytest.mark.parametrize(
    ("return_format", "ret", "expected"),
    [
        ("json", {"x": [1, 2.5]}, RetJson({"x": [1, 2.5]})),
        ("raw", {"x": [1, 2], "y": 2.5}, RetRaw({"x": [1, 2], "y": 2.5})),
        ("raw", [[1.5, 2.5], [3.5, 4.5]], RetRaw([[1.5, 2.5], [3.5, 4.5]])),
        ("string", {"x": 1}, RetString("{'x': 1}")),
    ],
)
def test_real_push_socket_callback_direct(
    return_format: ReturnFormat, ret: Any, expected: RetJson | RetRaw | RetString
) -> None:
    sock = DataPushSocket(
        "direct",
        host=LOCALHOST,
        port=0,
        action="callback_direct",
        callback=echo_or_raise,
        return_format=return_format,
    )
    with sock, PushClient(LOCALHOST, sock.port, return_format=return_format) as client:
        assert client.json_wn({"ret": ret}) == expected
        with pytest.raises(RequestFailedError, match="boom"):
            client.json_wn({"raise": "boom"})


def test_real_sockets_with_async_clients(date_socket: Any) -> None:
    push = DataPushSocket("async push", host=LOCALHOST, port=0)

    async def main() -> None:
        async with AsyncPullClient(LOCALHOST, date_socket.port) as pull:
            assert await pull.name() == "real date"
            assert await pull.point_json("stale_one") == STALE
            got = await asyncio.gather(*(pull.point_raw("temperature") for _ in range(10)))
            assert got == [(NOW - 1.0, 21.5)] * 10
        async with AsyncPushClient(LOCALHOST, push.port) as client:
            assert await client.json_wn({"a": 2}) == Ack("{'a': 2}")

    with push:
        asyncio.run(main())
        assert push.last == {"a": 2}


def test_real_live_socket_to_live_server() -> None:
    with LiveServer() as live:
        sender = LiveSocket(
            "live",
            ["a", "b"],
            live_server=(LOCALHOST, live.port),
            no_internal_data_pull_socket=True,
        )
        sender.set_point("a", (1.0, 2.5))
        sender.set_batch({"a": (2.0, 3.5), "b": (2.0, 4.5)})
        sender.reset(["b"])
        wait_until(lambda: live.stats.updates == 3)
        host = socket.gethostname()
        assert live.updates() == [
            Update(host, {"a": [1.0, 2.5]}),
            Update(host, {"a": [2.0, 3.5], "b": [2.0, 4.5]}),
            Update(host, {"b": "RESET"}),
        ]
        assert live.latest == {host: {"a": [2.0, 3.5], "b": "RESET"}}
        assert live.stats.errors == 0
