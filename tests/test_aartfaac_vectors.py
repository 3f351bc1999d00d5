"""The AARTFAAC window codec against golden bytes captured from tkp's own emulator.

Vectors: ``tests/vectors/aartfaac`` (or ``$DAQWIRE_VECTORS/aartfaac``); see the README there.
Every test asserts exact values: header fields, FITS keywords, pixel bytes, error classes,
error field paths and error offsets.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits as astropy_fits
from dateutil import parser as dateutil_parser

from daqwire.errors import (
    BadMagicError,
    FieldValueError,
    LengthLimitError,
    LengthMismatchError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    ShapeMismatchError,
    TrailingDataError,
    TruncatedError,
)
from daqwire.generated.aartfaac import (
    WINDOW_MAGIC,
    WINDOW_MAX_FITS_BYTES,
    WINDOW_MAX_IMAGE_BYTES,
    WINDOW_PREFIX_SIZE,
    Window,
    decode_window,
    decode_window_from,
    encode_window,
    encode_window_into,
    encoded_window_size,
    window_frame_size,
)
from daqwire.generated.aartfaac_construct import WINDOW
from tests.conftest import window_header

SINGLE_WINDOWS = ["w16x16_casa4d", "w64x32_casa4d", "w16x16_special", "w1024x1024_casa4d"]
EDGE_ACCEPTED = ["nonzero_padding", "fits_unpadded", "date_obs_with_Z", "date_obs_no_fraction"]
MALFORMED = [
    "bad_magic_bigendian",
    "bad_magic_zero",
    "truncated_header",
    "truncated_fits",
    "truncated_image",
    "fits_length_short",
    "fits_length_zero",
    "array_length_not_multiple_of_4",
    "array_length_vs_naxis_mismatch",
    "missing_date_obs",
    "unparseable_date_obs",
]

#: every malformed vector -> (exact error class, field_path, offset); offsets are bytes from the
#: start of the window. ``None`` as offset means "len(data)" (the input ran out there).
MALFORMED_EXPECTED: dict[str, tuple[type[RemoteProtocolError], str, int | None]] = {
    "bad_magic_bigendian": (BadMagicError, "window.magic", 0),
    "bad_magic_zero": (BadMagicError, "window.magic", 0),
    "truncated_header": (TruncatedError, "window.padding", None),
    "truncated_fits": (TruncatedError, "window.fits", None),
    "truncated_image": (TruncatedError, "window.image", None),
    # fits_length is 2880 short: the 2880 bytes of FITS text it announces hold no END card;
    # the error points at the end of the announced text, where END should have been
    "fits_length_short": (FieldValueError, "window.fits", 512 + 2880),
    # no FITS text at all: no END card, at the (empty) text's start
    "fits_length_zero": (FieldValueError, "window.fits", 512),
    "array_length_not_multiple_of_4": (LengthMismatchError, "window.array_length", 12),
    # the image starts after the 512-byte header and 5760 bytes of FITS text
    "array_length_vs_naxis_mismatch": (ShapeMismatchError, "window.image", 512 + 5760),
    # a missing keyword has no card to point at: the offset is the start of the FITS text
    "missing_date_obs": (FieldValueError, "window.fits.DATE-OBS", 512),
    # the DATE-OBS card is card 42 of the FITS text
    "unparseable_date_obs": (FieldValueError, "window.fits.DATE-OBS", 512 + 42 * 80),
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wire_pixels(window: Window) -> bytes:
    """The image in wire order for the default pixel_order (NAXIS2 fastest = [y, x] in F order)."""
    return window.image.tobytes(order="F")


def _header(window: Window) -> Any:
    return astropy_fits.Header.fromstring(window.fits)


def _root_buffer(array: np.ndarray) -> object:
    """Follow ``.base`` down to the object that owns the memory."""
    obj: object = array
    while isinstance(obj, np.ndarray) and obj.base is not None:
        obj = obj.base
    return obj


def _raises_exactly(exc_type: type[RemoteProtocolError], func: Any, *args: Any, **kw: Any) -> Any:
    with pytest.raises(RemoteProtocolError) as info:
        func(*args, **kw)
    assert type(info.value) is exc_type, f"{type(info.value).__name__}: {info.value}"
    assert info.value.protocol == "aartfaac"
    return info.value


# --- the committed copy --------------------------------------------------------------------------


def test_index_lists_every_window_file_with_its_size(vectors_dir: Path) -> None:
    index = json.loads((vectors_dir / "INDEX.json").read_text(encoding="utf-8"))
    listed = {entry["file"]: entry["bytes"] for entry in index["files"]}
    on_disk = {
        f"{p.parent.name}/{p.name}": p.stat().st_size for p in sorted(vectors_dir.glob("*/*.bin"))
    }
    assert listed == on_disk
    assert set(SINGLE_WINDOWS) | {"seq3_w16x16_casa4d"} == {
        p.stem for p in (vectors_dir / "valid").glob("*.bin")
    }
    assert set(MALFORMED) == {p.stem for p in (vectors_dir / "malformed").glob("*.bin")}
    assert set(EDGE_ACCEPTED) | {"fits_without_end"} == {
        p.stem for p in (vectors_dir / "edge").glob("*.bin")
    }


@pytest.mark.parametrize("kind", ["valid", "malformed", "edge"])
def test_json_describes_its_bin(vectors_dir: Path, load_vector: Any, kind: str) -> None:
    for path in sorted((vectors_dir / kind).glob("*.bin")):
        data, meta = load_vector(kind, path.stem)
        assert meta["file"] == path.name
        size = meta.get("window_bytes", meta.get("bytes", meta.get("window_bytes_total")))
        assert size == len(data)


# --- valid single windows ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SINGLE_WINDOWS)
def test_valid_header_fields(load_vector: Any, name: str) -> None:
    data, meta = load_vector("valid", name)
    head = meta["header512"]
    assert _sha256(data) == meta["sha256_window"]
    assert len(data) == meta["window_bytes"]
    assert data[:8].hex() == head["magic_wire_bytes_hex"]
    assert data[:8] == head["magic_wire_ascii"].encode("ascii") == b"OMOHSJIG"
    assert data[16:512] == bytes(496) and head["pad_all_zero"] is True

    window = decode_window(data)
    assert window.magic == head["magic_u64"] == WINDOW_MAGIC == 0x47494A53484F4D4F
    assert window.fits_length == head["fits_length"] == meta["fits"]["length"]
    assert window.array_length == head["array_length"] == meta["image"]["length"]
    assert len(data) == WINDOW_PREFIX_SIZE + window.fits_length + window.array_length
    assert window_frame_size(data) == len(data)
    assert window_frame_size(data[:WINDOW_PREFIX_SIZE]) == len(data)
    assert window_frame_size(data[: WINDOW_PREFIX_SIZE - 1]) is None
    assert encoded_window_size(window) == len(data)


@pytest.mark.parametrize("name", SINGLE_WINDOWS)
def test_valid_fits_keywords(load_vector: Any, name: str) -> None:
    data, meta = load_vector("valid", name)
    window = decode_window(data)
    assert window.fits == data[512 : 512 + meta["fits"]["length"]].decode("ascii")

    header = _header(window)
    keywords = meta["fits"]["keywords"]
    assert keywords
    for key, expected in keywords.items():
        actual = header[key]
        assert actual == expected, key
        assert type(actual) is type(expected), key  # T is True, not 1; 1.0 is a float

    cards = meta["fits"]["cards"]
    assert len(cards) == meta["fits"]["n_cards_including_END"]
    text_cards = [window.fits[i : i + 80] for i in range(0, len(window.fits), 80)]
    assert text_cards[: len(cards)] == cards
    padding = "".join(text_cards[len(cards) :])
    assert padding == " " * meta["fits"]["blank_padding_bytes_after_END"]

    assert header["DATE-OBS"] == meta["fits"]["DATE-OBS"]
    parsed = dateutil_parser.parse(header["DATE-OBS"])
    assert parsed.isoformat() == meta["fits"]["DATE-OBS_dateutil"]
    assert parsed.isoformat() == meta["tkp_observed"]["extract_timestamp"]["value"]


@pytest.mark.parametrize("name", SINGLE_WINDOWS)
def test_valid_image_pixels(load_vector: Any, index_pattern: Any, name: str) -> None:
    data, meta = load_vector("valid", name)
    info = meta["image"]
    window = decode_window(data)
    image = window.image
    naxis1, naxis2 = info["NAXIS1"], info["NAXIS2"]
    header = _header(window)
    assert (header["NAXIS1"], header["NAXIS2"]) == (naxis1, naxis2)

    assert image.shape == (naxis2, naxis1)
    assert image.dtype == np.dtype("<f4")
    assert image.size == info["n_values"]

    wire = _wire_pixels(window)
    assert wire == data[info["offset"] : info["offset"] + info["length"]]
    assert _sha256(wire) == info["sha256"]
    assert f"{zlib.crc32(wire):08x}" == info["crc32"]
    first = np.frombuffer(wire, "<f4")[:8]
    assert first.tolist() == [float(v) for v in info["first_8_wire_values"]]

    # tkp's reconstruct_fits array is (NAXIS1, NAXIS2): the transpose of ours
    tkp = meta["tkp_observed"]["reconstruct_fits"]
    assert list(image.T.shape) == tkp["data_shape"]
    assert _sha256(np.ascontiguousarray(image.T).tobytes()) == tkp["sha256_data_as_le_f32_c_order"]

    # index pattern: pixel (x, y) = y*NAXIS1 + x, except the six special pixels of ``special``
    pattern = index_pattern(naxis1, naxis2)
    assert pattern[1, 0] == naxis1 and pattern[0, 1] == 1
    plain = np.ones(image.shape, dtype=bool)
    if meta["emulator_input"]["pattern"] == "special":
        plain[0, 1:7] = False
    else:
        assert meta["emulator_input"]["pattern"] == "index"
    assert np.array_equal(image[plain], pattern[plain])
    finite = np.isfinite(image)
    assert math.fsum(image[finite].astype(np.float64).tolist()) == info["finite_sum"]


@pytest.mark.parametrize("name", SINGLE_WINDOWS)
def test_valid_first_row_matches_astropy_view(load_vector: Any, name: str) -> None:
    data, meta = load_vector("valid", name)
    row0 = decode_window(data).image[0, :8]
    for x, text in enumerate(meta["image"]["astropy_yx_row0_first_8"]):
        expected = np.float32(float(text))
        if np.isnan(expected):
            assert np.isnan(row0[x]), x
        else:  # bit-exact: keeps -0.0 apart from 0.0
            assert row0[x].tobytes() == expected.tobytes(), x


def test_special_pixels_are_bit_exact(load_vector: Any) -> None:
    data, _ = load_vector("valid", "w16x16_special")
    image = decode_window(data).image
    row = image[0]
    assert row[0] == 0.0
    assert np.isnan(row[1])
    assert row[2] == np.inf
    assert row[3] == -np.inf
    assert row[4] == 0.0 and bool(np.signbit(row[4]))
    assert row[5] == np.float32(1e-45)
    assert row[5].view(np.uint32) == 1  # the smallest subnormal
    assert row[6] == np.finfo(np.float32).max
    assert row[7] == 7.0
    # exactly those six pixels are special; every other one follows the index pattern
    assert int(np.count_nonzero(~np.isfinite(image))) == 3
    assert np.array_equal(image[1:], (np.arange(16, 256, dtype="<f4")).reshape(15, 16))
    assert np.array_equal(row[7:], np.arange(7, 16, dtype="<f4"))


def test_non_square_orientation(load_vector: Any) -> None:
    data, _ = load_vector("valid", "w64x32_casa4d")
    image = decode_window(data).image
    assert image.shape == (32, 64)  # (NAXIS2, NAXIS1) = [y, x]
    assert image[1, 0] == 64.0
    assert image[0, 1] == 1.0
    assert image[31, 63] == 31 * 64 + 63
    # wire order: NAXIS2 (y) varies fastest
    wire = np.frombuffer(data, "<f4", offset=512 + 5760)
    assert wire[1] == 64.0 and wire[32] == 1.0


@pytest.mark.parametrize("name", SINGLE_WINDOWS)
def test_valid_reencode_is_byte_exact(load_vector: Any, name: str) -> None:
    data, _ = load_vector("valid", name)
    window = decode_window(data)
    assert encode_window(window) == data
    assert window.encode() == data
    assert encode_window(window, pixel_order="naxis2_fastest") == data

    buffer = bytearray(b"\xaa" * (len(data) + 7))
    assert encode_window_into(window, buffer, 3) == 3 + len(data)
    assert buffer[3 : 3 + len(data)] == data
    assert buffer[:3] == b"\xaa" * 3 and buffer[3 + len(data) :] == b"\xaa" * 4

    # rebuilt from scratch (a fresh array, not the view over ``data``)
    copy = Window(fits=window.fits, image=np.array(window.image, order="C"))
    assert copy == window
    assert encode_window(copy) == data


@pytest.mark.parametrize("name", SINGLE_WINDOWS)
def test_valid_image_is_a_zero_copy_view(load_vector: Any, name: str) -> None:
    data, meta = load_vector("valid", name)
    window = decode_window(data)
    assert np.shares_memory(window.image, np.frombuffer(data, np.uint8))
    assert _root_buffer(window.image) is data
    assert not window.image.flags.writeable
    with pytest.raises(ValueError):
        window.image[0, 0] = 1.0

    # over a writable buffer the view is writable and really aliases the buffer
    mutable = bytearray(data)
    view = decode_window(mutable).image
    assert view.flags.writeable
    assert _root_buffer(view) is mutable
    offset = meta["image"]["offset"]
    mutable[offset : offset + 4] = np.float32(-2.5).tobytes()
    assert view[0, 0] == -2.5


@pytest.mark.parametrize("name", SINGLE_WINDOWS)
def test_valid_other_pixel_order_is_the_transposed_reading(load_vector: Any, name: str) -> None:
    data, _ = load_vector("valid", name)
    window = decode_window(data)
    other = decode_window(data, pixel_order="naxis1_fastest")
    assert other.image.shape == window.image.shape
    assert other.image.tobytes(order="C") == window.image.tobytes(order="F")
    assert encode_window(other, pixel_order="naxis1_fastest") == data


@pytest.mark.parametrize("name", SINGLE_WINDOWS)
def test_valid_construct_oracle_agrees(load_vector: Any, name: str) -> None:
    data, _ = load_vector("valid", name)
    window = decode_window(data)
    parsed = WINDOW.parse(data)
    assert parsed.magic == WINDOW_MAGIC
    assert parsed.fits_length == window.fits_length
    assert parsed.array_length == window.array_length
    assert parsed.fits == window.fits.encode("ascii")
    assert parsed.image == _wire_pixels(window)
    assert WINDOW.build(dict(fits=parsed.fits, image=parsed.image)) == data


# --- a stream of three windows -------------------------------------------------------------------


def test_seq3_decode_window_from(load_vector: Any) -> None:
    data, meta = load_vector("valid", "seq3_w16x16_casa4d")
    assert _sha256(data) == meta["sha256_file"]
    assert len(meta["windows"]) == meta["n_windows"] == 3
    offset = 0
    for entry in meta["windows"]:
        assert entry["offset"] == offset
        assert window_frame_size(data, offset) == entry["length"]
        window, end = decode_window_from(data, entry["offset"])
        assert end == entry["offset"] + entry["length"]
        assert window.fits_length == entry["fits_length"]
        assert window.array_length == entry["array_length"]
        assert _header(window)["DATE-OBS"] == entry["date_obs"]
        assert _sha256(_wire_pixels(window)) == entry["image_sha256"]
        assert np.shares_memory(window.image, np.frombuffer(data, np.uint8))
        assert encode_window(window) == data[entry["offset"] : end]
        offset = end
    assert offset == len(data) == meta["window_bytes_total"]


def test_seq3_matches_the_single_window(load_vector: Any) -> None:
    data, _ = load_vector("valid", "seq3_w16x16_casa4d")
    single = decode_window(load_vector("valid", "w16x16_casa4d")[0])
    window, _ = decode_window_from(data, 7296)
    assert np.array_equal(window.image, single.image)
    # only the DATE-OBS value differs between the FITS texts
    diff = [i for i, (a, b) in enumerate(zip(window.fits, single.fits, strict=True)) if a != b]
    assert diff and diff[0] >= 42 * 80 + len("DATE-OBS= '") and diff[-1] < 43 * 80
    assert window.fits[42 * 80 : 42 * 80 + 8] == "DATE-OBS"


def test_seq3_decode_window_rejects_trailing_windows(load_vector: Any) -> None:
    data, _ = load_vector("valid", "seq3_w16x16_casa4d")
    error = _raises_exactly(TrailingDataError, decode_window, data)
    assert error.field_path == "window"
    assert error.offset == 7296


def test_decode_window_from_base_shifts_error_offsets(load_vector: Any) -> None:
    data, _ = load_vector("malformed", "unparseable_date_obs")
    padded = b"\x00" * 5 + data
    error = _raises_exactly(FieldValueError, decode_window_from, padded, 5)
    assert error.offset == 5 + 512 + 42 * 80
    error = _raises_exactly(FieldValueError, decode_window_from, padded, 5, base=1000)
    assert error.offset == 1005 + 512 + 42 * 80
    assert error.field_path == "window.fits.DATE-OBS"


# --- malformed windows ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_raises_precise_error(load_vector: Any, name: str) -> None:
    data, meta = load_vector("malformed", name)
    assert meta["expected_sdk_behaviour"].startswith(("reject", "a framing-only"))
    exc_type, field_path, offset = MALFORMED_EXPECTED[name]
    error = _raises_exactly(exc_type, decode_window, data)
    assert error.field_path == field_path
    assert error.offset == (len(data) if offset is None else offset)
    assert isinstance(error, ProtocolError)
    assert str(error).startswith(f"aartfaac.{field_path} at byte {error.offset}: ")


def test_bad_magic_bigendian_is_reported_as_byte_swapped(load_vector: Any) -> None:
    data, meta = load_vector("malformed", "bad_magic_bigendian")
    assert data[:8] == b"GIJSHOMO"
    error = _raises_exactly(BadMagicError, decode_window, data)
    assert error.byte_swapped is True
    assert error.expected == WINDOW_MAGIC
    assert error.actual == int.from_bytes(data[:8], "little") == 5714310674256644423
    assert f"{error.actual}!={error.expected}" == meta["tkp_observed"]["message"]
    assert error.offset == 0
    # the header alone is enough to tell
    with pytest.raises(BadMagicError):
        window_frame_size(data[:512])


def test_bad_magic_zero_is_not_byte_swapped(load_vector: Any) -> None:
    data, _ = load_vector("malformed", "bad_magic_zero")
    error = _raises_exactly(BadMagicError, decode_window, data)
    assert error.byte_swapped is False
    assert error.expected == WINDOW_MAGIC
    assert error.actual == 0
    assert error.offset == 0
    assert error.field_path == "window.magic"


def test_array_length_not_multiple_of_4_is_not_a_shape_error(load_vector: Any) -> None:
    data, _ = load_vector("malformed", "array_length_not_multiple_of_4")
    error = _raises_exactly(LengthMismatchError, decode_window, data)
    assert not isinstance(error, ShapeMismatchError)
    assert int.from_bytes(data[12:16], "little") == 1022
    # detectable from the 512-byte header alone
    with pytest.raises(LengthMismatchError) as info:
        window_frame_size(data[:512])
    assert (info.value.field_path, info.value.offset) == ("window.array_length", 12)


def test_unparseable_date_obs_points_at_its_card(load_vector: Any) -> None:
    data, _ = load_vector("malformed", "unparseable_date_obs")
    error = _raises_exactly(FieldValueError, decode_window, data)
    assert error.offset is not None
    assert (error.offset - 512) % 80 == 0
    assert data[error.offset : error.offset + 22] == b"DATE-OBS= 'not-a-date'"


@pytest.mark.parametrize("name", ["unparseable_date_obs", "missing_date_obs"])
def test_date_obs_errors_after_a_valid_window(load_vector: Any, name: str) -> None:
    """The same errors right after a valid window was decoded (same FITS text, other date)."""
    good, _ = load_vector("valid", "w16x16_casa4d")
    bad, _ = load_vector("malformed", name)
    decode_window(good)
    exc_type, field_path, offset = MALFORMED_EXPECTED[name]
    error = _raises_exactly(exc_type, decode_window, bad)
    assert (error.field_path, error.offset) == (field_path, offset)
    assert offset is not None
    decode_window(good)
    error = _raises_exactly(exc_type, decode_window_from, good + bad, 7296)
    assert (error.field_path, error.offset) == (field_path, 7296 + offset)


# --- edge windows --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EDGE_ACCEPTED)
def test_edge_windows_decode(load_vector: Any, name: str) -> None:
    data, meta = load_vector("edge", name)
    assert meta["expected_sdk_behaviour"].startswith("accept")
    reference = decode_window(load_vector("valid", "w16x16_casa4d")[0])
    window = decode_window(data)
    assert window.image.shape == (16, 16)
    assert np.array_equal(window.image, reference.image)
    assert _wire_pixels(window) == _wire_pixels(reference)
    observed = meta["tkp_observed"]
    assert window.fits_length == observed["read_window"]["fits_len"]
    assert window.array_length == observed["read_window"]["image_len"]
    stamp = dateutil_parser.parse(_header(window)["DATE-OBS"])
    assert stamp.isoformat() == observed["extract_timestamp"]["value"]
    assert (stamp.tzinfo is not None) is observed["extract_timestamp"]["tz_aware"]


def test_edge_date_obs_forms(load_vector: Any) -> None:
    with_z = decode_window(load_vector("edge", "date_obs_with_Z")[0])
    assert _header(with_z)["DATE-OBS"] == "2026-11-21T12:52:08.477364Z"
    no_fraction = decode_window(load_vector("edge", "date_obs_no_fraction")[0])
    assert _header(no_fraction)["DATE-OBS"] == "2026-11-21T12:52:08"


def test_edge_nonzero_padding_is_ignored_and_reencoded_as_zeros(load_vector: Any) -> None:
    data, _ = load_vector("edge", "nonzero_padding")
    assert data[16:512] != bytes(496)
    window = decode_window(data)
    assert encode_window(window) == data[:16] + bytes(496) + data[512:]
    assert encode_window(window) == load_vector("valid", "w16x16_casa4d")[0]


def test_edge_fits_unpadded_reencodes_byte_exact(load_vector: Any) -> None:
    data, _ = load_vector("edge", "fits_unpadded")
    window = decode_window(data)
    assert window.fits_length == 3840 == 48 * 80
    assert window.fits.endswith("END" + " " * 77)
    assert encode_window(window) == data


def test_edge_fits_without_end_is_rejected(load_vector: Any) -> None:
    """FITS text without an END card is rejected: a deliberate deviation from tkp.

    tkp (through astropy) accepts this window, but daqwire's spec says ``end_card: required``:
    without END a reader cannot tell a complete header from one cut short by a wrong
    fits_length (compare ``malformed/fits_length_short``), so daqwire is strict here.
    """
    data, meta = load_vector("edge", "fits_without_end")
    assert meta["tkp_observed"]["ok"] is True
    error = _raises_exactly(FieldValueError, decode_window, data)
    assert error.field_path == "window.fits"
    assert error.offset == 512 + 5760  # the end of the FITS text, where no END was found
    assert "END" in error.message


# --- limits --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["w16x16_casa4d", "w1024x1024_casa4d"])
def test_fits_limit_from_header_alone(load_vector: Any, name: str) -> None:
    data, meta = load_vector("valid", name)
    fits_length = meta["header512"]["fits_length"]
    header = data[:WINDOW_PREFIX_SIZE]
    for call in (window_frame_size, decode_window_from):
        with pytest.raises(LengthLimitError) as info:
            call(header, max_fits_bytes=fits_length - 1)
        error = info.value
        assert type(error) is LengthLimitError
        assert (error.limit, error.actual) == (fits_length - 1, fits_length)
        assert (error.field_path, error.offset, error.protocol) == (
            "window.fits_length",
            8,
            "aartfaac",
        )
    # at the limit exactly it passes
    assert window_frame_size(header, max_fits_bytes=fits_length) == len(data)
    assert decode_window(data, max_fits_bytes=fits_length) == decode_window(data)


@pytest.mark.parametrize("name", ["w16x16_casa4d", "w1024x1024_casa4d"])
def test_image_limit_from_header_alone(load_vector: Any, name: str) -> None:
    data, meta = load_vector("valid", name)
    array_length = meta["header512"]["array_length"]
    header = data[:WINDOW_PREFIX_SIZE]
    for call in (window_frame_size, decode_window_from):
        with pytest.raises(LengthLimitError) as info:
            call(header, max_image_bytes=array_length - 4)
        error = info.value
        assert (error.limit, error.actual) == (array_length - 4, array_length)
        assert (error.field_path, error.offset) == ("window.array_length", 12)
    with pytest.raises(LengthLimitError):
        decode_window(data, max_image_bytes=array_length - 1)
    assert window_frame_size(header, max_image_bytes=array_length) == len(data)


@pytest.mark.parametrize(
    ("fits_length", "array_length", "field_path", "limit", "offset"),
    [
        (0xFFFFFFFF, 1024, "window.fits_length", WINDOW_MAX_FITS_BYTES, 8),
        (5760, 0xFFFFFFFF, "window.array_length", WINDOW_MAX_IMAGE_BYTES, 12),
        (0xFFFFFFFF, 0xFFFFFFFF, "window.fits_length", WINDOW_MAX_FITS_BYTES, 8),
    ],
)
def test_huge_announced_lengths_fail_at_once(
    fits_length: int, array_length: int, field_path: str, limit: int, offset: int
) -> None:
    header = window_header(fits_length, array_length)
    for call in (window_frame_size, decode_window_from, decode_window):
        with pytest.raises(LengthLimitError) as info:
            call(header)
        assert (info.value.field_path, info.value.offset) == (field_path, offset)
        assert (info.value.limit, info.value.actual) == (limit, 0xFFFFFFFF)


def test_spec_limits() -> None:
    assert WINDOW_PREFIX_SIZE == 512
    assert WINDOW_MAX_FITS_BYTES == 1048576
    assert WINDOW_MAX_IMAGE_BYTES == 268435456


# --- other buffer types --------------------------------------------------------------------------


def test_memoryview_input_is_zero_copy_and_keeps_writability(load_vector: Any) -> None:
    data, _ = load_vector("valid", "w16x16_casa4d")
    writable = bytearray(data)
    window = decode_window(memoryview(writable))
    assert window == decode_window(data)
    assert window.image.flags.writeable
    assert np.shares_memory(window.image, np.frombuffer(writable, np.uint8))
    readonly = decode_window(memoryview(writable).toreadonly())
    assert not readonly.image.flags.writeable
    sliced, end = decode_window_from(memoryview(b"xyz" + data)[3:], 0)
    assert (sliced, end) == (window, len(data))


@pytest.mark.parametrize("fmt", ["I", "f", "H"])
def test_memoryview_with_multibyte_items(load_vector: Any, fmt: str) -> None:
    """A memoryview whose items are wider than a byte (``memoryview(data).cast("I")``, or a
    numpy array's buffer) is still the same bytes: the window decodes as from ``bytes``, or the
    call refuses the buffer with ``LocalProtocolError``. It is never misread as truncated."""
    data, _ = load_vector("valid", "w16x16_casa4d")
    view = memoryview(data).cast(fmt)
    assert view.nbytes == len(data)
    try:
        window = decode_window(view)
    except LocalProtocolError:
        return
    assert window == decode_window(data)
    assert window.image.tobytes(order="F") == data[512 + 5760 :]
    assert window_frame_size(memoryview(data[:512]).cast(fmt)) == len(data)


def test_astropy_written_window_roundtrip(
    load_vector: Any, fits_text: Any, index_pattern: Any
) -> None:
    """A window built the documented way (astropy ``header.tostring()`` + a [y, x] image) matches
    the layout of the captured vectors byte for byte where they share content."""
    fits = fits_text(64, 32, date_obs="2026-11-21T12:52:09.481105")
    window = Window(fits=fits, image=index_pattern(64, 32))
    data = encode_window(window)
    assert len(data) == 512 + 2880 + 64 * 32 * 4
    golden, _ = load_vector("valid", "w64x32_casa4d")
    assert data[:8] == golden[:8] and data[12:512] == golden[12:512]
    assert data[512 + 2880 :] == golden[512 + 5760 :]  # the very same pixel bytes
    assert decode_window(data) == window
