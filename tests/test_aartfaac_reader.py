"""The AARTFAAC window framer and the blocking and asyncio readers, over real loopback TCP.

Every golden vector is served by a loopback server and read both with the tkp drop-in
(``read_window`` + ``reconstruct_fits``) and with ``WindowReader``. Further tests interleave
vectors, inject garbage before, between and inside windows, vary the chunking, check zero
copy and buffer reuse, length caps, read timeouts and the asyncio reader. The sans-IO framer
gets a hypothesis property test of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np
import pytest
from dateutil import parser as dateutil_parser
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from daqwire.aartfaac import (
    AsyncWindowReader,
    WindowReader,
    extract_timestamp,
    read_window,
    reconstruct_fits,
)
from daqwire.aartfaac.framing import WindowFramer
from daqwire.errors import (
    BadMagicError,
    FieldValueError,
    LengthLimitError,
    LengthMismatchError,
    RemoteProtocolError,
    ShapeMismatchError,
    StreamClosedError,
    StreamTimeoutError,
    TruncatedError,
)
from daqwire.generated.aartfaac import (
    WINDOW_MAGIC,
    WINDOW_SYNC_BYTES,
    Window,
    window_fits_keywords,
)
from daqwire.sansio import NEED_DATA
from tests.aartfaac_servers import (
    HOLD,
    ServerFactory,
    connected,
    decode_all,
    free_port,
    same_window,
)
from tests.conftest import index_image, load_aartfaac_vector

#: generous waits only; nothing asserts on timing
WAIT_S = 10.0

VALID = [
    "w16x16_casa4d",
    "w64x32_casa4d",
    "w16x16_special",
    "w1024x1024_casa4d",
    "seq3_w16x16_casa4d",
]
EDGE_ACCEPTED = ["nonzero_padding", "fits_unpadded", "date_obs_with_Z", "date_obs_no_fraction"]
ACCEPTED = [("valid", name) for name in VALID] + [("edge", name) for name in EDGE_ACCEPTED]

#: malformed (and rejected edge) vectors: what read_window and WindowReader must raise.
#: ``compat``: (class, field_path, offset) for read_window; None = the stream ends inside the
#: window, so read_window raises StreamClosedError("Server closed connection") as tkp did.
#: ``reader``: ("error", class, field_path, stream offset) raised once by WindowReader.read(),
#: ("truncated", field_path, stream offset) on StreamClosedError.truncated, or ("skip",) when
#: the bytes hold no window magic at all and are skipped as garbage.
REJECTED: dict[tuple[str, str], dict[str, Any]] = {
    ("malformed", "bad_magic_bigendian"): {
        "compat": (BadMagicError, "window.magic", 0),
        "reader": ("skip",),
    },
    ("malformed", "bad_magic_zero"): {
        "compat": (BadMagicError, "window.magic", 0),
        "reader": ("skip",),
    },
    ("malformed", "truncated_header"): {
        "compat": None,
        "reader": ("truncated", "window.padding", 300),
    },
    ("malformed", "truncated_fits"): {
        "compat": None,
        "reader": ("truncated", "window.fits", 3392),
    },
    ("malformed", "truncated_image"): {
        "compat": None,
        "reader": ("truncated", "window.image", 6784),
    },
    ("malformed", "fits_length_short"): {
        # 512 + 2880 bytes of FITS text: the cut-off text has no END card
        "compat": (FieldValueError, "window.fits", 3392),
        "reader": ("error", FieldValueError, "window.fits", 3392),
    },
    ("malformed", "fits_length_zero"): {
        "compat": (FieldValueError, "window.fits", 512),
        "reader": ("error", FieldValueError, "window.fits", 512),
    },
    ("malformed", "array_length_not_multiple_of_4"): {
        "compat": (LengthMismatchError, "window.array_length", 12),
        "reader": ("error", LengthMismatchError, "window.array_length", 12),
    },
    ("malformed", "array_length_vs_naxis_mismatch"): {
        "compat": (ShapeMismatchError, "window.image", 6272),
        "reader": ("error", ShapeMismatchError, "window.image", 6272),
    },
    ("malformed", "missing_date_obs"): {
        "compat": (FieldValueError, "window.fits.DATE-OBS", 512),
        "reader": ("error", FieldValueError, "window.fits.DATE-OBS", 512),
    },
    ("malformed", "unparseable_date_obs"): {
        # the DATE-OBS card is card 42 of the text: 512 + 42 * 80
        "compat": (FieldValueError, "window.fits.DATE-OBS", 3872),
        "reader": ("error", FieldValueError, "window.fits.DATE-OBS", 3872),
    },
    ("edge", "fits_without_end"): {
        # documented deviation: the END card is required (offset = end of the FITS text)
        "compat": (FieldValueError, "window.fits", 6272),
        "reader": ("error", FieldValueError, "window.fits", 6272),
    },
}


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def serve() -> Iterator[ServerFactory]:
    """``serve(script, chunk=...)``: a started loopback server, stopped after the test."""
    with ServerFactory() as factory:
        yield factory


def vector(kind: str, name: str) -> bytes:
    return load_aartfaac_vector(kind, name)[0]


def wire_sha256(image: np.ndarray) -> str:
    """sha256 of an [y, x] image in emulator wire order (NAXIS2 fastest, little-endian f32)."""
    return hashlib.sha256(np.ascontiguousarray(image.T, dtype="<f4").tobytes()).hexdigest()


def special_image(naxis1: int, naxis2: int) -> np.ndarray:
    """The ``special`` pattern: index, with row y=0, x=1..6 = NaN, +inf, -inf, -0.0, 1e-45, max."""
    image = index_image(naxis1, naxis2).copy()
    image[0, 1:7] = [np.nan, np.inf, -np.inf, -0.0, 1e-45, np.finfo(np.float32).max]
    return image


def bits(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image, dtype="<f4").view("<u4")


@dataclass(frozen=True)
class Expected:
    """What one accepted window must decode to, from the vector's .json."""

    offset: int  # of the window in the .bin
    naxis1: int
    naxis2: int
    fits_length: int
    array_length: int
    date_obs: str | None  # raw DATE-OBS when the .json records it
    timestamp: datetime  # DATE-OBS as dateutil parses it
    image_sha256: str  # of the wire payload
    pattern: str


