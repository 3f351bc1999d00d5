"""The CDTP1 and CDTP2 codecs against the golden vectors recorded from the Constellation reference.

Vectors: ``tests/vectors/constellation/{cdtp1,cdtp2}`` (or ``$DAQWIRE_VECTORS/constellation``).
Every frame vector decodes to what the reference receiver recorded (every field, with the
JSON conventions of the vectors' README turned into Python values), blocks and raw payload
frames come back as zero-copy views of the frames, and every message re-encodes byte for
byte, both from the decoded message and from the recorded values. The decode-case files are
replayed case by case: each case decodes to the recorded result or raises a typed
RemoteProtocolError with the reference's own text; where daqwire is deliberately stricter
the case is listed in a deviation table with daqwire's exact error class and text.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from daqwire.errors import (
    FieldValueError,
    LengthMismatchError,
    LocalProtocolError,
    RemoteProtocolError,
    TrailingDataError,
    TruncatedError,
)
from daqwire.generated import cdtp1, cdtp2
from tests.conftest import vectors_root

CDTP1_DIR = vectors_root() / "constellation" / "cdtp1"
CDTP2_DIR = vectors_root() / "constellation" / "cdtp2"

#: files without frames of their own (cases, probes) - everything else holds frames
CASE_FILES = {
    "cdtp1_backpressure_probe",
    "cdtp1_decode_cases",
    "cdtp1_no_receiver_bor",
    "cdtp1_satellite_lifecycle_probes",
    "cdtp1_sender_side_errors",
    "cdtp2_decode_cases",
    "cdtp2_satellite_lifecycle_probes",
}


def _ids(folder: Path, *, runs: bool) -> list[str]:
    names = sorted(p.stem for p in folder.glob("*.json") if p.stem not in CASE_FILES)
    return [n for n in names if n.endswith("_satellite_run") == runs]


def _load(folder: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _frames(folder: Path, entries: Sequence[dict[str, Any]]) -> list[bytes]:
    """The exact bytes of each frame (from its ``.bin``), checked against the JSON's copies."""
    frames = []
    for i, entry in enumerate(entries):
        assert entry["index"] == i
        data = (folder / entry["bin"]).read_bytes()
        assert len(data) == entry["len"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        if "hex" in entry:
            assert data.hex() == entry["hex"]
        frames.append(data)
    return frames


# ---- the vectors' JSON conventions as Python values --------------------------------------------


@dataclass(frozen=True)
class LongBytes:
    """A block recorded by length, digest and prefix only (``$bytes_len``)."""

    length: int
    sha256: str
    prefix: bytes


def from_json(value: Any, *, datetimes: bool = False) -> Any:
    """``$bytes``, ``$bytes_len``, ``$timestamp`` and ``$datetime`` as Python values.

    ``datetimes``: a ``$timestamp`` as the datetime a ``timestamp=3`` decoder makes of it.
    """
    if isinstance(value, dict):
        if "$bytes" in value:
            return bytes.fromhex(value["$bytes"])
        if "$bytes_len" in value:
            return LongBytes(
                value["$bytes_len"], value["$sha256"], bytes.fromhex(value["$prefix_hex"])
            )
        if "$timestamp" in value:
            ts = msgpack.Timestamp(
                value["$timestamp"]["seconds"], value["$timestamp"]["nanoseconds"]
            )
            assert ts.to_datetime().isoformat() == value["iso"]
            return ts.to_datetime() if datetimes else ts
        if "$datetime" in value:
            when = datetime.fromisoformat(value["$datetime"])
            assert when.tzinfo is not None
            return when
        return {k: from_json(v, datetimes=datetimes) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v, datetimes=datetimes) for v in value]
    return value


def assert_same(actual: Any, expected: Any, where: str) -> None:
    """``actual`` equals ``expected`` (a :func:`from_json` value) with exactly the same types."""
    if isinstance(expected, LongBytes):
        assert type(actual) is bytes, where
        assert len(actual) == expected.length, where
        assert hashlib.sha256(actual).hexdigest() == expected.sha256, where
        assert actual.startswith(expected.prefix), where
    elif isinstance(expected, dict):
        assert type(actual) is dict, f"{where}: {type(actual).__name__}"
        assert list(actual) == list(expected), f"{where}: keys (in order)"
        for key, want in expected.items():
            assert_same(actual[key], want, f"{where}.{key}")
    elif isinstance(expected, list):
        assert type(actual) is list, f"{where}: {type(actual).__name__}"
        assert len(actual) == len(expected), f"{where}: length"
        for i, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_same(got, want, f"{where}[{i}]")
    elif isinstance(expected, datetime):
        assert type(actual) is datetime, where
        assert actual.tzinfo is not None and actual.utcoffset() == expected.utcoffset(), where
        assert actual == expected, where
    else:
        assert type(actual) is type(expected), f"{where}: {type(actual)} != {type(expected)}"
        assert actual == expected, where


