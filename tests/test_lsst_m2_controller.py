"""The M2 ``Controller`` against ``MockM2`` and scripted raw servers over loopback TCP.

Covers the command outcomes (success, fail, noack, timeout), statuses for another
sequence_id (logged and ignored, never failing the command), reconnects that keep the
sequence ids increasing, the welcome burst after each reconnect and the telemetry feed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from daqwire.generated.m2 import STATUS_IDS, CommandStatus
from daqwire.lsst import ReconnectPolicy
from daqwire.lsst.m2 import (
    CommandFailedError,
    CommandTimeoutError,
    Controller,
    MockM2,
    index_generator,
)
from tests.lsst_peers import (
    WAIT_S,
    assert_no_stray_tasks,
    frame_bytes,
    free_port,
    lsst_vector,
    script_server,
    wait_for_value,
)

HOST = "127.0.0.1"
FAST = ReconnectPolicy(initial_delay_s=0.02, max_delay_s=0.1)


class Recorder:
    """The three controller callbacks, recording what they got."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.telemetry: list[dict[str, Any]] = []
        self.lost = 0

    async def event(self, message: dict[str, Any]) -> None:
        self.events.append(message)

    async def tel(self, message: dict[str, Any]) -> None:
        self.telemetry.append(message)

    async def lost_connection(self) -> None:
        self.lost += 1

    def ids(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.events if m.get("id") == name]


def make_controller(recorder: Recorder, **kwargs: Any) -> Controller:
    controller = Controller(reconnect=FAST, **kwargs)
    controller.set_callback_process_event(recorder.event)
    controller.set_callback_process_telemetry(recorder.tel)
    controller.set_callback_process_lost_connection(recorder.lost_connection)
    return controller


@asynccontextmanager
async def running(mock: MockM2, recorder: Recorder, **kwargs: Any) -> AsyncIterator[Controller]:
    """A controller connected to ``mock``; closed on exit."""
    controller = make_controller(recorder)
    controller.start(HOST, mock.command_port, mock.telemetry_port, **kwargs)
    try:
        await controller.wait_connected(WAIT_S)
        yield controller
    finally:
        await controller.close()


def test_before_start_and_after_close_there_is_no_connection() -> None:
    texts = lsst_vector("m2_command_ack")["controller_flow"]

    async def main() -> None:
        recorder = Recorder()
        controller = make_controller(recorder)
        with pytest.raises(OSError) as before:
            await controller.write_command_to_server("resetForceOffsets")
        assert f"OSError: {before.value}" == texts["before_start"]
        async with MockM2() as mock:
            controller.start(HOST, mock.command_port, mock.telemetry_port)
            with pytest.raises(RuntimeError):
                controller.start(HOST, mock.command_port, mock.telemetry_port)
            await controller.wait_connected(WAIT_S)
            await controller.close()
            await controller.close()
            with pytest.raises(OSError) as after:
                await controller.write_command_to_server("resetForceOffsets")
            assert f"OSError: {after.value}" == texts["after_close"]
            assert recorder.lost == 0
        await assert_no_stray_tasks()

    asyncio.run(main())


def test_start_needs_the_callbacks() -> None:
    async def main() -> None:
        controller = Controller()
        with pytest.raises(RuntimeError):
            controller.start(HOST, 1, 2)
        await controller.close()

    asyncio.run(main())


def test_command_outcomes_against_the_mock() -> None:
    recorder = Recorder()

    async def main() -> None:
        async with MockM2() as mock, running(mock, recorder) as controller:
            await controller.write_command_to_server("resetForceOffsets")
            assert controller.last_command_status == CommandStatus.Success
            with pytest.raises(RuntimeError) as noack:
                await controller.write_command_to_server("bogusCommand")
            assert str(noack.value) == "bogusCommand command failed."
            assert isinstance(noack.value, CommandFailedError)
            assert noack.value.status == CommandStatus.NoAck
            with pytest.raises(RuntimeError) as fail:
                await controller.write_command_to_server(
                    "power", message_details={"powerType": 99, "status": True}
                )
            assert str(fail.value) == "power command failed."
            assert isinstance(fail.value, CommandFailedError)
            assert fail.value.status == CommandStatus.Fail
            assert not isinstance(fail.value, TimeoutError)
            await controller.write_command_to_server(
                "power", message_details={"powerType": 2, "status": True}
            )
            assert (
                controller.power_system_status
                == (
                    lsst_vector("m2_command_ack")["controller_flow"]["power_communication_on"][
                        "power_system_status_after"
                    ]
                )
            )
            assert mock.commands == [
                ("resetForceOffsets", 1),
                ("bogusCommand", 2),
                ("power", 3),
                ("power", 4),
            ]
            await wait_for_value(lambda: len(recorder.telemetry) >= 6)
            assert len(controller.commands) == 0
        await assert_no_stray_tasks()

    asyncio.run(main())
    head = lsst_vector("m2_command_ack")["controller_flow"]["controller_saw"]
    ids = [m["id"] for m in recorder.events]
    assert ids[: len(head["event_ids_head"])] == head["event_ids_head"]
    assert not set(ids) & set(STATUS_IDS)  # statuses are consumed, never forwarded
    tel_ids = [m["id"] for m in recorder.telemetry]
    assert tel_ids[:6] == head["telemetry_ids_head"]


