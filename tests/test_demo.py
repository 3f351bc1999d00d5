"""`daqwire demo`, the main job: four protocol families live at once, then a clean stop."""

from __future__ import annotations

import argparse
import io
import os
import pty
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import daqwire.constellation.demo as constellation_demo
from daqwire.aartfaac.demo import AartfaacDemo
from daqwire.constellation.datasender import RandomDataSender
from daqwire.demo import (
    DESCRIPTION,
    EPILOG,
    Counts,
    DemoComponent,
    add_arguments,
    run,
    run_demo,
)
from daqwire.pyexplabsys.demo import PyExpLabSysDemo

ENDPOINT = re.compile(r"(tcp|udp)(?:://| )127\.0\.0\.1:(\d+)")


def _count(text: str, row: str, counter: str) -> int:
    """The value of ``counter`` in the summary row (and its wrapped lines) of ``row``."""
    summary = text[text.index("daqwire demo summary") :]
    block = re.search(rf"^{row} .*?(?=^\S|\Z)", summary, re.M | re.S)
    assert block, f"no summary row {row!r} in:\n{summary}"
    found = re.search(rf"\b{counter} (\d+)", block.group(0))
    assert found, f"no counter {counter!r} in row {row!r}:\n{block.group(0)}"
    return int(found.group(1))


def _rebind(text: str) -> list[tuple[str, int]]:
    """Bind every port the demo printed again: it must be free for a new server.

    TCP binds with SO_REUSEADDR, as every server does: a connection that the server side
    closed first rightly lingers in TIME_WAIT, but a socket still listening on the port (a
    server that was not closed) makes the bind fail even so. UDP binds plainly.
    """
    endpoints = [(proto, int(port)) for proto, port in ENDPOINT.findall(text)]
    for proto, port in endpoints:
        kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError as exc:
                raise AssertionError(f"{proto} port {port} is not free: {exc}") from exc
    return endpoints


@pytest.fixture
def no_leftover_threads() -> Iterator[None]:
    """Every thread the demo started has been joined when it returns."""
    before = {t.ident for t in threading.enumerate()}
    yield
    left = [
        t
        for t in threading.enumerate()
        if t.ident not in before and type(t).__name__ != "GarbageCollectorThread"  # pyzmq's
    ]
    assert left == []


def test_plain_run_shows_every_family_and_frees_everything(no_leftover_threads: None) -> None:
    out = io.StringIO()
    assert run_demo(seconds=5, plain=True, out=out) == 0
    text = out.getvalue()
    assert "\x1b[" not in text  # not a terminal: no escapes
    assert re.search(r"^preflight: generated code matches the specs", text, re.M)
    windows = re.search(r"windows (\d+)/(\d+)/(\d+)", text)
    assert windows and all(int(n) > 0 for n in windows.groups())
    assert _count(text, "aartfaac", "complete groups") > 0
    assert _count(text, "pyexplabsys", "requests") > 0
    assert _count(text, "pyexplabsys", "push acks") > 0
    assert _count(text, "pyexplabsys", "error replies") > 0  # asked for on purpose
    assert "(expected)" in text
    assert _count(text, "constellation", "records") > 0
    assert _count(text, "constellation", "runs") >= 1
    assert _count(text, "constellation", "gaps") == 0
    assert _count(text, "lsst", "lines") > 0
    assert "topics 26/26" in text
    assert "bad lines injected 1 (expected)" in text
    assert _count(text, "lsst", "malformed") == 0
    assert "demo ok: 4 components ran without errors" in text
    # 3 emulator ports, pull and push, the CDTP data port, the mock TMA
    assert len(_rebind(text)) == 7


def test_terminal_gets_a_live_table_redrawn_in_place(no_leftover_threads: None) -> None:
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:  # a pty's buffer is small: read while the demo writes
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    with os.fdopen(slave, "w", encoding="utf-8") as tty:
        assert tty.isatty()
        code = run_demo(seconds=3, out=tty, preflight=False, refresh_s=0.25)
    reader.join(timeout=10)
    os.close(master)
    text = b"".join(chunks).decode()
    assert code == 0
    assert "\x1b[?25l" in text and text.rstrip().count("\x1b[?25h") == 1  # cursor hidden, back
    redraws = re.findall(r"\x1b\[(\d+)F", text)  # cursor up to the table's first line
    assert len(redraws) >= 2
    assert "\x1b[K" in text and "\x1b[J" in text
    final = text[text.rindex("daqwire demo summary") :]
    for family in ("aartfaac", "pyexplabsys", "constellation", "lsst"):
        assert re.search(rf"^{family} +stopped ", final.replace("\r\n", "\n"), re.M)
    assert "demo ok" in final


