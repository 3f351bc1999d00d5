"""daqwire.pyexplabsys against the PyExpLabSys golden transcripts, over real loopback UDP.

Vectors: ``<vectors root>/pyexplabsys`` (see its README.md). Every recorded request of every
request/reply file is replayed, in order, against our drop-in servers, which are set up like
the recording: same socket names (taken from the recorded reply to ``name``), the codenames and
timeouts of the README, ``host="127.0.0.1", port=0`` and a fake clock. The recorded
``setup.ops`` are applied before their entry (state is sequential within a file), and the clock
is set per setup step from the table ``CLOCK`` so that every OLD_DATA decision is the
recording's. Because the ops carry the concrete timestamps of the recording and ``now`` is set
to the recorded ``now``, entries whose ``varies`` is non-empty reproduce the recorded values
exactly and are compared byte for byte too (the values we set are the recorded ones).

Replies are compared as exact bytes (recorded ``reply`` re-encoded as latin-1) except:

* ``status``: shape check (``check_status_reply``);
* the entries listed in ``DEVIATIONS`` (file, index, request, expected reply, reason): the
  contract's deviations (an answer where the reference was silent, UTF-8, set_point validation,
  raw separators, LiveSocket.reset). Every recorded no-reply entry must be listed there; any
  other mismatch fails;
* ``OP_DEVIATIONS``: setup operations that daqwire refuses (set_point validation); the test
  asserts the exception type and that nothing was stored (``json_wn``/``raw_wn`` unchanged);
* ``EFFECT_DEVIATIONS``: read-back state (push ``last``/``updated``) that differs because a
  deviation above stored something the reference did not.

A per-file test collects every mismatch and reports them together.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from daqwire.pyexplabsys import (
    DataPullSocket,
    DataPushSocket,
    DateDataPullSocket,
    LiveSocket,
    socket_server_status,
)
from tests.pyexplabsys_replay import (
    REPLY_TIMEOUT,
    FakeClock,
    UdpClient,
    check_status_reply,
    load_entries,
    logging_callback,
    recorded_reply,
    recorded_socket_name,
    request_bytes,
    safe_eval,
    short,
    vector_callback,
    vectors_dir,
    wait_until,
)

UNKNOWN = b"UNKNOWN_COMMMAND"
RAW_EXCEP = b"EXCEP#Raw conversion failed with message:"

#: request/reply files, their socket kind, and the port each socket had in the recording
REPLAY_FILES: dict[str, int] = {
    "date_pull": 19000,
    "data_pull": 19010,
    "push_store_last": 18500,
    "push_enqueue": 18501,
    "push_callback_async": 18502,
    "push_direct_json": 18503,
    "push_direct_raw": 18504,
    "push_direct_string": 18505,
    "live": 18000,
}
#: ``setup.ops[].socket`` -> the file whose socket it addresses
OP_SOCKETS = {"date": "date_pull", "data": "data_pull", "store_last": "push_store_last"}

#: a "now" before every recorded now: points at x=0.0 / timestamp 0.0 are ancient
T0 = 1795265500.0
#: fake clock per file: entry index -> clock value set before that entry's setup ops
CLOCK: dict[str, dict[int, float]] = {
    "date_pull": {
        0: T0,  # nothing set yet: codenames with a timeout are OLD_DATA (x = 0.0)
        14: 1795265527.5868835,  # "set temperature=(now, 21.5) ... stale_one=(now-100, 3.0)"
        52: 1795265530.1741848,  # "stale_one set to (now, 7.0); queried immediately"
        54: 1795265530.1741848 + 1.2,  # "same state, 1.2 s later" (timeout 1.0 exceeded)
        137: 1795265537.9453247,  # "temperature reset to (now, 20.0)"
    },
    "data_pull": {
        0: T0,  # nothing set: timestamps 0.0, gauge OLD_DATA
        11: 1795265538.315783,  # "gauge=(9.7, 100) with timestamp=now (fresh)"
        22: 1795265533.5417185 + 5.0,  # "gauge ... with explicit timestamp now-5"
        33: 1795265539.0,  # "gauge=(15.3, 111) timestamp now" (default timestamp = clock)
        34: 1795265539.0 + 1.2,  # note: "1.2 s later -> OLD_DATA"
    },
    "live": {
        0: T0,
        2: 1795265555.514394,  # set_point_now: x = clock = the recorded time.time()
        8: 1795265555.7903302,  # set_batch_now: x = clock = the recorded time.time()
    },
}


@dataclass(frozen=True)
class Exact:
    """The reply must be exactly these bytes."""

    data: bytes

    def problem(self, reply: bytes) -> str | None:
        if reply == self.data:
            return None
        return f"expected {short(self.data)}, got {short(reply)}"


@dataclass(frozen=True)
class Prefix:
    """The reply must start with these bytes and carry a message after them."""

    data: bytes

    def problem(self, reply: bytes) -> str | None:
        if reply.startswith(self.data) and len(reply) > len(self.data):
            return None
        return f"expected {short(self.data)} + a message, got {short(reply)}"


@dataclass(frozen=True)
class Deviation:
    request: bytes
    expected: Exact | Prefix
    reason: str


def _u(text: str) -> Exact:
    return Exact(text.encode("utf-8"))


# set_point validation on the date socket: pressure keeps the last accepted value
# (1700000000.0, "on") (date_pull[102]), temperature its (now, 21.5) of date_pull[14]
_PRESSURE_ON = [
    (b"pressure#raw", _u("1700000000.0,on")),
    (b"pressure#json", _u('[1700000000.0, "on"]')),
    (
        b"raw_wn",
        _u("temperature:1795265527.5868835,21.5;pressure:1700000000.0,on;stale_one:OLD_DATA"),
    ),
    (
        b"json_wn",
        _u(
            '{"temperature": [1795265527.5868835, 21.5], "pressure": [1700000000.0, "on"], '
            '"stale_one": "OLD_DATA"}'
        ),
    ),
]


def _refused_pressure(first: int, reason: str) -> dict[tuple[str, int], Deviation]:
    return {
        ("date_pull", first + offset): Deviation(request, expected, reason)
        for offset, (request, expected) in enumerate(_PRESSURE_ON)
    }


_LIVE_RESET_JSON = _u('{"live_a": "OLD_DATA", "live_b": "OLD_DATA"}')
_LIVE_E_JSON = _u('{"live_a": [1700000002.0, "\\u00e9"], "live_b": "OLD_DATA"}')
_LIVE_E_RAW = _u("live_a:1700000002.0,\u00e9;live_b:OLD_DATA")
_R_RESET = "LiveSocket.reset: the internal pull socket answers OLD_DATA (reference: tuple('RESET'))"

#: (file, index) -> what daqwire replies instead of the recording, and why (the contract's
#: deviations). Every recorded no-reply entry is here.
DEVIATIONS: dict[tuple[str, int], Deviation] = {
    # ---- date_pull
    ("date_pull", 49): Deviation(
        b"\xff\xfe\x00raw", Exact(UNKNOWN), "non-UTF-8 request: pull answers UNKNOWN_COMMMAND"
    ),
    ("date_pull", 50): Deviation(
        b"temp\xc3\xa9#raw", Exact(UNKNOWN), "UTF-8 accepted: 'temp\u00e9' is no codename"
    ),
    ("date_pull", 51): Deviation(
        b"raw\x80", Exact(UNKNOWN), "non-UTF-8 request: pull answers UNKNOWN_COMMMAND"
    ),
    **_refused_pressure(106, "set_point refuses 'a,b;c:d' (BAD_CHARS, ValueError)"),
    **_refused_pressure(110, "set_point refuses a list element (TypeError)"),
    **_refused_pressure(114, "set_point refuses a dict element (TypeError)"),
    **_refused_pressure(118, "set_point refuses a complex element (TypeError)"),
    **_refused_pressure(122, "set_point refuses a 3-tuple (ValueError)"),
    **_refused_pressure(126, "set_point refuses a 1-tuple (ValueError)"),
    ("date_pull", 130): Deviation(
        b"pressure#raw", _u("1700000000.0,\u00e9"), "UTF-8 raw reply (reference: no reply)"
    ),
    ("date_pull", 132): Deviation(
        b"raw_wn",
        _u("temperature:1795265527.5868835,21.5;pressure:1700000000.0,\u00e9;stale_one:OLD_DATA"),
        "UTF-8 raw reply (reference: no reply)",
    ),
    ("date_pull", 134): Deviation(
        b"temperature#raw",
        _u("1795265527.5868835,21.5"),
        "set_point refuses x='abc' for a codename with a timeout (TypeError); temperature keeps "
        "(1795265527.5868835, 21.5), 3.8 s old (timeout 10)",
    ),
    ("date_pull", 135): Deviation(
        b"raw",
        _u("1795265527.5868835,21.5;1.0,2.0;OLD_DATA"),
        "as date_pull[134]",
    ),
    ("date_pull", 141): Deviation(
        b"json_wn",
        _u(
            '{"temperature": [1795265537.9453247, 20.0], "pressure": [1.0, 2.0], '
            '"stale_one": "OLD_DATA"}'
        ),
        "set_point refuses the unregistered codename 'ghost' (ValueError)",
    ),
    ("date_pull", 142): Deviation(b"ghost#raw", Exact(UNKNOWN), "as date_pull[141]"),
    ("date_pull", 143): Deviation(b"ghost#json", Exact(UNKNOWN), "as date_pull[141]"),
    # ---- data_pull
    ("data_pull", 58): Deviation(
        b"\xff\xfe\x00raw", Exact(UNKNOWN), "non-UTF-8 request: pull answers UNKNOWN_COMMMAND"
    ),
    ("data_pull", 59): Deviation(
        b"temp\xc3\xa9#raw", Exact(UNKNOWN), "UTF-8 accepted: 'temp\u00e9' is no codename"
    ),
    ("data_pull", 60): Deviation(
        b"raw\x80", Exact(UNKNOWN), "non-UTF-8 request: pull answers UNKNOWN_COMMMAND"
    ),
    ("data_pull", 61): Deviation(
        b"spectrum#raw",
        _u("12.5,3.25"),
        "set_point refuses the str 'RESET' (not 2 elements, ValueError); spectrum keeps "
        "(12.5, 3.25)",
    ),
    ("data_pull", 62): Deviation(b"spectrum#json", _u("[12.5, 3.25]"), "as data_pull[61]"),
    # ---- push_store_last
    ("push_store_last", 21): Deviation(
        b'json_wn#{"a": "\\u00e9"}', _u("ACK#{'a': '\u00e9'}"), "UTF-8 ACK (reference: no reply)"
    ),
    ("push_store_last", 22): Deviation(
        b'json_wn#{"a": "caf\xc3\xa9"}',
        _u("ACK#{'a': 'caf\u00e9'}"),
        "UTF-8 request accepted, stored and ACKed (reference: no reply, nothing stored)",
    ),
    ("push_store_last", 50): Deviation(
        b"raw_wn#a:str:caf\xc3\xa9",
        _u("ACK#{'a': 'caf\u00e9'}"),
        "UTF-8 request accepted, stored and ACKed (reference: no reply, nothing stored)",
    ),
    ("push_store_last", 54): Deviation(
        b"\xff\xfe", Prefix(b"ERROR#"), "non-UTF-8 request: push answers ERROR#<message>"
    ),
    ("push_store_last", 56): Deviation(
        b'json_wn#{"pad": "' + b"x" * 9000 + b'"}',
        _u("ACK#{'pad': '" + "x" * 9000 + "'}"),
        "requests are read whole (the reference cut them at 8192 bytes: a JSON error)",
    ),
    # ---- push_callback_async
    ("push_callback_async", 24): Deviation(
        b'json_wn#{"a": "\\u00e9"}', _u("ACK#{'a': '\u00e9'}"), "UTF-8 ACK (reference: no reply)"
    ),
    ("push_callback_async", 25): Deviation(
        b'json_wn#{"a": "caf\xc3\xa9"}',
        _u("ACK#{'a': 'caf\u00e9'}"),
        "UTF-8 request accepted and ACKed (reference: no reply)",
    ),
    # ---- push_direct_json
    ("push_direct_json", 33): Deviation(
        b'json_wn#{"raise": "caf\\u00e9"}',
        _u("EXCEP#caf\u00e9"),
        "UTF-8 exception message (reference: no reply)",
    ),
    # ---- push_direct_raw
    ("push_direct_raw", 26): Deviation(
        b'json_wn#{"return": {"a": "x;y:z,w&v"}}',
        Prefix(RAW_EXCEP),
        "raw return format refuses separators in str values",
    ),
    ("push_direct_raw", 33): Deviation(
        b'json_wn#{"raise": "caf\\u00e9"}',
        _u("EXCEP#caf\u00e9"),
        "UTF-8 exception message (reference: no reply)",
    ),
    ("push_direct_raw", 42): Deviation(
        b'json_wn#{"a": "\\u00e9"}', _u("RET#a:str:\u00e9"), "UTF-8 RET (reference: no reply)"
    ),
    # ---- push_direct_string
    ("push_direct_string", 30): Deviation(
        b'json_wn#{"return": "\\u00e9"}', _u("RET#\u00e9"), "UTF-8 RET (reference: no reply)"
    ),
    ("push_direct_string", 33): Deviation(
        b'json_wn#{"raise": "caf\\u00e9"}',
        _u("EXCEP#caf\u00e9"),
        "UTF-8 exception message (reference: no reply)",
    ),
    ("push_direct_string", 42): Deviation(
        b'json_wn#{"a": "\\u00e9"}', _u("RET#{'a': '\u00e9'}"), "UTF-8 RET (reference: no reply)"
    ),
    # ---- live
    ("live", 10): Deviation(b"json_wn", _LIVE_RESET_JSON, _R_RESET),
    ("live", 11): Deviation(b"raw_wn", _u("live_a:OLD_DATA;live_b:OLD_DATA"), _R_RESET),
    ("live", 12): Deviation(b"json_wn", _LIVE_E_JSON, f"{_R_RESET} (live_b)"),
    ("live", 13): Deviation(b"raw_wn", _LIVE_E_RAW, "UTF-8 raw reply; live_b reset"),
    ("live", 14): Deviation(b"json_wn", _LIVE_E_JSON, "as live[12]"),
    ("live", 15): Deviation(b"raw_wn", _LIVE_E_RAW, "as live[13]"),
}

#: (file, index, op index) -> the exception daqwire's set_point raises for that recorded op
OP_DEVIATIONS: dict[tuple[str, int, int], type[Exception]] = {
    ("date_pull", 106, 0): ValueError,  # (1700000000.0, "a,b;c:d"): BAD_CHARS in a str
    ("date_pull", 110, 0): TypeError,  # (1700000000.0, [1, 2])
    ("date_pull", 114, 0): TypeError,  # (1700000000.0, {"k": 1})
    ("date_pull", 118, 0): TypeError,  # (1700000000.0, 1+2j)
    ("date_pull", 122, 0): ValueError,  # 3-tuple
    ("date_pull", 126, 0): ValueError,  # 1-tuple
    ("date_pull", 134, 1): TypeError,  # temperature (timeout 10) with x = "abc"
    ("date_pull", 137, 2): ValueError,  # unregistered codename "ghost"
    ("data_pull", 61, 0): TypeError,  # the str "RESET": 5 elements, not 2
}

_LAST_1 = "{'a': 1, 'b': 2.5, 'c': 'x', 'd': False}"
#: (file, first index, last index, effect field, recorded substring, daqwire's substring):
#: read-back state that differs because a UTF-8 push was stored (push_store_last[22], [50])
EFFECT_DEVIATIONS: list[tuple[str, int, int, str, str, str]] = [
    ("push_store_last", 22, 26, "last_repr", "{'a': '\u00e9'}", "{'a': 'caf\u00e9'}"),
    ("push_store_last", 22, 40, "updated_repr", "'a': '\u00e9'", "'a': 'caf\u00e9'"),
    ("push_store_last", 50, 54, "last_repr", _LAST_1, "{'a': 'caf\u00e9'}"),
    ("push_store_last", 50, 54, "updated_repr", "'a': 1, 'b'", "'a': 'caf\u00e9', 'b'"),
]


def expected_effect(stem: str, index: int, effect: dict[str, Any]) -> dict[str, Any]:
    """The recorded effect with the EFFECT_DEVIATIONS substitutions applied."""
    result = dict(effect)
    for file, first, last, key, old, new in EFFECT_DEVIATIONS:
        if file == stem and first <= index <= last:
            assert old in result[key], f"{stem}[{index}].effect.{key}: {old!r} not recorded"
            result[key] = result[key].replace(old, new)
    return result


def pull_snapshot(client: UdpClient, port: int) -> tuple[bytes, bytes]:
    """All values of a pull socket, to show that a refused set_point stored nothing."""
    return client.ask(port, b"json_wn"), client.ask(port, b"raw_wn")


def _expected_datagram(recorded: str) -> bytes:
    """A recorded live-server datagram with this host's name (recorded on host ``vm``)."""
    prefix = '{"host": "vm", '
    assert recorded.startswith(prefix), recorded
    return ('{"host": ' + json.dumps(socket.gethostname()) + ", " + recorded[len(prefix) :]).encode(
        "utf-8"
    )