def test_concurrent_commands_are_matched_by_sequence_id() -> None:
    async def main() -> None:
        async with MockM2() as mock, running(mock, Recorder()) as controller:
            results = await asyncio.gather(
                controller.write_command_to_server("resetForceOffsets"),
                controller.write_command_to_server("bogusCommand"),
                controller.write_command_to_server("clearErrors"),
                return_exceptions=True,
            )
            assert results[0] is None and results[2] is None
            assert isinstance(results[1], CommandFailedError)
            assert results[1].sequence_id == 2
            assert sorted(mock.commands, key=lambda c: c[1]) == [
                ("resetForceOffsets", 1),
                ("bogusCommand", 2),
                ("clearErrors", 3),
            ]

    asyncio.run(main())


def test_bookkeeping_follows_the_events() -> None:
    async def main() -> None:
        recorder = Recorder()
        async with MockM2() as mock, running(mock, recorder) as controller:
            await wait_for_value(lambda: len(recorder.ids("m2AssemblyInPosition")), 1)
            assert controller.ilc_bypassed == [5]
            assert controller.ilc_modes == [8] * 84
            for power_type in (2, 1):
                await controller.write_command_to_server(
                    "power", {"powerType": power_type, "status": True}
                )
            await controller.write_command_to_server("switchForceBalanceSystem", {"status": True})
            assert controller.power_system_status == {
                "motor_power_is_on": True,
                "motor_power_state": 5,
                "communication_power_is_on": True,
                "communication_power_state": 5,
            }
            assert controller.closed_loop_control_mode == 4
        await assert_no_stray_tasks()

    asyncio.run(main())


def test_unanswered_command_times_out_with_the_reference_text() -> None:
    async def main() -> None:
        recorder = Recorder()
        async with (
            MockM2(unanswered_commands={"clearErrors"}) as mock,
            running(mock, recorder) as controller,
        ):
            with pytest.raises(RuntimeError) as timeout:
                await controller.write_command_to_server("clearErrors", timeout=0.3)
            assert str(timeout.value) == "clearErrors command failed."
            assert isinstance(timeout.value, TimeoutError)
            assert isinstance(timeout.value, CommandTimeoutError)
            assert timeout.value.status == CommandStatus.Ack
            await controller.write_command_to_server("resetActuatorSteps")
            assert mock.commands == [("clearErrors", 1), ("resetActuatorSteps", 2)]

    asyncio.run(main())


