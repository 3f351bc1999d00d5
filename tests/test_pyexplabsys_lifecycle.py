"""Lifecycle of the PyExpLabSys sockets on real UDP: restarts on one port, port=0, stop frees the
port, per-socket state, callbacks that raise or block, bounded queues, allowed sources, replies
of any size, UTF-8, LiveSocket.reset and set_point validation.

Nothing here asserts a duration: where order matters, threading.Events inside the callbacks
say what happened first. Timeouts only keep a broken server from hanging the test run.
"""

from __future__ import annotations

import errno
import gc
import json
import queue
import socket
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from daqwire.pyexplabsys import (
    CallBackThread,
    DataPullSocket,
    DataPushSocket,
    DateDataPullSocket,
    LiveSocket,
    PortStillReserved,
    socket_server_status,
)
from tests.conftest import vectors_root

HOST = "127.0.0.1"
RECV = 65536
TIMEOUT = 5.0  # the longest any test waits for a datagram or an event; never asserted


class Client:
    """A loopback UDP client: one request, one reply."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(TIMEOUT)

    def send(self, port: int, data: bytes) -> None:
        self.sock.sendto(data, (HOST, port))

    def recv(self) -> bytes:
        return self.sock.recv(RECV)

    def ask(self, port: int, data: bytes) -> bytes:
        self.send(port, data)
        return self.recv()

    def nothing_queued(self) -> bool:
        self.sock.setblocking(False)
        try:
            self.sock.recv(RECV)
        except BlockingIOError:
            return True
        finally:
            self.sock.settimeout(TIMEOUT)
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def client() -> Iterator[Client]:
    c = Client()
    yield c
    c.close()


@pytest.fixture
def stack() -> Iterator[list[Any]]:
    """Sockets to stop at the end of a test, whatever happened."""
    sockets: list[Any] = []
    yield sockets
    for s in sockets:
        s.stop()


def pull(stack: list[Any], kind: type[Any] = DateDataPullSocket, **kw: Any) -> Any:
    kw.setdefault("name", "pull")
    kw.setdefault("codenames", ["a", "b"])
    sock = kind(host=HOST, port=kw.pop("port", 0), **kw)
    stack.append(sock)
    return sock


def push(stack: list[Any], **kw: Any) -> DataPushSocket:
    kw.setdefault("name", "push")
    sock = DataPushSocket(host=HOST, port=kw.pop("port", 0), **kw)
    stack.append(sock)
    return sock


def plain_bind(port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((HOST, port))
    except OSError:
        s.close()
        raise
    return s


def make(kind: str, port: int) -> tuple[Any, bytes]:
    """A socket of ``kind`` on ``port`` and the reply it gives to ``name``."""
    if kind == "push":
        return DataPushSocket("round", host=HOST, port=port), b"RET#round"
    cls = DateDataPullSocket if kind == "date" else DataPullSocket
    return cls("round", ["a"], host=HOST, port=port), b"round"


# ---- restarts, port=0, stop --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["date", "data", "push"])
def test_restart_100_times_on_one_port(kind: str, client: Client) -> None:
    first, name = make(kind, 0)
    port = first.port
    with first:
        assert client.ask(port, b"name") == name
    for _ in range(100):
        sock, name = make(kind, port)
        try:
            assert sock.port == port
            sock.start()
            assert client.ask(port, b"name") == name
        finally:
            sock.stop()
        assert not sock.is_alive()


@pytest.mark.parametrize("kind", ["date", "data", "push"])
def test_port_zero_binds_a_real_port_and_answers(kind: str, client: Client) -> None:
    sock, name = make(kind, 0)
    try:
        assert isinstance(sock.port, int) and 0 < sock.port < 65536
        with pytest.raises(OSError) as taken:
            plain_bind(sock.port)  # .port is the port the socket really holds
        assert taken.value.errno == errno.EADDRINUSE
        sock.start()
        assert client.ask(sock.port, b"name") == name  # the reference never answered on port 0
    finally:
        sock.stop()


@pytest.mark.parametrize("kind", ["date", "data", "push"])
@pytest.mark.parametrize("started", [True, False])
def test_stop_frees_the_port_at_once_and_is_idempotent(
    kind: str, started: bool, client: Client
) -> None:
    sock, name = make(kind, 0)
    port = sock.port
    if started:
        sock.start()
        assert client.ask(port, b"name") == name
    sock.stop()
    plain_bind(port).close()  # right after stop, no waiting, no SO_REUSEADDR
    sock.stop()
    sock.stop()
    assert not sock.is_alive()
    assert str(port) not in socket_server_status()


@pytest.mark.parametrize("kind", ["date", "data", "push"])
def test_port_still_reserved_when_the_port_is_taken(kind: str, client: Client) -> None:
    holder = plain_bind(0)
    port = holder.getsockname()[1]
    try:
        with pytest.raises(PortStillReserved) as info:
            make(kind, port)
        assert isinstance(info.value, OSError)
        assert info.value.errno == errno.EADDRINUSE
        assert str(port) not in socket_server_status()  # nothing left behind
    finally:
        holder.close()
    sock, name = make(kind, port)  # the reference refused this port forever after
    with sock:
        assert client.ask(port, b"name") == name


def test_context_manager_starts_and_stops(client: Client) -> None:
    sock, name = make("date", 0)
    with sock as entered:
        assert entered is sock and sock.is_alive()
        assert client.ask(sock.port, b"name") == name
    assert not sock.is_alive()
    plain_bind(sock.port).close()


# ---- two sockets in one process ---------------------------------------------------------------


def test_two_sockets_keep_their_own_state(stack: list[Any], client: Client) -> None:
    one = pull(stack, name="one", codenames=["t", "p"])
    two = pull(stack, name="two", codenames=["t", "p"])
    one.set_point("t", (1.0, 10))
    two.set_point("t", (2.0, 20))
    two.set_point("p", (2.0, "two"))
    one.start()
    two.start()
    assert client.ask(one.port, b"t#raw") == b"1.0,10"
    assert client.ask(two.port, b"t#raw") == b"2.0,20"
    assert client.ask(one.port, b"raw_wn") == b"t:1.0,10;p:0.0,0.0"
    assert client.ask(two.port, b"raw_wn") == b"t:2.0,20;p:2.0,two"
    assert client.ask(one.port, b"name") == b"one"
    assert client.ask(two.port, b"name") == b"two"


def test_status_lists_every_running_socket(stack: list[Any], client: Client) -> None:
    one = pull(stack, name="one")
    two = pull(stack, DataPullSocket, name="two", check_activity=False)
    three = push(stack, name="three")
    for s in (one, two, three):
        s.start()
    want = {
        str(one.port): ("one", "date", "OK"),
        str(two.port): ("two", "data", "DISABLED"),
        str(three.port): ("three", "push", "DISABLED"),
    }

    def entries(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
        for entry in status.values():
            assert set(entry) == {"name", "type", "status", "since_last_activity"}
        return {
            port: (e["name"], e["type"], e["status"]) for port, e in status.items() if port in want
        }

    local = socket_server_status()
    assert entries(local) == want
    assert isinstance(local[str(one.port)]["since_last_activity"], float)
    assert local[str(two.port)]["since_last_activity"] is None
    for s in (one, two, three):
        reply = json.loads(client.ask(s.port, b"status"))
        assert set(reply) == {"system_status", "socket_server_status"}
        assert entries(reply["socket_server_status"]) == want
    two.stop()
    del want[str(two.port)]
    assert entries(socket_server_status()) == want
    for s in (one, three):
        assert entries(json.loads(client.ask(s.port, b"status"))["socket_server_status"]) == want


# ---- callbacks that raise --------------------------------------------------------------------


def test_callback_direct_that_raises_gets_excep_and_the_socket_keeps_serving(
    stack: list[Any], client: Client
) -> None:
    def callback(data: dict[str, Any]) -> Any:
        if "boom" in data:
            raise ValueError("the callback did not like it")
        return {"got": data}

    sock = push(stack, action="callback_direct", callback=callback)
    sock.start()
    assert client.ask(sock.port, b'json_wn#{"boom": 1}') == b"EXCEP#the callback did not like it"
    assert client.ask(sock.port, b'json_wn#{"a": 1}') == b'RET#{"got": {"a": 1}}'
    assert client.ask(sock.port, b"raw_wn#boom:int:1") == b"EXCEP#the callback did not like it"
    assert client.ask(sock.port, b"name") == b"RET#push"


def _lifecycle_extra_case(name: str) -> dict[str, Any]:
    path = vectors_root() / "pyexplabsys" / "lifecycle_extra.json"
    cases: list[dict[str, Any]] = json.loads(path.read_text("utf-8"))
    return next(c for c in cases if c["case"] == name)


def test_callback_async_survives_an_exception(stack: list[Any], client: Client) -> None:
    recorded = _lifecycle_extra_case("callback_async_exception")
    calls: list[dict[str, Any]] = []
    third = threading.Event()

    def callback(data: dict[str, Any]) -> None:
        calls.append(dict(data))
        if data.get("i") == 3:
            third.set()
        if "boom" in data:
            raise RuntimeError("boom")

    sock = push(stack, action="callback_async", callback=callback)
    sock.start()
    replies = [
        client.ask(sock.port, b'json_wn#{"i": 1}'),
        client.ask(sock.port, b'json_wn#{"boom": true}'),
        client.ask(sock.port, b'json_wn#{"i": 3}'),
    ]
    assert replies == [r.encode() for r in recorded["replies"]]
    assert third.wait(TIMEOUT), f"the third item never reached the callback: {calls}"
    # the reference's thread died at the exception and lost the third item
    assert recorded["callback_calls"] == [{"i": 1}, {"boom": True}]
    assert calls == [*recorded["callback_calls"], {"i": 3}]
    thread = sock.callback_thread
    assert isinstance(thread, CallBackThread) and thread.is_alive()
    assert thread.errors == 1 and thread.calls == 3
    assert isinstance(thread.last_error, RuntimeError)
    assert client.ask(sock.port, b"name") == b"RET#push"
    sock.stop()
    assert not thread.is_alive()


# ---- a slow callback does not block the other sockets ----------------------------------------


def test_slow_callback_does_not_block_another_socket(stack: list[Any]) -> None:
    entered = threading.Event()
    release = threading.Event()
    returned = threading.Event()

    def callback(data: dict[str, Any]) -> str:
        entered.set()
        release.wait(TIMEOUT)  # the slow part: it runs until the test lets it go
        returned.set()
        return "done"

    slow = push(stack, action="callback_direct", callback=callback)
    other = pull(stack, name="other")
    slow.start()
    other.start()
    pusher, asker = Client(), Client()
    try:
        pusher.send(slow.port, b'json_wn#{"a": 1}')
        assert entered.wait(TIMEOUT)
        assert asker.ask(other.port, b"name") == b"other"
        assert asker.ask(other.port, b"a#raw") == b"0.0,0.0"
        assert not returned.is_set()  # the pull replies came while the callback still ran
        release.set()
        assert pusher.recv() == b'RET#"done"'
        assert returned.is_set()
    finally:
        release.set()
        pusher.close()
        asker.close()


# ---- bounded queues ---------------------------------------------------------------------------


def test_max_queue_size_refuses_the_third_push(stack: list[Any], client: Client) -> None:
    sock = push(stack, action="enqueue", max_queue_size=2)
    sock.start()
    assert client.ask(sock.port, b'json_wn#{"a": 1}') == b"ACK#{'a': 1}"
    assert client.ask(sock.port, b'json_wn#{"b": 2}') == b"ACK#{'b': 2}"
    assert client.ask(sock.port, b'json_wn#{"c": 3}') == (
        b"ERROR#The queue is full (2 items); the data was not stored"
    )
    assert sock.last == {"b": 2}
    assert sock.updated == {"a": 1, "b": 2}
    q = sock.queue
    assert q is not None and q.qsize() == 2
    assert [q.get_nowait(), q.get_nowait()] == [{"a": 1}, {"b": 2}]
    assert client.ask(sock.port, b"raw_wn#d:int:4") == b"ACK#{'d': 4}"  # room again
    assert sock.last == {"d": 4}


def test_user_supplied_bounded_queue(stack: list[Any], client: Client) -> None:
    q: queue.Queue[Any] = queue.Queue(1)
    sock = push(stack, action="enqueue", queue=q)
    assert sock.queue is q
    sock.start()
    assert client.ask(sock.port, b'json_wn#{"a": 1}') == b"ACK#{'a': 1}"
    assert client.ask(sock.port, b'json_wn#{"b": 2}') == (
        b"ERROR#The queue is full (1 items); the data was not stored"
    )
    assert sock.last == {"a": 1} and sock.updated == {"a": 1}
    assert q.get_nowait() == {"a": 1} and q.empty()


# ---- allowed sources ----------------------------------------------------------------------------


def test_allowed_sources_refuse_other_addresses(stack: list[Any], client: Client) -> None:
    sock = push(stack, allowed_sources=["10.0.0.0/8"])
    sock.start()
    refused = b"ERROR#The source 127.0.0.1 is not allowed to use this socket"
    assert client.ask(sock.port, b'json_wn#{"a": 1}') == refused
    assert client.ask(sock.port, b"raw_wn#a:int:1") == refused
    assert client.ask(sock.port, b"name") == refused
    assert sock.last is None and sock.updated == {}


def test_allowed_sources_accept_listed_addresses(stack: list[Any], client: Client) -> None:
    sock = push(stack, allowed_sources=["127.0.0.1"])
    sock.start()
    assert client.ask(sock.port, b'json_wn#{"a": 1}') == b"ACK#{'a': 1}"
    assert sock.last == {"a": 1}


# ---- replies of any size -------------------------------------------------------------------------


def test_large_reply_arrives_whole(stack: list[Any], client: Client) -> None:
    names = [f"c{i:04d}" for i in range(2000)]
    sock = pull(stack, codenames=names)
    sock.start()
    want = json.dumps({n: [0.0, 0.0] for n in names}).encode()
    assert 30_000 < len(want) < 60_000
    assert client.ask(sock.port, b"json_wn") == want


def test_too_large_pull_reply_is_unknown_command(stack: list[Any], client: Client) -> None:
    names = [f"c{i:04d}" for i in range(3500)]
    sock = pull(stack, codenames=names)
    sock.start()
    assert len(json.dumps({n: [0.0, 0.0] for n in names})) > 65507
    assert client.ask(sock.port, b"json_wn") == b"UNKNOWN_COMMMAND"
    assert client.ask(sock.port, b"c0001#json") == b"[0.0, 0.0]"  # still serving
    assert client.ask(sock.port, b"name") == b"pull"


@pytest.mark.parametrize(("return_format", "size"), [("string", 4 + 70_000), ("json", 4 + 70_002)])
def test_too_large_push_reply_is_excep(
    stack: list[Any], client: Client, return_format: str, size: int
) -> None:
    sock = push(
        stack,
        action="callback_direct",
        callback=lambda data: "x" * 70_000,
        return_format=return_format,
    )
    sock.start()
    assert client.ask(sock.port, b'json_wn#{"a": 1}') == (
        f"EXCEP#The reply of {size} bytes is longer than the limit of 65507 bytes".encode()
    )
    assert client.ask(sock.port, b"name") == b"RET#push"


# ---- UTF-8 ---------------------------------------------------------------------------------------


def test_utf8_codenames_and_values_on_pull(stack: list[Any], client: Client) -> None:
    sock = pull(stack, name="caf\u00e9", codenames=["temp_\u00e9"])
    sock.set_point("temp_\u00e9", (1.5, "caf\u00e9"))
    sock.start()
    assert client.ask(sock.port, "temp_\u00e9#raw".encode()) == b"1.5,caf\xc3\xa9"
    assert client.ask(sock.port, "temp_\u00e9#json".encode()) == b'[1.5, "caf\\u00e9"]'
    assert client.ask(sock.port, b"raw_wn") == b"temp_\xc3\xa9:1.5,caf\xc3\xa9"
    assert client.ask(sock.port, b"json_wn") == b'{"temp_\\u00e9": [1.5, "caf\\u00e9"]}'
    assert client.ask(sock.port, b"codenames_raw") == b"temp_\xc3\xa9"
    assert client.ask(sock.port, b"name") == b"caf\xc3\xa9"
    assert client.ask(sock.port, "temp_\u00e9#raw".encode("latin-1")) == b"UNKNOWN_COMMMAND"
    assert client.ask(sock.port, b"\xff") == b"UNKNOWN_COMMMAND"


def test_utf8_pushes(stack: list[Any], client: Client) -> None:
    sock = push(stack)
    sock.start()
    ack = b"ACK#{'a': 'caf\xc3\xa9'}"
    assert client.ask(sock.port, 'json_wn#{"a": "caf\u00e9"}'.encode()) == ack
    assert client.ask(sock.port, b'json_wn#{"a": "caf\\u00e9"}') == ack
    assert client.ask(sock.port, "raw_wn#a:str:caf\u00e9".encode()) == ack
    assert sock.last == {"a": "caf\u00e9"}
    assert client.ask(sock.port, b'json_wn#{"a": "caf\xe9"}') == (
        b"ERROR#the datagram is not valid utf-8: invalid continuation byte (byte 0xe9)"
    )
    assert client.ask(sock.port, b"\xff") == (
        b"ERROR#the datagram is not valid utf-8: invalid start byte (byte 0xff)"
    )
    assert sock.last == {"a": "caf\u00e9"}


# ---- LiveSocket.reset ----------------------------------------------------------------------------


@pytest.fixture
def live_server() -> Iterator[socket.socket]:
    rx = plain_bind(0)
    rx.settimeout(TIMEOUT)
    yield rx
    rx.close()


def update(data: dict[str, Any]) -> bytes:
    return json.dumps({"host": socket.gethostname(), "data": data}).encode()


def test_live_socket_reset(stack: list[Any], client: Client, live_server: socket.socket) -> None:
    live = LiveSocket(
        "live",
        ["a", "b"],
        live_server=(HOST, live_server.getsockname()[1]),
        internal_data_pull_socket_port=0,
        host=HOST,
    )
    stack.append(live)
    live.start()
    internal = live.internal_pull_socket
    assert internal is not None and live.port == internal.port
    live.set_point("a", (1.0, 2.0))
    assert live_server.recv(RECV) == update({"a": [1.0, 2.0]})
    live.set_point("b", (3.0, 4.0))
    assert live_server.recv(RECV) == update({"b": [3.0, 4.0]})
    live.reset(["a"])
    assert live_server.recv(RECV) == update({"a": "RESET"})
    port = live.port
    assert client.ask(port, b"a#raw") == b"OLD_DATA"  # the reference served "R,E"
    assert client.ask(port, b"a#json") == b'"OLD_DATA"'
    assert client.ask(port, b"b#raw") == b"3.0,4.0"
    assert client.ask(port, b"raw_wn") == b"a:OLD_DATA;b:3.0,4.0"
    assert client.ask(port, b"json_wn") == b'{"a": "OLD_DATA", "b": [3.0, 4.0]}'
    live.set_point("a", (5.0, 6.0))
    assert live_server.recv(RECV) == update({"a": [5.0, 6.0]})
    assert client.ask(port, b"a#raw") == b"5.0,6.0"
    assert client.ask(port, b"json") == b"[[5.0, 6.0], [3.0, 4.0]]"


def test_live_socket_bad_batch_applies_and_sends_nothing(
    stack: list[Any], client: Client, live_server: socket.socket
) -> None:
    live = LiveSocket(
        "live",
        ["a", "b"],
        live_server=(HOST, live_server.getsockname()[1]),
        internal_data_pull_socket_port=0,
        host=HOST,
    )
    stack.append(live)
    live.start()
    with pytest.raises(ValueError):
        live.set_batch({"a": (1.0, 2.0), "b": (1.0, 2.0, 3.0)})
    with pytest.raises(RuntimeError, match="The codename: 'zz' is not registered"):
        live.set_batch({"a": (1.0, 2.0), "zz": (1.0, 2.0)})
    with pytest.raises(RuntimeError):
        live.reset(["a", "zz"])
    assert client.ask(live.port, b"raw_wn") == b"a:0.0,0.0;b:0.0,0.0"
    live.set_point("b", (7.0, 8.0))
    # the first datagram the live server gets is the good update: nothing went out before it
    assert live_server.recv(RECV) == update({"b": [7.0, 8.0]})


def test_live_socket_needs_a_live_server() -> None:
    with pytest.raises(ValueError, match="live_server"):
        LiveSocket("live", ["a"], internal_data_pull_socket_port=0, host=HOST)


# ---- set_point validation ------------------------------------------------------------------------

BAD_POINTS: list[tuple[str, Any, type[Exception]]] = [
    ("zz", (1.0, 2.0), ValueError),  # not registered
    ("a", (1.0,), ValueError),
    ("a", (1.0, 2.0, 3.0), ValueError),
    ("a", tuple("RESET"), ValueError),
    ("a", (1j, 2.0), TypeError),
    ("a", ([1], 2.0), TypeError),
    ("a", ({"k": 1}, 2.0), TypeError),
    ("a", (1.0, b"x"), TypeError),
    ("a", (1.0, object()), TypeError),
    ("a", ("x#y", 2.0), ValueError),
    ("a", (1.0, "x,y"), ValueError),
    ("a", (1.0, "x;y"), ValueError),
    ("a", (1.0, "x:y"), ValueError),
    ("a", (1.0, "x&y"), ValueError),
]


@pytest.mark.parametrize("kind", [DateDataPullSocket, DataPullSocket])
@pytest.mark.parametrize(("codename", "point", "error"), BAD_POINTS)
def test_set_point_refuses_and_stores_nothing(
    stack: list[Any], kind: type[Any], codename: str, point: Any, error: type[Exception]
) -> None:
    sock = pull(stack, kind, codenames=["a", "t"])
    sock.set_point("a", (1.0, 2.0))
    before = [sock.dispatcher.handle(r) for r in (b"raw_wn", b"json_wn", b"a#raw")]
    with pytest.raises(error):
        sock.set_point(codename, point)
    assert [sock.dispatcher.handle(r) for r in (b"raw_wn", b"json_wn", b"a#raw")] == before
    assert sock.dispatcher.handle(b"zz#raw") == b"UNKNOWN_COMMMAND"


@pytest.mark.parametrize("x", ["now", None, True, "1700000000"])
def test_date_socket_needs_a_number_as_x_when_it_has_a_timeout(
    stack: list[Any], client: Client, x: Any
) -> None:
    sock = pull(stack, codenames=["a", "t"], timeouts=[None, 10.0])
    sock.set_point("t", (1.0, 2.0))
    with pytest.raises(TypeError):
        sock.set_point("t", (x, 5))
    sock.set_point("a", (x, 5))  # no timeout: x is free
    sock.start()
    assert client.ask(sock.port, b"raw_wn") == f"a:{x},5;t:OLD_DATA".encode()


def test_date_socket_default_x_must_be_a_number_with_timeouts() -> None:
    with pytest.raises(TypeError):
        DateDataPullSocket("p", ["a"], host=HOST, port=0, default_x="now", timeouts=1.0)


@pytest.mark.parametrize("kind", ["date", "data", "push"])
def test_a_socket_that_never_started_is_not_listed_and_can_be_collected(kind: str) -> None:
    sock, _ = make(kind, 0)
    port = sock.port
    ref = weakref.ref(sock)
    try:
        listed = str(port) in socket_server_status()
        del sock
        gc.collect()
        collected = ref() is None
    finally:
        leftover = ref()
        if leftover is not None:
            leftover.stop()  # never leave a registered socket behind for other tests
    assert not listed, "listed in socket_server_status() without being started"
    assert collected, "the last reference was dropped but the socket was kept alive"
    plain_bind(port).close()
