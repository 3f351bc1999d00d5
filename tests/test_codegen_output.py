"""The generator on a spec that uses every binary construct: the output lints, type-checks,
round-trips, agrees with its construct oracle and turns hostile bytes into typed errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daqwire.errors import (
    BadMagicError,
    FieldValueError,
    LengthLimitError,
    LocalProtocolError,
    RemoteProtocolError,
    TrailingDataError,
    TruncatedError,
)
from daqwire.sansio import NEED_DATA, STREAM_END
from tests.generated_pkg import REPO, TEST_SPECS, generate_package, import_generated

PKG = "kitchen_gen"


@pytest.fixture(scope="module")
def gen_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gen")
    generate_package(TEST_SPECS, root, PKG)
    return root


@pytest.fixture(scope="module")
def modules(gen_root: Path) -> list[ModuleType]:
    return import_generated(gen_root, PKG, "kitchen", "kitchen_construct", "kitchen_strategies")


@pytest.fixture(scope="module")
def k(modules: list[ModuleType]) -> ModuleType:
    return modules[0]


@pytest.fixture(scope="module")
def kc(modules: list[ModuleType]) -> ModuleType:
    return modules[1]


@pytest.fixture(scope="module")
def ks(modules: list[ModuleType]) -> ModuleType:
    return modules[2]


def _frame(k: ModuleType, **over: object) -> object:
    fields: dict[str, object] = dict(
        version=2,
        mode=k.Mode.CALIBRATE,
        temperature=21.5,
        offset_ns=-5,
        rows=2,
        cols=3,
        name="héllo",
        tag="ABCD",
        blob=b"xyz",
        matrix=np.arange(6, dtype=">i2").reshape(2, 3),
        samples=np.array([1.5, -2.25]),
        checksum=7,
    )
    fields.update(over)
    return k.Frame(**fields)


# the exact bytes of _frame(): big-endian unless the spec says little
FRAME_HEX = (
    "cafe"  # sync
    "02"  # version
    "07"  # mode CALIBRATE
    "41ac0000"  # temperature 21.5 float32 BE
    "fbffffffffffffff"  # offset_ns -5 int64 LE
    "0002"
    "0003"  # rows, cols
    "06"  # name_length (UTF-8 bytes of "héllo")
    "00000003"  # blob_length
    "00000010"  # samples_length
    "000000"  # reserved padding
    "68c3a96c6c6f"  # name
    "41424344"  # tag
    "78797a"  # blob
    "000000010002000300040005"  # matrix int16 BE, row major
    "000000000000f83f"
    "00000000000002c0"  # samples float64 LE
    "00000007"  # checksum
    "beef"  # trailer
)


def test_exact_bytes_and_round_trip(k: ModuleType) -> None:
    frame = _frame(k)
    wire = k.encode_frame(frame)
    assert wire.hex() == FRAME_HEX
    assert len(wire) == k.encoded_frame_size(frame) == k.frame_frame_size(wire)
    back = k.decode_frame(wire)
    assert back == frame
    assert back.mode is k.Mode.CALIBRATE
    assert back.name_length == 6 and back.blob_length == 3 and back.samples_length == 16
    assert back.sync == 0xCAFE and back.trailer == 0xBEEF


def test_parameter_changes_array_order(k: ModuleType) -> None:
    frame = _frame(k)
    wire = k.encode_frame(frame, layout="column_major")
    assert wire.hex() == FRAME_HEX.replace("000000010002000300040005", "000000030001000400020005")
    assert k.decode_frame(wire, layout="column_major") == frame
    assert k.decode_frame(wire).matrix.tolist() == [[0, 3, 1], [4, 2, 5]]
    with pytest.raises(LocalProtocolError, match="unknown layout"):
        k.decode_frame(wire, layout="diagonal")


def test_fixed_message_and_to_offset_padding(k: ModuleType) -> None:
    assert k.PING_PREFIX_SIZE == 16
    assert k.encode_ping(k.Ping(seq=5)).hex() == "50494e4700000005" + "00" * 8
    assert k.decode_ping(bytes.fromhex("50494e47000000ff" + "ab" * 8)) == k.Ping(seq=255)


def test_remote_errors_are_precise(k: ModuleType) -> None:
    wire = bytearray(k.encode_frame(_frame(k)))
    bad = bytearray(wire)
    bad[0:2] = b"\xfe\xca"  # byte-swapped sync
    with pytest.raises(BadMagicError) as info:
        k.decode_frame(bytes(bad))
    assert info.value.byte_swapped and info.value.offset == 0
    assert info.value.field_path == "frame.sync" and info.value.protocol == "kitchen"
    bad = bytearray(wire)
    bad[3] = 9  # mode 9 is not a Mode
    with pytest.raises(FieldValueError, match="not a Mode") as info2:
        k.decode_frame(bytes(bad))
    assert info2.value.offset == 3 and info2.value.field_path == "frame.mode"
    bad = bytearray(wire)
    bad[2] = 4  # version above max 3
    with pytest.raises(FieldValueError, match="out of range"):
        k.decode_frame(bytes(bad))
    bad = bytearray(wire)
    bad[29] = 1  # reserved padding must be zero-filled
    with pytest.raises(FieldValueError, match="padding") as info3:
        k.decode_frame(bytes(bad))
    assert info3.value.offset == 29
    bad = bytearray(wire)
    bad[21:25] = (5000).to_bytes(4, "big")  # blob_length over its max of 4096
    with pytest.raises(LengthLimitError) as info4:
        k.decode_frame(bytes(bad))
    assert (info4.value.limit, info4.value.actual, info4.value.offset) == (4096, 5000, 21)
    with pytest.raises(LengthLimitError):
        k.decode_frame(bytes(wire), max_blob_bytes=2)
    bad = bytearray(wire)
    bad[32:34] = b"\xff\xfe"  # not UTF-8 inside name
    with pytest.raises(FieldValueError, match="utf-8") as info5:
        k.decode_frame(bytes(bad))
    assert info5.value.offset == 32
    bad = bytearray(wire)
    bad[-2:] = b"\x00\x00"  # trailer constant after the variable blocks
    with pytest.raises(BadMagicError) as info6:
        k.decode_frame(bytes(bad))
    assert info6.value.offset == len(wire) - 2 and info6.value.field_path == "frame.trailer"
    with pytest.raises(TruncatedError) as info7:
        k.decode_frame(bytes(wire[:40]))
    assert info7.value.field_path == "frame.tag" and info7.value.offset == 40
    with pytest.raises(TrailingDataError):
        k.decode_frame(bytes(wire) + b"\x00")


def test_local_errors_on_encode(k: ModuleType) -> None:
    with pytest.raises(LocalProtocolError):
        _frame(k, version=300)
    with pytest.raises(LocalProtocolError):
        _frame(k, rows=True)
    with pytest.raises(LocalProtocolError, match="shape"):
        k.encode_frame(_frame(k, rows=3))
    with pytest.raises(LocalProtocolError, match="fixes it at 4"):
        k.encode_frame(_frame(k, tag="TOOLONG"))
    with pytest.raises(LocalProtocolError, match="ascii"):
        k.encode_frame(_frame(k, tag="ÄBCD"))
    with pytest.raises(LocalProtocolError, match="over the spec limit"):
        k.encode_frame(_frame(k, blob=b"x" * 5000))
    assert _frame(k, mode=1).mode is k.Mode.RUN


def test_frames_are_frozen(k: ModuleType) -> None:
    frame = _frame(k)
    with pytest.raises(AttributeError):
        frame.version = 3  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        hash(frame)
    assert hash(k.Ping(seq=1)) == hash(k.Ping(seq=1))


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(data=st.data())
def test_property_round_trip_and_oracle(
    k: ModuleType, kc: ModuleType, ks: ModuleType, data: st.DataObject
) -> None:
    frame = data.draw(ks.frames())
    layout = data.draw(st.sampled_from(["row_major", "column_major"]))
    wire = k.encode_frame(frame, layout=layout)
    assert k.decode_frame(wire, layout=layout) == frame
    parsed = kc.FRAME.parse(wire)
    assert parsed.version == frame.version and parsed.mode == int(frame.mode)
    assert parsed.name == frame.name.encode("utf-8") and parsed.blob == frame.blob
    order = "C" if layout == "row_major" else "F"
    assert parsed.matrix == np.asarray(frame.matrix, ">i2").tobytes(order=order)
    assert parsed.samples == np.asarray(frame.samples, "<f8").tobytes()
    built = kc.FRAME.build(
        dict(
            version=frame.version,
            mode=int(frame.mode),
            temperature=frame.temperature,
            offset_ns=frame.offset_ns,
            rows=frame.rows,
            cols=frame.cols,
            name=parsed.name,
            tag=parsed.tag,
            blob=frame.blob,
            matrix=parsed.matrix,
            samples=parsed.samples,
            checksum=frame.checksum,
        )
    )
    assert built == wire


@PROPERTY
@given(data=st.data())
def test_property_hostile_bytes(k: ModuleType, ks: ModuleType, data: st.DataObject) -> None:
    wire = bytearray(k.encode_frame(data.draw(ks.frames())))
    choice = data.draw(st.sampled_from(["random", "truncate", "flip"]))
    if choice == "random":
        blob = data.draw(st.binary(max_size=200))
    elif choice == "truncate":
        blob = bytes(wire[: data.draw(st.integers(0, len(wire) - 1))])
    else:
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] ^= data.draw(st.integers(1, 255))
        blob = bytes(wire)
    try:
        k.decode_frame(blob)
    except RemoteProtocolError:
        pass
    decoder = k.FrameDecoder()
    decoder.feed(blob)
    decoder.close()
    try:
        while decoder.next_event() is not STREAM_END:
            pass
    except RemoteProtocolError:
        pass


@PROPERTY
@given(data=st.data())
def test_property_chunked_stream(k: ModuleType, ks: ModuleType, data: st.DataObject) -> None:
    frames = data.draw(st.lists(ks.frames(max_side=4), min_size=1, max_size=4))
    stream = b"".join(k.encode_frame(f) for f in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    decoder = k.FrameDecoder()
    out = []
    start = 0
    for cut in [*cuts, len(stream)]:
        if cut > start:  # feed(b"") would mean the end of the stream
            decoder.feed(stream[start:cut])
        start = cut
        out.extend(decoder)
    assert decoder.next_event() is NEED_DATA
    decoder.close()
    assert decoder.next_event() is STREAM_END
    assert out == frames


def _stage_for_mypy(gen_root: Path, stage: Path) -> None:
    (stage / "daqwire").mkdir(parents=True)
    for entry in (REPO / "runtime").iterdir():
        if entry.name != "__pycache__":
            os.symlink(entry, stage / "daqwire" / entry.name)
    for name in ("generated", "codegen", "specs"):
        os.symlink(REPO / name, stage / "daqwire" / name)
    os.symlink(gen_root / PKG, stage / PKG)


def test_output_passes_ruff_and_mypy_strict(gen_root: Path, tmp_path: Path) -> None:
    out = gen_root / PKG
    config = ["--config", str(REPO / "pyproject.toml")]
    ruff = [sys.executable, "-m", "ruff"]
    check = subprocess.run(
        [*ruff, "check", *config, "--extend-ignore", "E501,RUF059", str(out)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout
    fmt = subprocess.run(
        [*ruff, "format", *config, "--check", str(out)], capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout
    _stage_for_mypy(gen_root, tmp_path)
    mypy = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(REPO / "pyproject.toml"),
            "-p",
            PKG,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert mypy.returncode == 0, mypy.stdout


CARD_TEXT = "".join(
    card.ljust(80)
    for card in (
        "SIMPLE  =                    T",
        "COUNT   =                   42",
        "GAIN    =              1.5D-03 / a FORTRAN exponent",
        "LABEL   = 'it''s a label   '",
        "FLAG    =                    F",
        "STAMP   = '2026-11-21T12:00:00.5Z'",
        "END",
    )
)


def test_fits_keywords_accessor_types(k: ModuleType) -> None:
    kw = k.card_text_keywords(CARD_TEXT)
    assert kw == k.CardTextKeywords(
        count=42, gain=1.5e-3, label="it's a label", flag=False, stamp="2026-11-21T12:00:00.5Z"
    )
    assert kw.spare is None
    with_spare = CARD_TEXT.replace("END".ljust(80), "SPARE   = -2.5E+2".ljust(80) + "END".ljust(80))
    assert k.card_text_keywords(with_spare.encode("ascii")).spare == -250.0
    # a keyword after END does not count
    after_end = CARD_TEXT + "SPARE   = 1.0".ljust(80)
    assert k.card_text_keywords(after_end).spare is None


def test_fits_keywords_accessor_errors(k: ModuleType) -> None:
    with pytest.raises(FieldValueError) as info:
        k.card_text_keywords(CARD_TEXT.replace("=                   42", "=                   -1"))
    assert info.value.field_path == "card.text.COUNT" and info.value.offset == 80
    with pytest.raises(FieldValueError) as info:
        k.card_text_keywords(CARD_TEXT.replace("FLAG  ", "FLAGS "))
    assert info.value.field_path == "card.text.FLAG"
    with pytest.raises(FieldValueError) as info:
        k.card_text_keywords("é" + CARD_TEXT[1:])
    assert info.value.field_path == "card.text" and info.value.offset == 0


def test_sync_bytes_are_the_leading_constant_on_the_wire(k: ModuleType) -> None:
    assert k.FRAME_SYNC_BYTES == b"\xca\xfe"  # the spec is big-endian
    assert k.PING_SYNC_BYTES == b"PING"
    assert k.CARD_SYNC_BYTES == b"FITS"
    assert k.encode_card(k.Card(text=CARD_TEXT, data=b"xy")).startswith(k.CARD_SYNC_BYTES)


def test_parts_decoder(k: ModuleType) -> None:
    card = k.Card(text=CARD_TEXT, data=b"\x00\x01\x02")
    assert k.decode_card_parts(CARD_TEXT.encode("ascii"), b"\x00\x01\x02") == card
    assert k.decode_card_parts(memoryview(CARD_TEXT.encode("ascii")), bytearray(3)).data == (
        b"\x00\x00\x00"
    )
    with pytest.raises(LengthLimitError) as info:
        k.decode_card_parts(CARD_TEXT.encode("ascii"), bytes(70000))
    assert info.value.limit == 65535 and info.value.field_path == "card.data_length"
    with pytest.raises(LengthLimitError) as info:
        k.decode_card_parts(CARD_TEXT.encode("ascii") * 400, b"", max_text_bytes=28800)
    assert info.value.actual == 80 * 7 * 400
    with pytest.raises(FieldValueError):
        k.decode_card_parts(CARD_TEXT[:-80].encode("ascii")[:-1] + b"\x80", b"")
    # frame has a trailer after its blocks and ping has no blocks: no parts decoder for them
    assert not hasattr(k, "decode_frame_parts") and not hasattr(k, "decode_ping_parts")


@PROPERTY
@given(data=st.data())
def test_property_card_round_trip_oracle_and_parts(
    k: ModuleType, kc: ModuleType, ks: ModuleType, data: st.DataObject
) -> None:
    card = data.draw(ks.cards())
    wire = k.encode_card(card)
    assert k.decode_card(wire) == card
    parsed = kc.CARD.parse(wire)
    assert parsed.text == card.text.encode("ascii") and parsed.data == card.data
    assert kc.CARD.build(dict(text=parsed.text, data=parsed.data)) == wire
    assert k.decode_card_parts(card.text.encode("ascii"), card.data) == card
    kw = k.card_text_keywords(card.text)
    assert kw.count >= 0 and isinstance(kw.gain, float) and isinstance(kw.flag, bool)


@PROPERTY
@given(data=st.data())
def test_property_card_hostile_bytes(k: ModuleType, ks: ModuleType, data: st.DataObject) -> None:
    wire = bytearray(k.encode_card(data.draw(ks.cards())))
    i = data.draw(st.integers(0, len(wire) - 1))
    wire[i] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(0, len(wire)))
    for blob in (bytes(wire), bytes(wire[:cut])):
        try:
            k.decode_card(blob)
        except RemoteProtocolError:
            pass
    text = bytes(wire[10 : 10 + data.draw(st.integers(0, len(wire)))])
    try:
        k.card_text_keywords(text)
    except RemoteProtocolError:
        pass


def test_constants_are_emitted(k: ModuleType) -> None:
    assert k.KITCHEN_PORT == 4711 and k.GAIN == 1.5
    assert k.SEPARATORS == (",", ";")
    assert {"KITCHEN_PORT", "GAIN", "SEPARATORS"} <= set(k.__all__)
