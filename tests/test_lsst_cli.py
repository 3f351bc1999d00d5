"""``daqwire lsst``: the mocks and the clients as processes, as a user runs them."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from daqwire.cli import build_parser

from .lsst_peers import free_port

DAQWIRE = [sys.executable, "-m", "daqwire.cli", "lsst"]
TIMEOUT_S = 60


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """Start a mock; yield it and the ports of its ready line; stop it with SIGTERM."""
    proc = subprocess.Popen(
        [*DAQWIRE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", ready)]
        assert ports, ready + proc.stderr.read() if proc.stderr else ready
        yield proc, ports
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(TIMEOUT_S)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DAQWIRE, *args], capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def test_help_names_every_command() -> None:
    text = run("--help").stdout
    for command in ("mock-tma", "mock-m2", "telemetry", "m2"):
        assert f"  {command} " in text
    assert "daqwire lsst telemetry --host 127.0.0.1 --port 50035" in text
    parser = build_parser()
    args = parser.parse_args(["lsst", "m2", "h", "--command", "power"])
    assert (args.command_port, args.telemetry_port, args.details) == (50000, 50001, None)


def test_telemetry_client_against_the_mock_tma() -> None:
    with serving("mock-tma", "--port", "0", "--rate-hz", "20") as (mock, (port,)):
        done = run("telemetry", "--host", "127.0.0.1", "--port", str(port), "--seconds", "1.5")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"MTMount telemetry client: host=127.0.0.1; port={port}"
    assert "  new topic tel_azimuthDrives (3 fields)" in lines
    table = [line.split()[0] for line in lines if re.match(r"tel_\w+\s+\d+\s+[\d.]+/s$", line)]
    assert len([t for t in table if t != "tel_telemetryClientHeartbeat"]) == 26
    assert any(line.startswith("evt_clockOffset ") for line in lines)
    assert re.search(r"malformed lines skipped 0, unknown topics 0", done.stdout)
    assert mock.returncode == 0
    assert mock.stdout is not None and "mock TMA: stopped" in mock.stdout.read()


def test_telemetry_client_without_a_server_exits_2() -> None:
    done = run("telemetry", "--host", "127.0.0.1", "--port", str(free_port()), "--seconds", "2")
    assert done.returncode == 2
    assert "telemetry client failed: ConnectionRefusedError" in done.stderr


def test_m2_commands_against_the_mock_m2() -> None:
    with serving("mock-m2", "--command-port", "0", "--telemetry-port", "0") as (_, ports):
        command, telemetry = ports
        base = ["127.0.0.1", "--command-port", str(command), "--telemetry-port", str(telemetry)]
        ok = run("m2", *base, "--command", "power", "--details", '{"powerType": 2, "status": true}')
        refused = run("m2", *base, "--command", "bogus")
        failed = run("m2", *base, "--command", "power", "--details", '{"powerType": 99}')
        not_json = run("m2", *base, "--command", "power", "--details", "{power")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines()[0] == (
        f'cmd_power {{"powerType": 2, "status": true}} -> 127.0.0.1:{command}'
    )
    assert ok.stdout.splitlines()[1].startswith("success after ")
    assert "events while it ran: " in ok.stdout and "tcpIpConnected" in ok.stdout
    assert (refused.returncode, refused.stdout.splitlines()[-1]) == (
        1,
        "noack: bogus command failed.",
    )
    assert (failed.returncode, failed.stdout.splitlines()[-1]) == (
        1,
        "fail: power command failed.",
    )
    assert not_json.returncode == 2 and "--details is not JSON" in not_json.stderr


def test_m2_without_a_controller_exits_2() -> None:
    port = str(free_port())
    done = run(
        "m2", "127.0.0.1", "--command-port", port, "--telemetry-port", port,
        "--command", "power", "--timeout-s", "1",
    )  # fmt: skip
    assert done.returncode == 2
    assert "no connection to 127.0.0.1" in done.stderr
