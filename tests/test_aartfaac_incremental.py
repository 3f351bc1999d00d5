"""The sans-IO ``WindowDecoder``: any chunking gives the same windows, errors are precise and
sticky, limits hold before the body arrives."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest
from astropy.io import fits as astropy_fits
from hypothesis import given, settings
from hypothesis import strategies as st

from daqwire.errors import (
    BadMagicError,
    FieldValueError,
    LengthLimitError,
    LocalProtocolError,
    RemoteProtocolError,
    TruncatedError,
)
from daqwire.generated.aartfaac import (
    NEED_DATA,
    STREAM_END,
    WINDOW_MAGIC,
    WINDOW_MAX_FITS_BYTES,
    WINDOW_MAX_IMAGE_BYTES,
    Window,
    WindowDecoder,
    decode_window,
    decode_window_from,
    encode_window,
)
from daqwire.generated.aartfaac_strategies import windows
from tests.conftest import window_header

SEQ3 = "seq3_w16x16_casa4d"
WINDOW_BYTES = 7296  # one w16x16_casa4d window
#: malformed vectors that are complete frames: the decoder fails on them without close()
FRAMED_MALFORMED = {
    "bad_magic_bigendian": (BadMagicError, "window.magic", 0),
    "bad_magic_zero": (BadMagicError, "window.magic", 0),
    "fits_length_short": (FieldValueError, "window.fits", 512 + 2880),
    "fits_length_zero": (FieldValueError, "window.fits", 512),
    "array_length_not_multiple_of_4": (RemoteProtocolError, "window.array_length", 12),
    "array_length_vs_naxis_mismatch": (RemoteProtocolError, "window.image", 512 + 5760),
    "missing_date_obs": (FieldValueError, "window.fits.DATE-OBS", 512),
    "unparseable_date_obs": (FieldValueError, "window.fits.DATE-OBS", 512 + 42 * 80),
}
TRUNCATED = {
    "truncated_header": "window.padding",
    "truncated_fits": "window.fits",
    "truncated_image": "window.image",
}


def _date_obs(window: Window) -> str:
    value: str = astropy_fits.Header.fromstring(window.fits)["DATE-OBS"]
    return value


def _feed_in_chunks(decoder: WindowDecoder, data: bytes, size: int) -> list[Window]:
    out: list[Window] = []
    for start in range(0, len(data), size):
        decoder.feed(data[start : start + size])
        out.extend(decoder)
    return out


def _header(fits_length: int, array_length: int) -> bytes:
    return window_header(fits_length, array_length)


def _expect_error(decoder: WindowDecoder) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_event()
    error = info.value
    assert error.protocol == "aartfaac"
    # sticky: every later call raises the very same error
    for _ in range(2):
        with pytest.raises(RemoteProtocolError) as again:
            decoder.next_event()
        assert again.value is error
    with pytest.raises(RemoteProtocolError) as again:
        list(decoder)
    assert again.value is error
    return error


# --- the three-window stream ---------------------------------------------------------------------


def test_seq3_whole_file(load_vector: Any) -> None:
    data, meta = load_vector("valid", SEQ3)
    decoder = WindowDecoder()
    assert decoder.next_event() is NEED_DATA
    decoder.feed(data)
    assert decoder.buffered == len(data)
    got = []
    for entry in meta["windows"]:
        assert decoder.stream_offset == entry["offset"]
        event = decoder.next_event()
        assert isinstance(event, Window)
        got.append(event)
        assert decoder.stream_offset == entry["offset"] + entry["length"]
        assert decoder.buffered == len(data) - decoder.stream_offset
        expected, _ = decode_window_from(data, entry["offset"])
        assert event == expected
        assert _date_obs(event) == entry["date_obs"]
        assert encode_window(event) == data[entry["offset"] : entry["offset"] + entry["length"]]
    assert decoder.next_event() is NEED_DATA  # not closed yet: more may come
    decoder.close()
    assert decoder.next_event() is STREAM_END
    assert decoder.next_event() is STREAM_END
    assert list(decoder) == []
    assert (decoder.stream_offset, decoder.buffered) == (len(data), 0)
    assert [_date_obs(w) for w in got] == [e["date_obs"] for e in meta["windows"]]


def test_seq3_one_byte_at_a_time(load_vector: Any) -> None:
    data, meta = load_vector("valid", SEQ3)
    decoder = WindowDecoder()
    got: list[tuple[int, Window]] = []
    for i in range(len(data)):
        decoder.feed(data[i : i + 1])
        event = decoder.next_event()
        while isinstance(event, Window):
            got.append((i + 1, event))
            event = decoder.next_event()
        assert event is NEED_DATA
        assert decoder.stream_offset + decoder.buffered == i + 1
    ends = [e["offset"] + e["length"] for e in meta["windows"]]
    # each window comes out as soon as its last byte is in, not earlier
    assert [end for end, _ in got] == ends
    assert [_date_obs(w) for _, w in got] == [e["date_obs"] for e in meta["windows"]]
    for (_, window), entry in zip(got, meta["windows"], strict=True):
        assert encode_window(window) == data[entry["offset"] : entry["offset"] + entry["length"]]
    decoder.feed(b"")  # end of stream
    assert decoder.next_event() is STREAM_END


@pytest.mark.parametrize("size", [7, 511, 512, 513, 7296, 10000])
def test_seq3_fixed_chunks(load_vector: Any, size: int) -> None:
    data, meta = load_vector("valid", SEQ3)
    decoder = WindowDecoder()
    got = _feed_in_chunks(decoder, data, size)
    decoder.close()
    assert decoder.next_event() is STREAM_END
    assert [_date_obs(w) for w in got] == [e["date_obs"] for e in meta["windows"]]
    assert b"".join(encode_window(w) for w in got) == data


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_feed_accepts_any_byte_buffer(load_vector: Any, kind: type) -> None:
    data, _ = load_vector("valid", SEQ3)
    decoder = WindowDecoder()
    chunks = [kind(data[i : i + 1000]) for i in range(0, len(data), 1000)]
    got = []
    for chunk in chunks:
        decoder.feed(chunk)
        got.extend(decoder)
    decoder.close()
    assert decoder.next_event() is STREAM_END
    assert b"".join(encode_window(w) for w in got) == data


def test_decoder_windows_own_their_buffers(load_vector: Any) -> None:
    data, _ = load_vector("valid", SEQ3)
    source = bytearray(data)
    decoder = WindowDecoder()
    decoder.feed(source)
    first = decoder.next_event()
    assert isinstance(first, Window)
    source[512 + 5760 : 512 + 5760 + 4] = b"\xff\xff\xff\xff"  # the caller reuses its buffer
    rest = list(decoder)
    assert len(rest) == 2
    images = [first.image, *(w.image for w in rest)]
    for i, image in enumerate(images):
        assert not np.shares_memory(image, np.frombuffer(source, np.uint8))
        for other in images[i + 1 :]:
            assert not np.shares_memory(image, other)
    assert first.image[0, 0] == 0.0
    assert all(np.array_equal(image, images[0]) for image in images)


def test_1024x1024_in_large_chunks(load_vector: Any) -> None:
    data, _ = load_vector("valid", "w1024x1024_casa4d")
    decoder = WindowDecoder()
    got = _feed_in_chunks(decoder, data, 65536 + 3)
    decoder.close()
    assert decoder.next_event() is STREAM_END
    assert len(got) == 1
    assert got[0] == decode_window(data)
    assert got[0].image.tobytes(order="F") == data[512 + 5760 :]


def test_other_pixel_order(load_vector: Any) -> None:
    data, _ = load_vector("valid", "w64x32_casa4d")
    decoder = WindowDecoder(pixel_order="naxis1_fastest")
    decoder.feed(data)
    window = decoder.next_event()
    assert isinstance(window, Window)
    assert window == decode_window(data, pixel_order="naxis1_fastest")
    assert window.image.shape == (32, 64)
    assert window.image.tobytes(order="C") == data[512 + 5760 :]


def test_unknown_pixel_order_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        WindowDecoder(pixel_order="naxis3_fastest")  # type: ignore[arg-type]


# --- end of stream -------------------------------------------------------------------------------


def test_empty_stream() -> None:
    decoder = WindowDecoder()
    assert decoder.next_event() is NEED_DATA
    decoder.feed(b"")
    assert decoder.next_event() is STREAM_END
    assert (decoder.stream_offset, decoder.buffered) == (0, 0)


def test_feed_after_close_is_a_local_error(load_vector: Any) -> None:
    data, _ = load_vector("valid", "w16x16_casa4d")
    decoder = WindowDecoder()
    decoder.close()
    with pytest.raises(LocalProtocolError):
        decoder.feed(data)
    decoder.feed(b"")  # closing again is harmless
    assert decoder.next_event() is STREAM_END


@pytest.mark.parametrize(("name", "field_path"), sorted(TRUNCATED.items()))
def test_truncated_vectors_need_data_until_close(
    load_vector: Any, name: str, field_path: str
) -> None:
    data, _ = load_vector("malformed", name)
    decoder = WindowDecoder()
    decoder.feed(data)
    assert decoder.next_event() is NEED_DATA
    assert decoder.buffered == len(data)
    decoder.close()
    error = _expect_error(decoder)
    assert type(error) is TruncatedError
    assert (error.field_path, error.offset) == (field_path, len(data))


@pytest.mark.parametrize(("name", "field_path"), sorted(TRUNCATED.items()))
def test_truncated_after_a_valid_window(load_vector: Any, name: str, field_path: str) -> None:
    good, _ = load_vector("valid", "w16x16_casa4d")
    data, _ = load_vector("malformed", name)
    decoder = WindowDecoder()
    decoder.feed(good + data)
    decoder.feed(b"")
    first = decoder.next_event()
    assert isinstance(first, Window) and encode_window(first) == good
    error = _expect_error(decoder)
    assert type(error) is TruncatedError
    assert (error.field_path, error.offset) == (field_path, len(good) + len(data))


# --- malformed frames ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FRAMED_MALFORMED))
def test_malformed_frames(load_vector: Any, name: str) -> None:
    data, _ = load_vector("malformed", name)
    exc_type, field_path, offset = FRAMED_MALFORMED[name]
    with pytest.raises(RemoteProtocolError) as direct:
        decode_window(data)
    decoder = WindowDecoder()
    decoder.feed(data)  # no close(): the frame is complete, or its header already fails
    error = _expect_error(decoder)
    assert type(error) is type(direct.value)
    assert isinstance(error, exc_type)
    assert (error.field_path, error.offset) == (field_path, offset)
    assert (error.field_path, error.offset) == (direct.value.field_path, direct.value.offset)


@pytest.mark.parametrize("name", sorted(FRAMED_MALFORMED))
def test_malformed_frames_between_valid_windows(load_vector: Any, name: str) -> None:
    """A bad window after a good one: the good one is delivered, the error has stream offsets.

    Also the case tkp was observed on: the same bytes followed by a valid window (for
    fits_length_short tkp misframes and its merger dies; here the window is an error).
    """
    good, _ = load_vector("valid", "w16x16_casa4d")
    data, _ = load_vector("malformed", name)
    exc_type, field_path, offset = FRAMED_MALFORMED[name]
    decoder = WindowDecoder()
    decoder.feed(good + data + good)
    first = decoder.next_event()
    assert isinstance(first, Window) and encode_window(first) == good
    error = _expect_error(decoder)
    assert isinstance(error, exc_type)
    assert (error.field_path, error.offset) == (field_path, len(good) + offset)
    assert decoder.stream_offset == len(good)


def test_fits_length_short_followed_by_valid_window_is_an_error(load_vector: Any) -> None:
    good, _ = load_vector("valid", "w16x16_casa4d")
    data, meta = load_vector("malformed", "fits_length_short")
    # tkp read a 4416-byte window here and then failed on the misframed rest
    assert meta["tkp_observed_when_followed_by_valid_window"]["read_window"]["ok"] is True
    decoder = WindowDecoder()
    decoder.feed(data + good)
    decoder.close()
    error = _expect_error(decoder)
    assert type(error) is FieldValueError
    assert (error.field_path, error.offset) == ("window.fits", 512 + 2880)
    assert decoder.stream_offset == 0


def test_truncated_image_followed_by_valid_window_misframes(load_vector: Any) -> None:
    """Without a checksum the cut window swallows the next header, as in tkp; the next magic
    check then catches the misframing (tkp: ``2314926402535508307!=5136718571548659023``)."""
    good, _ = load_vector("valid", "w16x16_casa4d")
    data, meta = load_vector("malformed", "truncated_image")
    decoder = WindowDecoder()
    decoder.feed(data + good)
    decoder.close()
    swallowed = decoder.next_event()
    assert isinstance(swallowed, Window)
    assert swallowed.image.tobytes(order="F") == data[512 + 5760 :] + good[:512]
    error = _expect_error(decoder)
    assert type(error) is BadMagicError
    assert (error.field_path, error.offset) == ("window.magic", WINDOW_BYTES)
    assert error.actual == int.from_bytes(b"SIMPLE  ", "little") == 2314926402535508307
    observed = meta["tkp_observed_when_followed_by_valid_window"]["next_window"]["message"]
    assert observed == f"{error.actual}!={WINDOW_MAGIC}"


def test_truncated_header_followed_by_valid_window(load_vector: Any) -> None:
    good, _ = load_vector("valid", "w16x16_casa4d")
    data, _ = load_vector("malformed", "truncated_header")
    decoder = WindowDecoder()
    decoder.feed(data + good)
    # the 300 header bytes announce a full window; the misaligned FITS text has no END card
    error = _expect_error(decoder)
    assert type(error) is FieldValueError
    assert (error.field_path, error.offset) == ("window.fits", 512 + 5760)


def test_truncated_fits_followed_by_valid_window(load_vector: Any) -> None:
    good, _ = load_vector("valid", "w16x16_casa4d")
    data, _ = load_vector("malformed", "truncated_fits")
    decoder = WindowDecoder()
    decoder.feed(data + good)
    # the FITS text runs into the next window's binary header: fits_length 5760 = 80 16 00 00
    error = _expect_error(decoder)
    assert type(error) is FieldValueError
    assert (error.field_path, error.offset) == ("window.fits", len(data) + 8)
    assert (data + good)[error.offset] == 0x80


# --- limits --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "field_path", "offset", "limit", "actual"),
    [
        ({"max_fits_bytes": 5759}, "window.fits_length", 8, 5759, 5760),
        ({"max_image_bytes": 1020}, "window.array_length", 12, 1020, 1024),
        ({"max_fits_bytes": 0, "max_image_bytes": 0}, "window.fits_length", 8, 0, 5760),
    ],
)
def test_limits_fail_on_the_header_alone(
    load_vector: Any,
    limits: dict[str, int],
    field_path: str,
    offset: int,
    limit: int,
    actual: int,
) -> None:
    data, _ = load_vector("valid", "w16x16_casa4d")
    decoder = WindowDecoder(**limits)
    for i in range(511):  # the header byte by byte: nothing to judge before byte 512
        decoder.feed(data[i : i + 1])
        assert decoder.next_event() is NEED_DATA
    decoder.feed(data[511:512])
    error = _expect_error(decoder)
    assert type(error) is LengthLimitError
    assert (error.field_path, error.offset) == (field_path, offset)
    assert (error.limit, error.actual) == (limit, actual)
    assert decoder.stream_offset == 0
    assert decoder.buffered == 512


def test_limits_at_the_exact_size_pass(load_vector: Any) -> None:
    data, _ = load_vector("valid", "w16x16_casa4d")
    decoder = WindowDecoder(max_fits_bytes=5760, max_image_bytes=1024)
    decoder.feed(data)
    assert decoder.next_event() == decode_window(data)


def test_limit_error_after_a_valid_window_has_its_stream_offset(load_vector: Any) -> None:
    data, _ = load_vector("valid", SEQ3)
    decoder = WindowDecoder(max_image_bytes=1024)
    decoder.feed(data[:WINDOW_BYTES] + _header(5760, 1028))
    assert isinstance(decoder.next_event(), Window)
    error = _expect_error(decoder)
    assert type(error) is LengthLimitError
    assert (error.offset, error.limit, error.actual) == (WINDOW_BYTES + 12, 1024, 1028)


@pytest.mark.parametrize(
    ("fits_length", "array_length", "field_path", "limit"),
    [
        (0xFFFFFFFF, 1024, "window.fits_length", WINDOW_MAX_FITS_BYTES),
        (5760, 0xFFFFFFFF, "window.array_length", WINDOW_MAX_IMAGE_BYTES),
    ],
)
def test_huge_announced_length_fails_immediately(
    fits_length: int, array_length: int, field_path: str, limit: int
) -> None:
    decoder = WindowDecoder()
    decoder.feed(_header(fits_length, array_length))
    error = _expect_error(decoder)
    assert type(error) is LengthLimitError
    assert (error.field_path, error.limit, error.actual) == (field_path, limit, 0xFFFFFFFF)


def test_no_allocation_for_a_length_over_the_limit() -> None:
    """An announced 200 MB image over a 100 MB limit fails without allocating the 200 MB."""
    header = _header(2880, 200_000_000)
    decoder = WindowDecoder(max_image_bytes=100_000_000)
    tracemalloc.start()
    try:
        decoder.feed(header)
        with pytest.raises(LengthLimitError) as info:
            decoder.next_event()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000
    assert (info.value.limit, info.value.actual) == (100_000_000, 200_000_000)


# --- any chunking --------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(windows(max_side=8), min_size=1, max_size=4),
    pixel_order=st.sampled_from(["naxis2_fastest", "naxis1_fastest"]),
    data=st.data(),
)
def test_any_chunking_gives_the_same_windows(
    messages: list[Window], pixel_order: Any, data: st.DataObject
) -> None:
    encoded = [encode_window(m, pixel_order=pixel_order) for m in messages]
    stream = b"".join(encoded)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    decoder = WindowDecoder(pixel_order=pixel_order)
    got: list[Window] = []
    offsets = []
    for chunk in chunks:
        if chunk:
            decoder.feed(chunk)
        for window in decoder:
            got.append(window)
            offsets.append(decoder.stream_offset)
    assert decoder.next_event() is NEED_DATA
    decoder.close()
    assert decoder.next_event() is STREAM_END
    assert got == messages
    assert [w.image.tobytes() for w in got] == [
        np.asarray(m.image, "<f4").tobytes() for m in messages
    ]
    ends = np.cumsum([len(e) for e in encoded]).tolist()
    assert offsets == ends
    assert (decoder.stream_offset, decoder.buffered) == (len(stream), 0)


@pytest.mark.parametrize("split", [0, 600, 4000])
def test_feed_memoryview_with_multibyte_items(load_vector: Any, split: int) -> None:
    """``feed`` takes the bytes of any buffer, whatever its item size, in any state of the
    decoder (here: before the header, inside the header, inside the body); or it refuses a
    multi-byte memoryview outright with ``LocalProtocolError``. It never mis-frames it."""
    data, _ = load_vector("valid", "w16x16_casa4d")
    decoder = WindowDecoder()
    if split:
        decoder.feed(data[:split])
        assert decoder.next_event() is NEED_DATA
    rest = memoryview(data[split:]).cast("I")
    try:
        decoder.feed(rest)
    except LocalProtocolError:
        return
    assert decoder.buffered == len(data)
    window = decoder.next_event()
    assert isinstance(window, Window)
    assert encode_window(window) == data
    decoder.close()
    assert decoder.next_event() is STREAM_END


def test_decoder_images_are_writable(fits_text: Any, index_pattern: Any) -> None:
    decoder = WindowDecoder()
    decoder.feed(encode_window(Window(fits=fits_text(3, 2), image=index_pattern(3, 2))))
    window = decoder.next_event()
    assert isinstance(window, Window)
    assert window.image.flags.writeable
    window.image[1, 2] = -1.0
    assert window.image[1, 2] == -1.0