@dataclass
class Servers:
    """Every socket of the recording, started in this process (so ``status`` lists them all)."""

    clock: FakeClock
    date: DateDataPullSocket
    data: DataPullSocket
    push: dict[str, DataPushSocket]
    live: LiveSocket
    live_server: socket.socket
    callback_log: list[str] = field(default_factory=list)

    def port(self, stem: str) -> int:
        if stem == "date_pull":
            return int(self.date.port)
        if stem == "data_pull":
            return int(self.data.port)
        if stem == "live":
            return int(self.live.internal_pull_socket.port)
        return int(self.push[stem].port)

    def status_map(self) -> dict[str, str]:
        """Our port (str) -> the recorded port (str) of the same socket."""
        return {str(self.port(stem)): str(port) for stem, port in REPLAY_FILES.items()}

    def pull(self, stem: str) -> DateDataPullSocket | DataPullSocket:
        return self.date if stem == "date_pull" else self.data


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    clock = FakeClock(T0)
    log: list[str] = []
    local: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "clock": clock}
    with contextlib.ExitStack() as stack:
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stack.callback(receiver.close)
        receiver.bind(("127.0.0.1", 0))
        date = DateDataPullSocket(
            recorded_socket_name("date_pull"),
            ["temperature", "pressure", "stale_one"],
            timeouts=[10.0, None, 1.0],
            **local,
        )
        stack.callback(date.stop)
        data = DataPullSocket(
            recorded_socket_name("data_pull"), ["spectrum", "gauge"], timeouts=[None, 1.0], **local
        )
        stack.callback(data.stop)
        push_kwargs: dict[str, dict[str, Any]] = {
            "push_store_last": {"action": "store_last"},
            "push_enqueue": {"action": "enqueue"},
            "push_callback_async": {
                "action": "callback_async",
                "callback": logging_callback(log),
            },
            "push_direct_json": {
                "action": "callback_direct",
                "callback": vector_callback,
                "return_format": "json",
            },
            "push_direct_raw": {
                "action": "callback_direct",
                "callback": vector_callback,
                "return_format": "raw",
            },
            "push_direct_string": {
                "action": "callback_direct",
                "callback": vector_callback,
                "return_format": "string",
            },
        }
        push: dict[str, DataPushSocket] = {}
        for stem, kwargs in push_kwargs.items():
            push[stem] = DataPushSocket(recorded_socket_name(stem), **kwargs, **local)
            stack.callback(push[stem].stop)
        live = LiveSocket(
            recorded_socket_name("live"),
            ["live_a", "live_b"],
            live_server=receiver.getsockname(),
            internal_data_pull_socket_port=0,
            host="127.0.0.1",
            clock=clock,
        )
        stack.callback(live.stop)
        for sock in (date, data, *push.values(), live):
            sock.start()
        yield Servers(clock, date, data, push, live, receiver, log)


