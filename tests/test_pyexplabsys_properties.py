"""Properties of the PyExpLabSys wire: round trips of every grammar and message, separators that
are refused instead of written, an independent oracle of the raw grammars, hostile bytes into
every reader and dispatcher, and exactly one reply per datagram over real UDP."""

from __future__ import annotations

import json
import math
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from daqwire.errors import LocalProtocolError, RemoteProtocolError
from daqwire.generated import pyexplabsys as px
from daqwire.generated import pyexplabsys_strategies as pxs
from daqwire.pyexplabsys import DataPullSocket, DataPushSocket, DateDataPullSocket

SEPARATORS = "#,;:&"
RAW_TYPES = ("int", "float", "str", "bool")
RECV = 65536
REPLY_TIMEOUT = 5.0  # how long a test waits for a reply; never asserted as a duration

EXCEP_RAW = b"EXCEP#Raw conversion failed with message:"


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types: NaN equals NaN, -0.0 is not 0.0, 1 is not 1.0 or True,
    a tuple is not a list, dict keys compare in order, OldData is OldData."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, px.OldData):
        return True
    return bool(a == b)


def test_same_is_strict() -> None:
    assert same(math.nan, math.nan) and not same(0.0, -0.0) and not same(1, 1.0)
    assert (
        not same(1, True)
        and not same((1, 2), [1, 2])
        and not same({"a": 1, "b": 2}, {"b": 2, "a": 1})
    )
    assert same(px.OldData(), px.OldData()) and not same(px.OldData(), "OLD_DATA")


# ---- strategies --------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
#: points as the JSON replies carry them: any text (JSON escapes separators), tuples, OLD_DATA
json_points = st.one_of(st.tuples(json_scalars, json_scalars), st.just(px.OldData()))
#: text holding at least one of the raw separators
with_separator = st.tuples(
    pxs.raw_texts(max_size=5), st.sampled_from(SEPARATORS), pxs.raw_texts(max_size=5)
).map("".join)
#: datagrams that look a little like requests and replies, for the hostile-input properties
prefixes = st.sampled_from(
    [b"", b"RET#", b"ACK#", b"ERROR#", b"EXCEP#", b"json_wn#", b"raw_wn#", b"OLD_DATA", b"[", b"{"]
)
grammar_text = st.text(
    alphabet="0123456789.,;:#&-+e[]{}\"' aTrueFalseNoneintfloatstrbool", max_size=60
)
hostile = st.one_of(
    pxs.datagrams(9000),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.tuples(prefixes, grammar_text.map(str.encode)).map(b"".join),
)


# ---- round trips of the grammars ---------------------------------------------------------------

ALL_FOUR_LISTS = {
    "i": [1, -2, 10**20],
    "f": [1.5, math.nan, -math.inf, -0.0],
    "s": ["a", "", "é x"],
    "b": [True, False],
}


@settings(max_examples=150, deadline=None)
@given(pxs.raw_point_values())
@example((1, 1.0))
@example((True, None))
@example(("", "é"))
@example((-0.0, math.nan))
def test_raw_point_round_trip(point: Any) -> None:
    assert same(px.parse_raw_point(px.format_raw_point(point)), point)


@settings(max_examples=80, deadline=None)
@given(pxs.raw_points_values())
def test_raw_points_round_trip(points: list[Any]) -> None:
    assert same(px.parse_raw_points(px.format_raw_points(points)), points)


@settings(max_examples=80, deadline=None)
@given(pxs.raw_named_points_values())
@example({"": (1, 2), "é": px.OldData()})
def test_raw_named_points_round_trip(points: dict[str, Any]) -> None:
    assert same(px.parse_raw_named_points(px.format_raw_named_points(points)), points)


@settings(max_examples=150, deadline=None)
@given(pxs.raw_wn_values())
@example(ALL_FOUR_LISTS)
@example({"": "", "x": "True"})
def test_raw_wn_round_trip(values: dict[str, Any]) -> None:
    assert same(px.parse_raw_wn(px.format_raw_wn(values)), values)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(RAW_TYPES).flatmap(
        lambda ty: st.lists(
            {
                "int": st.integers(),
                "float": st.floats(),
                "str": pxs.raw_texts(SEPARATORS),
                "bool": st.booleans(),
            }[ty],
            min_size=2,
            max_size=6,
        )
    )
)
def test_raw_wn_lists_of_every_type_round_trip(values: list[Any]) -> None:
    text = px.format_raw_wn({"k": values})
    assert text.startswith(f"k:{type(values[0]).__name__}:")
    assert same(px.parse_raw_wn(text), {"k": values})