def block_bytes(block: Any) -> bytes:
    """A decoded block or raw frame: a memoryview (never a copy), as bytes for comparing."""
    assert type(block) is memoryview
    assert block.format == "B" and block.ndim == 1 and block.c_contiguous
    return bytes(block)


def _address(buffer: Any) -> int:
    address: int = np.frombuffer(buffer, dtype=np.uint8).ctypes.data
    return address


# ---- CDTP1: the decoded message in the shape the reference receiver reports ---------------------

CDTP1_ENCODERS: dict[type, Callable[[Any], list[Any]]] = {
    cdtp1.DatMessage: cdtp1.encode_dat_message,
    cdtp1.BorMessage: cdtp1.encode_bor_message,
    cdtp1.EorMessage: cdtp1.encode_eor_message,
}
CDTP1_TYPES = {
    cdtp1.DatMessage: cdtp1.MessageType.DAT,
    cdtp1.BorMessage: cdtp1.MessageType.BOR,
    cdtp1.EorMessage: cdtp1.MessageType.EOR,
}


def cdtp1_view(msg: cdtp1.Message) -> dict[str, Any]:
    """``DataTransmitter.decode``'s view: payload None / one bytes / a list for DAT frames."""
    kind = CDTP1_TYPES[type(msg)]
    payload: Any
    if isinstance(msg, cdtp1.DatMessage):
        frames = [block_bytes(f) for f in msg.payload]
        payload = None if not frames else frames[0] if len(frames) == 1 else frames
    else:
        payload = msg.payload
    return {
        "sender": msg.sender,
        "msgtype": kind.name,
        "msgtype_code": int(kind),
        "sequence_number": msg.sequence_number,
        "meta": msg.meta,
        "payload_python_type": type(payload).__name__,
        "payload": payload,
    }


def cdtp1_from_record(decoded: dict[str, Any]) -> cdtp1.Message:
    """The message the reference sender was asked to send, rebuilt from the recorded values."""
    payload = from_json(decoded["payload"])
    meta = from_json(decoded["meta"])
    if decoded["msgtype"] == "DAT":
        frames = () if payload is None else (payload,) if type(payload) is bytes else tuple(payload)
        return cdtp1.DatMessage(decoded["sender"], decoded["sequence_number"], meta, frames)
    cls = cdtp1.BorMessage if decoded["msgtype"] == "BOR" else cdtp1.EorMessage
    return cls(decoded["sender"], decoded["sequence_number"], meta, payload)


def check_cdtp1_message(
    frames: list[bytes], decoded: dict[str, Any], breakdown: list[dict[str, Any]]
) -> cdtp1.Message:
    """Decode ``frames``; compare with the recorded decode and header breakdown; re-encode."""
    msg = cdtp1.decode_frames(frames)
    view = cdtp1_view(msg)
    for key, want in decoded.items():
        assert key in view, f"the recorded field {key!r} has no daqwire counterpart"
        assert_same(view[key], from_json(want), key)
    assert msg.time is None  # all recordings use the five-object header
    header = {
        "protocol": cdtp1.PROTOCOL_ID,
        "sender": msg.sender,
        "msgtype": int(CDTP1_TYPES[type(msg)]),
        "sequence_number": msg.sequence_number,
        "meta": msg.meta,
    }
    assert [b["field"] for b in breakdown] == list(header)
    for entry in breakdown:
        assert_same(header[entry["field"]], from_json(entry["value"]), entry["field"])
    # raw payload frames are the frames themselves, not copies
    if isinstance(msg, cdtp1.DatMessage):
        assert len(msg.payload) == len(frames) - 1
        for frame, view_ in zip(frames[1:], msg.payload, strict=True):
            assert view_.obj is frame and view_.readonly
    # re-encoded from the decoded message and from the recorded values: the same bytes
    for source in (msg, cdtp1_from_record(decoded)):
        again = CDTP1_ENCODERS[type(source)](source)
        assert [bytes(f) for f in again] == frames
    return msg


