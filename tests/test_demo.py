"""`daqwire demo`, the main job, run as a newcomer runs it."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np

from daqwire.demo import SOURCES, run_demo, synthetic_sky


def test_demo_runs_and_reports(capsys: object) -> None:
    out = io.StringIO()
    assert (
        run_demo(
            size=(96, 64), live_s=0, pyexplabsys=False, constellation=False, lsst=False, out=out
        )
        == 0
    )
    text = out.getvalue()
    assert "generated code matches the specs" in text
    assert "magic         0x47494a53484f4d4f" in text
    assert "fits_length   2880" in text
    assert f"array_length  {96 * 64 * 4}" in text
    assert "NAXIS1   = 96" in text and "NAXIS2   = 64" in text
    assert "shape (NAXIS2, NAXIS1) (64, 96), dtype float32" in text
    assert "zero-copy view of the wire bytes: True" in text
    assert f"brightest pixel at x={SOURCES[0][0]}, y={SOURCES[0][1]}" in text
    assert "NaN pixels 1" in text
    assert "round trip exact" in text


def test_demo_live_merge() -> None:
    out = io.StringIO()
    assert run_demo(size=(64, 48), live_s=2.0, constellation=False, lsst=False, out=out) == 0
    text = out.getvalue()
    assert "== 3. live: emulator with 3 streams of 64x48" in text
    assert "3/3 complete" in text
    assert "live merge ok" in text
    # every image of every group has the emulator's brightest source where it was put
    assert "the emulator's brightest source is at x=16, y=32" in text
    peaks = [line for line in text.splitlines() if "peak(" in line]
    assert peaks and all(line.count("peak(x=16,y=32)") == line.count("peak(") for line in peaks)


def test_demo_pyexplabsys_part() -> None:
    out = io.StringIO()
    assert run_demo(size=(64, 48), live_s=0, out=out) == 0
    text = out.getvalue()
    assert "== 3. PyExpLabSys: a pull socket with changing values" in text
    assert "temperature before the first set_point: OLD_DATA" in text
    assert "name -> 'demo instrument'; codenames -> ['temperature', 'pressure']" in text
    assert text.count("json_wn -> ") == 5
    assert "ghost#raw -> UnknownCommandError: UNKNOWN_COMMMAND" in text
    assert "Ack(data=\"{'setpoint': 21.5, 'mode': 'auto'}\")" in text
    assert "served 10 requests, 10 replies" in text
    assert "pyexplabsys ok" in text
    assert "== 4. Constellation: a RandomDataSender streaming CDTP2 to our receiver" in text
    assert "BOR from RandomDataSender.sat1" in text
    assert "1024 samples of float64" in text
    assert "missed 0, condition GOOD, run id demo_run_1" in text
    assert "constellation ok" in text
    assert "== 5. LSST: the mock TMA streaming 26 telemetry topics" in text
    assert "samples of 26/26 topics" in text
    assert "tel_azimuthDrives current: 16 values (wire keys current1..current16)" in text
    assert "a line of bad UTF-8 was injected: skipped 1, still connected True" in text
    assert "lsst ok" in text


def test_synthetic_sky_orientation() -> None:
    sky = synthetic_sky(256, 192)
    assert sky.shape == (192, 256) and sky.dtype == np.float32
    x, y, _ = SOURCES[0]
    assert np.unravel_index(int(np.nanargmax(sky)), sky.shape) == (y, x)


def test_console_script_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "daqwire.cli", "demo", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "AARTFAAC" in proc.stdout