def expectations(kind: str, name: str) -> list[Expected]:
    _data, meta = load_aartfaac_vector(kind, name)
    if kind == "valid" and "windows" in meta:  # a sequence of windows
        naxis1, naxis2 = (int(n) for n in meta["emulator_input"]["size_NAXIS1xNAXIS2"].split("x"))
        assert len(meta["windows"]) == meta["n_windows"]
        return [
            Expected(
                offset=w["offset"],
                naxis1=naxis1,
                naxis2=naxis2,
                fits_length=w["fits_length"],
                array_length=w["array_length"],
                date_obs=w["date_obs"],
                timestamp=datetime.fromisoformat(w["date_obs"]),
                image_sha256=w["image_sha256"],
                pattern=meta["emulator_input"]["pattern"],
            )
            for w in meta["windows"]
        ]
    if kind == "valid":
        return [
            Expected(
                offset=0,
                naxis1=meta["fits"]["keywords"]["NAXIS1"],
                naxis2=meta["fits"]["keywords"]["NAXIS2"],
                fits_length=meta["header512"]["fits_length"],
                array_length=meta["header512"]["array_length"],
                date_obs=meta["fits"]["DATE-OBS"],
                timestamp=datetime.fromisoformat(meta["fits"]["DATE-OBS_dateutil"]),
                image_sha256=meta["image"]["sha256"],
                pattern=meta["emulator_input"]["pattern"],
            )
        ]
    # edge vectors record what tkp made of them; the shape is the one of the source vector
    tkp = meta["tkp_observed"]
    assert tkp["ok"] is True
    source_kind, source_name = meta["derived_from"].removesuffix(".bin").split("/")
    source = load_aartfaac_vector(source_kind, source_name)[1]
    return [
        Expected(
            offset=0,
            naxis1=source["fits"]["keywords"]["NAXIS1"],
            naxis2=source["fits"]["keywords"]["NAXIS2"],
            fits_length=tkp["read_window"]["fits_len"],
            array_length=tkp["read_window"]["image_len"],
            date_obs=None,
            timestamp=datetime.fromisoformat(tkp["extract_timestamp"]["value"]),
            image_sha256=tkp["reconstruct_fits"]["sha256_data_as_le_f32_c_order"],
            pattern=source["emulator_input"]["pattern"],
        )
    ]


def expected_pixels(exp: Expected) -> np.ndarray:
    if exp.pattern == "special":
        return special_image(exp.naxis1, exp.naxis2)
    assert exp.pattern == "index"
    return index_image(exp.naxis1, exp.naxis2)


def check_timestamp(parsed: datetime, exp: Expected) -> None:
    assert parsed == exp.timestamp
    assert (parsed.tzinfo is None) == (exp.timestamp.tzinfo is None)


class SmallReads:
    """A socket whose recv_into never returns more than ``limit`` bytes."""

    def __init__(self, sock: socket.socket, limit: int) -> None:
        self._sock = sock
        self.limit = limit
        self.calls = 0

    def settimeout(self, value: float | None) -> None:
        self._sock.settimeout(value)

    def getpeername(self) -> Any:
        return self._sock.getpeername()

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        self.calls += 1
        size = min(len(buffer), self.limit) if not nbytes else min(nbytes, self.limit)
        return self._sock.recv_into(buffer, size)


def read_events(reader: WindowReader) -> list[tuple[Any, ...]]:
    """Read to the end: ("W", window), ("E", error), finally ("closed", StreamClosedError)."""
    events: list[tuple[Any, ...]] = []
    while True:
        try:
            events.append(("W", reader.read()))
        except RemoteProtocolError as exc:
            events.append(("E", exc))
        except StreamClosedError as exc:
            events.append(("closed", exc))
            return events


def garbage(rng: random.Random, size: int) -> bytes:
    """Random bytes without 0x4F ('O'), so they cannot form or complete a window magic."""
    out = bytes(rng.choice([b for b in range(256) if b != 0x4F]) for _ in range(size))
    assert WINDOW_SYNC_BYTES not in out
    return out


def assert_one_magic_per_window(stream: bytes, n_windows: int) -> None:
    """The test stream holds no accidental magic (the magic cannot overlap itself)."""
    assert stream.count(WINDOW_SYNC_BYTES) == n_windows


# --- 1. every vector alone, through the tkp drop-in and through WindowReader ----------------


def test_every_vector_is_covered_as_its_json_expects(vectors_dir: Any) -> None:
    on_disk = {
        (path.parent.name, path.stem)
        for kind in ("valid", "malformed", "edge")
        for path in (vectors_dir / kind).glob("*.bin")
    }
    assert on_disk == set(ACCEPTED) | set(REJECTED)
    assert not set(ACCEPTED) & set(REJECTED)
    for kind, name in on_disk - {("valid", n) for n in VALID}:
        behaviour = load_aartfaac_vector(kind, name)[1]["expected_sdk_behaviour"]
        if (kind, name) in ACCEPTED:
            assert behaviour.startswith("accept"), (name, behaviour)
        elif name == "fits_length_short":  # detected through the FITS text, as it asks
            assert "END card present" in behaviour
        else:
            assert "reject" in behaviour, (name, behaviour)


