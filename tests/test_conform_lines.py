"""``daqwire conform`` against TCP/JSON peers: the TMA telemetry stream and the M2 command flow.

Our mocks pass; a stream with an unknown topic, a bad key and a line that is no JSON, and
M2 mocks that answer with the wrong sequence_id or with fail-then-success are caught, shrunk
and reproduced with ``--replay``.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from daqwire.conform import UsageError, conform, lines
from daqwire.conform.report import unescape_case
from daqwire.generated import m2
from daqwire.generated import mtmount_telemetry as tma_codec
from daqwire.lsst.m2.mock import MOCK_COMMANDS, MockM2
from daqwire.lsst.mtmount.mock_tma import MockTma, make_message
from daqwire.lsst.server import OneClientServer
from tests.aartfaac_servers import HOLD, LoopbackServer

T = TypeVar("T")


class LoopThread:
    """An asyncio event loop in a thread of its own, for the asyncio mocks; joined on stop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="conform-mock-loop", daemon=True
        )
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.loop.close()


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


@pytest.fixture
def tma(loop: LoopThread) -> Iterator[MockTma]:
    async def start() -> MockTma:
        mock = MockTma(rate_hz=20.0)
        await mock.start()
        return mock

    mock = loop.run(start())
    yield mock
    loop.run(mock.close())


def start_m2(loop: LoopThread, cls: type[MockM2] = MockM2) -> MockM2:
    async def start() -> MockM2:
        mock = cls(telemetry_interval_s=1.0)
        await mock.start()
        return mock

    return loop.run(start())


class WrongSuccessId(MockM2):
    """Answers power commands with a success that carries another command's sequence_id."""

    async def _answer(
        self, server: OneClientServer, name: str, sequence_id: int, details: dict[str, Any]
    ) -> None:
        if name != "power":
            await super()._answer(server, name, sequence_id, details)
            return
        self.commands.append((name, sequence_id))
        events = MOCK_COMMANDS[name](self.state, details)
        await server.writelines(
            [m2.encode_ack(sequence_id), *events, m2.encode_success(sequence_id + 1000)]
        )


class FailThenSuccess(MockM2):
    """Answers power commands with ack, fail and then success too."""

    async def _answer(
        self, server: OneClientServer, name: str, sequence_id: int, details: dict[str, Any]
    ) -> None:
        if name != "power":
            await super()._answer(server, name, sequence_id, details)
            return
        self.commands.append((name, sequence_id))
        await server.writelines(
            [
                m2.encode_ack(sequence_id),
                m2.encode_fail(sequence_id),
                m2.encode_success(sequence_id),
            ]
        )


def replay_of(command: str) -> bytes:
    """The bytes of the ``--replay`` argument of a printed reproducer."""
    args = shlex.split(command)
    return unescape_case(args[args.index("--replay") + 1])


# --- the telemetry stream ------------------------------------------------------------------------


def test_our_mock_tma_stream_conforms(tma: MockTma) -> None:
    report = conform("mtmount_telemetry", f"127.0.0.1:{tma.port}", examples=60)
    assert report.ok, report.summary()
    assert report.checked == 60
    assert sum(report.counts.values()) == 60
    assert "bad line" not in report.counts
    assert set(report.counts) <= set(tma_codec.MESSAGES)


def telemetry_line(topic_id: int) -> bytes:
    return tma_codec.encode(make_message(topic_id, 1.7e9, 10.0))


def test_a_bad_stream_is_reported_line_by_line() -> None:
    unknown = b'{"topicID": 99, "timestamp": 1.0}\r\n'
    bad_key = telemetry_line(3).replace(
        b'"actualPositionDrive1": ', b'"actualPositionDrive1": "x", "_": '
    )
    lines = [
        telemetry_line(1),
        telemetry_line(2),
        unknown,
        telemetry_line(5),
        bad_key,
        b"not json\r\n",
        telemetry_line(6),
    ]
    data = b"".join(lines)
    with LoopbackServer([data, HOLD]) as server:
        target = f"127.0.0.1:{server.port}"
        report = conform("mtmount_telemetry", target, examples=7, timeout_s=5.0)
    assert report.checked == 7
    assert report.counts["bad line"] == 3
    found = [(d.field_path, d.message, d.reproduce) for d in report.deviations]
    command = f"daqwire conform mtmount_telemetry {target} --examples {{}} --timeout-s 5"
    assert found == [
        ("topicID", "no message has topicID 99", command.format(3)),
        (
            "azimuth_cable_wrap.actualPositionDrive1",
            "expected a number, got string 'x'",
            command.format(5),
        ),
        (
            "line",
            "data='not json' is not valid json: Expecting value: line 1 column 1 (char 0)",
            command.format(6),
        ),
    ]
    start = len(b"".join(lines[:2]))
    assert report.deviations[0].case == (
        f"line 3 (stream bytes {start}..{start + len(unknown) - 2}): {unknown[:-2].decode()}"
    )
    assert report.deviations[0].evidence_hex == unknown[:-2].hex()
    assert report.deviations[2].offset == 0


