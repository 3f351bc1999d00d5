"""Properties of the generated CDTP1, CDTP2 and CSCP1 codecs (hypothesis).

- every message the generated strategies make survives encode -> decode unchanged;
- msgpack itself (the library the reference implementations use), unpacking our frames object
  by object, reads the same values as our decoder; the constellationdaq 1.0.2 message classes
  (installed as a test peer) write the same bytes for CDTP2 and CSCP1 and read ours back;
- any bytes, any multipart shape and any damaged valid message make the decoders return a
  message or raise a RemoteProtocolError subclass, never anything else;
- encoders refuse wrong values with LocalProtocolError only, before making any frame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from daqwire.errors import LocalProtocolError, RemoteProtocolError
from daqwire.generated import cdtp1, cdtp2, cscp1
from daqwire.generated import cdtp1_strategies as s1
from daqwire.generated import cdtp2_strategies as s2
from daqwire.generated import cscp1_strategies as s3

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ENCODERS: dict[type, Callable[[Any], list[Any]]] = {
    cdtp1.DatMessage: cdtp1.encode_dat_message,
    cdtp1.BorMessage: cdtp1.encode_bor_message,
    cdtp1.EorMessage: cdtp1.encode_eor_message,
    cdtp2.DataMessage: cdtp2.encode_data_message,
    cdtp2.BorMessage: cdtp2.encode_bor_message,
    cdtp2.EorMessage: cdtp2.encode_eor_message,
    cscp1.Message: cscp1.encode_message,
}
#: the decoder for one message type, next to the dispatching one
TYPED_DECODERS: dict[type, Callable[[Any], Any]] = {
    cdtp1.DatMessage: cdtp1.decode_dat_message,
    cdtp1.BorMessage: cdtp1.decode_bor_message,
    cdtp1.EorMessage: cdtp1.decode_eor_message,
    cdtp2.DataMessage: cdtp2.decode_data_message,
    cdtp2.BorMessage: cdtp2.decode_bor_message,
    cdtp2.EorMessage: cdtp2.decode_eor_message,
    cscp1.Message: cscp1.decode_message,
}
DECODERS: dict[str, Callable[[Any], Any]] = {
    "cdtp1": cdtp1.decode_frames,
    "cdtp2": cdtp2.decode_frames,
    "cscp1": cscp1.decode_message,
}
ALL_DECODERS = [*DECODERS.values(), *(d for d in TYPED_DECODERS.values() if d not in DECODERS)]
STRATEGIES = {
    "cdtp1": s1.message_values(),
    "cdtp2": s2.message_values(),
    "cscp1": s3.message_values(),
}
PROTOCOL_IDS = [b"\xa5CDTP\x01", b"\xa5CDTP\x02", b"\xa5CSCP\x01"]


def encode(msg: Any) -> list[bytes]:
    frames = ENCODERS[type(msg)](msg)
    return [bytes(f) for f in frames]


def unpack_all(frame: bytes, *, timestamp: int) -> list[Any]:
    """The msgpack objects of one frame, read with msgpack.Unpacker as the references do."""
    unpacker = msgpack.Unpacker(timestamp=timestamp)
    unpacker.feed(frame)
    return list(unpacker)


# ---- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("family", list(STRATEGIES))
def test_round_trip(family: str) -> None:
    @SETTINGS
    @given(STRATEGIES[family], st.sampled_from([bytes, bytearray, memoryview]))
    def check(msg: Any, kind: Callable[[bytes], Any]) -> None:
        frames = [kind(f) for f in encode(msg)]
        assert DECODERS[family](frames) == msg
        assert TYPED_DECODERS[type(msg)](frames) == msg
        # encoding is deterministic and decoding keeps no state
        assert encode(msg) == [bytes(f) for f in frames]

    check()


@SETTINGS
@given(s1.message_values(), s1.message_values())
def test_cdtp1_typed_decoder_refuses_another_type(a: Any, b: Any) -> None:
    assume(type(a) is not type(b))
    with pytest.raises(RemoteProtocolError):
        TYPED_DECODERS[type(a)](encode(b))


@SETTINGS
@given(s2.message_values(), s2.message_values())
def test_cdtp2_typed_decoder_refuses_another_type(a: Any, b: Any) -> None:
    assume(type(a) is not type(b))
    with pytest.raises(RemoteProtocolError):
        TYPED_DECODERS[type(a)](encode(b))


# ---- oracle: msgpack reads our frames the same way ----------------------------------------------


@SETTINGS
@given(s1.message_values())
def test_cdtp1_frames_read_by_msgpack(msg: Any) -> None:
    frames = encode(msg)
    got = cdtp1.decode_frames(frames)
    kind = {cdtp1.DatMessage: 0, cdtp1.BorMessage: 1, cdtp1.EorMessage: 2}[type(got)]
    time = [] if got.time is None else [got.time]
    header = [cdtp1.PROTOCOL_ID, got.sender, *time, kind, got.sequence_number, got.meta]
    assert unpack_all(frames[0], timestamp=0) == header
    if isinstance(got, cdtp1.DatMessage):
        assert frames[1:] == [bytes(p) for p in got.payload]
    else:
        assert len(frames) == 2
        assert unpack_all(frames[1], timestamp=0) == [got.payload]


@SETTINGS
@given(s2.message_values())
def test_cdtp2_frames_read_by_msgpack(msg: Any) -> None:
    (frame,) = encode(msg)
    got = cdtp2.decode_frames([frame])
    kind = {cdtp2.DataMessage: 0, cdtp2.BorMessage: 1, cdtp2.EorMessage: 2}[type(got)]
    records = [[r.sequence_number, r.tags, [bytes(b) for b in r.blocks]] for r in got.records]
    assert unpack_all(frame, timestamp=3) == [cdtp2.PROTOCOL_ID, got.sender, kind, records]


@SETTINGS
@given(s3.message_values())
def test_cscp1_frames_read_by_msgpack(msg: Any) -> None:
    frames = encode(msg)
    got = cscp1.decode_message(frames)
    assert unpack_all(frames[0], timestamp=3) == [cscp1.PROTOCOL_ID, got.sender, got.time, got.tags]
    assert unpack_all(frames[1], timestamp=3) == [int(got.verb_type), got.verb]
    if got.payload is cscp1.ABSENT:
        assert len(frames) == 2
    else:
        assert unpack_all(frames[2], timestamp=3) == [got.payload]


# ---- oracle: the constellationdaq 1.0.2 message classes ----------------------------------------


@SETTINGS
@given(s2.message_values())
def test_cdtp2_matches_constellationdaq(msg: Any) -> None:
    ref = pytest.importorskip("constellation.core.message.cdtp2")
    kind = {cdtp2.DataMessage: 0, cdtp2.BorMessage: 1, cdtp2.EorMessage: 2}[type(msg)]
    theirs = ref.CDTP2Message(msg.sender, ref.CDTP2Message.Type(kind))
    for r in msg.records:
        record = ref.DataRecord(r.sequence_number, r.tags)
        for block in r.blocks:
            record.add_block(block)
        theirs.add_data_record(record)
    frames = encode(msg)
    assert theirs.assemble().frames == frames
    back = ref.CDTP2Message.disassemble(frames)
    assert (back.sender, int(back.type)) == (msg.sender, kind)
    assert [(r.sequence_number, r.tags, r.blocks) for r in back.data_records] == [
        (r.sequence_number, r.tags, [bytes(b) for b in r.blocks]) for r in msg.records
    ]


@SETTINGS
@given(s3.message_values())
def test_cscp1_matches_constellationdaq(msg: Any) -> None:
    ref = pytest.importorskip("constellation.core.message.cscp1")
    assume(msg.payload is not None)  # the reference cannot tell a nil payload from none
    theirs = ref.CSCP1Message(
        msg.sender, (ref.CSCP1Message.Type(int(msg.verb_type)), msg.verb), msg.time, msg.tags
    )
    if msg.payload is not cscp1.ABSENT:
        theirs.payload = msg.payload
    frames = encode(msg)
    assert theirs.assemble().frames == frames
    back = ref.CSCP1Message.disassemble(frames)
    assert (back.sender, back.time, back.tags) == (msg.sender, msg.time, msg.tags)
    assert (int(back.verb_type), back.verb_msg) == (int(msg.verb_type), msg.verb)
    assert back.payload == (None if msg.payload is cscp1.ABSENT else msg.payload)


# ---- decoders: bad input is a RemoteProtocolError, nothing else --------------------------------


def decodes_or_refuses(decode: Callable[[Any], Any], frames: Sequence[Any]) -> None:
    """``decode(frames)`` returns, or raises a RemoteProtocolError that says where and what."""
    try:
        decode(frames)
    except RemoteProtocolError as err:
        assert err.message and err.protocol in DECODERS
        assert err.offset is None or err.offset >= 0


_frame = st.one_of(
    st.binary(max_size=48),
    st.builds(lambda p, b: p + b, st.sampled_from(PROTOCOL_IDS), st.binary(max_size=48)),
)


@FUZZ
@given(_frame, st.sampled_from(ALL_DECODERS))
def test_random_single_frame(frame: bytes, decode: Callable[[Any], Any]) -> None:
    decodes_or_refuses(decode, [frame])


@FUZZ
@given(st.lists(_frame, max_size=5), st.sampled_from(ALL_DECODERS))
def test_random_multipart_shapes(frames: list[bytes], decode: Callable[[Any], Any]) -> None:
    decodes_or_refuses(decode, frames)
    decodes_or_refuses(decode, [memoryview(bytearray(f)) for f in frames])


def _damage(frames: list[bytes], data: st.DataObject) -> list[bytes]:
    """One frame truncated, bit-flipped, overwritten or extended; or frames added/removed."""
    frames = list(frames)
    op = data.draw(st.sampled_from(["truncate", "flip", "set", "append", "add", "drop"]))
    if op == "add":
        frames.insert(data.draw(st.integers(0, len(frames))), data.draw(st.binary(max_size=8)))
        return frames
    if op == "drop":
        del frames[data.draw(st.integers(0, len(frames) - 1))]
        return frames
    i = data.draw(st.integers(0, len(frames) - 1))
    frame = bytearray(frames[i])
    if op == "append" or not frame:
        frame += data.draw(st.binary(min_size=1, max_size=8))
    elif op == "truncate":
        del frame[data.draw(st.integers(0, len(frame) - 1)) :]
    else:
        pos = data.draw(st.integers(0, len(frame) - 1))
        if op == "flip":
            frame[pos] ^= 1 << data.draw(st.integers(0, 7))
        else:
            frame[pos] = data.draw(st.integers(0, 255))
    frames[i] = bytes(frame)
    return frames


@pytest.mark.parametrize("family", list(STRATEGIES))
def test_damaged_valid_messages(family: str) -> None:
    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(STRATEGIES[family], st.data())
    def check(msg: Any, data: st.DataObject) -> None:
        frames = _damage(encode(msg), data)
        decodes_or_refuses(DECODERS[family], frames)
        decodes_or_refuses(TYPED_DECODERS[type(msg)], frames)

    check()


# ---- encoders: wrong values are a LocalProtocolError, nothing else -----------------------------

NAIVE = datetime(2025, 1, 1, 12, 0, 0)
AWARE = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
TOO_BIG = [1 << 64, -(1 << 63) - 1, 1 << 100]

#: per field: values of a wrong type (or out of range) the encoders must refuse
WRONG: dict[str, list[Any]] = {
    "sender": [1, b"S.n", None, "x" * 1025],
    "sequence_number": [1.0, "1", None, True, *TOO_BIG],
    "meta": [[], "x", 1, {1: "int key"}, {b"k": "bytes key"}, {None: 1}, {"t": NAIVE}],
    "tags": [None, [], "x", {1: "int key"}, {b"k": 1}, {"t": NAIVE}, {"n": 1 << 64}],
    "payload": ["str payload", b"bare bytes", ("str block",), (b"ok", "x"), (1,), None],
    "time": [NAIVE, 0, "2025-01-01", 1.5],
    "records": [None, "x", [1], [object()]],
    "verb_type": [7, -1, "REQUEST", 1.5, None],
    "verb": [0, b"verb", None],
    "blocks": ["x", ("str block",), (1,), None],
}
#: fields whose msgpack payload may be anything: refused only when msgpack cannot pack it
ANY_PAYLOAD = [object(), {"n": 1 << 64}, {"t": NAIVE}, 1 << 64, [1j]]


def _wrong_values(msg: Any) -> list[tuple[str, Any]]:
    out = []
    for f in dataclasses.fields(msg):
        if f.name == "payload" and not isinstance(msg, cdtp1.DatMessage):
            out += [("payload", v) for v in ANY_PAYLOAD]
        elif f.name in WRONG:
            out += [(f.name, v) for v in WRONG[f.name]]
    return out


@pytest.mark.parametrize("family", list(STRATEGIES))
def test_encoders_refuse_wrong_values(family: str) -> None:
    @SETTINGS
    @given(STRATEGIES[family])
    def check(msg: Any) -> None:
        for name, value in _wrong_values(msg):
            bad = dataclasses.replace(msg, **{name: value})
            with pytest.raises(LocalProtocolError) as info:
                ENCODERS[type(msg)](bad)
            assert info.value.protocol == family and info.value.message

    check()


@SETTINGS
@given(s2.data_record_values(), st.sampled_from([*WRONG["blocks"], (NAIVE,)]))
def test_cdtp2_record_with_wrong_blocks_is_refused(record: Any, blocks: Any) -> None:
    msg = cdtp2.DataMessage("S.n", (dataclasses.replace(record, blocks=blocks),))
    with pytest.raises(LocalProtocolError):
        cdtp2.encode_data_message(msg)


@SETTINGS
@given(s2.data_record_values(), st.sampled_from(WRONG["sequence_number"]))
def test_cdtp2_record_with_wrong_sequence_number_is_refused(record: Any, seq: Any) -> None:
    msg = cdtp2.DataMessage("S.n", (dataclasses.replace(record, sequence_number=seq),))
    with pytest.raises(LocalProtocolError):
        cdtp2.encode_data_message(msg)


@SETTINGS
@given(
    st.sampled_from([cdtp2.BorMessage, cdtp2.EorMessage]),
    st.lists(s2.data_record_values(), max_size=5).filter(lambda r: len(r) != 2),
)
def test_bor_and_eor_need_exactly_two_records(cls: Any, records: list[Any]) -> None:
    with pytest.raises(LocalProtocolError) as info:
        ENCODERS[cls](cls("S.n", tuple(records)))
    assert info.value.field_path.endswith(".records")


@SETTINGS
@given(st.lists(st.binary(max_size=16), max_size=4), st.sampled_from([str, type(None), float]))
def test_a_wrong_last_block_is_refused_before_any_frame(blocks: list[bytes], kind: type) -> None:
    """The encoder returns every frame or none: a bad last block refuses the whole message."""
    bad = kind("x") if kind is str else kind()
    msg = cdtp1.DatMessage("S.n", 1, {}, (*blocks, bad))
    with pytest.raises(LocalProtocolError) as info:
        cdtp1.encode_dat_message(msg)
    assert info.value.field_path == "dat_message.payload"


def test_nested_non_str_map_keys_are_refused() -> None:
    cases: list[tuple[Callable[[Any], Any], Any]] = [
        (cdtp1.encode_dat_message, cdtp1.DatMessage("S.n", 1, {"a": {1: 2}}, ())),
        (cdtp1.encode_bor_message, cdtp1.BorMessage("S.n", 0, {}, {1: "int key"})),
        (
            cdtp2.encode_data_message,
            cdtp2.DataMessage("S.n", (cdtp2.DataRecord(1, {"a": {1: 2}}, ()),)),
        ),
        (
            cscp1.encode_message,
            cscp1.Message("S.n", AWARE, {}, cscp1.VerbType.REQUEST, "x", {2: 1}),
        ),
    ]
    refused = []
    for encoder, msg in cases:
        try:
            encoder(msg)
        except LocalProtocolError:
            refused.append(True)
        else:
            refused.append(False)
    assert all(refused), refused
