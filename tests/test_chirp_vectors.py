"""The CHIRP v1 beacon codec against beacons computed and captured from both Constellation eras.

Vectors: ``tests/vectors/constellation/chirp`` (or ``$DAQWIRE_VECTORS/constellation/chirp``).
Computed files list beacons with their names and both md5 variants; captured files list the
packets seen on loopback while a satellite of each era ran.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daqwire.constellation.chirp import beacon, chirp_id
from daqwire.errors import (
    BadMagicError,
    FieldValueError,
    LocalProtocolError,
    RemoteProtocolError,
    TrailingDataError,
    TruncatedError,
)
from daqwire.generated.chirp import (
    BEACON_BYTES,
    BEACON_SYNC_BYTES,
    MULTICAST_GROUP,
    NEED_DATA,
    PORT,
    STREAM_END,
    TTL,
    Beacon,
    BeaconDecoder,
    MessageType,
    Service,
    beacon_frame_size,
    decode_beacon,
    decode_beacon_from,
    encode_beacon,
    encode_beacon_into,
    encoded_beacon_size,
)
from daqwire.generated.chirp_construct import BEACON
from daqwire.generated.chirp_strategies import beacons
from tests.conftest import vectors_root

CHIRP_DIR = vectors_root() / "constellation" / "chirp"
COMPUTED = {"chirp_cdtp1era_7474c151": False, "chirp_constellationdaq_1.0.2": True}
CAPTURED = {"chirp_seen_during_cdtp1_satellite": False, "chirp_seen_during_cdtp2_satellite": True}
"""File id -> whether that era hashes lower-cased names."""


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CHIRP_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _all_beacons() -> list[Any]:
    """One pytest param per recorded beacon: (wire bytes, recorded fields)."""
    params = []
    for name in sorted(p.stem for p in CHIRP_DIR.glob("*.json")):
        doc = _load(name)
        for i, entry in enumerate(doc.get("vectors", []) + doc.get("packets", [])):
            fields = entry.get("decoded", entry)
            params.append(pytest.param(bytes.fromhex(entry["hex"]), fields, id=f"{name}[{i}]"))
    return params


ALL_BEACONS = _all_beacons()


def _expected(fields: dict[str, Any]) -> Beacon:
    return Beacon(
        message_type=MessageType[fields["type"]],
        group_id=UUID(fields["group_uuid"]).bytes,
        host_id=UUID(fields["host_uuid"]).bytes,
        service=Service[fields["service"]],
        port=fields["port"],
    )


def test_every_vector_file_is_covered() -> None:
    assert {p.stem for p in CHIRP_DIR.glob("*.json")} == set(COMPUTED) | set(CAPTURED)
    assert len(ALL_BEACONS) == 8 + 8 + 12 + 9


def test_constants() -> None:
    assert (MULTICAST_GROUP, PORT, TTL, BEACON_BYTES) == ("239.192.7.123", 7123, 8, 42)
    assert BEACON_SYNC_BYTES == b"CHIR"
    for name in COMPUTED:
        doc = _load(name)
        assert doc["transport"] == f"UDP multicast {MULTICAST_GROUP}:{PORT}, TTL {TTL}"


# --- golden beacons ------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "fields"), ALL_BEACONS)
def test_decode_and_reencode(data: bytes, fields: dict[str, Any]) -> None:
    assert len(data) == BEACON_BYTES == 42
    assert data[:6] == b"CHIRP\x01"
    decoded = decode_beacon(data)
    assert decoded == _expected(fields)
    assert type(decoded.message_type) is MessageType
    assert type(decoded.service) is Service
    assert (decoded.magic, decoded.magic_end, decoded.version) == (0x43484952, ord("P"), 1)
    assert encode_beacon(decoded) == data
    assert _expected(fields).encode() == data
    assert encoded_beacon_size(decoded) == 42
    assert beacon_frame_size(data) == 42
    assert decode_beacon(memoryview(bytearray(data))) == decoded


@pytest.mark.parametrize(("data", "fields"), ALL_BEACONS)
def test_construct_oracle_agrees(data: bytes, fields: dict[str, Any]) -> None:
    parsed = BEACON.parse(data)
    assert parsed.message_type == MessageType[fields["type"]]
    assert parsed.service == Service[fields["service"]]
    assert parsed.port == fields["port"]
    assert parsed.group_id == UUID(fields["group_uuid"]).bytes
    assert parsed.host_id == UUID(fields["host_uuid"]).bytes
    rebuilt = BEACON.build(
        dict(
            message_type=parsed.message_type,
            group_id=parsed.group_id,
            host_id=parsed.host_id,
            service=parsed.service,
            port=parsed.port,
        )
    )
    assert rebuilt == data


def test_incremental_decoder_byte_by_byte() -> None:
    stream = b"".join(p.values[0] for p in ALL_BEACONS)
    decoder = BeaconDecoder()
    got: list[Beacon] = []
    for i in range(len(stream)):
        decoder.feed(stream[i : i + 1])
        got.extend(decoder)
    decoder.close()
    assert decoder.next_event() is STREAM_END
    assert got == [_expected(p.values[1]) for p in ALL_BEACONS]
    assert decoder.stream_offset == len(stream)


# --- ids of both eras ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(COMPUTED))
def test_chirp_id_both_eras(name: str) -> None:
    lowercase = COMPUTED[name]
    for entry in _load(name)["vectors"]:
        group, host = entry["group"], entry["host"]
        assert chirp_id(group, lowercase=False).hex() == entry["md5(group)"]
        assert chirp_id(group).hex() == entry["md5(group.lower())"]
        assert chirp_id(host, lowercase=False).hex() == entry["md5(host)"]
        assert chirp_id(host, lowercase=True).hex() == entry["md5(host.lower())"]
        assert UUID(bytes=chirp_id(group, lowercase=lowercase)) == UUID(entry["group_uuid"])
        assert UUID(bytes=chirp_id(host, lowercase=lowercase)) == UUID(entry["host_uuid"])
        built = beacon(
            MessageType[entry["type"]],
            Service[entry["service"]],
            group=group,
            host=host,
            port=entry["port"],
            lowercase=lowercase,
        )
        assert built.hex() == entry["hex"]


def test_eras_differ_only_for_names_with_capitals() -> None:
    assert chirp_id("vectorstellation") == chirp_id("vectorstellation", lowercase=False)
    assert chirp_id("Lab_A") != chirp_id("Lab_A", lowercase=False)
    assert chirp_id("Lab_A") == chirp_id("lab_a", lowercase=False)
    assert chirp_id("Ünïcode.x") == hashlib.md5("ünïcode.x".encode()).digest()
    assert len(chirp_id("")) == 16


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_captured_satellite_ids(name: str) -> None:
    doc = _load(name)
    lowercase = CAPTURED[name]
    ports = {"CONTROL": "cmd", "HEARTBEAT": "hb", "MONITORING": "mon", "DATA": "data"}
    for packet in doc["packets"]:
        fields = packet["decoded"]
        host_id = chirp_id(doc["canonical_name"], lowercase=lowercase)
        assert UUID(fields["host_uuid"]).bytes == host_id
        assert UUID(fields["group_uuid"]).bytes == chirp_id(doc["group"], lowercase=lowercase)
        port = 0 if fields["type"] == "REQUEST" else doc["ports"][ports[fields["service"]]]
        assert fields["port"] == port
        built = beacon(
            MessageType[fields["type"]].value,
            Service[fields["service"]].value,
            group=doc["group"],
            host=doc["canonical_name"],
            port=port,
            lowercase=lowercase,
        )
        assert built.hex() == packet["hex"]


# --- bad input -----------------------------------------------------------------------------------

GOOD = bytes.fromhex(
    "434849525001021f95f6de0b400fb8476461b36ef22ed4c14bb679865218109b7b438381ad0e8704c3b5"
)


def _patched(offset: int, value: bytes) -> bytes:
    return GOOD[:offset] + value + GOOD[offset + len(value) :]


@pytest.mark.parametrize(
    ("data", "path", "offset", "swapped"),
    [
        (_patched(0, b"X"), "beacon.magic", 0, False),
        (_patched(0, b"RIHC"), "beacon.magic", 0, True),
        (_patched(4, b"Q"), "beacon.magic_end", 4, False),
        (_patched(5, b"\x02"), "beacon.version", 5, False),
        (_patched(5, b"\x00"), "beacon.version", 5, False),
        (b"\x00" * 42, "beacon.magic", 0, False),
    ],
)
def test_bad_header(data: bytes, path: str, offset: int, swapped: bool) -> None:
    for decode in (decode_beacon, lambda d: decode_beacon_from(d)[0], beacon_frame_size):
        with pytest.raises(BadMagicError) as info:
            decode(data)
        assert info.value.protocol == "chirp"
        assert info.value.field_path == path
        assert info.value.offset == offset
        assert info.value.byte_swapped is swapped


@pytest.mark.parametrize(
    ("offset", "value", "path", "message"),
    [
        (6, 0, "beacon.message_type", "message_type = 0 is not a MessageType"),
        (6, 4, "beacon.message_type", "message_type = 4 is not a MessageType"),
        (39, 0, "beacon.service", "service = 0 is not a Service"),
        (39, 5, "beacon.service", "service = 5 is not a Service"),
        (39, 255, "beacon.service", "service = 255 is not a Service"),
    ],
)
def test_bad_enum_values(offset: int, value: int, path: str, message: str) -> None:
    with pytest.raises(FieldValueError) as info:
        decode_beacon(_patched(offset, bytes([value])))
    assert (info.value.field_path, info.value.offset) == (path, offset)
    assert message in str(info.value)


@pytest.mark.parametrize("size", range(42))
def test_truncated(size: int) -> None:
    with pytest.raises(TruncatedError) as info:
        decode_beacon(GOOD[:size])
    assert info.value.offset == size
    layout = [("magic", 4), ("magic_end", 1), ("version", 1), ("message_type", 1)]
    layout += [("group_id", 16), ("host_id", 16), ("service", 1), ("port", 2)]
    starts = [sum(n for _, n in layout[:i]) for i in range(len(layout))]
    field = next(name for (name, n), at in zip(layout, starts, strict=True) if size < at + n)
    assert info.value.field_path == f"beacon.{field}"
    if size:  # feed(b"") would mean the end of the stream
        decoder = BeaconDecoder()
        decoder.feed(GOOD[:size])
        assert decoder.next_event() is NEED_DATA
        decoder.close()
        with pytest.raises(TruncatedError):
            decoder.next_event()


@pytest.mark.parametrize("extra", [b"\x00", b"CHIRP\x01", GOOD])
def test_trailing_data(extra: bytes) -> None:
    with pytest.raises(TrailingDataError) as info:
        decode_beacon(GOOD + extra)
    assert info.value.offset == 42
    assert decode_beacon_from(GOOD + extra) == (decode_beacon(GOOD), 42)


def test_decode_from_offset_and_base() -> None:
    data = b"junk" + GOOD + GOOD
    msg, end = decode_beacon_from(data, 4)
    assert (msg, end) == (decode_beacon(GOOD), 46)
    assert decode_beacon_from(data, end) == (msg, 88)
    with pytest.raises(BadMagicError) as info:
        decode_beacon_from(data, 1, base=1000)
    assert info.value.offset == 1001


def test_encoder_refuses_invalid_messages() -> None:
    good = decode_beacon(GOOD)
    with pytest.raises(LocalProtocolError, match="group_id is 15 bytes"):
        encode_beacon(Beacon(good.message_type, b"\x00" * 15, good.host_id, good.service, 1))
    with pytest.raises(LocalProtocolError, match="host_id is 17 bytes"):
        encode_beacon(Beacon(good.message_type, good.group_id, b"\x00" * 17, good.service, 1))
    bad_args: list[dict[str, Any]] = [
        {"port": 65536},
        {"port": -1},
        {"port": True},
        {"message_type": 0},
        {"service": 0},
        {"service": 5},
        {"group_id": bytearray(16)},
    ]
    fields = dict(
        message_type=good.message_type,
        group_id=good.group_id,
        host_id=good.host_id,
        service=good.service,
        port=good.port,
    )
    for bad in bad_args:
        with pytest.raises(LocalProtocolError):
            Beacon(**{**fields, **bad})
    with pytest.raises(LocalProtocolError, match="not 0"):
        beacon(0, Service.DATA, group="g", host="h")
    with pytest.raises(LocalProtocolError, match="port"):
        beacon(MessageType.OFFER, Service.DATA, group="g", host="h", port=70000)
    assert Beacon(**{**fields, "service": 1}).service is Service.CONTROL
    assert beacon(2, 4, group="g", host="h", port=1) == beacon(
        MessageType.OFFER, Service.DATA, group="g", host="h", port=1
    )


# --- properties ----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(msg=beacons())
def test_roundtrip_and_oracle(msg: Beacon) -> None:
    data = encode_beacon(msg)
    assert len(data) == 42
    assert decode_beacon(data) == msg
    parsed = BEACON.parse(data)
    assert (parsed.message_type, parsed.service, parsed.port) == (
        msg.message_type,
        msg.service,
        msg.port,
    )
    assert (parsed.group_id, parsed.host_id) == (msg.group_id, msg.host_id)
    built = BEACON.build(
        dict(
            message_type=int(msg.message_type),
            group_id=msg.group_id,
            host_id=msg.host_id,
            service=int(msg.service),
            port=msg.port,
        )
    )
    assert built == data
    buffer = bytearray(50)
    assert encode_beacon_into(msg, buffer, 3) == 45
    assert bytes(buffer[3:45]) == data


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(min_size=42, max_size=42), st.binary(max_size=60)))
def test_arbitrary_bytes_raise_only_remote_errors(data: bytes) -> None:
    try:
        msg = decode_beacon(data)
    except RemoteProtocolError as exc:
        assert exc.protocol == "chirp"
        assert exc.offset is not None and 0 <= exc.offset <= len(data)
        return
    assert encode_beacon(msg) == data


@settings(max_examples=200, deadline=None)
@given(tail=st.binary(min_size=36, max_size=36))
def test_any_header_valid_beacon_matches_oracle(tail: bytes) -> None:
    data = b"CHIRP\x01" + tail
    try:
        msg = decode_beacon(data)
    except FieldValueError:
        assert data[6] not in range(1, 4) or data[39] not in range(1, 5)
        return
    parsed = BEACON.parse(data)
    assert (int(msg.message_type), int(msg.service), msg.port) == (
        parsed.message_type,
        parsed.service,
        parsed.port,
    )


def test_vector_folder_readme_present() -> None:
    readme = Path(CHIRP_DIR).parent / "README.md"
    assert "chirp/" in readme.read_text(encoding="utf-8")


# --- the real constellationdaq 1.0.2 as a peer ---------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(msg=beacons(), name=st.text(max_size=40))
def test_reference_peer_agrees(msg: Beacon, name: str) -> None:
    ref = pytest.importorskip("constellation.core.chirp")
    data = encode_beacon(msg)
    theirs = ref.CHIRPMessage()
    theirs.unpack(data)
    assert theirs.msgtype.value == msg.message_type
    assert theirs.serviceid.value == msg.service
    assert (theirs.group_uuid.bytes, theirs.host_uuid.bytes) == (msg.group_id, msg.host_id)
    assert theirs.port == msg.port
    assert theirs.pack() == data
    assert ref.get_uuid(name).bytes == chirp_id(name)