@settings(max_examples=100, deadline=None)
@given(pxs.raw_table_values())
@example([[1, 2], [3]])
@example([[""], ["", ""]])
@example([[math.nan, -0.0]])
@example([[True], [False, True]])
def test_raw_table_round_trip(rows: list[list[Any]]) -> None:
    assert same(px.parse_raw_table(px.format_raw_table(rows)), rows)


# ---- round trips of whole messages -------------------------------------------------------------

ROUND_TRIPS: dict[str, tuple[Callable[..., bytes], Callable[[bytes], Any], Any]] = {
    "point_raw_reply": (
        px.encode_point_raw_reply,
        px.decode_point_raw_reply,
        pxs.raw_point_values(),
    ),
    "points_raw": (px.encode_points_raw, px.decode_points_raw, pxs.raw_points_values()),
    "named_points_raw": (
        px.encode_named_points_raw,
        px.decode_named_points_raw,
        pxs.raw_named_points_values(),
    ),
    "points_json": (
        px.encode_points_json,
        px.decode_points_json,
        st.lists(json_points, max_size=6),
    ),
    "named_points_json": (
        px.encode_named_points_json,
        px.decode_named_points_json,
        st.dictionaries(st.text(max_size=6), json_points, max_size=6),
    ),
    "point_json_reply": (px.encode_point_json_reply, px.decode_point_json_reply, json_points),
    "ret_raw": (
        px.encode_ret_raw,
        px.decode_ret_raw,
        st.one_of(st.none(), pxs.raw_wn_values(), pxs.raw_table_values()),
    ),
    "ret_json": (px.encode_ret_json, px.decode_ret_json, json_values),
    "codename_list_raw": (
        px.encode_codename_list_raw,
        px.decode_codename_list_raw,
        # [""] is written as the empty datagram, which is also no codenames at all
        st.lists(pxs.raw_texts(","), max_size=6).filter(lambda c: c != [""]),
    ),
    "codename_list_json": (
        px.encode_codename_list_json,
        px.decode_codename_list_json,
        st.lists(st.text(max_size=8), max_size=6),
    ),
    "socket_name": (px.encode_socket_name, px.decode_socket_name, st.text(max_size=20)),
    "push_name_reply": (px.encode_push_name_reply, px.decode_push_name_reply, st.text(max_size=20)),
    "push_error": (px.encode_push_error, px.decode_push_error, st.text(max_size=20)),
    "push_exception": (px.encode_push_exception, px.decode_push_exception, st.text(max_size=20)),
    "point_raw": (px.encode_point_raw, px.decode_point_raw, pxs.raw_texts("#")),
    "point_json": (px.encode_point_json, px.decode_point_json, pxs.raw_texts("#")),
    "push_raw_wn": (px.encode_push_raw_wn, px.decode_push_raw_wn, pxs.raw_wn_values()),
    "push_json_wn": (
        px.encode_push_json_wn,
        px.decode_push_json_wn,
        st.dictionaries(pxs.raw_texts("#"), json_values, max_size=4).filter(
            lambda d: "#" not in json.dumps(d)
        ),
    ),
    "status_reply": (
        px.encode_status_reply,
        px.decode_status_reply,
        st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    ),
}


@pytest.mark.parametrize("message", sorted(ROUND_TRIPS))
def test_message_round_trip(message: str) -> None:
    encode, decode, values = ROUND_TRIPS[message]

    @settings(max_examples=40, deadline=None)
    @given(values)
    def round_trip(value: Any) -> None:
        data = encode(value)
        assert isinstance(data, bytes)
        assert same(decode(data), value)

    round_trip()


@settings(max_examples=40, deadline=None)
@given(json_values, st.text(max_size=8))
def test_live_update_round_trip(data: Any, host: str) -> None:
    update = px.decode_live_update(px.encode_live_update(host, data))
    assert same(update.host, host) and same(update.data, data)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text(max_size=5), json_scalars, max_size=4))
def test_ack_and_string_replies_carry_the_python_repr(data: dict[str, Any]) -> None:
    assert px.encode_ack(data) == b"ACK#" + str(data).encode()
    assert px.decode_ack(px.encode_ack(data)) == str(data)
    assert px.decode_ret_string(px.encode_ret_string(data)) == str(data)


