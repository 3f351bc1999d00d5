"""The benchmarks run (quick mode) and print their ratios; their figures are not asserted."""

from __future__ import annotations

import re
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


def test_pyexplabsys_benchmark_quick_prints_ratios() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_pyexplabsys.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("command: "), out
    for n in (2, 10):
        for label in (f"pull json_wn N={n}: daqwire", f"pull raw N={n}: daqwire"):
            assert label in out, out
        assert f"push json_wn#{{{n} keys}}: daqwire" in out, out
    ratio_lines = re.findall(r": daqwire [\d,]+ req/s, echo [\d,]+ req/s, ratio \d+\.\d\d", out)
    assert len(ratio_lines) == 6, out
    assert out.count("server CPU/request: daqwire ") == 6, out
