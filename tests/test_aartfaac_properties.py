"""Hypothesis properties of the AARTFAAC window codec: round trips, agreement with the construct
oracle, robustness against arbitrary bytes, and encode-side errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from daqwire.errors import (
    LocalProtocolError,
    RemoteProtocolError,
)
from daqwire.generated.aartfaac import (
    STREAM_END,
    WINDOW_MAGIC,
    Window,
    WindowDecoder,
    decode_window,
    decode_window_from,
    encode_window,
    encode_window_into,
    encoded_window_size,
)
from daqwire.generated.aartfaac_construct import WINDOW
from daqwire.generated.aartfaac_strategies import windows
from tests.conftest import window_header

PIXEL_ORDERS = ["naxis2_fastest", "naxis1_fastest"]
WIRE_ORDER = {"naxis2_fastest": "F", "naxis1_fastest": "C"}
pixel_orders = st.sampled_from(PIXEL_ORDERS)


def _card(key: str, value: str) -> str:
    card = f"{key:<8}= {value}"
    assert len(card) <= 80
    return card.ljust(80)


def _fits(naxis1: int, naxis2: int, date_obs: str = "2026-11-21T12:52:08.477364") -> str:
    """FITS header text written by hand (independent of astropy and of the generated strategy)."""
    cards = [
        _card("SIMPLE", f"{'T':>20}"),
        _card("BITPIX", f"{-32:>20}"),
        _card("NAXIS", f"{2:>20}"),
        _card("NAXIS1", f"{naxis1:>20}"),
        _card("NAXIS2", f"{naxis2:>20}"),
        _card("DATE-OBS", f"'{date_obs}'"),
        "END".ljust(80),
    ]
    return "".join(cards)


#: every float32 bit pattern: NaN payloads, signalling NaNs, -0.0, subnormals, infinities
any_float32_bits = st.integers(0, 2**32 - 1)


@st.composite
def edge_shaped_windows(draw: st.DrawFn) -> Window:
    """Windows of shape 1xN, Nx1, 1x1 or non-square, with arbitrary float32 bit patterns."""
    kind = draw(st.sampled_from(["row", "column", "single", "non-square"]))
    n = draw(st.integers(2, 40))
    m = draw(st.integers(2, 40).filter(lambda v: v != n))
    naxis1, naxis2 = {"row": (n, 1), "column": (1, n), "single": (1, 1), "non-square": (n, m)}[kind]
    bits = draw(hnp.arrays(np.dtype("<u4"), (naxis2, naxis1), elements=any_float32_bits))
    return Window(fits=_fits(naxis1, naxis2), image=bits.view("<f4"))


def _assert_same_bits(decoded: Window, original: Window) -> None:
    assert decoded.image.dtype == np.dtype("<f4")
    assert decoded.image.shape == original.image.shape
    assert decoded.image.tobytes() == np.asarray(original.image, "<f4").tobytes()


def _check_remote_error(error: RemoteProtocolError, size: int) -> None:
    assert error.protocol == "aartfaac"
    assert error.field_path == "window" or error.field_path.startswith("window.")
    assert error.offset is not None and 0 <= error.offset <= size


# --- round trips ---------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(window=windows(), pixel_order=pixel_orders)
def test_roundtrip_generated_windows(window: Window, pixel_order: Any) -> None:
    data = encode_window(window, pixel_order=pixel_order)
    assert (
        len(data) == encoded_window_size(window) == 512 + len(window.fits) + 4 * window.image.size
    )
    decoded = decode_window(data, pixel_order=pixel_order)
    assert decoded == window
    assert decoded.fits == window.fits
    assert (decoded.fits_length, decoded.array_length) == (window.fits_length, window.array_length)
    _assert_same_bits(decoded, window)
    assert encode_window(decoded, pixel_order=pixel_order) == data


@settings(max_examples=150, deadline=None)
@given(window=edge_shaped_windows(), pixel_order=pixel_orders)
@example(
    Window(fits=_fits(3, 1), image=np.array([[np.nan, -0.0, np.inf]], "<f4")), "naxis2_fastest"
)
@example(
    Window(fits=_fits(1, 3), image=np.array([[-np.inf], [1e-45], [-0.0]], "<f4")), "naxis1_fastest"
)
def test_roundtrip_edge_shapes_bit_exact(window: Window, pixel_order: Any) -> None:
    data = encode_window(window, pixel_order=pixel_order)
    decoded = decode_window(data, pixel_order=pixel_order)
    assert decoded == window
    _assert_same_bits(decoded, window)
    naxis2, naxis1 = window.image.shape
    assert decoded.image.shape == (naxis2, naxis1)
    wire = np.asarray(window.image, "<f4").tobytes(order=WIRE_ORDER[pixel_order])
    assert data[512 + len(window.fits) :] == wire


@settings(max_examples=50, deadline=None)
@given(window=windows(max_side=6), pixel_order=pixel_orders, offset=st.integers(0, 9))
def test_encode_into_and_decode_from_at_an_offset(
    window: Window, pixel_order: Any, offset: int
) -> None:
    size = encoded_window_size(window)
    buffer = bytearray(b"\x5a" * (offset + size + 3))
    assert encode_window_into(window, buffer, offset, pixel_order=pixel_order) == offset + size
    assert buffer[:offset] == b"\x5a" * offset and buffer[offset + size :] == b"\x5a" * 3
    assert bytes(buffer[offset : offset + size]) == encode_window(window, pixel_order=pixel_order)
    decoded, end = decode_window_from(bytes(buffer), offset, pixel_order=pixel_order)
    assert end == offset + size
    assert decoded == window
    _assert_same_bits(decoded, window)


@settings(max_examples=50, deadline=None)
@given(window=windows(max_side=6))
def test_pixel_orders_are_transposes_on_the_wire(window: Window) -> None:
    f_data = encode_window(window, pixel_order="naxis2_fastest")
    c_data = encode_window(window, pixel_order="naxis1_fastest")
    # the same window read with the other order is the same bytes in the other layout
    swapped = decode_window(f_data, pixel_order="naxis1_fastest")
    assert swapped.image.shape == window.image.shape
    assert swapped.image.tobytes(order="C") == window.image.tobytes(order="F")
    assert f_data[: 512 + len(window.fits)] == c_data[: 512 + len(window.fits)]


# --- the construct oracle ------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(window=windows(), pixel_order=pixel_orders)
def test_construct_oracle_agrees(window: Window, pixel_order: Any) -> None:
    data = encode_window(window, pixel_order=pixel_order)
    fits = window.fits.encode("ascii")
    wire = np.asarray(window.image, "<f4").tobytes(order=WIRE_ORDER[pixel_order])

    parsed = WINDOW.parse(data)
    assert parsed.magic == WINDOW_MAGIC == window.magic
    assert parsed.fits_length == window.fits_length == len(fits)
    assert parsed.array_length == window.array_length == len(wire)
    assert parsed.fits == fits
    assert parsed.image == wire

    assert WINDOW.build(dict(fits=fits, image=wire)) == data
    decoded = decode_window(WINDOW.build(dict(fits=fits, image=wire)), pixel_order=pixel_order)
    assert decoded == window


# --- robustness ----------------------------------------------------------------------------------


def _decode_stream_reference(data: bytes, **kw: Any) -> tuple[list[Window], Any]:
    """Decode back-to-back windows with decode_window_from; stop at the first error."""
    out: list[Window] = []
    pos = 0
    while pos < len(data):
        try:
            window, pos = decode_window_from(data, pos, **kw)
        except RemoteProtocolError as exc:
            return out, exc
        out.append(window)
    return out, None


def _decode_stream_incremental(chunks: list[bytes], **kw: Any) -> tuple[list[Window], Any]:
    decoder = WindowDecoder(**kw)
    out: list[Window] = []
    try:
        for chunk in chunks:
            decoder.feed(chunk)
            out.extend(decoder)
        decoder.close()
        out.extend(decoder)
        assert decoder.next_event() is STREAM_END
    except RemoteProtocolError as exc:
        with pytest.raises(RemoteProtocolError) as again:
            decoder.next_event()
        assert again.value is exc
        return out, exc
    assert decoder.buffered == 0
    return out, None


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]


def _check_both_decoders(data: bytes, cuts: list[int], **kw: Any) -> None:
    try:
        window = decode_window(data, **kw)
    except RemoteProtocolError as exc:
        _check_remote_error(exc, len(data))
    else:
        assert encode_window(window, pixel_order=kw.get("pixel_order", "naxis2_fastest")) == (
            data[:16] + bytes(496) + data[512:]
        )
    expected, expected_error = _decode_stream_reference(data, **kw)
    got, got_error = _decode_stream_incremental(_split(data, cuts), **kw)
    assert got == expected
    if expected_error is None:
        assert got_error is None
    else:
        _check_remote_error(expected_error, len(data))
        assert type(got_error) is type(expected_error)
        assert got_error.field_path == expected_error.field_path
        assert got_error.offset == expected_error.offset


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    """One to three valid windows, then byte flips, a card swap, inserted/deleted bytes, a cut."""
    encoded = [
        encode_window(w) for w in draw(st.lists(windows(max_side=4), min_size=1, max_size=3))
    ]
    data = bytearray(b"".join(encoded))
    for _ in range(draw(st.integers(0, 4))):
        where = draw(
            st.sampled_from(
                ["header", "lengths", "fits_card_start", "anywhere", "insert", "delete"]
            )
        )
        if not data:
            break
        if where == "header":
            i = draw(st.integers(0, min(15, len(data) - 1)))
        elif where == "lengths":
            i = draw(st.integers(8, 15)) % len(data)
        elif where == "fits_card_start":
            i = min(512 + 80 * draw(st.integers(0, 40)) + draw(st.integers(0, 11)), len(data) - 1)
        else:
            i = draw(st.integers(0, len(data) - 1))
        if where == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif where == "delete":
            del data[i : i + draw(st.integers(1, 8))]
        else:
            data[i] = draw(
                st.sampled_from([0x00, 0x20, 0x27, 0x2F, 0x3D, 0x45, 0x7F, 0x80, 0xFF])
                | st.integers(0, 255)
            )
    cut = draw(st.integers(0, len(data)))
    return bytes(data[: cut if draw(st.booleans()) else len(data)])


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=1200), cuts=st.lists(st.integers(0, 1200), max_size=6))
def test_random_bytes_raise_only_remote_protocol_errors(data: bytes, cuts: list[int]) -> None:
    _check_both_decoders(data, cuts)


@settings(max_examples=200, deadline=None)
@given(
    fits_length=st.integers(0, 800) | st.integers(0, 2**32 - 1),
    array_length=st.integers(0, 400) | st.integers(0, 2**32 - 1),
    body=st.binary(max_size=1200),
    cuts=st.lists(st.integers(0, 2000), max_size=6),
)
def test_valid_magic_random_lengths_and_body(
    fits_length: int, array_length: int, body: bytes, cuts: list[int]
) -> None:
    header = window_header(fits_length, array_length)
    _check_both_decoders(header + body, cuts)


@settings(max_examples=300, deadline=None)
@given(data=mutated_streams(), cuts=st.lists(st.integers(0, 30000), max_size=6), order=pixel_orders)
def test_mutated_and_truncated_windows(data: bytes, cuts: list[int], order: Any) -> None:
    _check_both_decoders(data, cuts, pixel_order=order)


@st.composite
def fits_text_mutations(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A valid window, and the same window with its FITS text edited inside one card."""
    window = draw(windows(max_side=4))
    data = encode_window(window)
    fits = bytearray(window.fits.encode("ascii"))
    ncards = len(fits) // 80
    card = draw(st.integers(0, ncards - 1))
    column = draw(st.integers(0, 79))
    text = draw(st.text(st.sampled_from(" '0123456789.:-+TZ/=ADEN"), min_size=1, max_size=30))
    raw = text.encode("ascii")[: 80 - column]
    fits[card * 80 + column : card * 80 + column + len(raw)] = raw
    return data, data[:512] + bytes(fits) + data[512 + len(fits) :]