def test_literal_messages() -> None:
    assert px.decode_unknown_command(px.encode_unknown_command()) is None
    assert px.encode_unknown_command() == b"UNKNOWN_COMMMAND"
    assert px.encode_push_unknown() == b"ERROR#UNKNOWN_COMMMAND"
    assert px.decode_push_commands_reply(px.encode_push_commands_reply()) is None
    assert px.encode_push_commands_reply() == (
        b'RET#["json_wn#", "raw_wn#", "name", "status", "commands"]'
    )


# ---- request builders against the dispatchers ------------------------------------------------


class RecordingPush:
    """A PushHandler that records what it was handed and acknowledges it."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    def on_name(self) -> str:
        return "rec"

    def on_status(self) -> dict[str, Any]:
        return {}

    def on_json_wn(self, data: dict[str, Any]) -> px.Ack:
        self.got.append(data)
        return px.Ack(data)

    def on_raw_wn(self, data: dict[str, Any]) -> px.Ack:
        self.got.append(data)
        return px.Ack(data)


class RecordingPull:
    """A PullHandler whose points are given; it records the codenames it was asked for."""

    def __init__(self, points: dict[str, Any]) -> None:
        self.points = points
        self.asked: list[str] = []

    def on_name(self) -> str:
        return "rec"

    def on_codenames_raw(self) -> list[str]:
        return list(self.points)

    on_codenames_json = on_codenames_raw

    def on_raw(self) -> list[Any]:
        return list(self.points.values())

    on_json = on_raw

    def on_raw_wn(self) -> dict[str, Any]:
        return self.points

    on_json_wn = on_raw_wn

    def on_status(self) -> dict[str, Any]:
        return {}

    def on_point_raw(self, codename: str) -> Any:
        self.asked.append(codename)
        return self.points[codename]

    on_point_json = on_point_raw


@settings(max_examples=100, deadline=None)
@given(pxs.raw_wn_values())
@example(ALL_FOUR_LISTS)
def test_push_raw_wn_builder_delivers_exactly_the_values(values: dict[str, Any]) -> None:
    handler = RecordingPush()
    request = px.PushRequests.raw_wn(values)
    reply = px.PushDispatcher(handler).handle(request.data)
    assert len(handler.got) == 1 and same(handler.got[0], values)
    assert reply == b"ACK#" + str(handler.got[0]).encode()
    ack = request.parse(reply)
    assert isinstance(ack, px.Ack) and ack.data == str(handler.got[0])


@settings(max_examples=60, deadline=None)
@given(ROUND_TRIPS["push_json_wn"][2])
def test_push_json_wn_builder_delivers_exactly_the_values(values: dict[str, Any]) -> None:
    handler = RecordingPush()
    reply = px.PushDispatcher(handler).handle(px.PushRequests.json_wn(values).data)
    assert len(handler.got) == 1 and same(handler.got[0], values)
    assert reply == b"ACK#" + str(handler.got[0]).encode()


@settings(max_examples=60, deadline=None)
@given(pxs.raw_named_points_values(max_size=4).filter(bool), st.data())
def test_pull_point_builders_ask_for_exactly_the_codename(
    points: dict[str, Any], data: Any
) -> None:
    handler = RecordingPull(points)
    dispatcher = px.PullDispatcher(handler)
    codename = data.draw(st.sampled_from(sorted(points)))
    for build in (px.PullRequests.point_raw, px.PullRequests.point_json):
        request = build(codename)
        assert same(request.parse(dispatcher.handle(request.data)), points[codename])
    assert handler.asked == [codename, codename]
    for build_all in (px.PullRequests.raw_wn, px.PullRequests.json_wn):
        request = build_all()
        assert same(request.parse(dispatcher.handle(request.data)), points)


# ---- separators are refused, never written -----------------------------------------------------


def reserved_message(what: str, value: str) -> str:
    """The spec's text for a raw value or key that holds a separator (first separator found)."""
    char = next(c for c in value if c in SEPARATORS)
    return (
        f"With return format raw, the {what} {value!r} contains {char!r}, "
        "which is a separator of the raw format"
    )