@pytest.mark.parametrize(("kind", "name"), ACCEPTED)
def test_accepted_vector_via_read_window_and_reconstruct_fits(
    serve: ServerFactory, kind: str, name: str
) -> None:
    data = vector(kind, name)
    expected = expectations(kind, name)
    server = serve([data])
    with connected(server) as sock:
        for exp in expected:
            fits_bytes, image_bytes = read_window(sock)
            assert type(fits_bytes) is bytes and type(image_bytes) is bytes
            assert len(fits_bytes) == exp.fits_length
            assert len(image_bytes) == exp.array_length
            start = exp.offset + 512
            assert fits_bytes == data[start : start + exp.fits_length]
            assert hashlib.sha256(image_bytes).hexdigest() == exp.image_sha256

            hdulist = reconstruct_fits(fits_bytes, image_bytes)
            hdu = hdulist[0]
            assert hdu.data.shape == (exp.naxis2, exp.naxis1)
            assert hdu.data.dtype == np.float32
            assert hdu.header["NAXIS1"] == exp.naxis1
            assert hdu.header["NAXIS2"] == exp.naxis2
            assert np.array_equal(bits(hdu.data), bits(expected_pixels(exp)))
            assert wire_sha256(hdu.data) == exp.image_sha256
            check_timestamp(extract_timestamp(hdulist), exp)
            if exp.date_obs is not None:
                assert hdu.header["DATE-OBS"] == exp.date_obs
        assert sock.recv(1) == b""  # nothing after the last window


@pytest.mark.parametrize(("kind", "name"), ACCEPTED)
def test_accepted_vector_via_window_reader(serve: ServerFactory, kind: str, name: str) -> None:
    data = vector(kind, name)
    expected = expectations(kind, name)
    server = serve([data])
    with connected(server) as sock:
        reader = WindowReader(sock, timeout_s=WAIT_S)
        assert reader.stream == f"127.0.0.1:{server.port}"
        windows = list(reader)  # until the server closes the stream cleanly
    assert len(windows) == len(expected)
    for window, exp in zip(windows, expected, strict=True):
        assert window.image.shape == (exp.naxis2, exp.naxis1)
        assert window.image.dtype == np.dtype("<f4")
        assert window.fits_length == exp.fits_length
        assert window.array_length == exp.array_length
        start = exp.offset + 512
        assert window.fits == data[start : start + exp.fits_length].decode("ascii")
        assert wire_sha256(window.image) == exp.image_sha256
        assert np.array_equal(bits(window.image), bits(expected_pixels(exp)))
        keywords = window_fits_keywords(window.fits)
        assert (keywords.naxis1, keywords.naxis2) == (exp.naxis1, exp.naxis2)
        if exp.date_obs is not None:
            assert keywords.date_obs == exp.date_obs
        check_timestamp(dateutil_parser.parse(keywords.date_obs), exp)
    stats = reader.stats
    assert (stats.windows, stats.bytes) == (len(expected), len(data))
    assert (stats.errors, stats.resyncs, stats.skipped_bytes, stats.truncated) == (0, 0, 0, 0)


@pytest.mark.parametrize(("kind", "name"), list(REJECTED))
def test_rejected_vector_via_read_window(serve: ServerFactory, kind: str, name: str) -> None:
    data = vector(kind, name)
    server = serve([data])
    expected = REJECTED[kind, name]["compat"]
    with connected(server) as sock:
        if expected is None:
            with pytest.raises(StreamClosedError) as closed:
                fits_bytes, image_bytes = read_window(sock)
                reconstruct_fits(fits_bytes, image_bytes)
            assert isinstance(closed.value, OSError)  # tkp raised socket.error
            assert str(closed.value) == "Server closed connection"
            return
        cls, field_path, offset = expected
        with pytest.raises(RemoteProtocolError) as caught:
            fits_bytes, image_bytes = read_window(sock)
            reconstruct_fits(fits_bytes, image_bytes)
    exc = caught.value
    assert type(exc) is cls
    assert exc.protocol == "aartfaac"
    assert (exc.field_path, exc.offset) == (field_path, offset)
    if cls is BadMagicError:
        assert isinstance(exc, BadMagicError)
        assert exc.expected == WINDOW_MAGIC == 0x47494A53484F4D4F
        assert exc.actual == int.from_bytes(data[:8], "little")
        if name == "bad_magic_bigendian":
            assert data[:8] == b"GIJSHOMO"
            assert exc.actual == 5714310674256644423  # tkp's "5714310674256644423!=..."
            assert exc.byte_swapped is True
            assert "other byte order" in str(exc)
        else:
            assert exc.actual == 0
            assert exc.byte_swapped is False