UNRELATED = encode_window(Window(fits=_fits(1, 1), image=np.zeros((1, 1), "<f4")))


@settings(max_examples=300, deadline=None)
@given(pair=fits_text_mutations())
def test_fits_check_does_not_depend_on_the_window_before(pair: tuple[bytes, bytes]) -> None:
    """Decoding an edited FITS text right after its original gives the same answer as decoding it
    after an unrelated window (a decoder may remember the previous header, never wrongly)."""
    original, edited = pair

    def outcome(previous: bytes) -> tuple[Any, ...]:
        decode_window(previous)
        try:
            window = decode_window(edited)
        except RemoteProtocolError as exc:
            return (type(exc), exc.field_path, exc.offset, exc.message)
        return ("ok", window.fits, window.image.shape, window.image.tobytes())

    cold = outcome(UNRELATED)
    warm = outcome(original)
    assert warm == cold
    assert outcome(UNRELATED) == cold
    # an incremental decoder that has just decoded the original agrees too
    decoder = WindowDecoder()
    decoder.feed(original + edited)
    decoder.close()
    assert isinstance(decoder.next_event(), Window)
    try:
        event = decoder.next_event()
    except RemoteProtocolError as exc:
        assert (type(exc), exc.field_path, exc.offset - len(original), exc.message) == cold
    else:
        assert isinstance(event, Window)
        assert ("ok", event.fits, event.image.shape, event.image.tobytes()) == cold