@st.composite
def raw_wn_with_a_separator(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """Valid items, then one whose key, str value or str list value holds a separator."""
    values = dict(draw(st.one_of(st.just({}), pxs.raw_wn_values(max_size=3))))
    bad = draw(with_separator)
    where = draw(st.sampled_from(["key", "value", "list"]))
    key = bad if where == "key" else draw(pxs.raw_texts(SEPARATORS))
    values.pop(key, None)
    if where == "key":
        values[key] = draw(st.one_of(st.integers(), pxs.raw_texts(SEPARATORS)))
        return values, reserved_message("key", bad)
    if where == "value":
        values[key] = bad
    else:
        good = draw(st.lists(pxs.raw_texts(SEPARATORS), min_size=1, max_size=3))
        values[key] = [*good, bad]
    return values, reserved_message("value", bad)


@settings(max_examples=100, deadline=None)
@given(raw_wn_with_a_separator())
@example(({"a,b": 1}, reserved_message("key", "a,b")))
@example(({"k": ["x", "y;z"]}, reserved_message("value", "y;z")))
def test_raw_wn_refuses_separators(case: tuple[dict[str, Any], str]) -> None:
    values, message = case
    with pytest.raises(LocalProtocolError) as info:
        px.format_raw_wn(values)
    assert info.value.message == message
    with pytest.raises(LocalProtocolError):
        px.encode_push_raw_wn(values)
    with pytest.raises(LocalProtocolError) as ret:
        px.encode_ret_raw(values)
    assert ret.value.message == "Raw conversion failed with message:" + message


@st.composite
def table_with_a_separator(draw: st.DrawFn) -> tuple[list[list[str]], str]:
    rows = draw(st.lists(st.lists(pxs.raw_texts(SEPARATORS), min_size=1, max_size=3), max_size=3))
    bad = draw(with_separator)
    row = draw(st.integers(0, len(rows)))
    rows.insert(row, [*draw(st.lists(pxs.raw_texts(SEPARATORS), max_size=2)), bad])
    first = next(v for r in rows for v in r if any(c in v for c in SEPARATORS))
    return rows, reserved_message("value", first)


@settings(max_examples=80, deadline=None)
@given(table_with_a_separator())
def test_raw_table_refuses_separators(case: tuple[list[list[str]], str]) -> None:
    rows, message = case
    with pytest.raises(LocalProtocolError) as info:
        px.format_raw_table(rows)
    assert info.value.message == message


@settings(max_examples=80, deadline=None)
@given(with_separator, pxs.scalars(SEPARATORS), st.booleans())
def test_raw_point_refuses_separators(bad: str, other: Any, bad_is_x: bool) -> None:
    point = (bad, other) if bad_is_x else (other, bad)
    for write in (
        px.format_raw_point,
        lambda p: px.format_raw_points([(1, 2), p]),
        lambda p: px.format_raw_named_points({"a": p}),
        px.encode_point_raw_reply,
    ):
        with pytest.raises(LocalProtocolError):
            write(point)
    dispatcher = px.PullDispatcher(RecordingPull({"a": point}))
    for request in (b"a#raw", b"raw", b"raw_wn"):
        assert dispatcher.handle(request) == b"UNKNOWN_COMMMAND"


@settings(max_examples=40, deadline=None)
@given(with_separator)
def test_raw_named_points_refuse_separators_in_names(name: str) -> None:
    with pytest.raises(LocalProtocolError):
        px.format_raw_named_points({name: (1, 2)})


@settings(max_examples=40, deadline=None)
@given(with_separator, st.sampled_from([DateDataPullSocket, DataPullSocket]))
def test_set_point_refuses_separators(bad: str, kind: type[Any]) -> None:
    sock = kind("p", ["a"], host="127.0.0.1", port=0)
    try:
        with pytest.raises(ValueError):
            sock.set_point("a", (1.0, bad))
        assert sock.dispatcher.handle(b"a#raw") == b"0.0,0.0"
    finally:
        sock.stop()


class Returner:
    """A callback_direct callback that returns whatever the test put in ``value``."""

    def __init__(self) -> None:
        self.value: Any = None

    def __call__(self, data: dict[str, Any]) -> Any:
        return self.value


@pytest.fixture(scope="module")
def client() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(REPLY_TIMEOUT)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def ask(client: socket.socket, port: int, data: bytes) -> bytes:
    """Send one datagram and return the one reply; fail if a second one is queued."""
    client.sendto(data, ("127.0.0.1", port))
    reply = client.recv(RECV)
    client.setblocking(False)
    try:
        extra = client.recv(RECV)
    except BlockingIOError:
        extra = None
    finally:
        client.settimeout(REPLY_TIMEOUT)
    assert extra is None, f"a second datagram followed the reply: {extra[:80]!r}"
    return reply


@pytest.fixture(scope="module")
def raw_push() -> Iterator[tuple[DataPushSocket, Returner]]:
    returner = Returner()
    sock = DataPushSocket(
        "rawpush",
        host="127.0.0.1",
        port=0,
        action="callback_direct",
        callback=returner,
        return_format="raw",
    )
    sock.start()
    yield sock, returner
    sock.stop()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(raw_wn_with_a_separator(), table_with_a_separator()))
