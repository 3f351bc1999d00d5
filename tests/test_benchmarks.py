"""The benchmarks run (quick mode) and print their ratios; their figures are not asserted."""

from __future__ import annotations

import subprocess
import sys

from tests.generated_pkg import REPO


def test_aartfaac_benchmark_quick_prints_ratios() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_aartfaac_codec.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    for line in ("reference / daqwire", "daqwire / bare", "window_frame_size / bare struct"):
        assert line in proc.stdout


def test_aartfaac_stream_benchmark_quick_prints_ratios() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_aartfaac_stream.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for line in (
        "throughput 256x256: daqwire",
        "throughput 1024x1024: daqwire",
        "daqwire / that:",
        "merger overhead, 16 streams:",
        "daqwire / dict baseline",
        "peak / held",
    ):
        assert line in out, out
    assert out.count(", ratio ") == 2, out