def test_status_for_another_sequence_id_does_not_fail_the_command(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = [
        "await_line",
        b'{"id": "ack", "sequence_id": 1}\r\n',
        b'{"id": "success", "sequence_id": 101}\r\n',
        b'{"id": "interlock", "state": true}\r\n',
        b'{"id": "success", "sequence_id": 1}\r\n',
    ]

    async def main() -> Recorder:
        recorder = Recorder()
        async with script_server(script) as command, script_server([]) as telemetry:
            controller = make_controller(recorder)
            controller.start(HOST, command.port, telemetry.port)
            await controller.wait_connected(WAIT_S)
            await controller.write_command_to_server("resetForceOffsets")
            assert controller.commands.unmatched == 1
            await controller.close()
            assert bytes(command.received) == (
                b'{"id": "cmd_resetForceOffsets", "sequence_id": 1}\r\n'
            )
        return recorder

    with caplog.at_level(logging.WARNING):
        recorder = asyncio.run(main())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("sequence_id 101" in r.getMessage() for r in warnings)
    assert recorder.events == [{"id": "interlock", "state": True}]


def test_recorded_wrong_sequence_id_case_is_a_timeout_not_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Reference: success for 101 failed command 1 at once; here it is ignored."""
    frames = lsst_vector("m2_command_ack")["controller_wrong_sequence_id"]["frames"]
    script: list[Any] = ["await_line"] + [frame_bytes(f) for f in frames if f["dir"] == "s2c"]

    async def main() -> None:
        async with script_server(script) as command, script_server([]) as telemetry:
            controller = make_controller(Recorder())
            controller.start(HOST, command.port, telemetry.port)
            await controller.wait_connected(WAIT_S)
            with pytest.raises(CommandTimeoutError) as timeout:
                await controller.write_command_to_server("resetForceOffsets", timeout=0.3)
            assert str(timeout.value) == "resetForceOffsets command failed."
            await controller.close()
            c2s = b"".join(frame_bytes(f) for f in frames if f["dir"] == "c2s")
            assert bytes(command.received) == c2s

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
    assert any("sequence_id 101" in r.getMessage() for r in caplog.records)


def test_reconnect_keeps_sequence_ids_and_resends_the_welcome() -> None:
    async def main() -> None:
        recorder = Recorder()
        async with MockM2() as mock, running(mock, recorder) as controller:
            await controller.write_command_to_server("resetForceOffsets")
            await controller.write_command_to_server("clearErrors")
            await wait_for_value(lambda: len(recorder.ids("tcpIpConnected")), 1)
            await mock.disconnect_clients()
            await wait_for_value(lambda: recorder.lost, 1)
            await controller.wait_connected(WAIT_S)
            await controller.write_command_to_server("resetForceOffsets")
            assert mock.commands == [
                ("resetForceOffsets", 1),
                ("clearErrors", 2),
                ("resetForceOffsets", 3),
            ]
            assert controller.reconnect_count == 1
            assert mock.command_connections == 2
            await wait_for_value(lambda: len(recorder.ids("tcpIpConnected")), 2)
            assert recorder.lost == 1
        await assert_no_stray_tasks()

    asyncio.run(main())


def test_restarted_controller_keeps_its_sequence_generator() -> None:
    async def main() -> None:
        async with MockM2() as mock:
            controller = make_controller(Recorder())
            controller.start(HOST, mock.command_port, mock.telemetry_port, index_generator(10))
            await controller.wait_connected(WAIT_S)
            await controller.write_command_to_server("clearErrors")
            await controller.close()
            await wait_for_value(lambda: mock.command_connected, False)
            controller.start(HOST, mock.command_port, mock.telemetry_port)
            await controller.wait_connected(WAIT_S)
            await controller.write_command_to_server("clearErrors")
            await controller.close()
            assert mock.commands == [("clearErrors", 10), ("clearErrors", 11)]

    asyncio.run(main())


def test_connects_once_the_servers_appear() -> None:
    async def main() -> None:
        recorder = Recorder()
        command_port, telemetry_port = free_port(), free_port()
        controller = make_controller(recorder)
        controller.start(HOST, command_port, telemetry_port, timeout=1.0)
        await asyncio.sleep(0.1)  # a few refused attempts
        assert not controller.are_clients_connected()
        async with MockM2(command_port=command_port, telemetry_port=telemetry_port):
            await controller.wait_connected(WAIT_S)
            assert controller.are_clients_connected()
            await controller.close()
        assert recorder.lost == 0
        await assert_no_stray_tasks()

    asyncio.run(main())


def test_lost_connection_fails_the_pending_command() -> None:
    async def main() -> None:
        recorder = Recorder()
        async with (
            MockM2(unanswered_commands={"clearErrors"}) as mock,
            running(mock, recorder) as controller,
        ):
            pending = asyncio.create_task(controller.write_command_to_server("clearErrors"))
            await wait_for_value(lambda: mock.commands == [("clearErrors", 1)])
            await mock.disconnect_clients()
            with pytest.raises(CommandFailedError) as lost:
                await asyncio.wait_for(pending, WAIT_S)
            assert lost.value.status == CommandStatus.Ack
            assert not isinstance(lost.value, TimeoutError)

    asyncio.run(main())


def test_gives_up_when_the_policy_says_so() -> None:
    async def main() -> None:
        controller = Controller(reconnect=ReconnectPolicy(initial_delay_s=0.01, max_attempts=2))
        recorder = Recorder()
        controller.set_callback_process_event(recorder.event)
        controller.set_callback_process_telemetry(recorder.tel)
        controller.set_callback_process_lost_connection(recorder.lost_connection)
        controller.start(HOST, free_port(), free_port(), timeout=1.0)
        await wait_for_value(lambda: controller.running, False)
        assert not controller.are_clients_connected()
        await controller.close()
        await assert_no_stray_tasks()

    asyncio.run(main())