@pytest.mark.parametrize(("kind", "name"), list(REJECTED))
def test_rejected_vector_via_window_reader(
    serve: ServerFactory, caplog: pytest.LogCaptureFixture, kind: str, name: str
) -> None:
    data = vector(kind, name)
    server = serve([data])
    expected = REJECTED[kind, name]["reader"]
    caplog.set_level(logging.WARNING, logger="daqwire.aartfaac.framing")
    with connected(server) as sock:
        reader = WindowReader(sock, timeout_s=WAIT_S)
        if expected[0] == "error":
            _, cls, field_path, offset = expected
            with pytest.raises(RemoteProtocolError) as caught:
                reader.read()
            assert type(caught.value) is cls
            assert (caught.value.field_path, caught.value.offset) == (field_path, offset)
        with pytest.raises(StreamClosedError) as closed:
            reader.read()
    stats = reader.stats
    assert stats.windows == 0
    assert stats.bytes == len(data)
    if expected[0] == "truncated":
        truncated = closed.value.truncated
        assert isinstance(truncated, TruncatedError)
        assert (truncated.field_path, truncated.offset) == expected[1:]
        assert (stats.truncated, stats.errors, stats.skipped_bytes) == (1, 0, 0)
    else:
        assert closed.value.truncated is None
        assert stats.truncated == 0
        assert stats.resyncs == 0  # no window magic followed
    if expected[0] == "skip":
        assert (stats.errors, stats.skipped_bytes) == (0, len(data))
        swapped_hint = any("other byte order" in r.getMessage() for r in caplog.records)
        assert swapped_hint is (name == "bad_magic_bigendian")
    if expected[0] == "error":
        assert stats.errors == 1


# --- 2. interleaved valid, malformed and edge windows on one connection ---------------------

#: (kind, name) pieces of one stream, in order. Truncated windows in the middle are swallowed
#: into the next frame, which then fails to decode, and the framer rescans inside it.
INTERLEAVED: list[tuple[str, str]] = [
    ("valid", "w16x16_casa4d"),  # 0: delivered
    ("malformed", "array_length_vs_naxis_mismatch"),  # 1: ShapeMismatchError
    ("valid", "w64x32_casa4d"),  # 2: delivered (after resync 1)
    ("edge", "nonzero_padding"),  # 3: delivered
    ("malformed", "bad_magic_zero"),  # 4: skipped as garbage
    ("valid", "w16x16_special"),  # 5: delivered (resync 2)
    ("malformed", "fits_length_short"),  # 6: FieldValueError (no END)
    ("edge", "fits_unpadded"),  # 7: delivered (resync 3)
    ("malformed", "missing_date_obs"),  # 8: FieldValueError (DATE-OBS)
    ("malformed", "bad_magic_bigendian"),  # 9: skipped, same run of garbage as 8
    ("valid", "seq3_w16x16_casa4d"),  # 10: 3 windows delivered (resync 4)
    ("malformed", "array_length_not_multiple_of_4"),  # 11: LengthMismatchError from the header
    ("edge", "date_obs_with_Z"),  # 12: delivered (resync 5)
    ("edge", "fits_without_end"),  # 13: FieldValueError (no END)
    ("edge", "date_obs_no_fraction"),  # 14: delivered (resync 6)
    ("malformed", "truncated_header"),  # 15: its frame swallows piece 16: no END card
    ("valid", "w16x16_casa4d"),  # 16: delivered (resync 7)
    ("malformed", "unparseable_date_obs"),  # 17: FieldValueError (DATE-OBS)
    ("malformed", "fits_length_zero"),  # 18: FieldValueError (resync 8 found its magic)
    ("malformed", "truncated_fits"),  # 19: swallows piece 20's header: non-ASCII FITS text
    ("valid", "w64x32_casa4d"),  # 20: delivered (resync 10)
    ("malformed", "truncated_image"),  # 21: the stream ends inside its image
]
#: accepted pieces (one entry per window they hold)
INTERLEAVED_DELIVERED = [0, 2, 3, 5, 7, 10, 10, 10, 12, 14, 16, 20]
#: (piece, error class, field_path, offset of the error inside the piece)
INTERLEAVED_ERRORS: list[tuple[int, type[RemoteProtocolError], str, int]] = [
    (1, ShapeMismatchError, "window.image", 6272),
    (6, FieldValueError, "window.fits", 3392),
    (8, FieldValueError, "window.fits.DATE-OBS", 512),
    (11, LengthMismatchError, "window.array_length", 12),
    (13, FieldValueError, "window.fits", 6272),
    (15, FieldValueError, "window.fits", 6272),  # 5760 misaligned bytes, no END card
    (17, FieldValueError, "window.fits.DATE-OBS", 3872),
    (18, FieldValueError, "window.fits", 512),
    # 2880 bytes of text, then piece 20's "OMOHSJIG" and fits_length 0x1680: byte 0x80
    (19, FieldValueError, "window.fits", 512 + 2880 + 8),
]


def piece_starts(pieces: Sequence[tuple[str, str]]) -> list[int]:
    starts = [0]
    for kind, name in pieces:
        starts.append(starts[-1] + len(vector(kind, name)))
    return starts


def test_interleaved_sequence_through_window_reader(serve: ServerFactory) -> None:
    stream = b"".join(vector(kind, name) for kind, name in INTERLEAVED)
    starts = piece_starts(INTERLEAVED)
    server = serve([stream])
    with connected(server) as sock:
        reader = WindowReader(sock, timeout_s=WAIT_S)
        events = read_events(reader)

    # the exact order of events: windows and errors as the pieces come
    expected_kinds = []
    for i in range(len(INTERLEAVED)):
        expected_kinds += ["W"] * INTERLEAVED_DELIVERED.count(i)
        expected_kinds += ["E"] * sum(1 for j, *_ in INTERLEAVED_ERRORS if j == i)
    assert [e[0] for e in events] == [*expected_kinds, "closed"]

    windows = [e[1] for e in events if e[0] == "W"]
    refs = [w for i in dict.fromkeys(INTERLEAVED_DELIVERED) for w in decode_all(piece(i))]
    assert len(windows) == len(refs) == 12
    for got, ref in zip(windows, refs, strict=True):
        assert same_window(got, ref)

    errors = [e[1] for e in events if e[0] == "E"]
    assert len(errors) == len(INTERLEAVED_ERRORS) == 9
    for exc, (i, cls, field_path, at) in zip(errors, INTERLEAVED_ERRORS, strict=True):
        assert type(exc) is cls
        assert (exc.field_path, exc.offset) == (field_path, starts[i] + at)

    closed = events[-1][1]
    assert isinstance(closed.truncated, TruncatedError)
    assert closed.truncated.field_path == "window.image"
    assert closed.truncated.offset == len(stream)

    stats = reader.stats
    assert stats.windows == 12
    assert stats.errors == 9
    assert stats.resyncs == 10
    assert stats.truncated == 1
    assert stats.bytes == len(stream) == 167402


