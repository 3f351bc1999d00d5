"""``daqwire conform`` against PyExpLabSys-style UDP sockets: ours pass, broken ones are caught."""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daqwire.conform import NonConformanceError, UsageError, conform
from daqwire.conform.report import escape_case, unescape_case
from daqwire.generated import pyexplabsys as codec
from daqwire.pyexplabsys import DataPushSocket, DateDataPullSocket, LiveSocket

SPEC_FILE = Path(__file__).resolve().parents[1] / "specs" / "pyexplabsys.yaml"


@pytest.fixture
def pull() -> Iterator[DateDataPullSocket]:
    sock = DateDataPullSocket(
        "Usage statistics from the giant laser on the moon",
        ["moon_laser_power", "moon_laser_duty_cycle"],
        port=0,
        host="127.0.0.1",
    )
    sock.start()
    sock.set_point_now("moon_laser_power", 42.5)
    sock.set_point_now("moon_laser_duty_cycle", 0.25)
    yield sock
    sock.stop()


@pytest.fixture
def push() -> Iterator[DataPushSocket]:
    sock = DataPushSocket("giant laser on the moon", port=0, host="127.0.0.1")
    sock.start()
    yield sock
    sock.stop()


class BrokenServer:
    """A UDP server around a generated dispatcher whose replies pass through ``mangle``."""

    def __init__(
        self, dispatcher: Callable[[bytes], bytes], mangle: Callable[[bytes, bytes], bytes | None]
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.dispatcher = dispatcher
        self.mangle = mangle
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            self.requests.append(data)
            reply = self.mangle(data, self.dispatcher(data))
            if reply is not None:
                self.sock.sendto(reply, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


class _PushHandler:
    def on_name(self) -> str:
        return "broken"

    def on_status(self) -> dict[str, object]:
        return {}

    def on_json_wn(self, data: dict[str, object]) -> codec.Ack:
        return codec.Ack(data)

    def on_raw_wn(self, data: dict[str, object]) -> codec.Ack:
        return codec.Ack(data)


class _PullHandler:
    def on_name(self) -> str:
        return "silent on bad bytes"

    def on_codenames_raw(self) -> list[str]:
        return ["a"]

    def on_codenames_json(self) -> list[str]:
        return ["a"]

    def on_raw(self) -> list[tuple[float, float]]:
        return [(1.0, 2.0)]

    def on_raw_wn(self) -> dict[str, tuple[float, float]]:
        return {"a": (1.0, 2.0)}

    def on_json(self) -> list[tuple[float, float]]:
        return [(1.0, 2.0)]

    def on_json_wn(self) -> dict[str, tuple[float, float]]:
        return {"a": (1.0, 2.0)}

    def on_status(self) -> dict[str, object]:
        return {}

    def on_point_raw(self, codename: str) -> tuple[float, float]:
        return (1.0, 2.0)

    def on_point_json(self, codename: str) -> tuple[float, float]:
        return (1.0, 2.0)


@pytest.fixture
def wrong_ack_prefix() -> Iterator[BrokenServer]:
    """A push server that writes ``ACK:`` where the spec says ``ACK#``: one wrong reply prefix."""
    dispatcher = codec.PushDispatcher(_PushHandler())

    def mangle(_request: bytes, reply: bytes) -> bytes:
        return b"ACK:" + reply[4:] if reply.startswith(b"ACK#") else reply

    server = BrokenServer(dispatcher.handle, mangle)
    yield server
    server.close()


@pytest.fixture
def silent_on_bad_bytes() -> Iterator[BrokenServer]:
    """A pull server that drops non-UTF-8 requests without a reply, as a careless one does."""
    dispatcher = codec.PullDispatcher(_PullHandler())  # type: ignore[arg-type]

    def mangle(request: bytes, reply: bytes) -> bytes | None:
        try:
            request.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return reply

    server = BrokenServer(dispatcher.handle, mangle)
    yield server
    server.close()


def test_our_pull_socket_conforms(pull: DateDataPullSocket) -> None:
    report = conform("pyexplabsys", f"127.0.0.1:{pull.port}", examples=60, seed=7)
    assert report.ok, report.summary()
    assert report.service == "pull"
    assert report.checked == 60 + 30
    # the real codenames were learned from codenames_json and drawn (examples_from)
    assert (
        report.counts.get("reply point_raw_reply", 0)
        + report.counts.get("reply point_json_reply", 0)
        >= 1
    )
    assert report.counts["reply socket_name"] == 1
    assert "service pull detected" in report.notes[0]


def test_our_push_socket_conforms(push: DataPushSocket) -> None:
    report = conform("pyexplabsys", f"127.0.0.1:{push.port}", examples=60, seed=7)
    assert report.ok, report.summary()
    assert report.service == "push"
    assert report.counts["reply ack"] >= 1
    assert report.counts["reply push_commands_reply"] == 1


def test_spec_given_as_a_file_works_too(pull: DateDataPullSocket) -> None:
    report = conform(str(SPEC_FILE), f"127.0.0.1:{pull.port}", service="pull", examples=20, seed=1)
    assert report.ok, report.summary()
    assert report.family == "text_commands"


def test_our_live_socket_sends_conforming_updates() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result: list[object] = []
    runner = threading.Thread(
        target=lambda: result.append(
            conform("pyexplabsys", f"127.0.0.1:{port}", service="live", examples=3, timeout_s=5)
        )
    )
    runner.start()
    live = LiveSocket(
        "moon",
        ["moon_laser_power"],
        live_server=("127.0.0.1", port),
        no_internal_data_pull_socket=True,
    )
    try:
        deadline = time.monotonic() + 20
        while runner.is_alive() and time.monotonic() < deadline:
            live.set_point_now("moon_laser_power", 1.5)
            runner.join(0.05)
    finally:
        runner.join()
    report = result[0]
    assert report.ok, report.summary()  # type: ignore[attr-defined]
    assert report.counts == {"datagram live_update": 3}  # type: ignore[attr-defined]


def test_wrong_reply_prefix_is_found_and_shrunk(wrong_ack_prefix: BrokenServer) -> None:
    target = f"127.0.0.1:{wrong_ack_prefix.port}"
    report = conform("pyexplabsys", target, service="push", examples=50, seed=3)
    assert not report.ok
    [dev] = report.deviations
    assert dev.check == "reply"
    assert dev.shrunk
    assert dev.case == "json_wn#{}"  # the smallest request that is acknowledged
    assert dev.field_path == "push.push_json_wn"
    assert "ACK:{}" in dev.message
    assert dev.reproduce == (
        f"daqwire conform pyexplabsys {target} --service push --replay 'json_wn#{{}}'"
    )
    assert bytes.fromhex(dev.evidence_hex or "") == b"ACK:{}"
    # the reproducer shows the same deviation again
    replayed = conform("pyexplabsys", target, service="push", replay=b"json_wn#{}")
    assert [d.message for d in replayed.deviations] == [dev.message]
    assert replayed.checked == 1
    with pytest.raises(NonConformanceError, match="ACK:"):
        replayed.raise_for_deviations()


def test_silence_on_non_utf8_is_found(silent_on_bad_bytes: BrokenServer) -> None:
    target = f"127.0.0.1:{silent_on_bad_bytes.port}"
    report = conform("pyexplabsys", target, service="pull", examples=30, seed=5, timeout_s=0.3)
    [dev] = report.deviations
    assert dev.check == "hostile"
    assert dev.message == "no reply within 0.3 s (one request gets one reply)"
    assert dev.case == "\\x80"  # the smallest datagram that is not UTF-8
    assert dev.reproduce.endswith("--replay '\\x80' --timeout-s 0.3")


def test_cli_exit_codes_report_files_and_printed_reproducer(
    wrong_ack_prefix: BrokenServer, push: DataPushSocket, tmp_path: Path
) -> None:
    cmd = [sys.executable, "-m", "daqwire.cli", "conform", "pyexplabsys"]
    bad = subprocess.run(
        [
            *cmd,
            f"127.0.0.1:{wrong_ack_prefix.port}",
            "--seed",
            "3",
            "--examples",
            "50",
            "--report",
            str(tmp_path / "bad.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    line = next(x for x in bad.stdout.splitlines() if x.strip().startswith("reproduce:"))
    argv = shlex.split(line.split("reproduce:", 1)[1])
    assert argv[:2] == ["daqwire", "conform"] and argv[-2:] == ["--replay", "json_wn#{}"]
    again = subprocess.run(
        [sys.executable, "-m", "daqwire.cli", *argv[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 1 and "ACK:{}" in again.stdout
    data = json.loads((tmp_path / "bad.json").read_text(encoding="utf-8"))
    assert data["ok"] is False and data["service"] == "push"
    assert data["deviations"][0]["case"] == "json_wn#{}"

    good = subprocess.run(
        [
            *cmd,
            f"127.0.0.1:{push.port}",
            "--examples",
            "20",
            "--report",
            str(tmp_path / "good.html"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "PASS" in good.stdout
    page = (tmp_path / "good.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "PASS" in page

    usage = subprocess.run(
        [*cmd, "not-a-target"], capture_output=True, text=True, timeout=60, check=False
    )
    assert usage.returncode == 2 and "HOST:PORT" in usage.stderr
    unknown = subprocess.run(
        [sys.executable, "-m", "daqwire.cli", "conform", "nosuchspec", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert unknown.returncode == 2 and "pyexplabsys" in unknown.stderr


def test_unknown_service_and_unreachable_peer() -> None:
    with pytest.raises(UsageError, match="no service 'pish'"):
        conform("pyexplabsys", "127.0.0.1:9", service="pish")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TimeoutError, match="no reply"):
        conform("pyexplabsys", f"127.0.0.1:{port}", timeout_s=0.2)


@pytest.mark.parametrize(
    "data",
    [b"", b"json_wn#{}", b"\x80\xff\\x", b"codename#raw", "µ#json".encode()],
)
def test_replay_case_escaping_round_trips(data: bytes) -> None:
    assert unescape_case(escape_case(data)) == data


def test_pytest_fixture(pytester: pytest.Pytester, pull: DateDataPullSocket) -> None:
    pytester.makepyfile(
        f"""
        def test_peer(daqwire_conform):
            report = daqwire_conform("pyexplabsys", "127.0.0.1:{pull.port}", examples=10)
            assert report.service == "pull"

        def test_bad_peer(daqwire_conform):
            daqwire_conform("pyexplabsys", "127.0.0.1:{pull.port}", service="push",
                            examples=5, hostile=False)
        """
    )
    result = pytester.runpytest("--daqwire-seed", "1")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FAIL: * deviation(s)*", "*reproduce: daqwire conform*"])