# --- encode-side errors --------------------------------------------------------------------------


def _local_error(func: Any, *args: Any, **kw: Any) -> LocalProtocolError:
    with pytest.raises(LocalProtocolError) as info:
        func(*args, **kw)
    error = info.value
    assert not isinstance(error, RemoteProtocolError)
    assert isinstance(error, ValueError)
    assert error.protocol == "aartfaac"
    assert error.offset is None
    return error


@settings(max_examples=60, deadline=None)
@given(
    naxis1=st.integers(1, 12),
    naxis2=st.integers(1, 12),
    shape=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    pixel_order=pixel_orders,
)
def test_image_shape_must_match_naxis(
    naxis1: int, naxis2: int, shape: Any, pixel_order: Any
) -> None:
    assume(shape != (naxis2, naxis1))
    window = Window(fits=_fits(naxis1, naxis2), image=np.zeros(shape, "<f4"))
    error = _local_error(encode_window, window, pixel_order=pixel_order)
    assert error.field_path == "window.image"
    _local_error(encode_window_into, window, bytearray(100_000), pixel_order=pixel_order)


def test_transposed_image_is_refused() -> None:
    """The classic orientation mistake: a (NAXIS1, NAXIS2) array for a non-square image."""
    image = np.zeros((64, 32), "<f4")  # should be (NAXIS2, NAXIS1) = (32, 64)
    error = _local_error(encode_window, Window(fits=_fits(64, 32), image=image))
    assert error.field_path == "window.image"
    assert encode_window(Window(fits=_fits(64, 32), image=image.T))