def piece(i: int) -> bytes:
    return vector(*INTERLEAVED[i])


def test_interleaved_pairs_each_cost_one_error_and_one_resync(serve: ServerFactory) -> None:
    """valid + X + valid for each decode-failing malformed X: exactly one error, both valid."""
    first, last = vector("valid", "w64x32_casa4d"), vector("valid", "w16x16_special")
    bad = [key for key, exp in REJECTED.items() if exp["reader"][0] == "error"]
    stream = b"".join(first + vector(*key) + last for key in bad)
    server = serve([stream])
    with connected(server) as sock:
        reader = WindowReader(sock, timeout_s=WAIT_S)
        events = read_events(reader)
    assert [e[0] for e in events] == ["W", "E", "W"] * len(bad) + ["closed"]
    for n, key in enumerate(bad):
        got_first, exc, got_last = (e[1] for e in events[3 * n : 3 * n + 3])
        assert same_window(got_first, decode_all(first)[0])
        assert same_window(got_last, decode_all(last)[0])
        assert type(exc) is REJECTED[key]["reader"][1]
    assert events[-1][1].truncated is None
    assert (reader.stats.windows, reader.stats.errors) == (2 * len(bad), len(bad))
    assert reader.stats.resyncs == len(bad)


# --- 3. garbage before, between and inside windows ---------------------------------------------


def test_garbage_before_and_between_windows_is_skipped(serve: ServerFactory) -> None:
    rng = random.Random(1)
    w16, w64, special = (vector("valid", n) for n in VALID[:3])
    tricky = b"OMOHSJI\x00" + b"GIJSHOMO" + b"\x00OMO\x00" + b"OMOHSJ"  # near misses
    lead, gap1, gap2, tail = (
        garbage(rng, 1000),
        garbage(rng, 333) + tricky,
        b"\x00",
        garbage(rng, 7),
    )
    stream = lead + w16 + gap1 + w64 + gap2 + special + tail
    assert_one_magic_per_window(stream, 3)
    server = serve([stream])
    with connected(server) as sock:
        reader = WindowReader(sock, timeout_s=WAIT_S)
        got = list(reader)
    refs = decode_all(w16) + decode_all(w64) + decode_all(special)
    assert [same_window(g, r) for g, r in zip(got, refs, strict=True)] == [True] * 3
    stats = reader.stats
    # three runs of garbage end at a window magic; the tail ends at the end of the stream
    assert stats.skipped_bytes == 1000 + 333 + len(tricky) + 1 + 7
    assert (stats.windows, stats.resyncs, stats.errors, stats.truncated) == (3, 3, 0, 0)


def test_garbage_at_the_end_that_starts_like_a_magic_is_a_truncated_header(
    serve: ServerFactory,
) -> None:
    server = serve([vector("valid", "w16x16_casa4d") + b"OMOHSJ"])
    with connected(server) as sock:
        reader = WindowReader(sock, timeout_s=WAIT_S)
        assert reader.read().image.shape == (16, 16)
        with pytest.raises(StreamClosedError) as closed:
            reader.read()
    assert isinstance(closed.value.truncated, TruncatedError)
    assert closed.value.truncated.field_path == "window.magic"
    assert (reader.stats.truncated, reader.stats.skipped_bytes) == (1, 0)


def insert(data: bytes, at: int, extra: bytes) -> bytes:
    return data[:at] + extra + data[at:]


@pytest.mark.parametrize(
    ("where", "at", "outcome"),
    [
        # garbage inside the magic: the window is no window any more, all of it is skipped
        ("magic", 4, "skipped"),
        # inside fits_length: 0xFFFFFFxx bytes of FITS text, over the limit
        ("fits_length", 9, "limit"),
        # inside the padding: the FITS text is read 41 bytes early, cards misaligned
        ("padding", 100, "error"),
        # inside the FITS text: non-ASCII bytes in it
        ("fits", 512 + 1000, "error"),
        # inside the image: the frame still decodes (there is no checksum), with wrong pixels;
        # the image tail pushed out of the frame is skipped before the next window
        ("image", 6272 + 100, "corrupt"),
    ],
)
def test_garbage_inside_a_window_costs_that_window_only(
    serve: ServerFactory, where: str, at: int, outcome: str
) -> None:
    rng = random.Random(at)
    w16, w64, special = (vector("valid", n) for n in VALID[:3])
    junk = b"\xff" * 3 + garbage(rng, 38)  # 41 bytes, not ASCII
    bad = insert(w16, at, junk)
    stream = w64 + bad + special + w64
    assert_one_magic_per_window(stream, 3 if outcome == "skipped" else 4)
    server = serve([stream])
    with connected(server) as sock:
        reader = WindowReader(sock, timeout_s=WAIT_S)
        events = read_events(reader)
    windows = [e[1] for e in events if e[0] == "W"]
    errors = [e[1] for e in events if e[0] == "E"]
    assert events[-1][0] == "closed" and events[-1][1].truncated is None
    good = [decode_all(w64)[0], decode_all(special)[0], decode_all(w64)[0]]
    stats = reader.stats
    if outcome == "corrupt":
        assert len(windows) == 4 and errors == []
        assert same_window(windows[0], good[0])
        assert windows[1].image.shape == (16, 16)  # the corrupted window, delivered as is
        assert not np.array_equal(windows[1].image, index_image(16, 16))
        assert all(same_window(g, r) for g, r in zip(windows[2:], good[1:], strict=True))
        assert (stats.windows, stats.errors, stats.resyncs) == (4, 0, 1)
        assert stats.skipped_bytes == len(junk)
        return
    assert all(same_window(g, r) for g, r in zip(windows, good, strict=True))
    assert len(windows) == 3
    assert stats.windows == 3
    assert stats.resyncs == 1
    if outcome == "skipped":
        assert errors == []
        assert (stats.errors, stats.skipped_bytes) == (0, len(bad))
    elif outcome == "limit":
        assert len(errors) == 1 and type(errors[0]) is LengthLimitError
        assert errors[0].field_path == "window.fits_length"
        assert (stats.errors, stats.skipped_bytes) == (1, len(bad))
    else:
        assert len(errors) == 1 and type(errors[0]) is FieldValueError
        assert errors[0].field_path == "window.fits"
        assert stats.errors == 1