def test_push_socket_raw_reply_refuses_separators(
    raw_push: tuple[DataPushSocket, Returner], client: socket.socket, case: tuple[Any, str]
) -> None:
    sock, returner = raw_push
    value, message = case
    returner.value = value
    reply = ask(client, sock.port, b'json_wn#{"go": 1}')
    assert reply == EXCEP_RAW + message.encode()


def test_push_socket_raw_reply_writes_what_it_can(
    raw_push: tuple[DataPushSocket, Returner], client: socket.socket
) -> None:
    sock, returner = raw_push
    returner.value = {"a": 1, "v": [1.5, 2.0], "ok": False, "s": "x"}
    assert (
        ask(client, sock.port, b'json_wn#{"go": 1}')
        == b"RET#a:int:1;v:float:1.5,2.0;ok:bool:False;s:str:x"
    )
    returner.value = [[1.0, 42.0], [1.5, 45.6]]
    assert ask(client, sock.port, b'json_wn#{"go": 1}') == b"RET#float:1.0,42.0&1.5,45.6"
    returner.value = None
    assert ask(client, sock.port, b'json_wn#{"go": 1}') == b"RET#None"


# ---- an independent oracle of the raw grammars (protocol reference §4.4, §4.5, §5.4) -----------

#: one raw_wn item: exactly three ':'-separated parts (§5.4)
ORACLE_ITEM = re.compile(r"([^:]*):([^:]*):([^:]*)", re.DOTALL)
#: a raw point: exactly one ',' (§4.4)
ORACLE_POINT = re.compile(r"([^,]*),([^,]*)", re.DOTALL)
ORACLE_TYPES = ["int", "float", "str", "bool"]


class Reject:
    def __init__(self, message: str = "") -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"Reject({self.message!r})"


def _oracle_bool(text: str) -> bool:
    if re.fullmatch("True|False", text):
        return text == "True"
    raise ValueError(
        f"Cannot translate the string '{text}' to a boolean. "
        "Only the strings 'True' or 'False' are allowed"
    )


ORACLE_CONVERT: dict[str, Callable[[str], Any]] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": _oracle_bool,
}


def oracle_raw_wn(text: str) -> dict[str, Any] | Reject:
    """§5.4: items split on ';', each exactly 'key:type:values', values split on ',' and
    converted by the type's Python function; one value is a scalar, several a list."""
    out: dict[str, Any] = {}
    for part in re.split(";", text):
        m = ORACLE_ITEM.fullmatch(part)
        if m is None:
            return Reject(
                f"The data part '{part}' did not match the expected format of 3 parts "
                "divided by ':'"
            )
        key, type_name, values = m.groups()
        if type_name not in ORACLE_CONVERT:
            return Reject(
                f"The data type '{type_name}' is unknown. "
                f"Only dict_keys({ORACLE_TYPES}) are allowed"
            )
        converted = []
        for v in re.split(",", values):
            try:
                converted.append(ORACLE_CONVERT[type_name](v))
            except ValueError as exc:
                return Reject(f"Unable to convert values to '{type_name}'. Error is: {exc}")
        out[key] = converted[0] if len(converted) == 1 else converted
    return out


#: how Python 3 str() writes an int and a float (§4.5)
CANONICAL_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
CANONICAL_FLOAT = re.compile(
    r"-?(?:[0-9]+\.[0-9]+(?:e[+-][0-9]{2,})?|[0-9]+e[+-][0-9]{2,}|inf)|nan"
)
#: number texts str() never writes but Python reads (01, +1, 1., .5, 1E5, -nan)
LENIENT_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|inf)", re.ASCII
)


class Lenient:
    """A number text that str() never writes: reading it as text or as the number is fine."""

    def __init__(self, text: str) -> None:
        self.text = text

    def accepts(self, value: Any) -> bool:
        if same(value, self.text):
            return True
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        try:
            number = int(self.text) if isinstance(value, int) else float(self.text)
        except ValueError:
            return False
        return same(value, number)