@pytest.mark.parametrize("name", _ids(CDTP1_DIR, runs=False))
def test_cdtp1_vector_decodes_and_reencodes(name: str) -> None:
    data = _load(CDTP1_DIR, name)
    assert data["id"] == name and data["protocol"] == "CDTP1"
    frames = _frames(CDTP1_DIR, data["frames"])
    assert len(frames) == data["zmq"]["multipart_frames"]
    assert data["time_varying"] == []
    check_cdtp1_message(frames, data["decoded_by_real_receiver"], data["header_breakdown"])


def test_cdtp1_satellite_run_decodes_in_order() -> None:
    data = _load(CDTP1_DIR, "cdtp1_satellite_run")
    sender = data["satellite"]["canonical_name"]
    messages = []
    for i, entry in enumerate(data["messages"]):
        assert entry["order"] == i
        frames = _frames(CDTP1_DIR, entry["frames"])
        msg = check_cdtp1_message(
            frames, entry["decoded_by_real_receiver"], entry["header_breakdown"]
        )
        assert msg.sender == sender
        messages.append(msg)
    kinds = [type(m) for m in messages]
    assert kinds == [cdtp1.BorMessage] + [cdtp1.DatMessage] * 4 + [cdtp1.EorMessage]
    seqs = [m.sequence_number for m in messages]
    assert seqs == [0, 1, 2, 3, 4, 4]  # BOR 0, DAT from 1, EOR repeats the last DAT
    bor, eor = messages[0], messages[-1]
    assert isinstance(bor, cdtp1.BorMessage) and isinstance(eor, cdtp1.EorMessage)
    assert bor.payload["_role"] == "DYNAMIC"
    assert eor.payload == {}


def test_cdtp1_payload_frames_share_memory_with_a_mutable_source() -> None:
    data = _load(CDTP1_DIR, "cdtp1_dat_multiframe")
    frames = [bytearray(f) for f in _frames(CDTP1_DIR, data["frames"])]
    msg = cdtp1.decode_dat_message(frames)
    assert [v.obj for v in msg.payload] == frames[1:]
    assert all(v.obj is f for v, f in zip(msg.payload, frames[1:], strict=True))
    frames[1][0] = ord("Z")
    frames[2][-1] = 0xEE
    assert bytes(msg.payload[0]) == b"Zrame-A"
    assert bytes(msg.payload[1])[-1] == 0xEE


# ---- CDTP2 --------------------------------------------------------------------------------------

CDTP2_ENCODERS: dict[type, Callable[[Any], list[Any]]] = {
    cdtp2.DataMessage: cdtp2.encode_data_message,
    cdtp2.BorMessage: cdtp2.encode_bor_message,
    cdtp2.EorMessage: cdtp2.encode_eor_message,
}
CDTP2_TYPES = {
    cdtp2.DataMessage: cdtp2.MessageType.DATA,
    cdtp2.BorMessage: cdtp2.MessageType.BOR,
    cdtp2.EorMessage: cdtp2.MessageType.EOR,
}
CDTP2_CLASSES = {v.name: k for k, v in CDTP2_TYPES.items()}


def cdtp2_view(msg: cdtp2.Message) -> dict[str, Any]:
    """The reference receiver's view of a CDTP2 message (records, and the BOR/EOR casts)."""
    kind = CDTP2_TYPES[type(msg)]
    records = [
        {
            "sequence_number": r.sequence_number,
            "tags": r.tags,
            "blocks": [block_bytes(b) for b in r.blocks],
        }
        for r in msg.records
    ]
    view: dict[str, Any] = {
        "sender": msg.sender,
        "type": kind.name,
        "type_code": int(kind),
        "records": records,
    }
    if isinstance(msg, cdtp2.BorMessage):
        view["as_BOR"] = {"user_tags": records[0]["tags"], "configuration": records[1]["tags"]}
    if isinstance(msg, cdtp2.EorMessage):
        view["as_EOR"] = {"user_tags": records[0]["tags"], "run_metadata": records[1]["tags"]}
    return view


BREAKDOWN_FIELD = re.compile(
    r"^(?:(?P<top>protocol|sender|type)"
    r"|records_array_header \(n=(?P<nrec>\d+)\)"
    r"|record\[(?P<r>\d+)\]\.(?:array_header \(n=(?P<nf>\d+)\)"
    r"|(?P<field>sequence_number|tags)"
    r"|blocks_array_header \(n=(?P<nblk>\d+)\)"
    r"|block\[(?P<b>\d+)\]))$"
)