def test_skipped_bytes_count_every_byte_of_a_rejected_window() -> None:
    """Every received byte ends in a window or in skipped_bytes, whichever check failed.

    A window rejected from its 512-byte header (array_length not a multiple of 4) counts all
    its bytes as skipped; one rejected after its body arrived (shape mismatch) must too.
    """
    for name, size in [
        ("array_length_not_multiple_of_4", 7294),
        ("array_length_vs_naxis_mismatch", 7232),
    ]:
        framer = WindowFramer()
        framer.feed(vector("malformed", name) + vector("valid", "w16x16_casa4d"))
        with pytest.raises(RemoteProtocolError):
            framer.next_event()
        assert isinstance(framer.next_event(), Window)
        assert framer.eof() is None
        assert framer.stats.bytes == size + 7296
        assert (framer.stats.skipped_bytes, name) == (size, name)


# the property test: garbage without a magic between valid windows, any chunking

SMALL_WINDOWS: list[bytes] = [
    vector("valid", "w16x16_casa4d"),
    vector("valid", "w64x32_casa4d"),
    vector("valid", "w16x16_special"),
    vector("edge", "fits_unpadded"),
    vector("edge", "date_obs_with_Z"),
    *(vector("valid", "seq3_w16x16_casa4d")[i : i + 7296] for i in (0, 7296, 14592)),
]
_DECOYS = [b"OMOHSJI\x00", b"GIJSHOMO\x00", b"\x00OMO\x00", b"OMOHSJIOMOHSJ\x00"]
_no_o = st.binary(max_size=300).map(lambda b: b.replace(b"O", b"o"))
_garbage = st.lists(st.one_of(_no_o, st.sampled_from(_DECOYS)), max_size=4).map(b"".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    layout=st.lists(st.tuples(_garbage, st.integers(0, len(SMALL_WINDOWS) - 1)), max_size=6),
    tail=_garbage,
    chunks=st.lists(st.integers(1, 9000), min_size=1, max_size=6),
    drop=st.booleans(),
)
# a held 64x32 window, then a smaller one that would fit into its buffer
@example(layout=[(b"", 1), (b"x", 0)], tail=b"", chunks=[9000], drop=False)
def test_framer_recovers_every_window_from_garbage_in_any_chunking(
    layout: list[tuple[bytes, int]], tail: bytes, chunks: list[int], drop: bool
) -> None:
    stream = b"".join(g + SMALL_WINDOWS[i] for g, i in layout) + tail
    assume(stream.count(WINDOW_SYNC_BYTES) == len(layout))  # no magic made by accident
    framer = WindowFramer()
    got: list[tuple[str, bytes]] = []
    held: list[Window] = []
    pos = n = 0
    while pos < len(stream):
        size = chunks[n % len(chunks)]
        framer.feed(stream[pos : pos + size])
        pos += size
        n += 1
        while (event := framer.next_event()) is not NEED_DATA:
            window = cast(Window, event)
            got.append((window.fits, window.image.tobytes()))
            if not drop:
                held.append(window)  # held windows must never be overwritten
    assert framer.eof() is None
    refs = [decode_all(SMALL_WINDOWS[i])[0] for _g, i in layout]
    assert got == [(r.fits, r.image.tobytes()) for r in refs]
    if not drop:
        assert [(w.fits, w.image.tobytes()) for w in held] == got
    stats = framer.stats
    assert stats.skipped_bytes == sum(len(g) for g, _i in layout) + len(tail)
    assert stats.resyncs == sum(1 for g, _i in layout if g)
    assert (stats.windows, stats.errors, stats.truncated) == (len(layout), 0, 0)
    assert stats.bytes == len(stream)


# --- 4. chunking ------------------------------------------------------------------------------


def _chunking_stream() -> tuple[bytes, list[Window]]:
    rng = random.Random(4)
    parts = [
        garbage(rng, 100),
        vector("valid", "seq3_w16x16_casa4d"),
        vector("malformed", "array_length_vs_naxis_mismatch"),
        vector("valid", "w64x32_casa4d"),
        garbage(rng, 5),
        vector("malformed", "bad_magic_bigendian"),
        vector("valid", "w16x16_special"),
        vector("malformed", "array_length_not_multiple_of_4"),
        vector("edge", "date_obs_with_Z"),
        vector("malformed", "truncated_fits"),
    ]
    refs = decode_all(parts[1]) + decode_all(parts[3]) + decode_all(parts[6]) + decode_all(parts[8])
    return b"".join(parts), refs