@pytest.fixture
def client() -> Iterator[UdpClient]:
    udp = UdpClient()
    yield udp
    udp.close()


def _drain_datagrams(receiver: socket.socket, count: int) -> tuple[list[bytes], list[bytes]]:
    """``count`` datagrams (waiting up to REPLY_TIMEOUT each), then whatever else is queued."""
    got: list[bytes] = []
    receiver.settimeout(REPLY_TIMEOUT)
    with contextlib.suppress(TimeoutError):
        for _ in range(count):
            got.append(receiver.recv(65536))
    extra: list[bytes] = []
    receiver.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            extra.append(receiver.recv(65536))
    return got, extra


def _apply_op(
    stem: str,
    index: int,
    op_index: int,
    op_record: dict[str, Any],
    servers: Servers,
    client: UdpClient,
) -> list[str]:
    where = f"{stem}[{index}].setup.ops[{op_index}]"
    op, result = op_record["op"], op_record["result"]
    kind = op["op"]
    if kind == "ping":
        return []
    if kind == "reset_push":
        sock = servers.push[OP_SOCKETS[op["socket"]]]
        sock.clear_updated()
        sock.set_last_to_none()
        return []
    if kind == "callback_log":
        problems = []
        if servers.callback_log != result["log"]:
            problems.append(f"{where}: callback log {servers.callback_log}, recorded {result}")
        if op.get("clear"):
            servers.callback_log.clear()
        return problems
    if kind == "live_received":
        want = [_expected_datagram(text) for text in result["received"]]
        got, extra = _drain_datagrams(servers.live_server, len(want))
        if got + extra != want:
            return [f"{where}: live server received {got + extra}, expected {want}"]
        return []
    if kind == "live":
        target: Any = servers.live
        call = getattr(target, op["method"])
        args = op["args"]
        kwargs: dict[str, Any] = {}
    elif kind in ("set_point", "set_point_raw_python"):
        pull_stem = OP_SOCKETS[op["socket"]]
        target = servers.pull(pull_stem)
        call = target.set_point
        value = tuple(op["point"]) if kind == "set_point" else safe_eval(op["expr"])
        args = [op["codename"], value]
        kwargs = {"timestamp": op["timestamp"]} if "timestamp" in op else {}
    else:
        return [f"{where}: unknown op {kind!r}"]

    refused = OP_DEVIATIONS.get((stem, index, op_index))
    if refused is not None:
        port = servers.port(stem)
        before = pull_snapshot(client, port)
        try:
            call(*args, **kwargs)
        except refused:
            after = pull_snapshot(client, port)
            if after != before:
                return [f"{where}: refused set_point changed the state: {before} -> {after}"]
            return []
        except Exception as exc:
            return [f"{where}: expected {refused.__name__}, got {type(exc).__name__}: {exc}"]
        return [f"{where}: expected {refused.__name__} from set_point{tuple(args)!r}, no error"]
    try:
        call(*args, **kwargs)
    except Exception as exc:
        outcome = f"{type(exc).__name__}: {exc}"
        if result["ok"]:
            return [f"{where}: {op} raised {outcome}"]
        if outcome != result["error"]:
            return [f"{where}: raised {outcome!r}, recorded {result['error']!r}"]
        return []
    if not result["ok"]:
        return [f"{where}: expected {result['error']!r}, no error"]
    return []