@pytest.mark.parametrize("text", ["é", "\u00a0", "日本", "\udcff"])
def test_non_ascii_fits_text_is_refused(text: str) -> None:
    fits = _fits(2, 2).replace("END" + " " * 77, ("COMMENT " + text).ljust(77) + "END" + " " * 77)
    window = Window(fits=fits, image=np.zeros((2, 2), "<f4"))
    error = _local_error(encode_window, window)
    assert error.field_path == "window.fits"


@pytest.mark.parametrize(
    "image",
    [
        [[1.0, 2.0], [3.0, 4.0]],
        ((1.0,),),
        None,
        1.5,
        b"\x00" * 16,
        np.zeros(4, "<f4"),
        np.zeros((2, 2, 1), "<f4"),
        np.array([["a", "b"], ["c", "d"]]),
        np.zeros((2, 2), complex),
        np.zeros((2, 2), object),
    ],
    ids=["list", "tuple", "None", "float", "bytes", "1-d", "3-d", "str", "complex", "object"],
)
def test_window_needs_a_2d_numeric_array(image: Any) -> None:
    error = _local_error(Window, fits=_fits(2, 2), image=image)
    assert error.field_path == "window.image"


def test_window_needs_str_fits() -> None:
    error = _local_error(Window, fits=_fits(2, 2).encode("ascii"), image=np.zeros((2, 2), "<f4"))
    assert error.field_path == "window.fits"


@pytest.mark.parametrize(
    ("fits", "field_path"),
    [
        (_fits(2, 2)[:-80], "window.fits"),  # no END card
        (_fits(2, 2)[:-1], "window.fits"),  # not whole cards
        (_fits(2, 2).replace("DATE-OBS", "DATE_OBS"), "window.fits.DATE-OBS"),
        (_fits(2, 2).replace("2026-11-21T", "21/11/2026 "), "window.fits.DATE-OBS"),
        (_fits(2, 2).replace("NAXIS1  ", "NAXISX  "), "window.fits.NAXIS1"),
        (
            _fits(2, 2).replace("                   2", "                 2.0", 2),
            "window.fits.NAXIS1",
        ),
    ],
    ids=["no-END", "partial-card", "no-DATE-OBS", "bad-DATE-OBS", "no-NAXIS1", "float-NAXIS1"],
)
def test_invalid_fits_text_is_refused_on_encode(fits: str, field_path: str) -> None:
    window = Window(fits=fits, image=np.zeros((2, 2), "<f4"))
    error = _local_error(encode_window, window)
    assert error.field_path == field_path


