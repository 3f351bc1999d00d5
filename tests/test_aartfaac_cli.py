"""`daqwire aartfaac read|snapshot|emulate` against a live emulator on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from daqwire.aartfaac import Emulator
from daqwire.aartfaac.cli import image_sha256
from daqwire.aartfaac.emulator import emulator_image, sky_peak_position
from daqwire.cli import main

SIZE = (48, 32)  # NAXIS1 x NAXIS2, non-square so a transposed image would show
EMULATE_ARGS = ["--ports", "0,0", "--size", "16x8", "--rate-hz", "20", "--duration-s", "30"]
READ_ARGS = ["--count", "3", "--json"]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator([0, 0, 0], size=SIZE, rate_hz=20.0, pattern="index") as emu:
        yield emu


def _addresses(emu: Emulator) -> list[str]:
    return [f"{host}:{port}" for host, port in emu.addresses]


def test_read_one_stream_json(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    address = _addresses(emulator)[0]
    assert main(["aartfaac", "read", address, "--count", "3", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 3
    expected_sha = image_sha256(emulator_image(*SIZE, pattern="index"))
    for record in records:
        assert set(record) == {"timestamp", "stream", "shape", "sha256"}
        assert record["stream"] == address
        assert record["shape"] == [SIZE[1], SIZE[0]]
        assert record["sha256"] == expected_sha
    stamps = [r["timestamp"] for r in records]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3


def test_read_merges_three_streams(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    addresses = _addresses(emulator)
    assert main(["aartfaac", "read", *addresses, "--count", "3", "--json"]) == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert len(records) == 3
    expected_sha = image_sha256(emulator_image(*SIZE, pattern="index"))
    # the streams connect one after the other, so a tick can fall between two connects and
    # the first group miss a stream; every later one is complete
    for record in records[1:]:
        assert record["complete"] is True
        assert sorted(record["streams"]) == sorted(addresses)
        assert [i["sha256"] for i in record["images"]] == [expected_sha] * 3
        assert all(i["shape"] == [SIZE[1], SIZE[0]] for i in record["images"])
    # the statistics summary goes to stderr
    assert "merger: groups" in captured.err
    assert f"{addresses[0]}: windows" in captured.err


def test_read_text_output(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    addresses = _addresses(emulator)[:2]
    assert main(["aartfaac", "read", *addresses, "--count", "2"]) == 0
    line = capsys.readouterr().out.splitlines()[1]  # the first may miss a stream (see above)
    assert "2/2 streams" in line and "(partial)" not in line


def test_image_sha256_is_of_c_order_yx_float32() -> None:
    image = np.arange(6, dtype=np.float32).reshape(2, 3)
    import hashlib

    assert image_sha256(image) == hashlib.sha256(image.astype("<f4").tobytes()).hexdigest()
    assert image_sha256(np.asfortranarray(image)) == image_sha256(image)


def test_snapshot_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from matplotlib import image as mpl_image

    with Emulator([0], size=SIZE, rate_hz=20.0, pattern="sky") as emu:
        host, port = emu.addresses[0]
        out = tmp_path / "sky.png"
        args = ["--png", str(out), "--cmap", "gray", "--low", "0", "--high", "100"]
        assert main(["aartfaac", "snapshot", f"{host}:{port}", *args]) == 0
    assert f"wrote {out}: 48x32 image" in capsys.readouterr().out
    png = mpl_image.imread(out)
    assert png.shape[:2] == (SIZE[1], SIZE[0])
    # origin="lower": row y of the image is PNG row (NAXIS2 - 1 - y); the peak is the brightest
    x, y = sky_peak_position(*SIZE)
    brightness = png[..., :3].sum(axis=2)
    assert np.unravel_index(int(np.argmax(brightness)), brightness.shape) == (SIZE[1] - 1 - y, x)


def test_snapshot_unreachable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with Emulator([0], size=SIZE, rate_hz=20.0) as emu:
        host, port = emu.addresses[0]
    # the emulator is gone, so the port refuses
    code = main(["aartfaac", "snapshot", f"{host}:{port}", "--png", str(tmp_path / "x.png")])
    assert code == 1
    assert "cannot connect" in capsys.readouterr().err


def test_bad_address_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["aartfaac", "read", "nohostport"])
    assert exc.value.code == 2
    assert "not a HOST:PORT address" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["emulate", "read", "snapshot"])
def test_help_texts(command: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "daqwire.cli", "aartfaac", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert "usage: daqwire aartfaac " + command in proc.stdout


def test_aartfaac_help_lists_commands() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "daqwire.cli", "aartfaac", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    for word in ("emulate", "read", "snapshot", "Try it on one machine"):
        assert word in proc.stdout


def test_emulate_then_read_as_processes() -> None:
    """The two console commands, as a newcomer runs them in two terminals."""
    emu = subprocess.Popen(
        [sys.executable, "-m", "daqwire.cli", "aartfaac", "emulate", *EMULATE_ARGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert emu.stdout is not None
        addresses: list[str] = []
        for _ in range(20):
            line = emu.stdout.readline()
            addresses += [w for w in line.replace(",", " ").split() if w.startswith("127.0.0.1:")]
            if len(addresses) >= 2:
                break
        assert len(addresses) == 2, "emulator did not print its addresses"
        proc = subprocess.run(
            [sys.executable, "-m", "daqwire.cli", "aartfaac", "read", *addresses, *READ_ARGS],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        records = [json.loads(line) for line in proc.stdout.splitlines()]
        assert len(records) == 3 and all(r["complete"] for r in records[1:])
        assert all(len(r["images"]) == 2 for r in records[1:])
    finally:
        emu.terminate()
        emu.wait(timeout=30)