def test_a_component_failing_at_start_fails_the_demo_and_the_rest_stop_cleanly(
    monkeypatch: pytest.MonkeyPatch, no_leftover_threads: None
) -> None:
    senders: list[RandomDataSender] = []

    class Recorded(RandomDataSender):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            senders.append(self)

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("injected: the receiver cannot connect")

    # the sender has bound its data port when the receiver fails: it must be freed
    monkeypatch.setattr(constellation_demo, "RandomDataSender", Recorded)
    monkeypatch.setattr(constellation_demo, "DataReceiver", refuse)
    out = io.StringIO()
    assert run_demo(seconds=3, plain=True, out=out, preflight=False) == 1
    text = out.getvalue()
    assert "constellation FAILED to start: OSError: injected" in text
    assert re.search(r"^constellation +failed ", text, re.M)
    assert "ERROR constellation: failed: OSError: injected" in text
    assert "demo FAILED: 1 of 4 components" in text
    assert _count(text, "aartfaac", "complete groups") > 0
    assert _count(text, "pyexplabsys", "push acks") > 0
    assert _count(text, "lsst", "lines") > 0
    assert len(_rebind(text)) == 6  # the failed component printed no endpoint
    assert len(senders) == 1
    _rebind(f"tcp 127.0.0.1:{senders[0].data_port}")


class _Crashing(DemoComponent):
    """A component whose worker thread raises after a few rounds."""

    name = "crashing"
    description = "raises in its thread"

    def __init__(self) -> None:
        super().__init__()
        self.rounds = 0

    def _start(self) -> None:
        self._spawn(self._work, "worker")

    def _work(self) -> None:
        while not self.stopping.wait(0.05):
            self.rounds += 1
            if self.rounds == 3:
                raise RuntimeError("injected failure during the run")

    def _shutdown(self) -> None:
        pass

    def _counts(self) -> Counts:
        return Counts({"rounds": self.rounds}, self.rounds)


class _Idle(_Crashing):
    """A component that runs without error but makes no progress."""

    name = "idle"

    def _work(self) -> None:
        self.stopping.wait()

    def _counts(self) -> Counts:
        return Counts({"rounds": 0}, 0, no_progress="nothing happened")


def test_a_failure_during_the_run_or_no_progress_is_an_error(no_leftover_threads: None) -> None:
    out = io.StringIO()
    components = [PyExpLabSysDemo(), _Crashing(), _Idle()]
    assert run_demo(seconds=2, plain=True, out=out, preflight=False, components=components) == 1
    text = out.getvalue()
    assert "ERROR crashing: failed: RuntimeError: injected failure during the run" in text
    assert "ERROR idle: no progress: nothing happened" in text
    assert "ERROR pyexplabsys" not in text
    assert "demo FAILED: 2 of 3 components" in text
    assert [c.status().state for c in components] == ["stopped", "failed", "stopped"]
    components[0].stop()  # stop() again is a no-op
    _rebind(text)


def test_expected_faults_are_not_errors(no_leftover_threads: None) -> None:
    out = io.StringIO()
    aartfaac = AartfaacDemo(size=(32, 16))
    assert run_demo(seconds=2, plain=True, out=out, preflight=False, components=[aartfaac]) == 0
    status = aartfaac.status()
    assert status.ok and status.state == "stopped" and status.errors == 0
    assert status.endpoints and all(e.startswith("tcp 127.0.0.1:") for e in status.endpoints)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="daqwire demo",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def test_help_and_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    parser = _parser()
    help_text = parser.format_help()
    for word in ("--seconds S", "--plain", "--no-check", "examples:", "daqwire demo --seconds 5"):
        assert word in help_text
    for family in ("aartfaac", "pyexplabsys", "constellation", "lsst"):
        assert family in help_text
    args = parser.parse_args(["--seconds", "2.5", "--plain", "--no-check"])
    assert (args.seconds, args.plain, args.check) == (2.5, True, False)
    defaults = parser.parse_args([])
    assert (defaults.seconds, defaults.plain, defaults.check) == (15.0, False, True)
    for bad in ("0", "-1", "nan", "soon"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--seconds", bad])
    assert "--seconds" in capsys.readouterr().err
    assert callable(run)


def test_daqwire_demo_as_a_newcomer_runs_it() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "daqwire.cli", "demo", "--seconds", "5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "preflight: generated code matches the specs" in proc.stdout
    assert "demo ok: 4 components ran without errors" in proc.stdout
    assert "\x1b[" not in proc.stdout  # a pipe: the plain summary
    assert proc.stderr == ""  # the injected bad line's warning is counted, not printed


def test_python_m_daqwire_demo_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "daqwire.demo", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "usage: python -m daqwire.demo" in proc.stdout and "--seconds S" in proc.stdout


def test_stale_generated_code_stops_the_demo_before_it_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import daqwire.codegen.render as render

    monkeypatch.setattr(render, "render_all", lambda *args, **kwargs: [])
    monkeypatch.setattr(render, "check", lambda *args, **kwargs: "--- a\n+++ b\n")
    out = io.StringIO()
    assert run_demo(seconds=1, plain=True, out=out) == 1
    text = out.getvalue()
    assert "preflight: generated code is STALE" in text and "daqwire generate" in text
    assert "running" not in text