def oracle_scalar(text: str) -> Any:
    """A raw point value (§4.5): None/True/False, an int or float exactly as str() writes it,
    else the text itself."""
    if text in ("None", "True", "False"):
        return {"None": None, "True": True, "False": False}[text]
    if CANONICAL_INT.fullmatch(text) and str(int(text)) == text:
        return int(text)
    if CANONICAL_FLOAT.fullmatch(text) and str(float(text)) == text:
        return float(text)
    if LENIENT_NUMBER.fullmatch(text):
        return Lenient(text)
    return text


def oracle_raw_point(text: str) -> Any:
    """§4.4: 'OLD_DATA', or exactly 'x,y'."""
    if text == "OLD_DATA":
        return px.OldData()
    m = ORACLE_POINT.fullmatch(text)
    if m is None:
        return Reject()
    return (oracle_scalar(m[1]), oracle_scalar(m[2]))


def agrees(got: Any, want: Any) -> bool:
    if isinstance(want, Lenient):
        return want.accepts(got)
    if isinstance(want, tuple) and isinstance(got, tuple) and len(want) == len(got):
        return all(agrees(g, w) for g, w in zip(got, want, strict=True))
    return same(got, want)


scalar_tokens = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats().map(str),
    st.sampled_from(
        [
            "True",
            "False",
            "None",
            "true",
            "",
            " 1",
            "1 ",
            "1_000",
            "5.0",
            "0x10",
            "nan",
            "-inf",
            "1e400",
            "01",
            "+1",
            "-0",
            "1.",
            ".5",
            "1E5",
            "-nan",
            "+inf",
            "Infinity",
            "abc",
            "\u0663",
            "é",
            "OLD_DATA",
            "1.50",
            "1e5",
            "1e+05",
        ]
    ),
    st.text(alphabet="ab \u00e9.-+e0123456789", max_size=5),
)


def _mutate(draw: st.DrawFn, text: str) -> str:
    """Insert, replace or delete one character (separators and look-alikes)."""
    if not draw(st.booleans()):
        return text
    pos = draw(st.integers(0, len(text)))
    char = draw(st.sampled_from(list(";:,#& 0.eTx\n")))
    how = draw(st.sampled_from(["insert", "replace", "delete"]))
    if how == "insert":
        return text[:pos] + char + text[pos:]
    if how == "replace":
        return text[:pos] + char + text[pos + 1 :]
    return text[:pos] + text[pos + 1 :]


@st.composite
def near_raw_wn(draw: st.DrawFn) -> str:
    """raw_wn text with items of 2-4 parts, good and bad type names, values of every kind."""
    items = []
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.text(alphabet="ab_é ", max_size=3))
        type_name = draw(st.sampled_from([*RAW_TYPES, *RAW_TYPES, "Int", "floats", "", "bool "]))
        values = draw(st.lists(scalar_tokens, min_size=1, max_size=3))
        parts = [key, type_name, ",".join(values)]
        shape = draw(st.sampled_from(["ok", "ok", "ok", "drop", "extra"]))
        if shape == "drop":
            parts.pop(draw(st.integers(0, 2)))
        elif shape == "extra":
            parts.insert(draw(st.integers(0, 3)), draw(scalar_tokens))
        items.append(":".join(parts))
    text = ";".join(items) + draw(st.sampled_from(["", "", ";", ":", ",", "&", "#"]))
    return _mutate(draw, text)


@st.composite
def near_raw_point(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(scalar_tokens, min_size=1, max_size=3))
    return _mutate(draw, ",".join(tokens))


def _generated(parse: Callable[[str], Any], text: str) -> Any:
    try:
        return parse(text)
    except RemoteProtocolError as exc:
        return Reject(exc.message)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        pxs.raw_wn_values().map(px.format_raw_wn),
        near_raw_wn(),
        st.text(alphabet=";:,abTrueFalsintflotbo0123456789.-", max_size=30),
    )
)
@example("")
@example("a:int:1;")
@example("a:int:5.0")
@example("a:floats:1")
@example("a:bool:true")
@example("a:int: 1_000,2")
@example("a:str:x:y")
@example("a:float:nan,1e400,-0")
def test_raw_wn_parser_agrees_with_the_oracle(text: str) -> None:
    want = oracle_raw_wn(text)
    got = _generated(px.parse_raw_wn, text)
    if isinstance(want, Reject):
        assert isinstance(got, Reject), f"{text!r}: oracle refuses ({want.message}), parser {got!r}"
        assert got.message == want.message
    else:
        assert same(got, want), f"{text!r}: oracle {want!r}, parser {got!r}"


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        pxs.raw_point_values().map(px.format_raw_point),
        near_raw_point(),
        st.text(alphabet=",;:#OLD_ATNnoe0123456789.-+ ", max_size=20),
    )
)
@example("OLD_DATA")
@example("OLD_DATA,1")
@example("OLD_DATA ")
@example(",")
@example("1,2,3")
@example("")
@example("a;b,c:d")
@example("01,+1")
@example("1.,-nan")
def test_raw_point_parser_agrees_with_the_oracle(text: str) -> None:
    want = oracle_raw_point(text)
    got = _generated(px.parse_raw_point, text)
    if isinstance(want, Reject):
        assert isinstance(got, Reject), f"{text!r}: oracle refuses, parser {got!r}"
    else:
        assert agrees(got, want), f"{text!r}: oracle {want!r}, parser {got!r}"