def check_cdtp2_breakdown(
    msg: cdtp2.Message, frame: bytes, breakdown: list[dict[str, Any]]
) -> dict[tuple[int, int], bytes]:
    """Every object of the breakdown against the decoded message; blocks sit at their offsets."""
    blocks: dict[tuple[int, int], bytes] = {}
    base = _address(frame)
    for entry in breakdown:
        m = BREAKDOWN_FIELD.match(entry["field"])
        assert m, entry["field"]
        want = from_json(entry["value"], datetimes=True)
        where = entry["field"]
        if m["top"]:
            got = {
                "protocol": cdtp2.PROTOCOL_ID,
                "sender": msg.sender,
                "type": int(CDTP2_TYPES[type(msg)]),
            }[m["top"]]
            assert_same(got, want, where)
        elif m["nrec"]:
            assert len(msg.records) == int(m["nrec"]) == want
        else:
            record = msg.records[int(m["r"])]
            if m["nf"]:
                assert int(m["nf"]) == want == 3
            elif m["field"]:
                assert_same(getattr(record, m["field"]), want, where)
            elif m["nblk"]:
                assert len(record.blocks) == int(m["nblk"]) == want
            else:
                block = record.blocks[int(m["b"])]
                assert_same(block_bytes(block), want, where)
                start = entry["offset"] + len(entry["bin_header_hex"]) // 2
                assert len(block) == entry["body_len"]
                # zero copy: the block is the frame's own memory at the recorded offset
                assert block.obj is frame and block.readonly
                assert _address(block) - base == start, where
                blocks[(int(m["r"]), int(m["b"]))] = frame[start : start + len(block)]
    return blocks


def cdtp2_from_record(
    decoded: dict[str, Any], long_blocks: dict[tuple[int, int], bytes]
) -> cdtp2.Message:
    """The message rebuilt from the recorded values (long blocks taken from the frame)."""
    records = []
    for i, r in enumerate(decoded["records"]):
        blocks = []
        for j, b in enumerate(from_json(r["blocks"])):
            blocks.append(long_blocks[(i, j)] if isinstance(b, LongBytes) else b)
        records.append(cdtp2.DataRecord(r["sequence_number"], from_json(r["tags"]), tuple(blocks)))
    cls = CDTP2_CLASSES[decoded["type"]]
    return cls(decoded["sender"], tuple(records))


def check_cdtp2_message(
    frames: list[bytes], decoded: dict[str, Any], breakdown: list[dict[str, Any]]
) -> cdtp2.Message:
    """Decode one frame; compare with the recorded decode and breakdown; re-encode both ways."""
    assert len(frames) == 1
    msg = cdtp2.decode_frames(frames)
    view = cdtp2_view(msg)
    for key, want in decoded.items():
        assert key in view, f"the recorded field {key!r} has no daqwire counterpart"
        assert_same(view[key], from_json(want), key)
    long_blocks = check_cdtp2_breakdown(msg, frames[0], breakdown)
    for source in (msg, cdtp2_from_record(decoded, long_blocks)):
        again = CDTP2_ENCODERS[type(source)](source)
        assert [bytes(f) for f in again] == frames
    return msg


@pytest.mark.parametrize("name", _ids(CDTP2_DIR, runs=False))
def test_cdtp2_vector_decodes_and_reencodes(name: str) -> None:
    data = _load(CDTP2_DIR, name)
    assert data["id"] == name and data["protocol"] == "CDTP2"
    frames = _frames(CDTP2_DIR, data["frames"])
    assert len(frames) == data["zmq"]["multipart_frames"] == 1
    check_cdtp2_message(frames, data["decoded_by_real_receiver"], data["breakdown"])


@pytest.mark.parametrize("name", [n for n in _ids(CDTP2_DIR, runs=False) if "pusher" in n])
def test_cdtp2_pusher_batches_decode_in_order(name: str) -> None:
    data = _load(CDTP2_DIR, name)
    messages = []
    for entry in data["all_messages_in_order"]:
        frames = [bytes.fromhex(h) for h in entry["frames_hex"]]
        msg = cdtp2.decode_frames(frames)
        assert CDTP2_TYPES[type(msg)].name == entry["type"]
        assert [bytes(f) for f in CDTP2_ENCODERS[type(msg)](msg)] == frames
        messages.append(msg)
    first_data = next(m for m in messages if isinstance(m, cdtp2.DataMessage))
    assert first_data == cdtp2.decode_frames(_frames(CDTP2_DIR, data["frames"]))
    batches = [
        [r.sequence_number for r in m.records] for m in messages if isinstance(m, cdtp2.DataMessage)
    ]
    assert batches == data["records_per_data_message"]
    assert isinstance(messages[0], cdtp2.BorMessage) and isinstance(messages[-1], cdtp2.EorMessage)
    assert messages[-1].records[1].tags["data_records"] == batches[-1][-1]