def test_a_line_cut_by_the_peer_is_a_deviation() -> None:
    with LoopbackServer([telemetry_line(1) + b'{"topicID": 2']) as server:
        report = conform("mtmount_telemetry", f"127.0.0.1:{server.port}", examples=5)
    assert report.checked == 2
    [dev] = report.deviations
    assert dev.message == "the stream ended inside a line (13 bytes without a terminator)"
    assert dev.evidence_hex == b'{"topicID": 2'.hex()
    assert dev.reproduce.endswith("--examples 2")


# --- the M2 command flow -------------------------------------------------------------------------


def test_our_mock_m2_command_flow_conforms(loop: LoopThread) -> None:
    mock = start_m2(loop)
    try:
        report = conform("m2", f"127.0.0.1:{mock.command_port}", examples=40, seed=7)
    finally:
        loop.run(mock.close())
    assert report.ok, report.summary()
    assert report.checked == 40
    assert report.counts["command"] == 40
    assert "bad line" not in report.counts
    # the welcome burst: 15 events, 84 ILC modes, 3 status events and the probe's noack
    assert report.counts["welcome line"] == 103
    sent = [name for name, _ in mock.commands]
    assert sent.count("daqwireConformProbe") == 41


def test_replay_of_a_good_command_passes(loop: LoopThread) -> None:
    mock = start_m2(loop)
    try:
        line = m2.encode_power(m2.PowerType.Communication, True, 77)
        report = conform("m2", f"127.0.0.1:{mock.command_port}", replay=line.rstrip(b"\r\n"))
    finally:
        loop.run(mock.close())
    assert report.ok, report.summary()
    assert report.checked == 1
    assert ("power", 77) in mock.commands


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        (WrongSuccessId, r"success for sequence_id (\d+), which was never sent"),
        (
            FailThenSuccess,
            r"success for sequence_id (\d+) after its final status \(one success or fail only\)",
        ),
    ],
)
def test_a_broken_m2_flow_is_caught_shrunk_and_replayed(
    loop: LoopThread, variant: type[MockM2], message: str
) -> None:
    mock = start_m2(loop, variant)
    target = f"127.0.0.1:{mock.command_port}"
    try:
        report = conform("m2", target, examples=40, seed=3, timeout_s=5.0)
        assert len(report.deviations) == 1, report.summary()
        [dev] = report.deviations
        assert dev.check == "flow"
        assert re.fullmatch(message, dev.message), dev.message
        assert dev.field_path == "success.sequence_id"
        assert dev.shrunk
        replay = replay_of(dev.reproduce)
        # the minimal command: the first power type, switched off
        seq = re.fullmatch(
            rb'\{"powerType": 1, "status": false, "id": "cmd_power", "sequence_id": (\d+)\}',
            replay,
        )
        assert seq is not None, replay
        assert dev.reproduce == (
            f"daqwire conform m2 {target} --replay '{replay.decode()}' --timeout-s 5"
        )
        again = conform("m2", target, replay=replay, timeout_s=5.0)
    finally:
        loop.run(mock.close())
    assert again.checked == 1
    [dev2] = again.deviations
    assert re.fullmatch(message, dev2.message)
    assert dev2.message == dev.message
    assert dev2.reproduce == dev.reproduce


def test_a_peer_that_drops_every_connection_is_one_deviation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lines, "_RECONNECT_WAIT_S", 0.2)
    with LoopbackServer([]) as server:
        target = f"127.0.0.1:{server.port}"
        report = conform("m2", target, examples=5, timeout_s=0.5)
        assert server.accepted >= 2
    assert report.checked == 0
    [dev] = report.deviations
    assert dev.check == "flow"
    assert dev.message == "the peer closed every connection at once, without a line, for 0.5 s"
    assert dev.case == "connect"
    assert dev.reproduce == f"daqwire conform m2 {target} --examples 1 --timeout-s 0.5"


def test_m2_usage_errors(loop: LoopThread) -> None:
    with pytest.raises(UsageError, match="one command line"):
        conform("m2", "127.0.0.1:50000", replay=b'{"id": "ack", "sequence_id": 3}')
    with pytest.raises(UsageError, match="is not a m2 message"):
        conform("m2", "127.0.0.1:50000", replay=b"not json")
    with pytest.raises(UsageError, match="no service 'commands'"):
        conform("mtmount_telemetry", "127.0.0.1:50035", service="commands")
    with pytest.raises(UsageError, match="framing-only"):
        conform("lsst_tcpip", "127.0.0.1:50035")


def test_the_m2_telemetry_port_is_checked_as_a_stream(loop: LoopThread) -> None:
    async def start() -> MockM2:
        mock = MockM2(telemetry_interval_s=0.01)
        await mock.start()
        return mock

    mock = loop.run(start())
    try:
        target = f"127.0.0.1:{mock.telemetry_port}"
        report = conform("m2", target, service="stream", examples=30)
    finally:
        loop.run(mock.close())
    assert report.ok, report.summary()
    assert report.checked == 30
    assert report.service == "stream"