@pytest.mark.parametrize("chunk", [1, 7, 4096, None])
def test_chunking_does_not_change_the_result(serve: ServerFactory, chunk: int | None) -> None:
    stream, refs = _chunking_stream()
    server = serve([stream], chunk=chunk)
    with connected(server) as sock:
        reads = SmallReads(sock, chunk or 1 << 20)
        reader = WindowReader(cast(socket.socket, reads), timeout_s=WAIT_S)
        events = read_events(reader)
    assert [e[0] for e in events] == ["W"] * 3 + ["E", "W", "W", "E", "W", "closed"]
    windows = [e[1] for e in events if e[0] == "W"]
    assert all(same_window(g, r) for g, r in zip(windows, refs, strict=True))
    assert [type(e[1]) for e in events if e[0] == "E"] == [ShapeMismatchError, LengthMismatchError]
    truncated = events[-1][1].truncated
    assert isinstance(truncated, TruncatedError)
    assert (truncated.field_path, truncated.offset) == ("window.fits", len(stream))
    stats = reader.stats
    # resyncs: before seq3, after the shape mismatch, before special (5 bytes of garbage and
    # the big-endian window), after the bad array_length
    assert (stats.windows, stats.errors, stats.resyncs, stats.truncated) == (6, 2, 4, 1)
    assert stats.bytes == len(stream)
    if chunk is not None:
        assert reads.calls >= len(stream) // chunk  # the reader really saw small reads


# --- 5. zero copy and buffer reuse --------------------------------------------------------------


def test_images_are_views_of_reused_buffers_and_held_windows_stay_intact(
    serve: ServerFactory,
) -> None:
    seq3 = vector("valid", "seq3_w16x16_casa4d")
    w64 = vector("valid", "w64x32_casa4d")
    server = serve([(seq3 + w64) * 10])
    with connected(server) as sock:
        reader = WindowReader(sock, timeout_s=WAIT_S)
        first = reader.read()
        second = reader.read()
        assert not first.image.flags.owndata and not second.image.flags.owndata  # views
        assert not np.shares_memory(first.image, second.image)
        snapshot = first.image.copy()
        first.image[...] = -1.0  # the caller may scribble on its own window...
        assert np.all(second.image[:, :] != -1.0)  # ...without touching another one
        first.image[...] = snapshot
        del second
        held = [reader.read() for _ in range(6)]  # more than the pool keeps
        for a in range(len(held)):
            assert not np.shares_memory(first.image, held[a].image)
            for b in range(a):
                assert not np.shares_memory(held[a].image, held[b].image)
        held_copies = [w.image.copy() for w in held]
        for _ in range(30):
            window = reader.read()
            assert not np.shares_memory(window.image, first.image)
            assert not any(np.shares_memory(window.image, w.image) for w in held)
            del window
        assert reader.framer.pool.reused > 0
        assert np.array_equal(first.image, snapshot)
        assert np.array_equal(first.image, index_image(16, 16))
        for window, copy in zip(held, held_copies, strict=True):
            assert np.array_equal(window.image, copy)
        assert reader.stats.windows == 2 + 6 + 30


# --- 6. length caps -----------------------------------------------------------------------------


def test_max_image_bytes_rejects_a_window_and_reading_goes_on(serve: ServerFactory) -> None:
    w16, w64 = vector("valid", "w16x16_casa4d"), vector("valid", "w64x32_casa4d")
    server = serve([w16 + w64 + w16])
    with connected(server) as sock:
        reader = WindowReader(sock, timeout_s=WAIT_S, max_image_bytes=4096)
        assert same_window(reader.read(), decode_all(w16)[0])
        with pytest.raises(LengthLimitError) as caught:
            reader.read()
        assert same_window(reader.read(), decode_all(w16)[0])
        with pytest.raises(StreamClosedError):
            reader.read()
    exc = caught.value
    assert (exc.limit, exc.actual) == (4096, 64 * 32 * 4)
    assert (exc.field_path, exc.offset) == ("window.array_length", len(w16) + 12)
    assert (reader.stats.windows, reader.stats.errors, reader.stats.resyncs) == (2, 1, 1)
    assert reader.stats.skipped_bytes == len(w64)


def test_max_fits_bytes_rejects_a_window_and_reading_goes_on(serve: ServerFactory) -> None:
    special, w16 = vector("valid", "w16x16_special"), vector("valid", "w16x16_casa4d")
    server = serve([special + w16 + special])
    with connected(server) as sock:
        reader = WindowReader(sock, timeout_s=WAIT_S, max_fits_bytes=2880)
        assert same_window(reader.read(), decode_all(special)[0])
        with pytest.raises(LengthLimitError) as caught:
            reader.read()
        assert same_window(reader.read(), decode_all(special)[0])
    exc = caught.value
    assert (exc.limit, exc.actual) == (2880, 5760)
    assert (exc.field_path, exc.offset) == ("window.fits_length", len(special) + 8)
    assert (reader.stats.windows, reader.stats.errors) == (2, 1)


# --- 7. read timeouts -----------------------------------------------------------------------


@pytest.mark.parametrize("prefix", [b"", b"partial"])
def test_silent_server_raises_stream_timeout(serve: ServerFactory, prefix: bytes) -> None:
    data = vector("valid", "w16x16_casa4d")[:1000] if prefix else b""
    server = serve([data, HOLD])
    with connected(server) as sock:
        reader = WindowReader(sock, timeout_s=0.3)
        with pytest.raises(StreamTimeoutError) as caught:
            reader.read()
    assert isinstance(caught.value, TimeoutError)
    assert f"127.0.0.1:{server.port}" in str(caught.value)
    assert caught.value.stream == f"127.0.0.1:{server.port}"
    assert reader.stats.bytes == len(data)