def test_cdtp2_satellite_run_decodes_in_order() -> None:
    data = _load(CDTP2_DIR, "cdtp2_satellite_run")
    sender = data["satellite"]["canonical_name"]
    messages = []
    for i, entry in enumerate(data["messages"]):
        assert entry["order"] == i
        frames = _frames(CDTP2_DIR, entry["frames"])
        # the run file names the record fields as the reference's accessors: seq, tags, blocks
        records = [
            {"sequence_number": r["seq"], "tags": r["tags"], "blocks": r["blocks"]}
            for r in entry["decoded"]["records"]
        ]
        decoded = dict(entry["decoded"], type=entry["type"], records=records)
        # time_start/time_end vary per run; the recorded values still re-encode byte for byte
        msg = check_cdtp2_message(frames, decoded, entry["breakdown"])
        assert msg.sender == sender
        messages.append(msg)
    bor, data_msg, eor = messages
    assert isinstance(bor, cdtp2.BorMessage) and isinstance(eor, cdtp2.EorMessage)
    assert isinstance(data_msg, cdtp2.DataMessage)
    assert [r.sequence_number for r in bor.records] == [0, 1]
    assert [r.sequence_number for r in eor.records] == [0, 1]
    assert [r.sequence_number for r in data_msg.records] == [1, 2, 3, 4]
    assert all(not r.blocks for r in (*bor.records, *eor.records))
    metadata = eor.records[1].tags
    assert tuple(metadata) == cdtp2.RUN_METADATA_KEYS
    assert metadata["data_records"] == 4
    assert cdtp2.RunCondition(metadata["condition_code"]) is cdtp2.RunCondition.GOOD
    assert metadata["condition"] == cdtp2.RunCondition.GOOD.name
    assert metadata["time_start"].tzinfo is not None
    assert metadata["time_start"] <= metadata["time_end"]


def test_cdtp2_eor_condition_flags() -> None:
    msg = cdtp2.decode_eor_message(
        _frames(CDTP2_DIR, _load(CDTP2_DIR, "cdtp2_eor_interrupted_tainted")["frames"])
    )
    metadata = msg.records[1].tags
    flags = cdtp2.RunCondition(metadata["condition_code"])
    assert flags == cdtp2.RunCondition.TAINTED | cdtp2.RunCondition.INTERRUPTED
    assert metadata["condition"] == "TAINTED|INTERRUPTED"


def test_cdtp2_blocks_share_memory_with_a_mutable_source() -> None:
    data = _load(CDTP2_DIR, "cdtp2_data_multi_block")
    frame = bytearray(_frames(CDTP2_DIR, data["frames"])[0])
    msg = cdtp2.decode_data_message([frame])
    blocks = msg.records[0].blocks
    assert all(b.obj is frame and not b.readonly for b in blocks)
    offset = _address(blocks[2]) - _address(frame)
    frame[offset + 5] = 0xAB
    assert blocks[2][5] == 0xAB
    # a zmq.Frame-like buffer (any object with the buffer protocol) is read in place too
    view = memoryview(frame)
    msg2 = cdtp2.decode_frames([view])
    assert _address(msg2.records[0].blocks[2]) == _address(blocks[2])


# ---- decode cases -------------------------------------------------------------------------------

Deviation = tuple[type[RemoteProtocolError], str, str]