def test_zero_naxis_is_refused_on_encode() -> None:
    window = Window(fits=_fits(0, 2), image=np.zeros((2, 0), "<f4"))
    error = _local_error(encode_window, window)
    assert error.field_path == "window.fits.NAXIS1"


def test_unknown_pixel_order_and_small_buffer_are_local_errors() -> None:
    window = Window(fits=_fits(2, 2), image=np.zeros((2, 2), "<f4"))
    _local_error(encode_window, window, pixel_order="naxis3_fastest")
    _local_error(decode_window, encode_window(window), pixel_order="naxis3_fastest")
    error = _local_error(encode_window_into, window, bytearray(encoded_window_size(window) - 1))
    assert error.field_path == "window"


@pytest.mark.parametrize("dtype", ["<f8", ">f4", "<i4", "<u2", "bool"])
def test_other_numeric_dtypes_encode_as_float32(dtype: str) -> None:
    values = np.array([[0, 1, 1], [1, 0, 1]]).astype(dtype)
    window = Window(fits=_fits(3, 2), image=values)
    decoded = decode_window(encode_window(window))
    assert decoded.image.dtype == np.dtype("<f4")
    assert np.array_equal(decoded.image, values.astype("<f4"))
    assert decoded == window


def test_window_equality_and_hash() -> None:
    fits = _fits(2, 1)
    a = Window(fits=fits, image=np.array([[np.nan, -0.0]], "<f4"))
    b = Window(fits=fits, image=np.array([[np.nan, 0.0]], "<f4"))
    assert a == b  # NaN-equal, and -0.0 == 0.0 as numbers
    assert a != Window(fits=fits, image=np.array([[1.0, 0.0]], "<f4"))
    assert a != Window(fits=fits.replace("08.477364", "09.477364"), image=a.image)
    assert a != Window(fits=fits, image=np.array([[np.nan], [0.0]], "<f4"))
    with pytest.raises(TypeError):
        hash(a)


def test_float64_out_of_float32_range_becomes_inf_with_a_warning() -> None:
    window = Window(fits=_fits(2, 1), image=np.array([[1e300, -1e300]]))
    with pytest.warns(RuntimeWarning):
        data = encode_window(window)
    assert decode_window(data).image.tolist() == [[np.inf, -np.inf]]


@pytest.mark.parametrize(("naxis1", "naxis2"), [(2**30, 2**30), (4, 4)])
def test_encode_refuses_an_oversized_image_before_allocating(naxis1: int, naxis2: int) -> None:
    """A 2**30 x 2**30 image (a broadcast view: no memory behind it) is over the 256 MiB limit.

    ``encode_window`` must refuse it with ``LocalProtocolError`` (over the limit, or a shape
    that does not match NAXIS1/NAXIS2), as ``encode_window_into`` does, and not first try to
    allocate a 4 EiB output buffer (which raises ``MemoryError``).
    """
    image = np.broadcast_to(np.float32(0.0), (2**30, 2**30))
    window = Window(fits=_fits(naxis1, naxis2), image=image)
    error = _local_error(encode_window_into, window, bytearray(1024))
    assert error.field_path == "window.image"
    for encode in (encode_window, Window.encode):
        error = _local_error(encode, window)
        assert error.field_path == "window.image"


# --- the FITS text rules, on decode --------------------------------------------------------------


def _wire(fits: str | bytes, naxis1: int = 2, naxis2: int = 2) -> bytes:
    """A window built by the construct oracle (independent of the codec under test)."""
    raw = fits.encode("ascii") if isinstance(fits, str) else fits
    image = np.arange(naxis1 * naxis2, dtype="<f4").tobytes()
    data: bytes = WINDOW.build(dict(fits=raw, image=image))
    return data


def _decode_error(data: bytes) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        decode_window(data)
    assert info.value.protocol == "aartfaac"
    return info.value


