"""The scripts in examples/ run as a user runs them, and print what the docs say they print.

All examples start at once (each as ``python examples/<name>.py`` from the repository root),
so the whole module takes about as long as the slowest one, a few seconds.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TIMEOUT_S = 60.0
#: each user guide in docs/ and the examples it shows, in full
GUIDES = {
    "aartfaac-stream.md": (
        "aartfaac_read_one",
        "aartfaac_async",
        "aartfaac_reconnect",
        "aartfaac_merge",
        "aartfaac_merger_rules",
        "aartfaac_tkp_dropin",
    ),
    "constellation.md": (
        "constellation_run",
        "constellation_datasender",
        "constellation_random_data_sender",
    ),
    "lsst.md": ("lsst_tcpip_echo", "lsst_m2_command", "lsst_tma_telemetry"),
    "pyexplabsys.md": (
        "pyexplabsys_moon_laser_pull",
        "pyexplabsys_moon_laser_push",
        "pyexplabsys_moon_laser_control",
        "pyexplabsys_pull",
        "pyexplabsys_push",
        "pyexplabsys_live",
        "pyexplabsys_dropin",
    ),
}
NAMES = tuple(name for names in GUIDES.values() for name in names)


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


@pytest.fixture(scope="module")
def runs() -> dict[str, Run]:
    """Run every example in parallel; the exit code and output of each, by name."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(EXAMPLES / f"{name}.py")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in NAMES
    }
    deadline = time.monotonic() + TIMEOUT_S
    results: dict[str, Run] = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            results[name] = Run(proc.returncode, out, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


def _ok(runs: dict[str, Run], name: str) -> Run:
    run = runs[name]
    assert run.returncode == 0, f"{name} exited {run.returncode}:\n{run.stdout}\n{run.stderr}"
    return run


def test_every_example_is_tested() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == sorted(NAMES)


def test_every_example_is_listed_in_the_readme() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in NAMES:
        assert f"{name}.py" in readme


@pytest.mark.parametrize("guide_name", sorted(GUIDES))
def test_guide_shows_the_examples_as_they_are(guide_name: str) -> None:
    """Each ``<!-- example: examples/x.py -->`` block of a guide is that file, docstring aside."""
    guide = (ROOT / "docs" / guide_name).read_text(encoding="utf-8")
    blocks = dict(re.findall(r"<!-- example: (\S+) -->\n```python\n(.*?)\n```", guide, re.S))
    assert sorted(blocks) == sorted(f"examples/{name}.py" for name in GUIDES[guide_name])
    for rel, shown in blocks.items():
        source = (ROOT / rel).read_text(encoding="utf-8")
        after_docstring = ast.parse(source).body[0].end_lineno
        body = "\n".join(source.splitlines()[after_docstring:]).strip("\n")
        assert shown == body, f"{rel} differs from its copy in {guide_name}"


def test_read_one(runs: dict[str, Run]) -> None:
    run = _ok(runs, "aartfaac_read_one")
    stamps = [line for line in run.lines if line.startswith("window ")]
    assert len(stamps) == 3
    assert all(
        re.fullmatch(r"window \d: DATE-OBS \d{4}-\d\d-\d\dT[\d:]{8}\.\d{6}", s) for s in stamps
    )
    for line in (
        "shape (32, 64) float32 F-contiguous: True",
        "row y=0:    [0. 1. 2. 3.]",
        "column x=0: [  0.  64. 128. 192.]",
        "RESTFREQ 6000000 CRVAL3 6000000.0 NAXIS 4",
        "cutout kept from window 0: [[0.0, 1.0, 2.0], [64.0, 65.0, 66.0]]",
        "receive buffers: 2 allocated, 1 reused",
    ):
        assert line in run.lines
    assert any(line.startswith("FramerStats(windows=3, ") for line in run.lines)


def test_async(runs: dict[str, Run]) -> None:
    run = _ok(runs, "aartfaac_async")
    assert run.lines.count("A: (32, 32) RESTFREQ 6000000") == 3
    assert run.lines.count("B: (32, 32) RESTFREQ 6500000") == 3
    assert run.lines[-1].startswith("same DATE-OBS on both streams: ")


def test_reconnect(runs: dict[str, Run]) -> None:
    run = _ok(runs, "aartfaac_reconnect")
    assert re.search(r"^windows \d+, connects 2, reconnects 1$", run.stdout, re.M)
    assert "connect failures: True, bad windows: 0" in run.lines
    assert re.search(
        r"^images handed to the sink: \d+, numbered 1, 2, 3, \.\.\.: True$", run.stdout, re.M
    )
    assert any(line.startswith("last error: connect: ") for line in run.lines)
    assert any(
        line.startswith("WARNING daqwire.aartfaac.connection: ") and "cannot connect" in line
        for line in run.lines
    )


def test_merge(runs: dict[str, Run]) -> None:
    run = _ok(runs, "aartfaac_merge")
    complete = [line for line in run.lines if line.endswith("  3/3 complete  {(64, 64)}")]
    assert len(complete) >= 5
    stream_lines = [line for line in run.lines if line.startswith("127.0.0.1:")]
    assert len(stream_lines) == 3
    assert all(line.endswith(", errors 0, reconnects 0") for line in stream_lines)
    summary = run.lines[-1]
    assert summary.startswith("MergerStats(")
    assert "late=0, duplicates=0, bad_timestamps=0, dropped_groups=0" in summary


def test_merger_rules(runs: dict[str, Run]) -> None:
    run = _ok(runs, "aartfaac_merger_rules")
    for line in (
        "t=0 B 2024-03-12T10:00:01Z: kept",
        "t=0 C 2024-03-12T10:00:01: kept",
        "  group 2024-03-12T10:00:01+00:00 ('A', 'B', 'C') complete (complete)",
        "t=0 A 2024-03-12T10:00:01.000000: dropped",
        "t=0 B 2024-03-12T10:00:02.000000: dropped",
        "t=0 C not a date: dropped",
        "t=0 C None: dropped",
        "  group 2024-03-12T10:00:02+00:00 ('A', 'B') partial (timeout)",
        "  group 2024-03-12T10:00:04+00:00 ('A',) partial (flush)",
        "  group 2024-03-12T10:00:05+00:00 ('A',) partial (flush)",
        "MergerStats(images=8, groups=5, complete_groups=1, partial_groups=4, late=1, "
        "duplicates=1, bad_timestamps=2, dropped_groups=1, dropped_images=1, open_groups=0, "
        "backlog=0)",
    ):
        assert line in run.lines
    assert not any("10:00:03+00:00 ('A',)" in line for line in run.lines)  # dropped: oldest
    warnings = [line for line in run.lines if line.startswith("WARNING daqwire.aartfaac.merging")]
    assert len(warnings) == 5


def test_tkp_dropin(runs: dict[str, Run]) -> None:
    run = _ok(runs, "aartfaac_tkp_dropin")
    for line in (
        "data (32, 64) float32 row y=0: [0. 1. 2.] column x=0: [  0.  64. 128.]",
        "NAXIS 2 NAXIS1 64 NAXIS2 32",
        "BITPIX -32 NAXIS3 kept: False",
        "timestamp is naive, as in tkp: True",
        "connector threads still running: []",
    ):
        assert line in run.lines
    groups = [line for line in run.lines if "HDULists from" in line]
    assert len(groups) == 3
    assert "3 HDULists from 3 streams, 1 timestamp" in groups


def test_pyexplabsys_pull(runs: dict[str, Run]) -> None:
    run = _ok(runs, "pyexplabsys_pull")
    for line in (
        "name 'oven', codenames ['temperature', 'pressure']",
        "before any set_point: {'temperature': OldData(), 'pressure': (0.0, 0.0)}",
        "the values changed while the producer ran: True",
        "last values: 20.9 1015.25",
        "1.1 s later: OLD_DATA True 1015.25",
        "humidity#raw: UnknownCommandError b'UNKNOWN_COMMMAND'",
        "status: oven date OK",
        "system_status: 15 host facts (filesystem_usage, last_apt_cache_change_unixtime, "
        "last_git_fetch_unixtime, ...)",
    ):
        assert line in run.lines
    readings = [line for line in run.lines if line.startswith("temperature ")]
    assert len(readings) >= 2
    pattern = r"temperature (2\d\.\d) \(\d+\.\d\d s old\), pressure (101\d\.\d+)"
    values = []
    for line in readings:
        match = re.fullmatch(pattern, line)
        assert match, line
        values.append(float(match[1]))
    assert values == sorted(values) and values[0] < values[-1]
    assert re.fullmatch(
        r"ServerStats\(requests=(\d+), replies=\1, send_errors=0, serve_errors=0\)", run.lines[-1]
    )


def test_pyexplabsys_push(runs: dict[str, Run]) -> None:
    run = _ok(runs, "pyexplabsys_push")
    raw_refused = (
        "Raw conversion failed with message:With return format raw, the value 'a;b' contains "
        "';', which is a separator of the raw format"
    )
    assert run.lines == [
        "name: heater",
        "json_wn: RetJson(value={'setpoint': 450.0, 'ramp': [0.5, 1.0], 'note': 'warm up'})",
        "last: {'setpoint': 450.0, 'note': 'warm up'}",
        "raw_wn:  RetJson(value={'setpoint': 455.0, 'ramp': [0.5, 1.0], 'note': 'none'})",
        "WARNING daqwire.pyexplabsys.push: DataPushSocket 'heater': request failed: "
        "setpoint 900.0 is above 500",
        "callback raised: b'EXCEP#setpoint 900.0 is above 500'",
        "raw format, dict: RetRaw(value={'setpoint': 450.0, 'ramp': [0.5, 1.0], 'note': 'none'})",
        "raw format, rows: RetRaw(value=[[1.0, 2.0], [3.0, 4.0]])",
        "WARNING daqwire.pyexplabsys.push: DataPushSocket 'heater raw': request failed: "
        + raw_refused,
        "raw format refused: " + raw_refused,
        "push 0: Ack(data=\"{'i': 0}\")",
        "push 1: Ack(data=\"{'i': 1}\")",
        "push 2: refused: b'ERROR#The queue is full (2 items); the data was not stored'",
        "taken from the queue: {'i': 0} {'i': 1}",
        "push 3: Ack(data=\"{'i': 3, 'tags': ['a', 'b']}\")",
        "last: {'i': 3, 'tags': ['a', 'b']} updated: {'i': 3, 'tags': ['a', 'b']}",
    ]


def test_pyexplabsys_live(runs: dict[str, Run]) -> None:
    run = _ok(runs, "pyexplabsys_live")
    assert run.lines == [
        "live server got: {'temperature': [1700000000.0, 20.5]} from this host: True",
        "live server got: {'temperature': [1700000001.0, 21.0], 'power': [1700000001.0, 5]} "
        "from this host: True",
        "pull json_wn: {'temperature': (1700000001.0, 21.0), 'power': (1700000001.0, 5)}",
        "after reset, live server got: {'temperature': 'RESET'}",
        "after reset, pull raw_wn: {'temperature': OldData(), 'power': (1700000001.0, 5)}",
        "bad batch: The codename: 'fan' is not registered",
        "nothing of the bad batch was applied: "
        "{'temperature': OldData(), 'power': (1700000001.0, 5)}",
        "set again, live server got: {'temperature': [1700000003.0, 22.5]}",
        "pull temperature#json: (1700000003.0, 22.5)",
        "latest per codename: {'temperature': [1700000003.0, 22.5], 'power': [1700000001.0, 5]}",
        "datagrams sent: 4 LiveServerStats(datagrams=4, updates=4, errors=0, dropped=0)",
    ]


def test_pyexplabsys_dropin(runs: dict[str, Run]) -> None:
    run = _ok(runs, "pyexplabsys_dropin")
    assert run.lines == [
        "codenames: 42 ['temperature', 'setpoint', 'channel_00']",
        "get_field('setpoint'): [1700000000.0, 450.0]",
        "client.temperature[1]: 452.1",
        "get_all_fields: 42 fields, channel_39 = [1700000000.0, 19.5]",
        "the json_wn reply was longer than 1024 bytes: True",
        "get_field('temperature'): ValueError('Old data')",
        "get_all_fields(): ValueError('Old data, for field \"temperature\"')",
        "get_field('pressure'): Unknown fieldnames",
        "exception_on_old_data=False: OLD_DATA",
    ]


def test_constellation_run(runs: dict[str, Run]) -> None:
    run = _ok(runs, "constellation_run")
    assert run.lines[0] == "BOR from Example.sender: configuration {'gain': 4, 'channels': 8}"
    assert "record 3: event 2, [ 0.  2.  4.  6.  8. 10. 12. 14.]" in run.lines
    assert "record 6: 0 bytes" in run.lines
    assert run.lines[-2:] == [
        "EOR: 6 records, missed 0, condition GOOD",
        "run id run_0042, data_records 6",
    ]


def test_constellation_datasender(runs: dict[str, Run]) -> None:
    run = _ok(runs, "constellation_datasender")
    assert run.lines == [
        "state RUN",
        "state ORBIT, status 'Counted to 20; Stopped'",
        "received [0, 1, 2, 3, 4] ... [18, 19] (20 records)",
        "EOR payload {'last': 19}, condition GOOD",
    ]


def test_lsst_tcpip_echo(runs: dict[str, Run]) -> None:
    run = _ok(runs, "lsst_tcpip_echo")
    assert run.lines == [
        "echoed: {'id': 'echo', 'seq': 1}",
        "echoed: [1, 2, 3]",
        "echoed: 1180591620717411303424",
        "echoed: inf",
        "server said: {'error': \"data='not json' is not valid json: Expecting value: "
        'line 1 column 1 (char 0)"}',
        "echoed: {'after': 'the long line'}",
        "skipped a line of 711 bytes (limit 512)",
        "echoed: {'and then': 'more'}",
        "still connected: True",
    ]
    assert "a line of 2002 bytes, more than the limit of 1024; skipped" in run.stderr


def test_lsst_m2_command(runs: dict[str, Run]) -> None:
    run = _ok(runs, "lsst_m2_command")
    assert run.lines[1:5] == [
        "power: power command failed. (status Fail)",
        "bogus: bogus command failed. (status NoAck)",
        "sequence ids used: [1, 2, 3, 4]",
        "welcome events received: True | first: tcpIpConnected",
    ]
    assert "'communication_power_is_on': True" in run.lines[0]
    assert run.lines[5] == "telemetry ids: ['displacementSensors', 'powerStatus', 'powerStatusRaw']"


def test_lsst_tma_telemetry(runs: dict[str, Run]) -> None:
    run = _ok(runs, "lsst_tma_telemetry")
    assert run.lines[:3] == [
        "telemetry topics published: 26 of 26",
        "malformed lines skipped: 1",
        "still reading after the bad line: True",
    ]
    assert run.lines[3].startswith("tel_azimuth: actualPosition ")
    assert run.lines[4:] == [
        "events: ['evt_clockOffset', 'evt_telemetryConnected']",
        "heartbeats: True",
    ]


def test_pyexplabsys_moon_laser_pull(runs: dict[str, Run]) -> None:
    run = _ok(runs, "pyexplabsys_moon_laser_pull")
    assert re.fullmatch(r"the moon socket listens on 127\.0\.0\.1:\d+", run.lines[0])
    shots = [
        f"shot {n}: json_wn {{'moon_laser_power': {42.0 + n}, 'moon_laser_duration': {37.0 + n}}}"
        for n in range(1, 6)
    ]
    assert run.lines[1:] == [
        "name: Last shot usage data from the giant laser on the moon",
        "codenames_json: ['moon_laser_power', 'moon_laser_duration']",
        *shots,
        "json: [47.0, 42.0]",
        "moon_laser_power#json: 47.0",
        "raw_wn: {'moon_laser_power': 47.0, 'moon_laser_duration': 42.0}",
        "codenames_raw: ['moon_laser_power', 'moon_laser_duration']",
        "raw: [47.0, 42.0]",
        "moon_laser_power#raw: 47.0",
        "every x is a Unix time of this run: True",
        "1.1 s after the last shot, json_wn "
        "{'moon_laser_power': 'OLD_DATA', 'moon_laser_duration': 'OLD_DATA'}",
    ]


def test_pyexplabsys_moon_laser_push(runs: dict[str, Run]) -> None:
    run = _ok(runs, "pyexplabsys_moon_laser_push")
    greeting = "{'greeting': 'Live long and prosper', 'number': 47}"
    assert run.lines == [
        f'json_wn: Ack(data="{greeting}")',
        f"  last: {greeting}",
        f"  updated: {greeting}",
        "json_wn: Ack(data=\"{'number': 42}\")",
        "  last: {'number': 42}",
        "  updated: {'greeting': 'Live long and prosper', 'number': 42}",
        f"raw_wn#greeting:str:Live long and prosper;number:int:47 -> ACK#{greeting}",
        "raw_wn#number:int:42 -> ACK#{'number': 42}",
        "raw_wn#number:88 -> ERROR#The data part 'number:88' did not match the expected "
        "format of 3 parts divided by ':'",
        "raw_wn#number:floats:88 -> ERROR#The data type 'floats' is unknown. "
        "Only dict_keys(['int', 'float', 'str', 'bool']) are allowed",
        f"queue.get(): {greeting}",
        "queue.get(): {'number': 42}",
        "Received: {'action': 'fire', 'duration': 8, 'intensity': 300}",
        "Received: {'action': 'idle'}",
        "replies: ['Ack', 'Ack']",
        "STATE: idle callbacks: 2",
    ]


def test_pyexplabsys_moon_laser_control(runs: dict[str, Run]) -> None:
    run = _ok(runs, "pyexplabsys_moon_laser_control")
    assert run.lines == [
        "name: Laser control, callback socket, for giant laser on the moon",
        "update_settings: Updated settings with: {'power': 300, 'focus': 10}",
        "update_settings: the laser did not understand: Not settings for key: colour",
        "fire: the laser did not understand: Unknown method: fire",
        "state: State set to: active",
        "temperatures while active: [30, 35, 40]",
        "state: State set to: idle",
        "stop: Stopped",
        "settings: {'power': 300, 'focus': 10, 'target': None}",
        "last push: {'method': 'stop'} socket stopped: True",
    ]
    assert run.stderr.count("request failed: ") == 2


def test_constellation_random_data_sender(runs: dict[str, Run]) -> None:
    run = _ok(runs, "constellation_random_data_sender")
    assert run.lines[:5] == [
        "RandomDataSender.sat1 in ORBIT, CDTP1",
        "BOR from RandomDataSender.sat1, configuration "
        "{'_bor_timeout': 5000, '_data_timeout': 10000, '_eor_timeout': 10000}",
        "record 1: 1024 samples of float64, tags {'dtype': 'float64'}",
        "after stop: ORBIT, status 'Finished acquisition; Stopped'",
        "the sine starts at +0.000; every record holds the run's sine: True",
    ]
    received = re.fullmatch(r"received (\d+) records, (\d+) bytes", run.lines[5])
    assert received, run.lines[5]
    records = int(received[1])
    assert records >= 2  # one every 0.5 s of the 2 s run, the first at its start
    assert int(received[2]) == records * 1024 * 8
    assert run.lines[6:] == [
        f"EOR: {records} records, {records * 8192} bytes, missed 0, condition GOOD"
    ]
