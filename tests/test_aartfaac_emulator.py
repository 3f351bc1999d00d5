"""The AARTFAAC emulator on real loopback sockets, checked with a decoder written here."""

from __future__ import annotations

import argparse
import itertools
import socket
import struct
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from astropy.io import fits

from daqwire.aartfaac.emulator import (
    EMULATOR_FREQS_HZ,
    EMULATOR_PORTS,
    Emulator,
    EmulatorPortStats,
    add_emulate_arguments,
    emulator_header,
    emulator_image,
    format_date_obs,
    parse_ports,
    parse_size,
    run_emulate,
    sky_peak_position,
)
from daqwire.generated.aartfaac import PixelOrder, decode_window

MAGIC = 0x47494A53484F4D4F
TIMEOUT_S = 10.0  # generous: a wait that times out is a failure, never a timing assertion


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if not k:
            raise EOFError(f"connection closed after {got} of {n} bytes")
        got += k
    return bytes(buf)


def _read_window(sock: socket.socket) -> bytes:
    """One whole window, framed by its own 512-byte header."""
    head = _recv_exact(sock, 512)
    magic, fits_length, array_length = struct.unpack_from("<QII", head)
    assert magic == MAGIC
    return head + _recv_exact(sock, fits_length + array_length)


def _decode(raw: bytes, order: str) -> tuple[Any, npt.NDArray[np.float32]]:
    """An independent decoder: (astropy header, [y, x] image)."""
    _, fits_length, array_length = struct.unpack_from("<QII", raw)
    header = fits.Header.fromstring(raw[512 : 512 + fits_length].decode("ascii"))
    n1, n2 = header["NAXIS1"], header["NAXIS2"]
    pixels = np.frombuffer(raw, "<f4", array_length // 4, 512 + fits_length)
    if order == "naxis2_fastest":
        image = pixels.reshape(n1, n2).T
    else:
        image = pixels.reshape(n2, n1)
    return header, image


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _connect(address: tuple[str, int], rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(TIMEOUT_S)
    sock.connect(address)
    return sock


def _reference_header(load_vector: Any) -> Any:
    _, meta = load_vector("valid", "w16x16_casa4d")
    return fits.Header.fromstring("".join(meta["fits"]["cards"]))


def _our_threads(emu: Emulator) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(emu.thread_prefix)]


# --- header, image, time -------------------------------------------------------------------------


def test_header_matches_reference_keywords(load_vector: Any) -> None:
    ref = _reference_header(load_vector)
    ours = emulator_header(16, 16, freq_hz=6.0e6, date_obs="2026-11-21T12:52:08.477364")
    assert list(ours.keys()) == list(ref.keys())
    differ = {k for k in ref if k != "COMMENT" and ours[k] != ref[k]}
    assert differ == {"ORIGIN", "CRVAL3"}  # DATE-OBS given equal; CRVAL3 = this port's band
    assert ours["DATE-OBS"] == ref["DATE-OBS"]
    assert ours["RESTFREQ"] == "6000000" and ours["CRVAL3"] == 6.0e6
    assert "daqwire" in ours["ORIGIN"]
    assert len(ours.tostring()) == 5760  # as the reference's fits_length


@pytest.mark.parametrize("name", ["w64x32_casa4d", "w1024x1024_casa4d"])
def test_header_wcs_scales_like_reference(load_vector: Any, name: str) -> None:
    _, meta = load_vector("valid", name)
    ref = meta["fits"]["keywords"]
    ours = emulator_header(ref["NAXIS1"], ref["NAXIS2"], freq_hz=7e6, date_obs="2026-01-01")
    for key in ("NAXIS1", "NAXIS2", "CDELT1", "CDELT2", "CRPIX1", "CRPIX2"):
        assert ours[key] == pytest.approx(ref[key], rel=1e-12), key


def test_images() -> None:
    index = emulator_image(5, 3, pattern="index")
    assert index.shape == (3, 5) and index.dtype == np.float32
    assert index[2, 4] == 2 * 5 + 4
    sky = emulator_image(64, 32, seed=7)
    assert np.array_equal(sky, emulator_image(64, 32, seed=7))
    assert not np.array_equal(sky, emulator_image(64, 32, seed=8))
    x, y = sky_peak_position(64, 32)
    assert (x, y) != (32, 16)
    assert np.unravel_index(int(np.argmax(sky)), sky.shape) == (y, x)
    square = emulator_image(40, 40, seed=3)
    x, y = sky_peak_position(40, 40)
    assert x != y and np.unravel_index(int(np.argmax(square)), square.shape) == (y, x)
    noise = emulator_image(32, 32, pattern="noise", seed=1)
    assert noise.dtype == np.float32 and abs(float(noise.mean())) < 0.5
    assert emulator_image(1, 1).shape == (1, 1)


def test_format_date_obs() -> None:
    assert format_date_obs(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000000"
    cet = timezone(timedelta(hours=1))
    t = datetime(2026, 1, 2, 3, 4, 5, 120, tzinfo=cet)
    assert format_date_obs(t) == "2026-01-02T02:04:05.000120"
    assert format_date_obs(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00.000000"


# --- on the wire ---------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["naxis2_fastest", "naxis1_fastest"])
def test_three_ports_share_ticks(load_vector: Any, order: PixelOrder) -> None:
    ref_keys = list(_reference_header(load_vector).keys())
    expected = emulator_image(64, 32, pattern="sky", seed=5)
    with Emulator(
        [0, 0, 0], size=(64, 32), rate_hz=20, pixel_order=order, seed=5, client_queue_len=16
    ) as emu:
        clients = [_connect(address) for address in emu.addresses]
        _wait_for(lambda: all(s.clients == 1 for s in emu.stats), "3 clients")
        raws: list[list[bytes]] = [[], [], []]
        for _ in range(5):  # round robin, so no queue overflows
            for i, sock in enumerate(clients):
                raws[i].append(_read_window(sock))
        for sock in clients:
            sock.close()
    dates: list[list[str]] = []
    for i, port_raws in enumerate(raws):
        dates.append([])
        for raw in port_raws:
            header, image = _decode(raw, order)
            assert image.shape == (32, 64)
            assert np.array_equal(image, expected)
            assert list(header.keys()) == ref_keys
            assert header["RESTFREQ"] == str(int(EMULATOR_FREQS_HZ[i]))
            dates[i].append(header["DATE-OBS"])
            window = decode_window(raw, pixel_order=order)
            assert np.array_equal(window.image, expected)
            assert fits.Header.fromstring(window.fits) == header
        assert dates[i] == sorted(set(dates[i]))  # one window per tick, in order
    common = set(dates[0]) & set(dates[1]) & set(dates[2])
    assert len(common) >= 3  # late joiners may miss the first tick, nothing else
    for i in range(3):  # the ticks every port saw are consecutive on each port
        idx = [dates[i].index(d) for d in sorted(common)]
        assert idx == list(range(idx[0], idx[0] + len(idx)))


def test_slow_client_drops_oldest_and_others_keep_going() -> None:
    with Emulator([0], size=(512, 256), rate_hz=40, client_queue_len=2) as emu:
        address = emu.addresses[0]
        slow = _connect(address, rcvbuf=4096)  # never reads
        fast = _connect(address)
        _wait_for(lambda: emu.stats[0].clients == 2, "2 clients")
        dates: list[str] = []
        deadline = time.monotonic() + TIMEOUT_S
        reads_after_drop = 0
        while reads_after_drop < 5:
            assert time.monotonic() < deadline, "no drops, or the fast client stalled"
            header, _ = _decode(_read_window(fast), "naxis2_fastest")
            dates.append(header["DATE-OBS"])
            if emu.stats[0].frames_dropped > 0:
                reads_after_drop += 1
        stats = emu.stats[0]
        assert stats.frames_dropped > 0
        assert stats.clients == 2  # the slow client is kept, just fed less
        assert stats.queue_high_water <= 2
        assert dates == sorted(set(dates))
        slow.close()
        fast.close()


def test_free_running_back_to_back() -> None:
    expected = emulator_image(32, 16, pattern="index")
    with Emulator([0], size=(32, 16), rate_hz=0, pattern="index") as emu:
        with _connect(emu.addresses[0]) as sock:
            raws = [_read_window(sock) for _ in range(20)]
        assert emu.stats[0].ticks >= 20
    dates = []
    for raw in raws:
        header, image = _decode(raw, "naxis2_fastest")
        assert np.array_equal(image, expected)
        dates.append(header["DATE-OBS"])
    assert all(a < b for a, b in itertools.pairwise(dates))


def test_fixed_clock_still_gives_distinct_ticks() -> None:
    fixed = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
    with Emulator([0], size=(4, 4), rate_hz=50, clock=lambda: fixed) as emu:
        with _connect(emu.addresses[0]) as sock:
            dates = [_decode(_read_window(sock), "naxis2_fastest")[0]["DATE-OBS"] for _ in range(3)]
    assert dates == sorted(set(dates)) and dates[0].startswith("2026-05-04T03:02:01.0000")


def test_max_clients_and_disconnect() -> None:
    with Emulator([0], size=(8, 8), rate_hz=50, max_clients_per_port=1) as emu:
        first = _connect(emu.addresses[0])
        _wait_for(lambda: emu.stats[0].clients == 1, "first client")
        with _connect(emu.addresses[0]) as second:
            assert second.recv(1) == b""  # refused: closed at once
        _wait_for(lambda: emu.stats[0].rejected == 1, "refusal counted")
        _read_window(first)
        first.close()
        _wait_for(lambda: emu.stats[0].clients == 0, "disconnect noticed")
        assert emu.stats[0].connections == 1


def test_stop_is_prompt_idempotent_and_frees_ports() -> None:
    emu = Emulator([0, 0], size=(512, 512), rate_hz=50, client_queue_len=1)
    emu.start()
    ports = [port for _, port in emu.addresses]
    stuck = _connect(emu.addresses[0], rcvbuf=4096)  # its sender blocks in sendall
    reader = _connect(emu.addresses[1])
    _wait_for(lambda: emu.stats[0].frames_dropped > 0, "the stuck client to drop frames")
    _read_window(reader)
    names = _our_threads(emu)
    assert any(n.endswith("-ticker") for n in names) and any(n.endswith("-accept") for n in names)
    assert sum("-client-" in n for n in names) == 2
    emu.stop()
    assert _our_threads(emu) == []
    emu.stop()
    with pytest.raises(RuntimeError):
        emu.start()
    stuck.close()
    reader.close()
    with Emulator(ports, size=(4, 4)) as again:  # SO_REUSEADDR: rebinding works at once
        assert [port for _, port in again.addresses] == ports
    assert isinstance(emu.stats[0], EmulatorPortStats)


def test_argument_validation() -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"ports": []}, "at least one port"),
        ({"ports": [70000]}, "0..65535"),
        ({"ports": [7000, 7000]}, "repeat"),
        ({"size": (0, 5)}, "at least 1x1"),
        ({"size": (100000, 100000)}, "limit"),
        ({"rate_hz": -1}, "rate_hz"),
        ({"rate_hz": float("nan")}, "rate_hz"),
        ({"pixel_order": "rows"}, "pixel_order"),
        ({"pattern": "stripes"}, "pattern"),
        ({"freqs_hz": [6e6]}, "one per port"),
        ({"ports": [0], "freqs_hz": [-1.0]}, "> 0 Hz"),
        ({"client_queue_len": 0}, "client_queue_len"),
        ({"max_clients_per_port": 0}, "max_clients_per_port"),
    ]
    for kwargs, message in bad:
        kwargs.setdefault("ports", [0, 0])
        with pytest.raises(ValueError, match=message):
            Emulator(**kwargs)
    stripes: Any = "stripes"
    with pytest.raises(ValueError, match="pattern"):
        emulator_image(4, 4, pattern=stripes)
    with Emulator([0] * 8, size=(2, 2), rate_hz=0) as emu:
        assert emu.freqs_hz[:6] == list(EMULATOR_FREQS_HZ)
        assert emu.freqs_hz[6:] == [9.0e6, 9.5e6]


