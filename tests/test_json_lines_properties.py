"""Properties of the generated json_lines code (``lsst_tcpip``, ``m2``, ``mtmount_telemetry``).

* every message the strategies make encodes to one line that decodes back equal, and the
  JSON Schema oracle (``validate``) accepts what ``to_wire`` writes;
* the generated checker and the JSON Schema agree on mutated objects (a required key dropped,
  a value of the wrong type, an unknown key added);
* ``LineFramer`` gives the same lines, errors and offsets however the stream is cut, resyncs
  after every over-limit line with exactly one error, and never holds more than the line
  limit (plus the terminator's length - 1, plus the chunk just fed);
* random bytes through the framer, ``decode_line`` and ``decode_message`` raise only
  ``RemoteProtocolError`` subclasses.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from daqwire.errors import FieldValueError, LineTooLongError, RemoteProtocolError
from daqwire.generated import (
    lsst_tcpip,
    lsst_tcpip_strategies,
    m2,
    m2_strategies,
    mtmount_telemetry,
    mtmount_telemetry_strategies,
)
from daqwire.sansio import NEED_DATA, STREAM_END

CODECS = {
    "m2": (m2, m2_strategies),
    "mtmount_telemetry": (mtmount_telemetry, mtmount_telemetry_strategies),
}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- messages ----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", sorted(CODECS))
@SETTINGS
@given(data=st.data())
def test_message_round_trip(protocol: str, data: st.DataObject) -> None:
    codec, strategies = CODECS[protocol]
    msg = data.draw(strategies.message_values())
    line = codec.encode(msg)
    assert line.endswith(b"\r\n") and line.count(b"\r\n") == 1
    assert codec.decode(line[:-2]) == msg
    wire = codec.to_wire(msg)
    assert json.loads(line) == wire
    codec.validate(msg.MESSAGE_NAME, wire)
    assert codec.decode_message(wire) == msg
    # to_dict holds every field, arrays as lists and enums as plain ints
    plain = codec.to_dict(msg)
    assert list(plain) == [f.name for f in dataclasses.fields(msg)]
    assert json.loads(json.dumps(plain)) == plain


@pytest.mark.parametrize("protocol", sorted(CODECS))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_per_message_strategies(protocol: str, data: st.DataObject) -> None:
    codec, strategies = CODECS[protocol]
    name = data.draw(st.sampled_from(sorted(codec.MESSAGES)))
    msg = data.draw(getattr(strategies, f"{name}_values")())
    assert type(msg) is codec.MESSAGES[name]
    assert codec.decode(codec.encode(msg)[:-2]) == msg


def _checker_accepts(codec: ModuleType, name: str, obj: Any) -> bool:
    try:
        msg = codec.decode_message(obj)
    except FieldValueError:
        return False
    return bool(msg.MESSAGE_NAME == name)


def _schema_accepts(codec: ModuleType, name: str, obj: Any) -> bool:
    try:
        codec.validate(name, obj)
    except FieldValueError:
        return False
    return True


def _wrong_type(value: Any) -> Any:
    """A JSON value no key of these specs would take in place of ``value``."""
    if isinstance(value, str):
        return 12345
    if isinstance(value, bool):
        return "true"
    if isinstance(value, int | float):
        return "1"
    if isinstance(value, list) and value:
        return [_wrong_type(value[0]), *value[1:]]
    return "x"


@pytest.mark.parametrize("protocol", sorted(CODECS))
@SETTINGS
@given(data=st.data())
def test_checker_and_schema_agree_on_mutations(protocol: str, data: st.DataObject) -> None:
    codec, strategies = CODECS[protocol]
    msg = data.draw(strategies.message_values())
    name = msg.MESSAGE_NAME
    schema = codec.SCHEMAS[name]
    wire = codec.to_wire(msg)
    kind = data.draw(st.sampled_from(["drop", "retype", "retype_bool", "add"]))
    obj = dict(wire)
    if kind == "drop":
        key = data.draw(st.sampled_from(schema["required"]))
        del obj[key]
    elif kind in ("retype", "retype_bool"):
        key = data.draw(st.sampled_from([k for k in wire if k in schema["properties"]]))
        value = obj[key]
        if kind == "retype_bool":
            assume(type(value) in (int, float))
            obj[key] = True  # a bool is not a number, to JSON Schema either
        else:
            assume(not (isinstance(value, list) and not value))
            obj[key] = _wrong_type(value)
    else:
        fresh = st.text(min_size=1, max_size=6)
        key = data.draw(fresh.filter(lambda k: k not in wire and k not in schema["properties"]))
        obj[key] = 1
    checker, oracle = _checker_accepts(codec, name, obj), _schema_accepts(codec, name, obj)
    assert checker == oracle, (kind, key, obj)
    if kind != "add":
        assert not checker
    else:
        assert checker == (schema.get("additionalProperties", True) is not False)


# ---- framing -----------------------------------------------------------------------------------


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` in pieces, cut at the given positions (modulo its length)."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _drain(framer: lsst_tcpip.LineFramer) -> Iterator[Any]:
    """Everything the framer has now: lines (bytes, offset after) and errors (type, offset)."""
    while True:
        try:
            line = framer.next_line()
        except RemoteProtocolError as exc:
            yield (type(exc).__name__, exc.offset)
            continue
        if line is NEED_DATA:
            return
        if line is STREAM_END:
            yield STREAM_END
            return
        yield (line, framer.offset)


def _run(pieces: list[bytes], **framer_args: Any) -> list[Any]:
    framer = lsst_tcpip.LineFramer(**framer_args)
    out: list[Any] = []
    for piece in pieces:
        framer.feed(piece)
        out += _drain(framer)
    framer.feed_eof()
    out += _drain(framer)
    return out


@SETTINGS
@given(
    values=st.lists(lsst_tcpip_strategies.json_values(), max_size=8),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_framer_chunking_invariance_on_json_lines(values: list[Any], cuts: list[int]) -> None:
    lines = [lsst_tcpip.encode_line(v) for v in values]
    stream = b"".join(lines)
    whole = _run([stream])
    pieces = _run(_cut(stream, cuts))
    assert pieces == whole
    ends = [sum(map(len, lines[: i + 1])) for i in range(len(lines))]
    assert whole == [(line[:-2], end) for line, end in zip(lines, ends, strict=True)] + [STREAM_END]
    decoded = [lsst_tcpip.decode_line(line) for line, _ in whole[:-1]]
    assert repr(decoded) == repr(values)  # repr: NaN is not equal to itself


TERMINATORS = [b"\r\n", b"\n", b";", b"END", b"\x00"]


@SETTINGS
@given(
    data=st.data(),
    terminator=st.sampled_from(TERMINATORS),
    limit=st.integers(min_value=1, max_value=12),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_framer_resyncs_after_every_long_line(
    data: st.DataObject, terminator: bytes, limit: int, cuts: list[int]
) -> None:
    body = st.binary(max_size=30).filter(lambda b: terminator not in b)
    # none of these terminators overlaps itself, so the bodies split back out unambiguously
    bodies = data.draw(st.lists(body, max_size=8))
    tail = data.draw(body)
    stream = b"".join(b + terminator for b in bodies) + tail
    args = {"terminator": terminator, "max_line_bytes": limit}
    whole = _run([stream], **args)
    assert _run(_cut(stream, cuts), **args) == whole
    assert _run([bytes([x]) for x in stream], **args) == whole
    # one outcome per line: its body, or exactly one LineTooLongError at the line's start
    expected: list[Any] = []
    offset = 0
    for b in bodies:
        end = offset + len(b) + len(terminator)
        expected.append((b, end) if len(b) <= limit else ("LineTooLongError", offset))
        offset = end
    if tail and len(tail) > limit + len(terminator) - 1:
        expected.append(("LineTooLongError", offset))
    elif tail:
        expected.append(("TruncatedError", offset))
    assert whole == [*expected, STREAM_END]


@settings(max_examples=60, deadline=None)
@given(
    stream=st.binary(max_size=400),
    limit=st.integers(min_value=1, max_value=64),
    chunk=st.integers(min_value=1, max_value=50),
    terminator=st.sampled_from(TERMINATORS),
)
def test_framer_memory_is_bounded(stream: bytes, limit: int, chunk: int, terminator: bytes) -> None:
    framer = lsst_tcpip.LineFramer(terminator=terminator, max_line_bytes=limit)
    bound = limit + len(terminator) - 1
    for i in range(0, len(stream), chunk):
        piece = stream[i : i + chunk]
        framer.feed(piece)
        assert framer.buffered_bytes <= bound + len(piece)
        for item in _drain(framer):
            assert not isinstance(item[0], bytes) or len(item[0]) <= limit
        assert framer.buffered_bytes <= bound


# ---- random bytes ------------------------------------------------------------------------------

FRAGMENTS = [
    b"{", b"}", b"[", b"]", b",", b": ", b'"', b"\\", b"\r\n", b"\n", b"\xff", b"\xc3",
    b"null", b"true", b"NaN", b"-Infinity", b"1e400", b"0", b"-1", b"2147483648",
    b"18410715311050326015", b"1.5", b'"id"', b'"ack"', b'"sequence_id"', b'"cmd_x"',
    b'"cmd_power"', b'"evt_"', b'"tel_a"', b'"powerType"', b'"compName"', b'"topicID"',
    b'"powerSystemState"', b'"actualPosition"', b"6", b"15", b'"6"', b"[[[[[[[[",
]  # fmt: skip


def _json_ish() -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(b"".join)


def _mutated_lines() -> st.SearchStrategy[bytes]:
    """Valid lines of both specs with a few bytes changed, dropped or inserted."""

    def damage(line: bytes, edits: list[tuple[int, int]]) -> bytes:
        out = bytearray(line)
        for pos, byte in edits:
            if not out:
                break
            i = pos % len(out)
            if byte < 64:
                del out[i]
            elif byte < 128:
                out.insert(i, byte)
            else:
                out[i] = byte
        return bytes(out)

    lines = st.one_of(
        m2_strategies.message_values().map(m2.encode),
        mtmount_telemetry_strategies.message_values().map(mtmount_telemetry.encode),
    )
    edits = st.lists(st.tuples(st.integers(0, 10**4), st.integers(0, 255)), max_size=4)
    return st.builds(damage, lines, edits)


def _decode_everything(stream: bytes, chunk: int, limit: int) -> int:
    """Feed ``stream``; decode every line with both specs; the number of errors raised."""
    framer = lsst_tcpip.LineFramer(max_line_bytes=limit)
    errors = 0

    def take() -> bool:
        nonlocal errors
        try:
            line = framer.next_line()
        except RemoteProtocolError:
            errors += 1
            return True
        if line is NEED_DATA or line is STREAM_END:
            return False
        for codec in (m2, mtmount_telemetry):
            try:
                value = codec.decode_line(line)
            except RemoteProtocolError:
                errors += 1
                continue
            try:
                msg = codec.decode_message(value)
            except RemoteProtocolError:
                errors += 1
                continue
            # whatever decodes is a valid message: it encodes again, unchanged (repr: NaN)
            assert repr(codec.decode(codec.encode(msg)[:-2])) == repr(msg)
        return True

    for i in range(0, len(stream), chunk):
        framer.feed(stream[i : i + chunk])
        while take():
            pass
    framer.feed_eof()
    while take():
        pass
    return errors


@settings(max_examples=150, deadline=None)
@given(
    parts=st.lists(st.one_of(st.binary(max_size=40), _json_ish(), _mutated_lines()), max_size=6),
    chunk=st.integers(min_value=1, max_value=200),
    limit=st.sampled_from([64, 512, 65536]),
)
def test_random_bytes_raise_only_remote_protocol_errors(
    parts: list[bytes], chunk: int, limit: int
) -> None:
    stream = b"\r\n".join(parts)
    # anything else (TypeError, KeyError, RecursionError, ...) fails the test
    _decode_everything(stream, chunk, limit)


def test_deep_nesting_is_a_json_syntax_error() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert _decode_everything(deep + b"\r\n", 65536, 300_000) == 2
    framer = lsst_tcpip.LineFramer()
    framer.feed(b"x" * 70_000 + b"\r\n")
    with pytest.raises(LineTooLongError):
        framer.next_line()