#: CDTP1 cases where daqwire deliberately differs from ``DataTransmitter.decode``:
#: case -> (error class, exact daqwire message, why)
CDTP1_DEVIATIONS: dict[str, Deviation] = {
    "BOR without payload frame": (
        LengthMismatchError,
        "expected 2 frame(s), got 1",
        "reference: IndexError",
    ),
    "EOR whose payload frame is not msgpack (0xc1 never-used byte)": (
        FieldValueError,
        "not valid msgpack",
        "reference: msgpack FormatError",
    ),
    "EOR payload frame with trailing bytes after the map": (
        TrailingDataError,
        "1 bytes after the last object of the payload_frame frame",
        "reference: msgpack ExtraData",
    ),
    "BOR with two payload frames (second ignored)": (
        TrailingDataError,
        "expected at most 2 frame(s), got 3",
        "reference ignores extra payload frames",
    ),
    "header truncated after sender": (
        TruncatedError,
        "the frame ends inside a msgpack object",
        "reference: msgpack OutOfData",
    ),
    "header with trailing garbage after meta": (
        TrailingDataError,
        "2 bytes after the last object of the header frame",
        "reference ignores trailing header bytes",
    ),
    "sender is an int": (
        FieldValueError,
        "expected a msgpack str but got int",
        "reference does not check the sender's type",
    ),
    "empty multipart (no frames)": (
        LengthMismatchError,
        "expected 1 frame(s), got 0",
        "reference: IndexError",
    ),
}

#: CDTP2 cases where daqwire deliberately differs from ``CDTP2Message.disassemble``
CDTP2_DEVIATIONS: dict[str, Deviation] = {
    "trailing bytes after record array": (
        TrailingDataError,
        "Error decoding message: 1 bytes after the data records",
        "reference ignores bytes after the record array",
    ),
    "BOR with one record": (
        LengthMismatchError,
        "Error decoding message: Wrong number of data records, exactly two data records expected",
        "reference disassembles it; its CDTP2BORMessage.cast refuses it with this text",
    ),
}

#: cases where daqwire differs from the reference without meaning to (generator bugs, reported)
KNOWN_BUGS: dict[tuple[str, str], str] = {}

#: where the reference's own decoder produced the text (not pyzmq/msgpack/IndexError)
REFERENCE_TEXT_TYPES = {
    "builtins.RuntimeError",
    "builtins.ValueError",
    "constellation.core.message.exceptions.MessageDecodingError",
    "constellation.core.message.exceptions.UnexpectedProtocolError",
    "constellation.core.message.exceptions.InvalidProtocolError",
}


def _cases(family: str) -> list[Any]:
    folder = CDTP1_DIR if family == "cdtp1" else CDTP2_DIR
    cases = _load(folder, f"{family}_decode_cases")["cases"]
    out = []
    for case in cases:
        marks = []
        if (family, case["case"]) in KNOWN_BUGS:
            marks.append(
                pytest.mark.xfail(
                    strict=True, raises=AssertionError, reason=KNOWN_BUGS[family, case["case"]]
                )
            )
        out.append(pytest.param(case, id=case["case"], marks=marks))
    return out


def _decode_error(decode: Callable[[Any], Any], frames: list[bytes]) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        decode(frames)
    return info.value


def _check_deviation(err: RemoteProtocolError, deviation: Deviation) -> None:
    cls, message, _why = deviation
    assert type(err) is cls, f"{type(err).__name__}: {err.message}"
    assert err.message == message


@pytest.mark.parametrize("case", _cases("cdtp1"))
def test_cdtp1_decode_case(case: dict[str, Any]) -> None:
    frames = [bytes.fromhex(h) for h in case["frames_hex"]]
    name = case["case"]
    if name in CDTP1_DEVIATIONS:
        _check_deviation(_decode_error(cdtp1.decode_frames, frames), CDTP1_DEVIATIONS[name])
        return
    if case["result"] == "decoded":
        msg = cdtp1.decode_frames(frames)
        view = cdtp1_view(msg)
        for key, want in case["decoded"].items():
            assert_same(view[key], from_json(want), key)
        return
    assert case["result"] == "exception"
    assert case["type"] in REFERENCE_TEXT_TYPES, f"{name}: needs an entry in CDTP1_DEVIATIONS"
    err = _decode_error(cdtp1.decode_frames, frames)
    assert err.message == case["message"]
    assert err.protocol == "cdtp1" and err.field_path and err.offset is not None