def test_silent_server_raises_stream_timeout_async(serve: ServerFactory) -> None:
    server = serve([HOLD])

    async def main() -> None:
        reader = await AsyncWindowReader.connect(*server.address, timeout_s=0.3)
        async with reader:
            with pytest.raises(StreamTimeoutError) as caught:
                await reader.read()
        assert isinstance(caught.value, TimeoutError)
        assert f"127.0.0.1:{server.port}" in str(caught.value)

    asyncio.run(main())


# --- 8. the asyncio reader ------------------------------------------------------------------


def test_async_reader_iterates_seq3_to_the_end(serve: ServerFactory) -> None:
    data, meta = load_aartfaac_vector("valid", "seq3_w16x16_casa4d")
    server = serve([data], chunk=1000)

    async def main() -> list[Window]:
        reader = await AsyncWindowReader.connect(*server.address, timeout_s=WAIT_S)
        async with reader:
            assert reader.stream == f"127.0.0.1:{server.port}"
            got = [window async for window in reader]
        assert (reader.stats.windows, reader.stats.bytes) == (3, len(data))
        return got

    windows = asyncio.run(main())
    assert all(same_window(g, r) for g, r in zip(windows, decode_all(data), strict=True))
    assert len(windows) == 3
    assert [window_fits_keywords(w.fits).date_obs for w in windows] == [
        w["date_obs"] for w in meta["windows"]
    ]


def test_async_reader_resyncs_over_an_interleaved_sequence(serve: ServerFactory) -> None:
    rng = random.Random(8)
    parts = [
        garbage(rng, 50),
        vector("valid", "w16x16_casa4d"),
        vector("malformed", "array_length_vs_naxis_mismatch"),
        vector("malformed", "bad_magic_zero"),
        vector("valid", "seq3_w16x16_casa4d"),
        garbage(rng, 9),
        vector("malformed", "missing_date_obs"),
        vector("valid", "w64x32_casa4d"),
        vector("malformed", "truncated_image"),
    ]
    stream = b"".join(parts)
    refs = decode_all(parts[1]) + decode_all(parts[4]) + decode_all(parts[7])
    server = serve([stream], chunk=4096)

    async def main() -> tuple[list[Any], AsyncWindowReader]:
        reader = await AsyncWindowReader.connect(*server.address, timeout_s=WAIT_S)
        events: list[Any] = []
        async with reader:
            while True:
                try:
                    events.append(await reader.read())
                except RemoteProtocolError as exc:
                    events.append(type(exc))
                except StreamClosedError as exc:
                    events.append(exc)
                    break
        return events, reader

    events, reader = asyncio.run(main())
    windows = [e for e in events if isinstance(e, Window)]
    assert [e if isinstance(e, type) else type(e) for e in events] == [
        Window,
        ShapeMismatchError,
        Window,
        Window,
        Window,
        FieldValueError,
        Window,
        StreamClosedError,
    ]
    assert all(same_window(g, r) for g, r in zip(windows, refs, strict=True))
    assert isinstance(events[-1].truncated, TruncatedError)
    stats = reader.stats
    # runs of skipped bytes that end at a window magic: the lead garbage (before w16); the
    # rescanned shape-mismatch window + the bad-magic window (before seq3); the 9 bytes of
    # garbage (before missing_date_obs); the rescanned missing_date_obs window (before w64)
    assert (stats.windows, stats.errors, stats.resyncs, stats.truncated) == (5, 2, 4, 1)


def test_async_reader_async_for_over_garbage_separated_windows(serve: ServerFactory) -> None:
    rng = random.Random(9)
    w16, seq3 = vector("valid", "w16x16_casa4d"), vector("valid", "seq3_w16x16_casa4d")
    lead, gap, tail = garbage(rng, 64), garbage(rng, 3000), garbage(rng, 10)
    stream = lead + w16 + gap + seq3 + tail
    server = serve([stream], chunk=7)

    async def main() -> tuple[list[Window], AsyncWindowReader]:
        reader = await AsyncWindowReader.connect(*server.address, timeout_s=WAIT_S)
        async with reader:
            return [w async for w in reader], reader

    windows, reader = asyncio.run(main())
    refs = decode_all(w16) + decode_all(seq3)
    assert len(windows) == 4
    assert all(same_window(g, r) for g, r in zip(windows, refs, strict=True))
    assert reader.stats.skipped_bytes == 64 + 3000 + 10
    assert (reader.stats.resyncs, reader.stats.errors) == (2, 0)


def test_async_connect_to_a_closed_port_raises_oserror() -> None:
    port = free_port()

    async def main() -> None:
        with pytest.raises(ConnectionRefusedError):
            await AsyncWindowReader.connect("127.0.0.1", port, timeout_s=1.0)

    asyncio.run(main())


def test_iteration_skips_bad_windows_and_counts_them(
    serve: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    good = vector("valid", "w16x16_casa4d")
    bad = vector("malformed", "missing_date_obs")
    server = serve([good + bad + good])
    with connected(server) as sock, caplog.at_level("WARNING", logger="daqwire.aartfaac"):
        reader = WindowReader(sock, timeout_s=WAIT_S)
        windows = list(reader)
    assert len(windows) == 2
    assert reader.stats.windows == 2 and reader.stats.errors == 1
    assert "bad window skipped" in caplog.text and "DATE-OBS is missing" in caplog.text