def _check_effect_before_request(
    stem: str, index: int, entry: dict[str, Any], servers: Servers
) -> list[str]:
    """live: the datagrams sent to the live server by this entry's setup ops."""
    effect = entry.get("effect") or {}
    if "live_server_received" not in effect:
        return []
    want = [_expected_datagram(text) for text in effect["live_server_received"]]
    got, extra = _drain_datagrams(servers.live_server, len(want))
    if got + extra != want:
        return [f"{stem}[{index}].effect: live server received {got + extra}, expected {want}"]
    return []


def _check_effect_after_request(
    stem: str, index: int, entry: dict[str, Any], servers: Servers
) -> list[str]:
    effect = entry.get("effect") or {}
    where = f"{stem}[{index}].effect"
    problems: list[str] = []
    if "last_repr" in effect:
        want = expected_effect(stem, index, effect)
        sock = servers.push[stem]
        if repr(sock.last) != want["last_repr"]:
            problems.append(f"{where}: last {repr(sock.last)!r}, expected {want['last_repr']!r}")
        if repr(sock.updated) != want["updated_repr"]:
            problems.append(
                f"{where}: updated {repr(sock.updated)!r}, expected {want['updated_repr']!r}"
            )
    if "queue_items_repr_after" in effect:
        items: list[str] = []
        with contextlib.suppress(queue.Empty):
            while True:
                items.append(repr(servers.push[stem].queue.get_nowait()))
        if items != effect["queue_items_repr_after"]:
            problems.append(f"{where}: queue {items}, expected {effect['queue_items_repr_after']}")
    if "callback_calls_repr" in effect:
        want_calls = effect["callback_calls_repr"]
        wait_until(lambda: len(servers.callback_log) >= len(want_calls))
        if servers.callback_log != want_calls:
            problems.append(
                f"{where}: callback calls {servers.callback_log}, expected {want_calls}"
            )
    return problems