def test_oracle_reads_the_reference_examples() -> None:
    assert same(
        oracle_raw_wn("a:int:1;values:int:42,47;ok:bool:False;s:str:x"),
        {"a": 1, "values": [42, 47], "ok": False, "s": "x"},
    )
    assert isinstance(oracle_raw_wn("a:floats:1"), Reject)
    assert same(oracle_raw_point("1795265413.060712,1e-07"), (1795265413.060712, 1e-07))
    assert isinstance(oracle_raw_point("1,2,3"), Reject)


# ---- hostile input into every reader -----------------------------------------------------------

DECODERS = {n: getattr(px, n) for n in px.__all__ if n.startswith("decode_")}
PARSERS = {n: getattr(px, n) for n in px.__all__ if n.startswith("parse_")}


def test_every_reader_is_covered() -> None:
    assert len(DECODERS) == 25
    assert sorted(PARSERS) == [
        "parse_raw_named_points",
        "parse_raw_point",
        "parse_raw_points",
        "parse_raw_table",
        "parse_raw_wn",
    ]


@settings(max_examples=150, deadline=None)
@given(hostile)
@example(b"\xff\xfe")
@example(b"RET#" + b"[" * 5000)
@example(b"[" * 100_000)
@example(b"RET#a:int:" + b"9" * 5000)
@example(b'{"host": 1}')
def test_decoders_raise_only_remote_protocol_errors(data: bytes) -> None:
    for name, decode in DECODERS.items():
        try:
            decode(data)
        except RemoteProtocolError:
            pass
        except Exception as exc:  # pragma: no cover - this is the failure being looked for
            pytest.fail(f"{name}({data[:60]!r}) raised {type(exc).__name__}: {exc}")


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300),
        pxs.datagrams(9000).map(lambda b: b.decode("utf-8", "replace")),
        grammar_text,
        near_raw_wn(),
        near_raw_point(),
    )
)
@example(":" * 3 + ";")
@example("str:" + "&" * 50)
def test_parsers_raise_only_remote_protocol_errors(text: str) -> None:
    for name, parse in PARSERS.items():
        try:
            parse(text)
        except RemoteProtocolError:
            pass
        except Exception as exc:  # pragma: no cover - this is the failure being looked for
            pytest.fail(f"{name}({text[:60]!r}) raised {type(exc).__name__}: {exc}")


@pytest.mark.parametrize(
    "read",
    [
        lambda: px.parse_raw_point("1" * 4301 + ",1"),
        lambda: px.decode_point_raw_reply(b"1" * 4301 + b",1"),
        lambda: px.decode_points_raw(b"1,1;" + b"1" * 4301 + b",1"),
        lambda: px.decode_named_points_raw(b"a:" + b"1" * 4301 + b",1"),
    ],
    ids=["parse_raw_point", "point_raw_reply", "points_raw", "named_points_raw"],
)
def test_huge_int_in_a_raw_point_is_a_remote_protocol_error(read: Callable[[], Any]) -> None:
    with pytest.raises(RemoteProtocolError):
        read()


def test_empty_dict_ret_raw_round_trips() -> None:
    assert px.decode_ret_raw(px.encode_ret_raw({})) == {}


def test_empty_raw_wn_push_is_refused_locally() -> None:
    with pytest.raises(LocalProtocolError):
        px.encode_push_raw_wn({})


# ---- the dispatchers never raise ----------------------------------------------------------------


def _callback(data: dict[str, Any]) -> Any:
    if "boom" in data:
        raise RuntimeError("boom")
    return data