def test_fits_first_card_of_a_keyword_wins() -> None:
    fits = _fits(2, 2).replace("END" + " " * 77, _card("NAXIS1", f"{3:>20}") + "END".ljust(80))
    assert decode_window(_wire(fits)).image.shape == (2, 2)


def test_fits_cards_after_end_do_not_count() -> None:
    cards = [_fits(2, 2)[i : i + 80] for i in range(0, len(_fits(2, 2)), 80)]
    date, end = cards[5], cards[6]
    assert date.startswith("DATE-OBS") and end.startswith("END ")
    fits = "".join([*cards[:5], end, date])
    error = _decode_error(_wire(fits))
    assert (type(error).__name__, error.field_path, error.offset) == (
        "FieldValueError",
        "window.fits.DATE-OBS",
        512,
    )


@pytest.mark.parametrize(
    "value",
    [
        "'2026-11-21T12:52:08.477364'",
        "'2026-11-21T12:52:08.477364Z'",
        "'2026-11-21T12:52:08+05:30'",
        "'2026-11-21T12:52:08.5-08:00'",
        "'2026-11-21'",
        "'2026-11-21T12:52:08'    / a comment",
        "'2026-11-21T12:52:08   '",
    ],
)
def test_fits_date_obs_forms_accepted(value: str) -> None:
    fits = _fits(2, 2).replace(
        _card("DATE-OBS", "'2026-11-21T12:52:08.477364'"), _card("DATE-OBS", value)
    )
    assert decode_window(_wire(fits)).fits == fits


@pytest.mark.parametrize(
    "value",
    [
        "'2026-11-21 12:52:08'",
        "'2026-11-21T12:52'",
        "'21/11/2026'",
        "'not-a-date'",
        "2026-11-21T12:52:08",
        "' 2026-11-21T12:52:08'",
        "'2026-11-21T12:52:08' x",
        "''",
    ],
)
def test_fits_date_obs_forms_rejected(value: str) -> None:
    fits = _fits(2, 2).replace(
        _card("DATE-OBS", "'2026-11-21T12:52:08.477364'"), _card("DATE-OBS", value)
    )
    error = _decode_error(_wire(fits))
    assert (type(error).__name__, error.field_path, error.offset) == (
        "FieldValueError",
        "window.fits.DATE-OBS",
        512 + 5 * 80,
    )


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("+2", True),
        ("2 / width", True),
        ("2/width", True),
        ("02", True),
        ("2.0", False),
        ("2 3", False),
        ("'2'", False),
        ("", False),
    ],
)
def test_fits_naxis_integer_form(value: str, ok: bool) -> None:
    fits = _fits(2, 2).replace(_card("NAXIS1", f"{2:>20}"), _card("NAXIS1", value))
    if ok:
        assert decode_window(_wire(fits)).image.shape == (2, 2)
    else:
        error = _decode_error(_wire(fits))
        assert (type(error).__name__, error.field_path, error.offset) == (
            "FieldValueError",
            "window.fits.NAXIS1",
            512 + 3 * 80,
        )


@pytest.mark.parametrize("value", ["0", "-1", "-0"])
def test_fits_naxis_below_one(value: str) -> None:
    fits = _fits(2, 2).replace(_card("NAXIS2", f"{2:>20}"), _card("NAXIS2", f"{value:>20}"))
    error = _decode_error(_wire(fits))
    assert (type(error).__name__, error.field_path, error.offset) == (
        "FieldValueError",
        "window.fits.NAXIS2",
        512 + 4 * 80,
    )


def test_fits_not_whole_cards() -> None:
    fits = _fits(2, 2) + "   "
    error = _decode_error(_wire(fits))
    assert (type(error).__name__, error.field_path, error.offset) == (
        "FieldValueError",
        "window.fits",
        512 + 7 * 80,
    )


def test_fits_non_ascii_byte_is_located() -> None:
    raw = bytearray(_fits(2, 2).encode("ascii"))
    raw[2 * 80 + 40] = 0xE9
    error = _decode_error(_wire(bytes(raw)))
    assert (type(error).__name__, error.field_path, error.offset) == (
        "FieldValueError",
        "window.fits",
        512 + 2 * 80 + 40,
    )


def test_fits_padding_to_2880_is_optional() -> None:
    short = _fits(3, 2)
    padded = short.ljust(2880)
    for fits in (short, padded):
        window = decode_window(_wire(fits, 3, 2))
        assert window.fits == fits
        assert window.image.shape == (2, 3)