def _check_reply(
    stem: str, index: int, entry: dict[str, Any], reply: bytes, servers: Servers
) -> list[str]:
    where = f"{stem}[{index}] {short(request_bytes(entry), 80)}"
    deviation = DEVIATIONS.get((stem, index))
    if deviation is not None:
        problem = deviation.expected.problem(reply)
        return [] if problem is None else [f"{where} ({deviation.reason}): {problem}"]
    if entry["request"] == "status":
        problems = check_status_reply(
            reply, entry["reply"], servers.status_map(), socket_server_status()
        )
        return [f"{where}: {problem}" for problem in problems]
    expected = recorded_reply(entry)
    if expected is None:
        return [f"{where}: recorded no reply and not in DEVIATIONS; got {short(reply)}"]
    if reply != expected:
        return [f"{where}: expected {short(expected)}, got {short(reply)}"]
    return []


def replay(stem: str, servers: Servers, client: UdpClient) -> tuple[list[str], list[bytes]]:
    """Replay a file; (problems, our replies in order)."""
    problems: list[str] = []
    replies: list[bytes] = []
    port = servers.port(stem)
    clock = CLOCK.get(stem, {})
    for index, entry in enumerate(load_entries(stem)):
        if index in clock:
            servers.clock.set(clock[index])
        for op_index, op_record in enumerate(entry["setup"]["ops"]):
            problems += _apply_op(stem, index, op_index, op_record, servers, client)
        problems += _check_effect_before_request(stem, index, entry, servers)
        try:
            reply = client.ask(port, request_bytes(entry))
        except AssertionError as exc:
            problems.append(f"{stem}[{index}] {short(request_bytes(entry), 80)}: {exc}")
            replies.append(b"")
            continue
        replies.append(reply)
        problems += _check_reply(stem, index, entry, reply, servers)
        problems += _check_effect_after_request(stem, index, entry, servers)
    return problems, replies


