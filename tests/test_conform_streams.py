"""``daqwire conform`` against AARTFAAC stream servers: ours passes, a bad window is caught."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from daqwire.aartfaac import Emulator
from daqwire.aartfaac.sky import emulator_header, format_date_obs
from daqwire.conform import UsageError, conform
from daqwire.generated.aartfaac import WINDOW_PREFIX_SIZE, Window, encode_window
from tests.aartfaac_servers import HOLD, LoopbackServer, free_port

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
SIDE = 8


def window_bytes(index: int) -> bytes:
    """A valid window from the generated encoder; each window the same size."""
    header = emulator_header(SIDE, SIDE, freq_hz=6.0e6, date_obs=format_date_obs(T0))
    header["DATE-OBS"] = format_date_obs(T0 + timedelta(seconds=index))
    image = np.full((SIDE, SIDE), float(index), dtype=np.float32)
    return encode_window(Window(fits=header.tostring(), image=image))


def stream(count: int, bad: int, corrupt: str) -> tuple[bytes, int]:
    """``count`` windows back to back with window ``bad`` corrupted; and the window size."""
    windows = [bytearray(window_bytes(i)) for i in range(count)]
    size = len(windows[0])
    assert all(len(w) == size for w in windows)
    target = windows[bad]
    if corrupt == "magic":
        target[0] ^= 0xFF
    elif (
        corrupt == "fits_length"
    ):  # fits_length one byte short: the FITS text is no whole number of cards
        fits_length = struct.unpack_from("<I", target, 8)[0]
        struct.pack_into("<I", target, 8, fits_length - 1)
    return b"".join(windows), size


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator([0], size=(16, 16), rate_hz=0, seed=3) as emu:
        yield emu


def test_our_emulator_conforms(emulator: Emulator) -> None:
    host, port = emulator.addresses[0]
    report = conform("aartfaac", f"{host}:{port}", examples=12)
    assert report.ok, report.summary()
    assert report.checked == 12
    assert report.counts == {"window": 12}
    assert report.deviations == []


def test_a_bad_magic_in_window_3_is_found_and_later_windows_are_still_checked() -> None:
    data, size = stream(8, 3, "magic")
    with LoopbackServer([data, HOLD]) as server:
        target = f"127.0.0.1:{server.port}"
        report = conform("aartfaac", target, examples=8, timeout_s=5.0)
    assert not report.ok
    assert report.checked == 8
    assert report.counts == {"window": 7, "bad window": 1}
    [dev] = report.deviations
    assert dev.check == "item"
    assert dev.field_path == "window.magic"
    assert dev.offset == 0
    assert dev.case == f"window 3 (stream bytes {3 * size}..{4 * size})"
    assert f"(stream byte {3 * size})" in dev.message
    assert dev.reproduce == f"daqwire conform aartfaac {target} --examples 4 --timeout-s 5"
    assert dev.evidence_hex is not None
    assert bytes.fromhex(dev.evidence_hex) == data[3 * size : 3 * size + 256]


def test_a_short_fits_length_is_found_with_its_field_and_offset() -> None:
    data, size = stream(6, 3, "fits_length")
    fits_length = struct.unpack_from("<I", data, 3 * size + 8)[0]
    with LoopbackServer([data, HOLD]) as server:
        target = f"127.0.0.1:{server.port}"
        report = conform("aartfaac", target, examples=6)
    assert report.counts == {"window": 5, "bad window": 1}
    [dev] = report.deviations
    assert dev.field_path == "window.fits"
    assert "not a whole number of 80-byte cards" in dev.message
    # the last whole card of the shortened FITS text, counted from the window's first byte
    assert dev.offset == WINDOW_PREFIX_SIZE + fits_length - fits_length % 80
    assert dev.case == f"window 3 (stream bytes {3 * size}..{4 * size})"
    assert dev.reproduce == f"daqwire conform aartfaac {target} --examples 4"


def test_the_reproducer_shows_the_fault_again_with_the_fewest_windows() -> None:
    data, size = stream(8, 3, "magic")
    with LoopbackServer([data, HOLD]) as server:
        report = conform("aartfaac", f"127.0.0.1:{server.port}", examples=4)
    assert report.checked == 4
    assert [d.case for d in report.deviations] == [
        f"window 3 (stream bytes {3 * size}..{4 * size})"
    ]


def test_a_window_cut_by_the_peer_is_a_deviation() -> None:
    data, size = stream(3, 0, "none")
    cut = data[: 2 * size + 600]
    with LoopbackServer([cut]) as server:
        report = conform("aartfaac", f"127.0.0.1:{server.port}", examples=5)
    assert report.counts == {"window": 2, "bad window": 1}
    [dev] = report.deviations
    assert dev.case == f"window 2 (stream bytes {2 * size}..{2 * size + 600})"
    assert dev.field_path == "window.fits"
    assert dev.offset == 600
    assert "closed the connection inside window 2" in report.notes[-1]


def test_usage_errors_and_unreachable_peer() -> None:
    with pytest.raises(UsageError, match="chirp is a binary spec without a TCP stream framing"):
        conform("chirp", "127.0.0.1:7123")
    with pytest.raises(UsageError, match="--replay does not apply"):
        conform("aartfaac", "127.0.0.1:6666", replay=b"x")
    with pytest.raises(ConnectionRefusedError):
        conform("aartfaac", f"127.0.0.1:{free_port()}")