@pytest.fixture(scope="module")
def sockets() -> Iterator[dict[str, Any]]:
    date = DateDataPullSocket(
        "date", ["a", "b", "é"], host="127.0.0.1", port=0, timeouts=[None, 1.0, 2.0]
    )
    date.set_point("a", (1.5, "x"))
    data = DataPullSocket("data", ["a", "b"], host="127.0.0.1", port=0, timeouts=0.5)
    data.set_point("a", (None, True))
    pushes = {
        "store_last": DataPushSocket("p1", host="127.0.0.1", port=0),
        "enqueue": DataPushSocket(
            "p2", host="127.0.0.1", port=0, action="enqueue", max_queue_size=3
        ),
    }
    for fmt in ("json", "raw", "string"):
        pushes[f"direct_{fmt}"] = DataPushSocket(
            f"d{fmt}",
            host="127.0.0.1",
            port=0,
            action="callback_direct",
            callback=_callback,
            return_format=fmt,
        )
    yield {"pull": [date, data], "push": list(pushes.values())}
    for sock in [date, data, *pushes.values()]:
        sock.stop()


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(hostile, pxs.pull_requests(), pxs.push_requests()))
@example(b"")
@example(b"status")
@example(b"a#raw")
@example("\u00e9#json".encode())
@example(b'json_wn#{"boom": 1}')
@example(b'json_wn#{"x": [1, {"y": null}]}')
@example(b"raw_wn#a:int:1,2;b:str:x")
@example(b'json_wn#{"a": "x#y"}')
def test_dispatchers_answer_every_datagram_with_one_reply(
    sockets: dict[str, Any], data: bytes
) -> None:
    errors: list[str] = []

    def record(kind: str, message: str, exc: BaseException | None) -> None:
        errors.append(kind)

    for sock in sockets["pull"]:
        errors.clear()
        d = px.PullDispatcher(sock, on_error=record)
        reply = d.handle(data)
        assert isinstance(reply, bytes) and len(reply) <= px.MAX_DATAGRAM_BYTES
        if errors:
            assert errors in (["unknown"], ["malformed"], ["failed"], ["refused"])
            assert reply == b"UNKNOWN_COMMMAND"
        else:
            assert reply != b"UNKNOWN_COMMMAND"
    for sock in sockets["push"]:
        errors.clear()
        d = px.PushDispatcher(sock, on_error=record)
        reply = d.handle(data)
        assert isinstance(reply, bytes) and len(reply) <= px.MAX_DATAGRAM_BYTES
        if errors:
            assert len(errors) == 1
            assert reply.startswith((b"ERROR#", b"EXCEP#")), reply[:80]
            if errors == ["failed"]:
                assert reply.startswith(b"EXCEP#")
            else:
                assert reply.startswith(b"ERROR#")
        else:
            assert reply.startswith((b"ACK#", b"RET#", b"{")), reply[:80]


def test_error_replies_fit_in_a_datagram() -> None:
    def callback(data: dict[str, Any]) -> Any:
        raise ValueError("\U0001f600" * 20000)

    sock = DataPushSocket(
        "big", host="127.0.0.1", port=0, action="callback_direct", callback=callback
    )
    try:
        reply = sock.dispatcher.handle(b'json_wn#{"a": 1}')
        assert reply.startswith(b"EXCEP#")
        assert len(reply) <= px.MAX_DATAGRAM_BYTES
    finally:
        sock.stop()


# ---- over real UDP: exactly one reply per datagram -------------------------------------------


@pytest.fixture(scope="module")
def live() -> Iterator[dict[str, Any]]:
    pull = DateDataPullSocket("udp-pull", ["a", "b"], host="127.0.0.1", port=0)
    push = DataPushSocket("udp-push", host="127.0.0.1", port=0)
    pull.start()
    push.start()
    yield {"pull": pull, "push": push}
    pull.stop()
    push.stop()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(pxs.datagrams(9000), pxs.pull_requests(), pxs.push_requests()))
@example(b"")
@example(b"x" * 9000)
@example(b"\xff" * 9000)
def test_udp_servers_send_exactly_one_reply(
    live: dict[str, Any], client: socket.socket, data: bytes
) -> None:
    for kind, name_reply in (("pull", b"udp-pull"), ("push", b"RET#udp-push")):
        sock = live[kind]
        reply = ask(client, sock.port, data)
        if data == b"status":
            assert set(json.loads(reply)) == {"system_status", "socket_server_status"}
        else:
            assert reply == sock.dispatcher.handle(data)  # what the sans-IO core answers
        # the next datagram on this client answers the next request: nothing was left over
        assert ask(client, sock.port, b"name") == name_reply
