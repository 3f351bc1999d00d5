"""The CSCP1 codec against the control exchanges captured from both Constellation generations.

Vectors: ``tests/vectors/constellation/cscp1`` (or ``$DAQWIRE_VECTORS/constellation/cscp1``):
one file per generation, each a controller-to-satellite command sequence with the request and
reply frames. Every frame decodes (header sender, tz-aware time, tags, verb type and text,
payload when there is one) to what was recorded and re-encodes byte for byte.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import msgpack
import pytest

from daqwire.generated import cscp1
from tests.conftest import vectors_root

CSCP_DIR = vectors_root() / "constellation" / "cscp1"
FILES = {
    "cscp1_datasender_control_run": "VectorDataSender.sat1",
    "cscp1_transmitter_1.0.2_control_run": "VectorTransmitter.sat1",
}


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CSCP_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _exchanges() -> list[Any]:
    out = []
    for name in FILES:
        for i, exchange in enumerate(_load(name)["exchanges"]):
            out.append(pytest.param(name, exchange, id=f"{name}-{i}-{exchange['command']}"))
    return out


def from_json(value: Any) -> Any:
    """``$datetime``/``$timestamp`` (decoded with timestamp=3) as tz-aware datetimes."""
    if isinstance(value, dict):
        if "$datetime" in value:
            return datetime.fromisoformat(value["$datetime"])
        if "$timestamp" in value:
            ts = msgpack.Timestamp(
                value["$timestamp"]["seconds"], value["$timestamp"]["nanoseconds"]
            )
            return ts.to_datetime()
        if "$bytes" in value:
            return bytes.fromhex(value["$bytes"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def assert_same(actual: Any, expected: Any, where: str) -> None:
    """Equal values of exactly the same types; datetimes tz-aware (UTC) and equal."""
    if isinstance(expected, dict):
        assert type(actual) is dict, where
        assert list(actual) == list(expected), f"{where}: keys (in order)"
        for key, want in expected.items():
            assert_same(actual[key], want, f"{where}.{key}")
    elif isinstance(expected, list):
        assert type(actual) is list and len(actual) == len(expected), where
        for i, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_same(got, want, f"{where}[{i}]")
    elif isinstance(expected, datetime):
        assert type(actual) is datetime and actual.utcoffset() == timedelta(0), where
        assert actual == expected, where
    else:
        assert type(actual) is type(expected) and actual == expected, where


def _oracle(frames: list[bytes]) -> tuple[list[Any], list[Any], list[Any]]:
    """Each frame unpacked object by object with msgpack itself (timestamp=3, as the reference)."""
    out = []
    for frame in frames:
        unpacker = msgpack.Unpacker(timestamp=3)
        unpacker.feed(frame)
        out.append(list(unpacker))
    while len(out) < 3:
        out.append([])
    return out[0], out[1], out[2]


def _check_header(msg: cscp1.Message, frames: list[bytes], sender: str) -> None:
    header, verb, payload = _oracle(frames)
    assert header[0] == cscp1.PROTOCOL_ID
    assert msg.sender == sender == header[1]
    assert type(msg.time) is datetime and msg.time.utcoffset() == timedelta(0)
    assert msg.time == header[2]
    assert_same(msg.tags, header[3], "tags")
    assert [int(msg.verb_type), msg.verb] == verb
    if len(frames) == 3:
        assert_same(msg.payload, payload[0], "payload")
    else:
        assert msg.payload is cscp1.ABSENT


def _reencodes(msg: cscp1.Message, frames: list[bytes]) -> None:
    assert [bytes(f) for f in cscp1.encode_message(msg)] == frames


@pytest.mark.parametrize(("name", "exchange"), _exchanges())
def test_request_decodes_and_reencodes(name: str, exchange: dict[str, Any]) -> None:
    frames = [bytes.fromhex(h) for h in exchange["request_frames_hex"]]
    msg = cscp1.decode_message(frames)
    assert msg.verb_type is cscp1.VerbType.REQUEST
    assert msg.verb == exchange["command"]
    breakdown = exchange.get("request_header_breakdown")
    sender = breakdown[1]["value"] if breakdown else "Controller.vectors"
    _check_header(msg, frames, sender)
    if breakdown:
        assert [b["field"] for b in breakdown] == ["protocol", "sender", "time", "tags"]
        assert msg.time == from_json(breakdown[2]["value"])
        assert msg.time.isoformat() == breakdown[2]["value"]["iso"]
        assert_same(msg.tags, from_json(breakdown[3]["value"]), "tags")
    if exchange.get("request_payload") is not None:
        assert_same(msg.payload, from_json(exchange["request_payload"]), "payload")
    elif "request_payload" in exchange:
        assert msg.payload is cscp1.ABSENT
    _reencodes(msg, frames)


@pytest.mark.parametrize(("name", "exchange"), _exchanges())
def test_reply_decodes_and_reencodes(name: str, exchange: dict[str, Any]) -> None:
    frames = [bytes.fromhex(h) for h in exchange["reply_frames_hex"]]
    msg = cscp1.decode_message(frames)
    decoded = exchange["reply_decoded"]
    _check_header(msg, frames, FILES[name])
    assert msg.sender == decoded["sender"]
    assert msg.time == datetime.fromisoformat(decoded["time"])
    assert msg.time.isoformat() == decoded["time"]
    assert_same(msg.tags, from_json(decoded["tags"]), "tags")
    assert msg.verb_type is cscp1.VerbType[decoded["verb_type"]]
    assert int(msg.verb_type) == decoded["verb_code"]
    assert msg.verb == decoded["verb_msg"]
    if len(frames) == 3:
        assert_same(msg.payload, from_json(decoded["payload"]), "payload")
    else:
        assert decoded["payload"] is None and msg.payload is cscp1.ABSENT
    breakdown = exchange.get("reply_header_breakdown")
    if breakdown:
        assert msg.time == from_json(breakdown[2]["value"])
        assert_same(msg.tags, from_json(breakdown[3]["value"]), "tags")
    _reencodes(msg, frames)
    # and from the recorded values alone (the recorded time has microseconds, as on the wire)
    rebuilt = cscp1.Message(
        sender=decoded["sender"],
        time=datetime.fromisoformat(decoded["time"]),
        tags=from_json(decoded["tags"]),
        verb_type=cscp1.VerbType[decoded["verb_type"]],
        verb=decoded["verb_msg"],
        payload=from_json(decoded["payload"]) if len(frames) == 3 else cscp1.ABSENT,
    )
    _reencodes(rebuilt, frames)


def test_every_exchange_was_seen() -> None:
    counts = {name: len(_load(name)["exchanges"]) for name in FILES}
    assert counts == {"cscp1_datasender_control_run": 18, "cscp1_transmitter_1.0.2_control_run": 19}
    for name in FILES:
        states = [
            e["reply_decoded"]["verb_msg"]
            for e in _load(name)["exchanges"]
            if e["command"] == "get_state"
        ]
        assert states[0] == "NEW" and states[-1] == "ERROR"