@pytest.mark.parametrize("case", _cases("cdtp2"))
def test_cdtp2_decode_case(case: dict[str, Any]) -> None:
    frames = [bytes.fromhex(h) for h in case["frames_hex"]]
    name = case["case"]
    if name in CDTP2_DEVIATIONS:
        deviation = CDTP2_DEVIATIONS[name]
        cast = case.get("CDTP2BORMessage.cast", "")
        if cast.startswith("MessageDecodingError: "):
            assert deviation[1] == cast.removeprefix("MessageDecodingError: ")
        _check_deviation(_decode_error(cdtp2.decode_frames, frames), deviation)
        return
    if case["disassemble"] == "ok":
        assert case.get("CDTP2BORMessage.cast", "ok") == "ok"
        msg = cdtp2.decode_frames(frames)
        assert msg.sender == case["decoded"]["sender"]
        assert CDTP2_TYPES[type(msg)].name == case["decoded"]["type"]
        records = [
            [r.sequence_number, r.tags, [block_bytes(b).hex() for b in r.blocks]]
            for r in msg.records
        ]
        assert_same(records, case["decoded"]["records"], "records")
        return
    assert case["disassemble"] == "exception"
    assert case["type"] in REFERENCE_TEXT_TYPES, f"{name}: needs an entry in CDTP2_DEVIATIONS"
    err = _decode_error(cdtp2.decode_frames, frames)
    assert err.message == case["message"]
    assert err.protocol == "cdtp2" and err.field_path and err.offset is not None


def test_deviation_tables_name_real_cases() -> None:
    for family, table in (("cdtp1", CDTP1_DEVIATIONS), ("cdtp2", CDTP2_DEVIATIONS)):
        folder = CDTP1_DIR if family == "cdtp1" else CDTP2_DIR
        names = {c["case"] for c in _load(folder, f"{family}_decode_cases")["cases"]}
        assert set(table) <= names, set(table) - names
    for family, name in KNOWN_BUGS:
        folder = CDTP1_DIR if family == "cdtp1" else CDTP2_DIR
        assert name in {c["case"] for c in _load(folder, f"{family}_decode_cases")["cases"]}


#: (family, case) -> (field path, offset of the offending object); the decode cases' errors
#: must point at the object that is wrong
ERROR_LOCATIONS: dict[tuple[str, str], tuple[str, int]] = {
    ("cdtp1", "protocol CDTP\\x02 in a CDTP1 decoder"): ("dat_message.protocol", 0),
    ("cdtp1", "protocol sent as msgpack bin instead of str"): ("dat_message.protocol", 0),
    ("cdtp1", "message type 3 (undefined)"): ("dat_message.type", 10),
    ("cdtp1", "header truncated after sender"): ("dat_message.type", 10),
    ("cdtp1", "meta map with integer key"): ("dat_message.meta", 12),
    ("cdtp1", "sender is an int"): ("dat_message.sender", 6),
    ("cdtp1", "EOR payload frame with trailing bytes after the map"): ("eor_message", 4),
    ("cdtp2", "unknown protocol string"): ("data_message.protocol", 0),
    ("cdtp2", "type 3"): ("data_message.type", 10),
    ("cdtp2", "type as bool"): ("data_message.type", 10),
    ("cdtp2", "records not an array (map)"): ("data_message.records", 11),
    ("cdtp2", "record with 2 elements"): ("DataRecord", 12),
    ("cdtp2", "record seq is str"): ("DataRecord.sequence_number", 13),
    ("cdtp2", "record tags nil"): ("DataRecord.tags", 14),
    ("cdtp2", "block is str not bin"): ("DataRecord.blocks[]", 16),
    ("cdtp2", "trailing bytes after record array"): ("data_message", 12),
    ("cdtp2", "truncated"): ("DataRecord.blocks[]", 16),
    ("cdtp2", "BOR with one record"): ("bor_message.records", 11),
    ("cdtp2", "tags with int key"): ("DataRecord.tags", 14),
}
OFFSET_BUGS: set[tuple[str, str]] = set()


@pytest.mark.parametrize(
    ("family", "name"),
    [
        pytest.param(
            *key,
            marks=[
                pytest.mark.xfail(
                    strict=True,
                    raises=AssertionError,
                    reason="generator bug: an unknown select value is reported at the offset "
                    "after the type object, not at the object",
                )
            ]
            if key in OFFSET_BUGS
            else [],
        )
        for key in ERROR_LOCATIONS
    ],
)
def test_decode_case_errors_point_at_the_offending_object(family: str, name: str) -> None:
    folder, module = (CDTP1_DIR, cdtp1) if family == "cdtp1" else (CDTP2_DIR, cdtp2)
    (case,) = [c for c in _load(folder, f"{family}_decode_cases")["cases"] if c["case"] == name]
    err = _decode_error(module.decode_frames, [bytes.fromhex(h) for h in case["frames_hex"]])
    assert (err.field_path, err.offset) == ERROR_LOCATIONS[family, name]


# ---- what the reference sender got wrong, our encoder refuses or sends whole -------------------