# --- command line --------------------------------------------------------------------------------


def test_parse_ports_and_size() -> None:
    assert parse_ports("6666-6671") == list(EMULATOR_PORTS)
    assert parse_ports("7000, 7002-7003") == [7000, 7002, 7003]
    assert parse_ports("0,0") == [0, 0]
    for text in ("", "66a", "7002-7000", "70000", "7000,7000", "1,,2", "1-2-3"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_ports(text)
    assert parse_size("1024x1024") == (1024, 1024)
    assert parse_size("64X32") == (64, 32)
    for text in ("64", "0x5", "ax5", "1x2x3", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_size(text)


def test_run_emulate(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_emulate_arguments(parser)
    defaults = parser.parse_args([])
    assert defaults.ports == list(EMULATOR_PORTS) and defaults.size == (1024, 1024)
    args = parser.parse_args(
        ["--ports", "0,0", "--size", "16x8", "--rate-hz", "20", "--duration-s", "0.5"]
    )
    assert run_emulate(args) == 0
    out = capsys.readouterr().out
    assert out.count("listening on 127.0.0.1:") == 2
    assert "RESTFREQ 6500000 Hz" in out and "served 0 windows" in out
    bad = parser.parse_args(["--ports", "0", "--freqs-hz", "6e6,7e6", "--duration-s", "0"])
    assert run_emulate(bad) == 2
    assert "one per port" in capsys.readouterr().err
