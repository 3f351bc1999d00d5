"""The generated LSST codecs (``lsst_tcpip``, ``m2``, ``mtmount_telemetry``) against the golden
vectors, at codec level: no sockets, only ``LineFramer``, ``decode_line``/``encode_line`` and the
typed message codecs.

Vectors: ``<vectors root>/lsst`` (``tests/vectors/lsst``, or ``$DAQWIRE_VECTORS/lsst``).

* every client frame the reference wrote is reproduced byte for byte by the generated encoders;
* every controller frame decodes to its typed class and re-encodes byte for byte;
* the plain JSON exchanges decode to the recorded Python values and re-encode to the same bytes;
* every MTMount frame with text decodes to what the reference client published (or to our
  documented error where the reference logged one);
* the malformed-input cases, pushed through ``LineFramer`` and ``decode_line``, give our
  documented outcomes: one typed error per bad line, and the stream goes on.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from daqwire.errors import (
    FieldValueError,
    JsonSyntaxError,
    LengthLimitError,
    LineTooLongError,
    LocalProtocolError,
    RemoteProtocolError,
    TextDecodeError,
    TruncatedError,
    UnknownMessageError,
)
from daqwire.generated import lsst_tcpip, m2
from daqwire.generated import mtmount_telemetry as mt
from daqwire.sansio import NEED_DATA, STREAM_END
from tests.conftest import vectors_root

CRLF = b"\r\n"


@cache
def _vector_text(name: str) -> str:
    path = vectors_root() / "lsst" / f"{name}.json"
    assert path.is_file(), f"no lsst vector {path} (see $DAQWIRE_VECTORS)"
    return path.read_text(encoding="utf-8")


def vector(name: str) -> dict[str, Any]:
    """A fresh parse of ``lsst/<name>.json``."""
    data: dict[str, Any] = json.loads(_vector_text(name))
    return data


def frame_bytes(frame: dict[str, Any]) -> bytes:
    """The bytes of a recorded frame: its hex, its text, or head + fill + tail for big ones."""
    if "hex" in frame:
        data = bytes.fromhex(frame["hex"])
    elif "head" in frame:
        head, tail = frame["head"].encode(), frame["tail"].encode()
        data = head + head[-1:] * (frame["len"] - len(head) - len(tail)) + tail
    else:
        data = frame["text"].encode()
    assert len(data) == frame["len"]
    return data


def frames_in(node: Any) -> Iterator[dict[str, Any]]:
    """Every recorded frame (a mapping with ``dir`` and ``len``) anywhere under ``node``."""
    if isinstance(node, dict):
        if "dir" in node and "len" in node:
            yield node
            return
        for value in node.values():
            yield from frames_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from frames_in(value)


def body(frame: dict[str, Any]) -> bytes:
    data = frame_bytes(frame)
    assert data.endswith(CRLF), data[-20:]
    return data[: -len(CRLF)]


# ---- M2: client frames -------------------------------------------------------------------------

CMD_ACK = vector("m2_command_ack")
C2S_SOURCES = {
    "tcpclient_steps": CMD_ACK["tcpclient_steps"],
    "client_originated_event_and_telemetry": CMD_ACK["client_originated_event_and_telemetry"],
    "controller_flow": CMD_ACK["controller_flow"],
    "controller_wrong_sequence_id": CMD_ACK["controller_wrong_sequence_id"],
}
C2S = [
    (f"{source}[{i}]", frame)
    for source, node in C2S_SOURCES.items()
    for i, frame in enumerate(f for f in frames_in(node) if f["dir"] == "c2s")
]


def encode_client_frame(obj: dict[str, Any]) -> bytes:
    """The generated encoder call a client makes for ``obj`` (a decoded client frame)."""
    wire_id: str = obj["id"]
    details = {k: v for k, v in obj.items() if k not in ("id", "sequence_id", "compName")}
    if wire_id == "cmd_power" and obj["powerType"] in set(m2.PowerType):
        assert list(obj) == ["powerType", "status", "id", "sequence_id"]
        return m2.encode_power(
            powerType=m2.PowerType(obj["powerType"]),
            status=obj["status"],
            sequence_id=obj["sequence_id"],
        )
    if wire_id.startswith("cmd_"):
        return m2.encode_command(name=wire_id[4:], sequence_id=obj["sequence_id"], details=details)
    encoder = {"evt_": m2.encode_event, "tel_": m2.encode_telemetry}[wire_id[:4]]
    return encoder(name=wire_id[4:], details=details, compName=obj.get("compName"))


def test_every_client_source_has_frames() -> None:
    counts = {src: sum(1 for s, _ in C2S if s.startswith(src + "[")) for src in C2S_SOURCES}
    assert counts == {
        "tcpclient_steps": 5,
        "client_originated_event_and_telemetry": 2,
        "controller_flow": 4,
        "controller_wrong_sequence_id": 1,
    }


@pytest.mark.parametrize(("where", "frame"), C2S, ids=[w for w, _ in C2S])
def test_client_frame_is_reproduced_byte_exactly(where: str, frame: dict[str, Any]) -> None:
    data = frame_bytes(frame)
    obj = json.loads(data)
    assert encode_client_frame(obj) == data
    # the encoder writes exactly the frame's key order: details first, then the header keys
    assert list(m2.decode_line(data[:-2])) == list(obj)


@pytest.mark.parametrize(("where", "frame"), C2S, ids=[w for w, _ in C2S])
def test_client_frame_decodes_to_its_class(where: str, frame: dict[str, Any]) -> None:
    obj = json.loads(frame_bytes(frame))
    if obj["id"] == "cmd_power" and obj["powerType"] == 99:
        # the reference sends a bad powerType on purpose (the controller acks, then fails);
        # a controller built on our decoder rejects it, naming the key
        with pytest.raises(FieldValueError) as info:
            m2.decode(body(frame))
        assert info.value.field_path == "power.powerType"
        assert "99 is not a PowerType" in info.value.message
        return
    msg = m2.decode(body(frame))
    expected = {"cmd_power": m2.Power}.get(obj["id"]) or {
        "cmd_": m2.Command,
        "evt_": m2.Event,
        "tel_": m2.Telemetry,
    }[obj["id"][:4]]
    assert type(msg) is expected
    assert m2.encode(msg) == frame_bytes(frame)


def test_known_client_frames_spelled_out() -> None:
    assert m2.encode_command("resetForceOffsets", 1) == (
        b'{"id": "cmd_resetForceOffsets", "sequence_id": 1}\r\n'
    )
    assert m2.encode_power(powerType=m2.PowerType.Communication, status=True, sequence_id=4) == (
        b'{"powerType": 2, "status": true, "id": "cmd_power", "sequence_id": 4}\r\n'
    )
    assert m2.encode_event("mountInPosition", {"inPosition": True}, compName="MTMount") == (
        b'{"inPosition": true, "id": "evt_mountInPosition", "compName": "MTMount"}\r\n'
    )
    assert m2.encode_telemetry("elevation", {"actualPosition": 45.0}, compName="MTMount") == (
        b'{"actualPosition": 45.0, "id": "tel_elevation", "compName": "MTMount"}\r\n'
    )
    # no compName: the key is left out, as the reference leaves it out for comp_name=None
    assert m2.encode_event("x") == b'{"id": "evt_x"}\r\n'


def test_power_with_a_bad_type_needs_the_generic_command() -> None:
    """The reference's deliberate ``powerType: 99`` is not a Power; encode_command writes it."""
    with pytest.raises(LocalProtocolError) as info:
        m2.encode_power(powerType=99, status=True, sequence_id=3)  # type: ignore[arg-type]
    assert info.value.field_path == "power.powerType"
    line = m2.encode_command("power", 3, {"powerType": 99, "status": True})
    assert line == b'{"powerType": 99, "status": true, "id": "cmd_power", "sequence_id": 3}\r\n'


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: m2.encode_command("reset forces", 1), "command.id"),
        (lambda: m2.encode_command("", 1), "command.id"),
        (lambda: m2.encode_command("x", 0), "command.sequence_id"),
        (lambda: m2.encode_command("x", m2.SEQUENCE_ID_MAX + 1), "command.sequence_id"),
        (lambda: m2.encode_command("x", True), "command.sequence_id"),
        (lambda: m2.encode_power(powerType=1, status=1, sequence_id=1), "power.status"),
        (lambda: m2.encode_event("x", compName=5), "event.compName"),
    ],
)
def test_client_encoders_refuse_bad_values(call: Any, field: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        call()
    assert info.value.field_path == field
    assert info.value.protocol == "m2"


def test_sequence_id_bounds_are_the_reference_wrap() -> None:
    assert m2.SEQUENCE_ID_MAX == 2**31 - 1
    line = m2.encode_command("x", m2.SEQUENCE_ID_MAX)
    assert line.endswith(b'"sequence_id": 2147483647}\r\n')


# ---- M2: controller frames ---------------------------------------------------------------------

TEL_EV = vector("m2_telemetry_events")
S2C_SOURCES = {
    "tcpclient_steps": CMD_ACK["tcpclient_steps"],
    "controller_flow": CMD_ACK["controller_flow"],
    "controller_wrong_sequence_id": CMD_ACK["controller_wrong_sequence_id"],
    "welcome": TEL_EV["welcome"],
    "events_first_of_each_id": TEL_EV["events_first_of_each_id"],
    "telemetry_first_of_each_id": TEL_EV["telemetry_first_of_each_id"],
}
S2C = [
    (f"{source}[{i}]", frame)
    for source, node in S2C_SOURCES.items()
    for i, frame in enumerate(f for f in frames_in(node) if f["dir"] == "s2c")
]
STATUS_CLASSES = {"ack": m2.Ack, "noack": m2.Noack, "success": m2.Success, "fail": m2.Fail}


def test_controller_frame_counts() -> None:
    assert len(TEL_EV["welcome"]) == TEL_EV["marks"]["welcome_frames_s2c"] == 109
    assert len(TEL_EV["telemetry_first_of_each_id"]) == 19
    assert len(TEL_EV["events_first_of_each_id"]) == 23
    assert len(S2C) == 180


@pytest.mark.parametrize(("where", "frame"), S2C, ids=[w for w, _ in S2C])
def test_controller_frame_decodes_typed_and_reencodes(where: str, frame: dict[str, Any]) -> None:
    data = frame_bytes(frame)
    msg = m2.decode(body(frame))
    wire_id = json.loads(data)["id"]
    # every id the mock sent has a class of its own: nothing falls through to ServerMessage
    assert type(msg) is not m2.ServerMessage
    assert type(msg) is m2.BY_ID[wire_id]
    assert m2.MESSAGES[msg.MESSAGE_NAME] is type(msg)
    assert m2.encode(msg) == data
    m2.validate(msg.MESSAGE_NAME, m2.to_wire(msg))
    m2.validate(msg.MESSAGE_NAME, m2.decode_line(body(frame)))
    if wire_id in STATUS_CLASSES:
        assert type(msg) is STATUS_CLASSES[wire_id]
        assert wire_id in m2.STATUS_IDS


def test_every_recorded_controller_id_has_a_typed_class() -> None:
    ids = {json.loads(frame_bytes(f))["id"] for _, f in S2C}
    ids |= set(TEL_EV["telemetry_id_order_head"])
    ids |= set(CMD_ACK["controller_flow"]["controller_saw"]["event_ids_head"])
    ids |= set(CMD_ACK["controller_flow"]["controller_saw"]["telemetry_ids_head"])
    assert not ids - set(m2.BY_ID), "ids that would decode as ServerMessage"
    assert len(ids) == 42


def test_controller_frames_with_sharp_values() -> None:
    by_id = {json.loads(frame_bytes(f))["id"]: f for _, f in S2C}
    mask = m2.decode(body(by_id["enabledFaultsMask"]))
    assert isinstance(mask, m2.EnabledFaultsMask)
    assert mask.mask == 18410715311050326015 > 2**63  # an int beyond int64
    summary = m2.decode(body(by_id["summaryFaultsStatus"]))
    assert isinstance(summary, m2.SummaryFaultsStatus) and summary.status == 2**57
    position = m2.decode(body(by_id["position"]))
    assert isinstance(position, m2.Position)
    # an int in a float field stays an int, so it is written back as 0, not 0.0
    assert type(position.xRot) is int and position.xRot == 0
    assert math.copysign(1.0, position.z) == -1.0  # -0.0 survives
    tangent = m2.decode(body(by_id["tangentForce"]))
    assert isinstance(tangent, m2.TangentForce) and tangent.lutTemperature == ()
    state = m2.decode(body(by_id["powerSystemState"]))
    assert isinstance(state, m2.PowerSystemState)
    assert state.powerType is m2.PowerType.Communication
    assert m2.to_dict(state) == {"powerType": 2, "status": False, "state": 1}


def test_unknown_controller_id_is_a_server_message() -> None:
    line = b'{"id": "brandNewEvent", "a": [1, 2], "b": null}'
    msg = m2.decode(line)
    assert msg == m2.ServerMessage(name="brandNewEvent", details={"a": [1, 2], "b": None})
    assert m2.encode(msg) == line + CRLF
    assert m2.to_dict(msg) == {"name": "brandNewEvent", "details": {"a": [1, 2], "b": None}}


def test_status_with_a_foreign_sequence_id_still_decodes() -> None:
    """Matching a status to its command is the client's business, not the codec's."""
    (late,) = [f for f in CMD_ACK["controller_wrong_sequence_id"]["frames"] if "101" in f["text"]]
    assert m2.decode(body(late)) == m2.Success(sequence_id=101)


@pytest.mark.parametrize(
    ("line", "error", "field"),
    [
        (b'{"id": "ack"}', FieldValueError, "ack.sequence_id"),
        (b'{"id": "ack", "sequence_id": 1, "extra": 0}', FieldValueError, "ack"),
        (b'{"id": "ack", "sequence_id": "1"}', FieldValueError, "ack.sequence_id"),
        (b'{"id": "ack", "sequence_id": 1.0}', FieldValueError, "ack.sequence_id"),
        (b'{"id": "powerSystemState", "powerType": 3, "status": true, "state": 1}',
         FieldValueError, "power_system_state.powerType"),
        (b'{"id": "interlock", "state": 1}', FieldValueError, "interlock.state"),
        (b'{"id": "netForcesTotal", "fx": true, "fy": 0, "fz": 0}',
         FieldValueError, "net_forces_total.fx"),
        (b'{"sequence_id": 1}', FieldValueError, "id"),
        (b'{"id": 7}', FieldValueError, "server_message.id"),
        (b"[1, 2]", FieldValueError, ""),
        (b'"ack"', FieldValueError, ""),
    ],
)  # fmt: skip
def test_bad_controller_lines(line: bytes, error: type[Exception], field: str) -> None:
    with pytest.raises(error) as info:
        m2.decode(line)
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.field_path == field
    assert info.value.protocol == "m2"


def test_decode_named_message_checks_the_class() -> None:
    obj = {"id": "ack", "sequence_id": 3}
    assert m2.decode_ack(obj) == m2.Ack(sequence_id=3)
    with pytest.raises(FieldValueError, match="expected success, got ack"):
        m2.decode_success(obj)


def test_m2_borrows_the_lsst_tcpip_framing() -> None:
    assert m2.LineFramer is lsst_tcpip.LineFramer
    assert m2.decode_line is lsst_tcpip.decode_line
    assert m2.encode_line is lsst_tcpip.encode_line
    assert (m2.TERMINATOR, m2.ENCODING, m2.MAX_LINE_BYTES, m2.DIALECT) == (
        b"\r\n",
        "utf-8",
        65536,
        "python",
    )
    assert mt.LineFramer is lsst_tcpip.LineFramer
    assert (m2.COMMAND_PORT, m2.TELEMETRY_PORT, mt.TELEMETRY_PORT) == (50000, 50001, 50035)


# ---- plain JSON exchange -----------------------------------------------------------------------

PLAIN = vector("plain_json_exchange")
EXCHANGES = [(i, f) for i, e in enumerate(PLAIN["exchanges"]) for f in e["frames"]]


@pytest.mark.parametrize(
    ("index", "frame"), EXCHANGES, ids=[f"{i}-{f['dir']}" for i, f in EXCHANGES]
)
def test_plain_exchange_frame(index: int, frame: dict[str, Any]) -> None:
    exchange = PLAIN["exchanges"][index]
    value = lsst_tcpip.decode_line(body(frame))
    if "decoded_reply_repr" in exchange:
        assert repr(value) == exchange["decoded_reply_repr"]  # repr: NaN != NaN
    else:  # write_str/read_str: the text of the line is the recorded string
        assert lsst_tcpip.decode_text(body(frame)) == exchange["read_str_result"]
    assert lsst_tcpip.encode_line(value) == frame_bytes(frame)
    assert lsst_tcpip.dumps(value).encode() + lsst_tcpip.TERMINATOR == frame_bytes(frame)


def test_plain_exchange_sharp_values() -> None:
    by_sent = {e["sent_python"]: body(e["frames"][1]) for e in PLAIN["exchanges"]}
    assert lsst_tcpip.decode_line(by_sent["12345678901234567890"]) == 12345678901234567890
    unicode = lsst_tcpip.decode_line(by_sent["{'msg': 'data with unicode 😀 and é'}"])
    assert unicode == {"msg": "data with unicode \U0001f600 and \xe9"}
    # ensure_ascii on the wire, raw UTF-8 accepted on the way in
    assert b"\\ud83d\\ude00" in lsst_tcpip.encode_line(unicode)
    assert lsst_tcpip.decode_line(json.dumps(unicode, ensure_ascii=False).encode()) == unicode
    special = lsst_tcpip.decode_line(by_sent["{'nan': nan, 'inf': inf, 'ninf': -inf}"])
    assert math.isnan(special["nan"]) and special["inf"] == -special["ninf"] == math.inf


def test_heartbeat_frame() -> None:
    frame = PLAIN["heartbeat_frame"]
    assert lsst_tcpip.HEARTBEAT.encode(lsst_tcpip.ENCODING) + lsst_tcpip.TERMINATOR == (
        frame_bytes(frame)
    )
    # a heartbeat is a whole line that is not JSON: recognise it before decoding
    with pytest.raises(JsonSyntaxError):
        lsst_tcpip.decode_line(lsst_tcpip.HEARTBEAT.encode())
    assert lsst_tcpip.decode_line(b'"heartbeat"') == "heartbeat"


def test_framing_constants() -> None:
    assert lsst_tcpip.TERMINATOR == b"\r\n"
    assert lsst_tcpip.ENCODING == "utf-8"
    assert lsst_tcpip.MAX_LINE_BYTES == 65536
    assert lsst_tcpip.DIALECT == "python"
    assert (
        lsst_tcpip.KEEPALIVE_IDLE_S,
        lsst_tcpip.KEEPALIVE_COUNT,
        lsst_tcpip.KEEPALIVE_INTERVAL_S,
    ) == (60, 4, 15)


def test_dumps_refuses_what_json_cannot_write() -> None:
    with pytest.raises(LocalProtocolError, match="cannot write set as JSON"):
        lsst_tcpip.encode_line({1, 2})
    with pytest.raises(LocalProtocolError):
        lsst_tcpip.dumps({"b": b"bytes"})


# ---- MTMount telemetry -------------------------------------------------------------------------

MTM = vector("mtmount_telemetry")
PART_A = MTM["partA_mock_tma"]
PART_B = MTM["partB_all_topics_and_edges"]
BY_WIRE_NAME = {cls.WIRE_NAME: cls for cls in mt.MESSAGES.values()}
TRUNCATED = re.compile(r"\.\.\.\((\d+) items\)")


def assert_published(recorded: dict[str, Any], actual: dict[str, Any]) -> None:
    """``actual`` (``to_dict``) equals the recorded SAL data; long arrays were cut in the vector."""
    assert set(actual) == set(recorded)
    for key, want in recorded.items():
        got = actual[key]
        if isinstance(want, list) and want and isinstance(want[-1], str):
            m = TRUNCATED.fullmatch(want[-1])
            assert m, want[-1]
            assert len(got) == int(m.group(1)), key
            assert got[: len(want) - 1] == want[:-1], key
        else:
            assert got == want, key


def test_every_topic_has_a_class() -> None:
    assert len(mt.MESSAGES) == 26 == len(PART_B["per_topic"])
    by_topic = {
        mt.SCHEMAS[name]["properties"]["topicID"]["const"]: c for name, c in mt.MESSAGES.items()
    }
    assert sorted(by_topic) == [t["topicID"] for t in PART_B["per_topic"]]
    for t in PART_B["per_topic"]:
        (published,) = t["published"]
        assert by_topic[t["topicID"]].WIRE_NAME == published["topic"].removeprefix("tel_")


def test_topic_id_constants_are_named_after_the_key() -> None:
    assert mt.Azimuth.TOPIC_ID == 6
    assert mt.BY_TOPIC_ID[6] is mt.Azimuth


@pytest.mark.parametrize("topic", sorted(PART_A["first_frame_per_topic"]))
def test_mock_tma_first_frames(topic: str) -> None:
    frame = PART_A["first_frame_per_topic"][topic]
    msg = mt.decode(body(frame))
    assert mt.to_wire(msg)["topicID"] == int(topic)
    sal = PART_A["sal_first_per_topic"][f"tel_{msg.WIRE_NAME}"]
    assert_published(sal["data"], mt.to_dict(msg))
    # the mock's extra keys (demandJerk...) are ignored, so the frame is not rewritten as sent
    extra = set(json.loads(frame_bytes(frame))) - set(mt.to_wire(msg))
    assert "demandJerk" in extra and "demandJerkTimestamp" in extra
    line = mt.encode(msg)
    assert line != frame_bytes(frame)
    assert mt.decode(line[:-2]) == msg
    mt.validate(msg.MESSAGE_NAME, json.loads(frame_bytes(frame)))  # the schema ignores them too


TOPICS = PART_B["per_topic"]


@pytest.mark.parametrize("topic", TOPICS, ids=[str(t["topicID"]) for t in TOPICS])
def test_all_topics_published_data(topic: dict[str, Any]) -> None:
    (published,) = topic["published"]
    cls = BY_WIRE_NAME[published["topic"].removeprefix("tel_")]
    data = published["data"]
    wire_keys = list(mt.SCHEMAS[cls.MESSAGE_NAME]["properties"])
    # our wire key order starts as the reference feed's did
    assert wire_keys[: len(topic["frame_keys_head"])] == topic["frame_keys_head"]
    if topic["frame_text"] is not None:
        frame = topic["frame_text"].encode()
        assert len(frame) == topic["frame_len"]
        msg = mt.decode(frame[:-2])
        assert type(msg) is cls
        assert_published(data, mt.to_dict(msg))
        assert mt.encode(msg) == frame
    cut = any(isinstance(v, list) and v and isinstance(v[-1], str) for v in data.values())
    if not cut:
        # rebuilt from what was published, the message has the frame's exact length
        msg = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
        line = mt.encode(msg)
        assert len(line) == topic["frame_len"]
        if topic["frame_text"] is not None:
            assert line == topic["frame_text"].encode()


def test_numbered_keys_become_arrays() -> None:
    (t8,) = [t for t in TOPICS if t["topicID"] == 8]
    msg = mt.decode(t8["frame_text"].encode()[:-2])
    assert isinstance(msg, mt.CameraCableWrap)
    assert len(msg.actualTorquePercentage) == len(msg.actualTorquePercentageTimestamp) == 2
    wire = mt.to_wire(msg)
    assert [k for k in wire if k.startswith("actualTorquePercentage")] == [
        "actualTorquePercentage1",
        "actualTorquePercentage2",
        "actualTorquePercentage1Timestamp",
        "actualTorquePercentage2Timestamp",
    ]


EDGES = PART_B["edge_cases"]


def edge_outcome(case: dict[str, Any]) -> Any:
    """The message, or the error, our decoder gives for one edge-case frame."""
    try:
        return mt.decode(body(case["frame"]))
    except RemoteProtocolError as exc:
        return exc


@pytest.mark.parametrize("index", range(len(EDGES)))
def test_edge_cases(index: int) -> None:
    case = EDGES[index]
    obj = json.loads(frame_bytes(case["frame"]))
    outcome = edge_outcome(case)
    logs = " ".join(log["msg"] for log in case["logs"])
    tel = [p for p in case["published"] if p["topic"].startswith("tel_")]
    known = {t["topicID"] for t in TOPICS}
    if tel:  # published by the reference: extra keys ignored
        (published,) = tel
        assert not isinstance(outcome, Exception)
        assert set(obj) - set(mt.to_wire(outcome)) == {"demandJerk", "brandNewField"}
        assert_published(published["data"], mt.to_dict(outcome))
    elif not isinstance(obj, dict):  # TypeError upstream
        assert [log["exc"] for log in case["logs"]] == ["TypeError"]
        assert type(outcome) is FieldValueError
        assert "expected a JSON object, got array" in outcome.message
    elif "topicID" not in obj:  # KeyError upstream
        assert [log["exc"] for log in case["logs"]] == ["KeyError"]
        assert type(outcome) is FieldValueError
        assert outcome.field_path == "topicID"
    elif type(obj["topicID"]) is not int or obj["topicID"] not in known:
        # the reference logs an unknown topic once, then ignores it silently
        assert logs == "" or "Ignoring unsupported topic ID" in logs
        assert type(outcome) is UnknownMessageError
        assert outcome.value == obj["topicID"]
        assert outcome.field_path == "topicID"
    else:  # a missing key (KeyError upstream)
        assert [log["exc"] for log in case["logs"]] == ["KeyError"]
        assert type(outcome) is FieldValueError
        assert outcome.field_path == "azimuth.actualAcceleration"
        assert "'actualAcceleration'" in outcome.message


def test_edge_cases_cover_every_kind() -> None:
    kinds = [type(edge_outcome(c)).__name__ for c in EDGES]
    assert kinds == [
        "UnknownMessageError",
        "UnknownMessageError",
        "FieldValueError",
        "Azimuth",
        "FieldValueError",
        "FieldValueError",
        "UnknownMessageError",
    ]
    assert edge_outcome(EDGES[6]).value == "6"  # a string topicID selects nothing


def test_wrongly_typed_telemetry_values() -> None:
    (t6,) = [t for t in TOPICS if t["topicID"] == 6]
    obj = json.loads(t6["frame_text"])
    for key, bad in [("actualPosition", "1.0"), ("actualPositionTimestamp", None)]:
        wrong = dict(obj, **{key: bad})
        with pytest.raises(FieldValueError) as info:
            mt.decode_message(wrong)
        assert info.value.field_path == f"azimuth.{key}"
    assert type(mt.decode_message(dict(obj, topicID=6))) is mt.Azimuth
    with pytest.raises(UnknownMessageError):
        mt.decode_message(dict(obj, topicID=True))  # a bool is not the topic 1


# ---- malformed input through LineFramer + decode_line ------------------------------------------

MALFORMED = vector("malformed")["cases"]


def run_case(items: list[dict[str, Any]], chunk: int | None = None) -> list[Any]:
    """Feed a case's server bytes (``chunk``-sized pieces, or as recorded) and decode each line.

    The outcome list holds decoded values, the errors raised, and ``STREAM_END``.
    """
    framer = lsst_tcpip.LineFramer()
    out: list[Any] = []

    def drain() -> None:
        while True:
            try:
                line = framer.next_line()
            except RemoteProtocolError as exc:
                out.append(exc)
                continue
            if line is NEED_DATA:
                return
            if line is STREAM_END:
                out.append(STREAM_END)
                return
            offset = framer.offset - len(line) - len(framer.terminator)
            try:
                out.append(lsst_tcpip.decode_line(line, offset=offset))
            except RemoteProtocolError as exc:
                out.append(exc)

    for item in items:
        action = item.get("action")
        if action in ("eof", "rst"):
            framer.feed_eof()
            drain()
        elif action is None:
            data = frame_bytes(item)
            step = chunk or len(data)
            for i in range(0, len(data), step):
                framer.feed(data[i : i + step])
                drain()
                assert framer.buffered_bytes <= framer.max_line_bytes + len(CRLF) - 1
    return out


def reference(case: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = MALFORMED[case]["tcpip_Client"]["read_json_results"]
    return results


OK = {"ok": 1}


@pytest.mark.parametrize("chunk", [None, 1, 3])
@pytest.mark.parametrize("case", ["non_json_line", "empty_line", "lf_only_lines"])
def test_non_json_line_is_a_json_syntax_error_like_the_reference(case: str, chunk: Any) -> None:
    out = run_case(MALFORMED[case]["server_bytes"], chunk)
    ref = reference(case)[0]["raised"]
    err = out[0]
    assert type(err) is JsonSyntaxError
    assert isinstance(err, json.JSONDecodeError) and isinstance(err, ValueError)
    assert err.msg.startswith(ref["msg_head"])
    assert err.msg.endswith(ref["str"].removeprefix(ref["msg_head"] + ": "))
    assert err.pos == ref["pos"]
    assert err.offset == 0 and err.field_path == "line" and err.protocol == "lsst_tcpip"
    assert out[1:] == ([OK] if case != "lf_only_lines" else [])


def test_non_json_message_text() -> None:
    (err, ok) = run_case(MALFORMED["non_json_line"]["server_bytes"])
    assert isinstance(err, JsonSyntaxError) and ok == OK
    assert err.msg == "data='not json' is not valid json: Expecting value: line 1 column 1 (char 0)"
    assert str(err) == f"lsst_tcpip.line at byte 0: {err.msg}"
    assert err.doc == "not json" and (err.lineno, err.colno) == (1, 1)


def test_long_non_json_line_is_shown_shortened() -> None:
    text = "x" * 1000
    with pytest.raises(JsonSyntaxError) as info:
        lsst_tcpip.loads(text)
    assert info.value.msg.startswith(f"data='{'x' * 200}... (1000 characters)' is not valid json")
    assert info.value.doc == text


@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_bad_utf8_is_a_text_decode_error(chunk: Any) -> None:
    out = run_case(MALFORMED["invalid_utf8"]["server_bytes"], chunk)
    ref = reference("invalid_utf8")[0]["raised"]
    err, ok = out
    assert type(err) is TextDecodeError and isinstance(err, UnicodeDecodeError)
    assert (err.start, err.reason, err.encoding) == (ref["start"], ref["reason"], "utf-8")
    assert err.message == ref["str"]
    assert err.offset == 7 and err.field_path == "line"
    assert ok == OK == json.loads(reference("invalid_utf8")[1]["returned_repr"].replace("'", '"'))


def test_terminator_split_across_segments() -> None:
    for chunk in (None, 1, 2):
        assert run_case(MALFORMED["terminator_split_across_segments"]["server_bytes"], chunk) == [
            {"a": 1},
            {"b": 2},
        ]


@pytest.mark.parametrize("chunk", [None, 4096, 65535])
def test_line_exactly_at_the_limit_is_accepted(chunk: Any) -> None:
    items = MALFORMED["line_exactly_at_limit"]["server_bytes"]
    assert len(frame_bytes(items[0])) - 2 == lsst_tcpip.MAX_LINE_BYTES
    value, ok = run_case(items, chunk)
    assert value == "x" * (lsst_tcpip.MAX_LINE_BYTES - 2) and ok == OK


@pytest.mark.parametrize("chunk", [None, 4096, 65536, 65537])
def test_line_one_over_the_limit_raises_once_then_resyncs(chunk: Any) -> None:
    items = MALFORMED["line_one_over_limit"]["server_bytes"]
    out = run_case(items, chunk)
    assert len(out) == 2 and out[1] == OK
    err = out[0]
    assert type(err) is LineTooLongError
    assert isinstance(err, asyncio.LimitOverrunError) and isinstance(err, LengthLimitError)
    assert err.limit == 65536 and err.offset == 0
    if chunk is None:  # the whole line was there: its length is known, as the reference says
        ref = reference("line_one_over_limit")[0]["raised"]
        assert err.consumed == err.actual == ref["consumed"] == 65537


def test_over_limit_without_terminator_is_one_error_and_bounded() -> None:
    (item,) = MALFORMED["over_limit_no_terminator_yet"]["server_bytes"]
    data = frame_bytes(item)
    for chunk in (len(data), 4096, 1000):
        framer = lsst_tcpip.LineFramer()
        errors = []
        for i in range(0, len(data), chunk):
            framer.feed(data[i : i + chunk])
            assert framer.buffered_bytes <= framer.max_line_bytes + 1 + chunk
            try:
                assert framer.next_line() is NEED_DATA
            except LineTooLongError as exc:
                errors.append(exc)
                assert framer.next_line() is NEED_DATA
            assert framer.buffered_bytes <= len(CRLF) - 1 or not errors
        assert len(errors) == 1 and errors[0].offset == 0
        assert errors[0].actual > framer.max_line_bytes
        assert framer.buffered_bytes <= len(CRLF) - 1
        # the stream goes on at the next terminator
        framer.feed(b"tail of the long line\r\n" + b'{"ok": 1}\r\n')
        line = framer.next_line()
        assert line == b'{"ok": 1}' and lsst_tcpip.decode_line(line) == OK
        assert framer.offset == len(data) + len(b"tail of the long line\r\n" + b'{"ok": 1}\r\n')
        assert framer.lines_skipped == 1


def test_missing_terminator_then_eof_is_truncated() -> None:
    items = MALFORMED["missing_terminator_then_eof"]["server_bytes"]
    first, err, end = run_case(items)
    assert first == {"a": 1} and end is STREAM_END
    ref = reference("missing_terminator_then_eof")[1]["raised"]
    assert type(err) is TruncatedError
    assert err.partial == b'{"b": 2}' == ref["partial_head"].encode()  # type: ignore[attr-defined]
    assert len(err.partial) == ref["partial_len"]  # type: ignore[attr-defined]
    assert err.offset == 10


@pytest.mark.parametrize("case", ["clean_eof", "peer_reset"])
def test_end_of_stream(case: str) -> None:
    assert run_case(MALFORMED[case]["server_bytes"]) == [STREAM_END]


def test_nan_tokens_are_accepted() -> None:
    (value,) = run_case(MALFORMED["nan_tokens"]["server_bytes"])
    assert repr(value) == reference("nan_tokens")[0]["returned_repr"] == "{'v': nan, 'w': -inf}"
    assert lsst_tcpip.encode_line(value) == frame_bytes(MALFORMED["nan_tokens"]["server_bytes"][0])


def test_every_malformed_case_is_covered() -> None:
    covered = {
        "non_json_line",
        "empty_line",
        "lf_only_lines",
        "terminator_split_across_segments",
        "invalid_utf8",
        "line_exactly_at_limit",
        "line_one_over_limit",
        "over_limit_no_terminator_yet",
        "missing_terminator_then_eof",
        "clean_eof",
        "peer_reset",
        "nan_tokens",
    }
    assert set(MALFORMED) == covered


# ---- LineFramer details ------------------------------------------------------------------------


def test_framer_offsets_add_up() -> None:
    framer = lsst_tcpip.LineFramer(max_line_bytes=8)
    framer.feed(b"ab\r\n\r\n0123456789\r\ncd\r\nef")
    seen: list[Any] = []
    while (x := _next(framer)) is not NEED_DATA:
        seen.append((x, framer.offset))
    assert seen[0] == (b"ab", 4)
    assert seen[1] == (b"", 6)
    assert isinstance(seen[2][0], LineTooLongError) and seen[2][0].offset == 6
    assert seen[2][1] == 18
    assert seen[3] == (b"cd", 22)
    assert framer.buffered_bytes == 2
    framer.feed_eof()
    err = _next(framer)
    assert isinstance(err, TruncatedError) and err.offset == 22
    assert _next(framer) is STREAM_END and framer.offset == 24


def _next(framer: lsst_tcpip.LineFramer) -> Any:
    try:
        return framer.next_line()
    except RemoteProtocolError as exc:
        return exc


def test_framer_refuses_bad_arguments() -> None:
    with pytest.raises(LocalProtocolError, match="must be non-empty bytes"):
        lsst_tcpip.LineFramer(terminator="\r\n")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="must be non-empty bytes"):
        lsst_tcpip.LineFramer(terminator=b"")
    with pytest.raises(LocalProtocolError, match="at least 1"):
        lsst_tcpip.LineFramer(max_line_bytes=0)
    framer = lsst_tcpip.LineFramer()
    framer.feed_eof()
    with pytest.raises(LocalProtocolError, match="after feed_eof"):
        framer.feed(b"x")


def test_framer_takes_any_buffer() -> None:
    framer = lsst_tcpip.LineFramer()
    framer.feed(memoryview(b'{"a": 1}\r\n'))
    framer.feed(bytearray(b"[]\r\n"))
    assert framer.next_line() == b'{"a": 1}' and framer.next_line() == b"[]"
    assert lsst_tcpip.decode_line(memoryview(b"[1]")) == [1]
    assert lsst_tcpip.decode_line(bytearray(b"2")) == 2


def test_decode_text_reports_the_stream_offset() -> None:
    with pytest.raises(TextDecodeError) as info:
        lsst_tcpip.decode_line(b'"\xe9"', offset=100)
    assert info.value.offset == 101 and info.value.start == 1
    with pytest.raises(JsonSyntaxError) as syntax:
        lsst_tcpip.decode_line(b"{", offset=100)
    assert syntax.value.offset == 100


# ---- encode refuses what it cannot write (regressions of fixed generator bugs) -----------------


@pytest.mark.parametrize(
    "msg",
    [
        m2.Command(name=5, sequence_id=1),  # type: ignore[arg-type]
        m2.Power(powerType=None, status=True, sequence_id=1),  # type: ignore[arg-type]
        m2.Power(powerType="x", status=True, sequence_id=1),  # type: ignore[arg-type]
        m2.HardpointList(actuators=None),  # type: ignore[arg-type]
        mt.AzimuthDrives(current=None, currentTimestamp=(0.0,) * 16, timestamp=0.0),  # type: ignore[arg-type]
    ],
    ids=["name-int", "enum-None", "enum-str", "array-None", "numbered-None"],
)
def test_encode_refuses_wrongly_typed_values_with_local_protocol_error(msg: Any) -> None:
    module = m2 if type(msg).__module__.endswith(".m2") else mt
    with pytest.raises(LocalProtocolError):
        module.encode(msg)


@pytest.mark.parametrize(
    "msg",
    [
        m2.Command(name="x", sequence_id=1, details={"id": "zzz", "a": 1}),
        m2.Command(name="x", sequence_id=1, details={"sequence_id": 7}),
        m2.Event(name="x", details={"compName": "a"}),
        m2.ServerMessage(name="x", details={"id": "ack"}),
    ],
    ids=["command-id", "command-sequence_id", "event-compName", "server_message-id"],
)
def test_encode_refuses_details_that_hold_a_listed_key(msg: Any) -> None:
    # the reference refuses this: ValueError("The 'id' is in the message details already.")
    with pytest.raises(LocalProtocolError, match="repeat the key"):
        m2.encode(msg)


def test_encode_refuses_a_numbered_array_of_the_wrong_length() -> None:
    msg = mt.AzimuthDrives(current=(1.0,) * 17, currentTimestamp=(0.0,) * 16, timestamp=0.0)
    with pytest.raises(LocalProtocolError):
        mt.encode(msg)


def test_encode_errors_keep_their_field_path() -> None:
    """``_wire_*`` raises LocalProtocolError (a ValueError) and encode() wraps it again."""
    too_long = mt.AzimuthDrives(current=(1.0,) * 17, currentTimestamp=(0.0,) * 16, timestamp=0.0)
    with pytest.raises(LocalProtocolError) as info:
        mt.encode(too_long)
    # today: field_path "" and "cannot write AzimuthDrives: mtmount_telemetry.azimuth_drives..."
    assert info.value.field_path == "azimuth_drives.current"
    with pytest.raises(LocalProtocolError) as clash:
        m2.encode(m2.Command(name="x", sequence_id=1, details={"id": "zzz"}))
    assert clash.value.field_path == "command.details"


def test_encode_refuses_what_is_not_a_message() -> None:
    with pytest.raises(LocalProtocolError):
        m2.encode({"id": "ack", "sequence_id": 1})  # type: ignore[arg-type]


def test_command_name_with_a_final_newline_is_refused_by_both() -> None:
    obj = {"id": "cmd_abc\n", "sequence_id": 1}
    with pytest.raises(FieldValueError):
        m2.decode_message(obj)  # fullmatch: refused
    with pytest.raises(FieldValueError):
        m2.validate("command", obj)  # re.search("^cmd_(?:[A-Za-z0-9_]+)$", ...) matches today