def _fail_on(problems: list[str]) -> None:
    if problems:
        pytest.fail(f"{len(problems)} mismatch(es):\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def track() -> Iterator[Any]:
    """``track(sock)`` -> sock; every tracked socket is stopped at teardown (stop is idempotent)."""
    tracked: list[Any] = []

    def register(sock: Any) -> Any:
        tracked.append(sock)
        return sock

    yield register
    for sock in reversed(tracked):
        sock.stop()


# ------------------------------------------------------------------------------------------
# the deviation tables themselves


def test_deviation_tables_match_the_vectors() -> None:
    """Every table row names a real entry, its request, and really differs from the recording."""
    for (stem, index), deviation in DEVIATIONS.items():
        entries = load_entries(stem)
        assert index < len(entries), (stem, index)
        entry = entries[index]
        assert request_bytes(entry) == deviation.request, (stem, index, entry["request"])
        recorded = recorded_reply(entry)
        if recorded is not None:
            assert deviation.expected.problem(recorded) is not None, (
                f"{stem}[{index}] is listed as a deviation but the recording already satisfies it"
            )
    for stem in REPLAY_FILES:
        for index, entry in enumerate(load_entries(stem)):
            if entry["no_reply"]:
                assert (stem, index) in DEVIATIONS, f"{stem}[{index}]: no-reply entry not listed"
    for stem, index, op_index in OP_DEVIATIONS:
        op = load_entries(stem)[index]["setup"]["ops"][op_index]
        assert op["op"]["op"] in ("set_point", "set_point_raw_python"), (stem, index, op)
        assert op["result"]["ok"], (stem, index, op)
    assert set(CLOCK) <= set(REPLAY_FILES)


def test_every_vector_file_is_covered() -> None:
    case_files = {"lifecycle_and_edges", "lifecycle_extra", "py2_vs_py3"}
    stems = {path.stem for path in vectors_dir().glob("*.json")}
    assert stems == set(REPLAY_FILES) | case_files


# ------------------------------------------------------------------------------------------
# replay of every request/reply file


@pytest.mark.parametrize("stem", list(REPLAY_FILES))
def test_replay(stem: str, servers: Servers, client: UdpClient) -> None:
    problems, replies = replay(stem, servers, client)
    if stem == "push_callback_async":
        problems += _callback_thread_survived(servers, replies)
    _fail_on(problems)


def _callback_thread_survived(servers: Servers, replies: list[bytes]) -> list[str]:
    """After push_callback_async[9] raised in the callback, every later ACKed push still ran."""
    entries = load_entries("push_callback_async")
    cleared = [
        index
        for index, entry in enumerate(entries)
        if any(op["op"]["op"] == "callback_log" for op in entry["setup"]["ops"])
    ]
    acked = [
        reply[len(b"ACK#") :].decode("utf-8")
        for reply in replies[cleared[-1] :]
        if reply.startswith(b"ACK#")
    ]
    wait_until(lambda: len(servers.callback_log) >= len(acked))
    if servers.callback_log != acked:
        return [
            "push_callback_async: the callback thread did not call back every ACKed push in "
            f"order: calls {servers.callback_log}, ACKed {acked}"
        ]
    return []


# ------------------------------------------------------------------------------------------
# py2_vs_py3.json: our replies are the Python 3 ones (shortest-repr floats, no u'' prefixes)

#: py2_vs_py3 entries where the Python 3 reference was silent -> daqwire's UTF-8 reply
PY3_DEVIATIONS: dict[int, Deviation] = {
    14: Deviation(
        b'json_wn#{"a": "\\u00e9"}', _u("ACK#{'a': '\u00e9'}"), "UTF-8 ACK (py3: no reply)"
    ),
    25: Deviation(b'json_wn#{"return": "\\u00e9"}', _u("RET#\u00e9"), "UTF-8 RET (py3: no reply)"),
}


def _local(clock: FakeClock | None = None) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": 0, "clock": clock or FakeClock(T0)}


def _py23_name(socket_kind: str) -> str:
    for entry in load_entries("py2_vs_py3"):
        if entry["socket"] == socket_kind and entry["request"] == "name":
            return str(entry["reply_py3"]).removeprefix("RET#")
    return f"py2/3 {socket_kind}"


def test_py2_vs_py3_replies_are_the_python3_ones(client: UdpClient, track: Any) -> None:
    entries = load_entries("py2_vs_py3")
    assert {i for i, e in enumerate(entries) if e["reply_py3"] is None} == set(PY3_DEVIATIONS)
    local = _local()
    date = track(DateDataPullSocket(_py23_name("date_pull"), ["a", "b", "c"], **local))
    # the setup of every date_pull entry: "a=(1414154338.1702409, 47.0),
    # b=(1700000000.123456, 1/3), c=(0.1, 12345678901234.5); no timeouts"
    date.set_point("a", (1414154338.1702409, 47.0))
    date.set_point("b", (1700000000.123456, 1 / 3))
    date.set_point("c", (0.1, 12345678901234.5))
    direct = {"action": "callback_direct", "callback": vector_callback}
    sockets: dict[str, Any] = {
        "date_pull": date,
        "push_store_last": track(DataPushSocket(_py23_name("push_store_last"), **local)),
        "push_direct_raw": track(
            DataPushSocket(_py23_name("push_direct_raw"), return_format="raw", **direct, **local)
        ),
        "push_direct_string": track(
            DataPushSocket(
                _py23_name("push_direct_string"), return_format="string", **direct, **local
            )
        ),
    }
    for sock in sockets.values():
        sock.start()
    problems = []
    for index, entry in enumerate(entries):
        sent = str(entry["request"]).encode("latin-1")
        reply = client.ask(sockets[entry["socket"]].port, sent)
        if index in PY3_DEVIATIONS:
            deviation = PY3_DEVIATIONS[index]
            assert deviation.request == sent
            problem = deviation.expected.problem(reply)
        else:
            problem = Exact(str(entry["reply_py3"]).encode("latin-1")).problem(reply)
        if problem is not None:
            problems.append(f"py2_vs_py3[{index}] {short(sent, 80)}: {problem}")
    _fail_on(problems)


# ------------------------------------------------------------------------------------------
# lifecycle_and_edges.json / lifecycle_extra.json: the cases with reply-visible behaviour


def _case(stem: str, name: str) -> list[dict[str, Any]]:
    cases = [case for case in load_entries(stem) if case["case"] == name]
    assert cases, f"{stem}.json has no case {name!r}"
    return cases


def _codename_cases() -> list[Any]:
    cases = [
        pytest.param(case["codename"], case["observed"], id=repr(case["codename"]))
        for case in _case("lifecycle_and_edges", "codename_validation")
    ]
    leak = _case("lifecycle_and_edges", "pull_failed_init_leaks_DATA_entry")[0]
    # that case's codename contained '#' (the recorded message names it)
    cases.append(pytest.param("a#b", leak["first_attempt"], id="'a#b'"))
    return cases


PULL_KINDS = [
    pytest.param(DateDataPullSocket, id="date"),
    pytest.param(DataPullSocket, id="data"),
]


@pytest.mark.parametrize("kind", PULL_KINDS)
def test_empty_codenames(kind: type, client: UdpClient, track: Any) -> None:
    replies = _case("lifecycle_and_edges", "empty_codenames")[0]["replies"]
    sock = track(kind("empty", [], **_local()))
    sock.start()
    for request, recorded in replies.items():
        assert client.ask(sock.port, request.encode()) == recorded.encode(), request


@pytest.mark.parametrize("kind", PULL_KINDS)
@pytest.mark.parametrize(("codename", "observed"), _codename_cases())
def test_codename_validation(
    kind: type, codename: str, observed: str, client: UdpClient, track: Any
) -> None:
    if observed == "accepted":
        sock = track(kind("validation", [codename], **_local()))
        sock.start()
        assert client.ask(sock.port, b"codenames_json") == json.dumps([codename]).encode()
        return
    exc_name, message = observed.split(": ", 1)
    assert exc_name == "ValueError"
    with pytest.raises(ValueError) as info:
        track(kind("validation", [codename], **_local()))
    assert str(info.value) == message


@pytest.mark.parametrize("kind", PULL_KINDS)
def test_codename_duplicate(kind: type, track: Any) -> None:
    observed = _case("lifecycle_and_edges", "codename_duplicate")[0]["observed"]
    with pytest.raises(ValueError) as info:
        track(kind("duplicate", ["x", "y", "x"], **_local()))
    assert f"ValueError: {info.value}" == observed


@pytest.mark.parametrize("kind", PULL_KINDS)
def test_timeouts_length_mismatch(kind: type, track: Any) -> None:
    observed = _case("lifecycle_and_edges", "timeouts_length_mismatch")[0]["observed"]
    with pytest.raises(ValueError) as info:
        track(kind("timeouts", ["a", "b"], timeouts=[1.0], **_local()))
    assert f"ValueError: {info.value}" == observed


@pytest.mark.parametrize(
    ("kind", "name_reply"),
    [("date", b"port zero date"), ("data", b"port zero data"), ("push", b"RET#port zero push")],
    ids=["date", "data", "push"],
)
def test_port_zero_works_and_reports_the_bound_port(
    kind: str, name_reply: bytes, client: UdpClient, track: Any
) -> None:
    """Reference: port=0 bound an ephemeral port but never answered (lifecycle_extra port_zero)."""
    assert _case("lifecycle_extra", "port_zero")[0]["reply_name"] is None
    name = name_reply.decode().removeprefix("RET#")
    if kind == "push":
        sock = track(DataPushSocket(name, **_local()))
    else:
        sock = track(
            {"date": DateDataPullSocket, "data": DataPullSocket}[kind](name, ["a"], **_local())
        )
    assert isinstance(sock.port, int) and sock.port > 0
    sock.start()
    assert client.ask(sock.port, b"name") == name_reply
    assert str(sock.port) in socket_server_status()
    entry = json.loads(client.ask(sock.port, b"status"))["socket_server_status"][str(sock.port)]
    assert (entry["name"], entry["type"]) == (name, kind)
    sock.stop()
    assert str(sock.port) not in socket_server_status()


def test_stop_frees_the_port_at_once_and_is_idempotent(client: UdpClient, track: Any) -> None:
    """Reference: stop() kept the port bound (case pull_restart_same_port_after_stop)."""
    case = _case("lifecycle_and_edges", "pull_restart_same_port_after_stop")[0]
    assert case["observed"].startswith("PortStillReserved")
    first = track(DateDataPullSocket("restart", ["a"], **_local()))
    port = first.port
    first.start()
    assert client.ask(port, b"name") == b"restart"
    first.stop()
    first.stop()
    second = track(
        DateDataPullSocket("restart again", ["a"], host="127.0.0.1", port=port, clock=FakeClock(T0))
    )
    second.start()
    assert client.ask(port, b"name") == b"restart again"


def test_callback_async_exception_keeps_the_thread_alive(client: UdpClient, track: Any) -> None:
    """Reference: the first exception killed CallBackThread; item 3 stayed in the queue."""
    case = _case("lifecycle_extra", "callback_async_exception")[0]
    calls: list[dict[str, Any]] = []

    def callback(data: dict[str, Any]) -> None:
        calls.append(dict(data))
        if "boom" in data:
            raise RuntimeError("boom")

    sock = track(
        DataPushSocket("async boom", action="callback_async", callback=callback, **_local())
    )
    sock.start()
    sent = [b'json_wn#{"i": 1}', b'json_wn#{"boom": true}', b'json_wn#{"i": 3}']
    replies = [client.ask(sock.port, request) for request in sent]
    assert replies == [reply.encode() for reply in case["replies"]]
    assert wait_until(lambda: len(calls) >= 3), calls
    assert calls == [*case["callback_calls"], {"i": 3}]
    assert wait_until(lambda: sock.queue.qsize() == 0)


def test_reply_larger_than_udp_max_is_an_error_reply(client: UdpClient, track: Any) -> None:
    """Reference: sendto raised EMSGSIZE -> no reply (reply_larger_than_udp_max)."""
    assert _case("lifecycle_and_edges", "reply_larger_than_udp_max")[0]["reply"] is None
    pull = track(DataPullSocket("big", ["a"], **_local()))
    pull.set_point("a", (1.0, "x" * 70000))
    push = track(
        DataPushSocket(
            "big push",
            action="callback_direct",
            callback=lambda data: "x" * 70000,
            return_format="string",
            **_local(),
        )
    )
    pull.start()
    push.start()
    for request in (b"a#raw", b"a#json", b"raw", b"json", b"raw_wn", b"json_wn"):
        assert client.ask(pull.port, request) == UNKNOWN, request
    assert client.ask(pull.port, b"name") == b"big"
    reply = client.ask(push.port, b'json_wn#{"a": 1}')
    # the contract names no message for this one: an error datagram (EXCEP#: the return value
    # could not be sent; ERROR# would be an error reply too)
    assert reply.startswith((b"EXCEP#", b"ERROR#")) and len(reply) < 65508, short(reply)
    assert client.ask(push.port, b"name") == b"RET#big push"


def test_non_ascii_name_and_codename_are_sent_as_utf8(client: UdpClient, track: Any) -> None:
    """Reference: name / codenames_raw could not be ASCII-encoded -> no reply."""
    replies = _case("lifecycle_and_edges", "non_ascii_name_and_codename")[0]["replies"]
    name = "caf\u00e9 socket"
    sock = track(DateDataPullSocket(name, ["my value", "temp_\u00e9"], **_local()))
    sock.set_point("my value", (1.0, 2.0))
    sock.set_point("temp_\u00e9", (1.0, 3.0))
    utf8 = {"name": name, "codenames_raw": "my value,temp_\u00e9"}
    assert {key for key, value in replies.items() if value is None} == set(utf8)
    sock.start()
    for request, recorded in replies.items():
        expected = (recorded if recorded is not None else utf8[request]).encode("utf-8")
        assert client.ask(sock.port, request.encode()) == expected, request


def test_activity_status_follows_the_clock(track: Any) -> None:
    """set_point (poke_on_set) and poke() count as activity; the clock decides OK/INACTIVE."""
    case = _case("lifecycle_and_edges", "activity_status")[0]
    clock = FakeClock(T0)
    pull = track(DateDataPullSocket("activity", ["a"], **_local(clock)))
    push = track(DataPushSocket("push activity", check_activity=True, **_local(clock)))
    quiet = track(DataPushSocket("quiet push", **_local(clock)))
    for sock in (pull, push, quiet):
        sock.start()

    def entry(sock: Any) -> dict[str, Any]:
        return dict(socket_server_status()[str(sock.port)])

    def like(recorded: dict[str, Any], since: float) -> dict[str, Any]:
        return {**recorded, "since_last_activity": pytest.approx(since)}

    assert entry(pull) == like(case["right_after_start"], 0.0)
    assert entry(quiet) == {
        "name": "quiet push",
        "type": "push",
        "status": "DISABLED",
        "since_last_activity": None,
    }
    clock.set(T0 + 1000.0)  # past activity_timeout=900
    assert entry(pull) == like(case["after_0_4s_with_requests_pull"], 1000.0)
    assert entry(push) == like(case["after_0_4s_with_pushes_push"], 1000.0)
    pull.set_point("a", (T0 + 1000.0, 1.0))
    push.poke()
    assert entry(pull) == like(case["after_set_point_pull"], 0.0)
    assert entry(push) == like(case["after_poke_push"], 0.0)