SENDER = "RandomDataSender.sat1"


def _dat(seq: int, payload: Any) -> cdtp1.DatMessage:
    return cdtp1.DatMessage(SENDER, seq, {}, payload)


#: the sender-side cases: what daqwire's encoder is given for the reference's payload, and
#: either None (refused with LocalProtocolError) or the frames it sends instead
SENDER_CASES: dict[str, tuple[Callable[[], list[Any]], list[str] | None]] = {
    "numpy ndarray passed directly (8 elements)": (
        lambda: [np.arange(8.0), (np.arange(16.0)[::2],)],
        None,
    ),
    "numpy ndarray with one element, value 1.5 (truthy)": (
        lambda: [(np.array([1.5]),)],
        ["a54344545001b552616e646f6d4461746153656e6465722e73617431000180", "000000000000f83f"],
    ),
    "numpy ndarray with one element, value 0.0 (falsy)": (
        lambda: [(np.array([0.0]),)],
        ["a54344545001b552616e646f6d4461746153656e6465722e73617431000180", "0000000000000000"],
    ),
    "list containing a str as 2nd element": (lambda: [(b"ok", "not bytes"), [b"ok", "x"]], None),
    "str payload": (lambda: ["payload", ("payload",)], None),
    "bytearray payload": (
        lambda: [(bytearray(b"ba"),)],
        ["a54344545001b552616e646f6d4461746153656e6465722e73617431000180", "6261"],
    ),
    "memoryview payload": (
        lambda: [(memoryview(b"mv"),)],
        ["a54344545001b552616e646f6d4461746153656e6465722e73617431000180", "6d76"],
    ),
}


#: sent differently on purpose: the reference drops falsy payloads, daqwire never drops a frame
SENDER_DEVIATIONS = {"numpy ndarray with one element, value 0.0 (falsy)"}


def test_sender_cases_cover_the_recorded_file() -> None:
    cases = _load(CDTP1_DIR, "cdtp1_sender_side_errors")["cases"]
    assert [c["case"] for c in cases] == list(SENDER_CASES)


@pytest.mark.parametrize("name", list(SENDER_CASES))
def test_sender_side_case(name: str) -> None:
    (case,) = [
        c for c in _load(CDTP1_DIR, "cdtp1_sender_side_errors")["cases"] if c["case"] == name
    ]
    received = case["received_multiparts_hex (incl. follow-up DAT b'follow-up')"]
    follow_up = _dat(2, (b"follow-up",))
    make, expected = SENDER_CASES[name]
    for payload in make():
        if expected is None:
            with pytest.raises(LocalProtocolError) as info:
                cdtp1.encode_dat_message(_dat(1, payload))
            assert info.value.field_path == "dat_message.payload"
        else:
            frames = [bytes(f) for f in cdtp1.encode_dat_message(_dat(1, payload))]
            assert [f.hex() for f in frames] == expected
            assert case["result"] == "sent"
            if name in SENDER_DEVIATIONS:
                assert received[0] == expected[:1]  # the reference dropped the payload frame
            else:
                assert received[0] == expected  # what the reference sent, byte for byte
    # nothing is left half-sent: the next message is whole and on its own, as recorded last
    assert [bytes(f).hex() for f in cdtp1.encode_dat_message(follow_up)] == received[-1][-2:]


def test_sender_numpy_block_is_sent_without_a_copy() -> None:
    arr = np.arange(4, dtype=np.uint16)
    frames = cdtp1.encode_dat_message(_dat(1, (arr,)))
    assert bytes(frames[1]) == arr.tobytes()
    assert _address(frames[1]) == arr.ctypes.data


def test_empty_payload_is_an_empty_frame_not_dropped() -> None:
    frames = cdtp1.encode_dat_message(_dat(5, (b"",)))
    assert [bytes(f) for f in frames] == [
        bytes.fromhex("a54344545001b552616e646f6d4461746153656e6465722e73617431000580"),
        b"",
    ]
    msg = cdtp1.decode_dat_message([bytes(f) for f in frames])
    assert [bytes(p) for p in msg.payload] == [b""]
    # no payload at all is the header alone, as the reference's cdtp1_dat_empty_bytes shows
    recorded = _frames(CDTP1_DIR, _load(CDTP1_DIR, "cdtp1_dat_empty_bytes")["frames"])
    assert [bytes(f) for f in cdtp1.encode_dat_message(_dat(5, ()))] == recorded
