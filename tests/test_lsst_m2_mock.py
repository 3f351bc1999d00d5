"""``MockM2`` over loopback TCP, compared with what the ts_m2com mock sent (``lsst/m2_*.json``).

Raw asyncio streams play the client side so that every byte the mock writes is checked:
the welcome burst on every connect, the command answers of the recorded session, bad input
that must not stop it, and the 20 Hz telemetry with the recorded shapes.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from daqwire.generated.m2 import STATUS_IDS
from daqwire.lsst.m2 import MockM2, run_mock_m2
from tests.lsst_peers import WAIT_S, assert_no_stray_tasks, frame_bytes, lsst_vector

HOST = "127.0.0.1"
#: frames of the welcome burst: 13 events, 2 power states, 84 ILC modes, 3 status events
WELCOME_FRAMES = 102
FINAL_STATUSES = (b'"success"', b'"fail"', b'"noack"')


@asynccontextmanager
async def connection(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A raw loopback connection, closed on exit."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), WAIT_S)
    try:
        yield reader, writer
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), WAIT_S)
        except ConnectionError:
            pass


async def read_lines(reader: asyncio.StreamReader, count: int) -> list[bytes]:
    """``count`` CRLF-terminated lines (terminator kept)."""
    return [await asyncio.wait_for(reader.readuntil(b"\r\n"), WAIT_S) for _ in range(count)]


async def read_until_final(reader: asyncio.StreamReader) -> list[bytes]:
    """Lines up to and including the next success, fail or noack."""
    lines = []
    while True:
        line = await asyncio.wait_for(reader.readuntil(b"\r\n"), WAIT_S)
        lines.append(line)
        if line.startswith(b'{"id": ') and line[7:].split(b",")[0] in FINAL_STATUSES:
            return lines


def test_welcome_burst_matches_the_recording_on_every_connect() -> None:
    recorded = [frame_bytes(f) for f in lsst_vector("m2_telemetry_events")["welcome"]]

    async def main() -> None:
        async with MockM2() as mock:
            for _ in range(3):
                await _wait_for(lambda: not mock.command_connected)
                async with connection(mock.command_port) as (reader, _writer):
                    assert await read_lines(reader, WELCOME_FRAMES) == recorded[:WELCOME_FRAMES]
            assert mock.command_connections == 3
        await assert_no_stray_tasks()

    asyncio.run(main())


async def _wait_for(probe: Any) -> None:
    async with asyncio.timeout(WAIT_S):
        while not probe():
            await asyncio.sleep(0.005)


def test_recorded_command_session_gets_the_recorded_answers() -> None:
    steps = lsst_vector("m2_command_ack")["tcpclient_steps"]

    async def main() -> list[list[bytes]]:
        answers = []
        async with MockM2() as mock, connection(mock.command_port) as (reader, writer):
            await read_lines(reader, WELCOME_FRAMES)
            for step in steps:
                writer.write(b"".join(frame_bytes(f) for f in step["c2s"]))
                answers.append(await read_until_final(reader))
            assert mock.commands == [
                ("resetForceOffsets", 1),
                ("unknownCommand", 2),
                ("power", 3),
                ("power", 4),
                ("power", 5),
            ]
            assert mock.state.communication_power_on and mock.state.motor_power_on
        return answers

    answers = asyncio.run(main())
    for step, got in zip(steps, answers, strict=True):
        recorded = [frame_bytes(f) for f in step["s2c"]]
        # the reference mock adds periodic status events after the final status; ours does not
        assert got == recorded[: len(got)], step["call"]
        assert len(got) >= len(recorded) - 1


def test_bad_input_never_stops_the_mock() -> None:
    bad = [
        b"not json\r\n",
        b"\xff\xfe\r\n",
        b"[1, 2, 3]\r\n",
        b'{"no_id": 1}\r\n',
        b'{"id": "cmd_power", "status": true}\r\n',  # no sequence_id: nothing to answer
        b"x" * 70000 + b"\r\n",
    ]

    async def main() -> None:
        async with MockM2() as mock, connection(mock.command_port) as (reader, writer):
            await read_lines(reader, WELCOME_FRAMES)
            writer.write(b"".join(bad))
            # a missing or invalid parameter fails the command (the reference mock crashed)
            writer.write(b'{"status": true, "id": "cmd_power", "sequence_id": 7}\r\n')
            assert await read_until_final(reader) == [
                b'{"id": "ack", "sequence_id": 7}\r\n',
                b'{"id": "fail", "sequence_id": 7}\r\n',
            ]
            writer.write(b'{"ring": [1.0], "id": "cmd_setTemperatureOffset", "sequence_id": 8}\r\n')
            assert (await read_until_final(reader))[-1] == b'{"id": "fail", "sequence_id": 8}\r\n'
            writer.write(
                b'{"status": "yes", "id": "cmd_switchForceBalanceSystem", "sequence_id": 9}\r\n'
            )
            assert (await read_until_final(reader))[-1] == b'{"id": "fail", "sequence_id": 9}\r\n'
            writer.write(b'{"id": "cmd_resetForceOffsets", "sequence_id": 10}\r\n')
            assert await read_until_final(reader) == [
                b'{"id": "ack", "sequence_id": 10}\r\n',
                b'{"id": "m2AssemblyInPosition", "inPosition": false}\r\n',
                b'{"id": "success", "sequence_id": 10}\r\n',
            ]
        await assert_no_stray_tasks()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("name", "details", "events"),
    [
        ("clearErrors", {}, ["summaryFaultsStatus", "digitalInput", "digitalOutput", "interlock"]),
        ("enableOpenLoopMaxLimit", {"status": True}, ["openLoopMaxLimit"]),
        ("setTemperatureOffset", {"ring": [21.5] * 12}, ["temperatureOffset"]),
        ("switchCommandSource", {"isRemote": False}, ["commandableByDDS"]),
        ("selectInclinationSource", {"source": 2}, ["inclinationTelemetrySource"]),
        ("resetActuatorSteps", {}, []),
    ],
)
def test_known_commands_succeed_with_their_events(
    name: str, details: dict[str, Any], events: list[str]
) -> None:
    async def main() -> list[Any]:
        async with MockM2() as mock, connection(mock.command_port) as (reader, writer):
            await read_lines(reader, WELCOME_FRAMES)
            line = json.dumps({**details, "id": f"cmd_{name}", "sequence_id": 3}) + "\r\n"
            writer.write(line.encode())
            return [json.loads(x) for x in await read_until_final(reader)]

    answer = asyncio.run(main())
    assert answer[0] == {"id": "ack", "sequence_id": 3}
    assert answer[-1] == {"id": "success", "sequence_id": 3}
    assert [m["id"] for m in answer[1:-1]] == events


def test_force_balance_and_mirror_commands_follow_the_power_state() -> None:
    async def command(reader: Any, writer: Any, seq: int, name: str, **details: Any) -> str:
        writer.write(
            (json.dumps({**details, "id": f"cmd_{name}", "sequence_id": seq}) + "\r\n").encode()
        )
        final = json.loads((await read_until_final(reader))[-1])
        assert final["sequence_id"] == seq
        return str(final["id"])

    async def main() -> None:
        async with MockM2() as mock, connection(mock.command_port) as (reader, writer):
            await read_lines(reader, WELCOME_FRAMES)
            assert (
                await command(reader, writer, 1, "switchForceBalanceSystem", status=True) == "fail"
            )
            assert await command(reader, writer, 2, "power", powerType=1, status=True) == "fail"
            assert await command(reader, writer, 3, "power", powerType=2, status=True) == "success"
            assert await command(reader, writer, 4, "power", powerType=1, status=True) == "success"
            mirror = dict(x=0.0, y=0.0, z=1.0, xRot=0.0, yRot=0.0, zRot=0.0)
            assert await command(reader, writer, 5, "positionMirror", **mirror) == "fail"
            assert (
                await command(
                    reader,
                    writer,
                    6,
                    "moveActuators",
                    actuatorCommand=1,
                    actuators=[0, 73],
                    displacement=5,
                )
                == "success"
            )
            assert mock.state.axial_steps[0] == 5 and mock.state.tangent_steps[1] == 5
            assert (
                await command(reader, writer, 7, "switchForceBalanceSystem", status=True)
                == "success"
            )
            assert await command(reader, writer, 8, "positionMirror", **mirror) == "success"
            assert (
                await command(reader, writer, 9, "applyForces", axial=[1.0] * 72, tangent=[0.0] * 6)
                == "success"
            )
            assert (
                await command(reader, writer, 10, "applyForces", axial=[1.0], tangent=[0.0] * 6)
                == "fail"
            )
            assert (
                await command(reader, writer, 11, "power", powerType=2, status=False) == "success"
            )
            assert not mock.state.motor_power_on and not mock.state.force_balance_on
            assert mock.state.position["z"] == 1.0

    asyncio.run(main())


def test_unanswered_commands_get_only_an_ack() -> None:
    async def main() -> None:
        async with (
            MockM2(unanswered_commands={"clearErrors"}) as mock,
            connection(mock.command_port) as (reader, writer),
        ):
            await read_lines(reader, WELCOME_FRAMES)
            writer.write(b'{"id": "cmd_clearErrors", "sequence_id": 1}\r\n')
            writer.write(b'{"id": "cmd_resetActuatorSteps", "sequence_id": 2}\r\n')
            assert await read_until_final(reader) == [
                b'{"id": "ack", "sequence_id": 1}\r\n',
                b'{"id": "ack", "sequence_id": 2}\r\n',
                b'{"id": "success", "sequence_id": 2}\r\n',
            ]

    asyncio.run(main())


def test_client_events_and_telemetry_update_the_model() -> None:
    vector = lsst_vector("m2_command_ack")["client_originated_event_and_telemetry"]

    async def main() -> MockM2:
        mock = MockM2()
        await mock.start()
        async with (
            connection(mock.command_port) as (_reader, writer),
            connection(mock.telemetry_port) as (_tel_reader, tel_writer),
        ):
            writer.write(frame_bytes(vector["event_c2s_on_command_port"][0]))
            tel_writer.write(frame_bytes(vector["telemetry_c2s_on_telemetry_port"][0]))
            await _wait_for(
                lambda: (
                    mock.state.mtmount_in_position
                    and mock.state.inclinometer_angle_external == 45.0
                )
            )
        await mock.close()
        return mock

    mock = asyncio.run(main())
    after = vector["mock_model_after"]
    assert mock.state.mtmount_in_position is after["mtmount_in_position"]
    assert mock.state.inclinometer_angle_external == after["inclinometer_angle_external"]


def _shape(message: dict[str, Any]) -> dict[str, Any]:
    """Keys in order, with the length of each array (the values are simulated)."""
    return {k: len(v) if isinstance(v, list) else type(v) is str for k, v in message.items()}


def test_telemetry_streams_the_recorded_shapes() -> None:
    recorded = {
        json.loads(f["text"])["id"]: json.loads(f["text"])
        for f in lsst_vector("m2_telemetry_events")["telemetry_first_of_each_id"]
    }
    always = ["powerStatusRaw", "powerStatus", "displacementSensors"]

    async def main() -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        async with MockM2() as mock, connection(mock.telemetry_port) as (reader, _w):
            before = [json.loads(x) for x in await read_lines(reader, 9)]
            async with connection(mock.command_port) as (cmd_reader, cmd_writer):
                await read_lines(cmd_reader, WELCOME_FRAMES)
                cmd_writer.write(
                    b'{"powerType": 2, "status": true, "id": "cmd_power", "sequence_id": 1}\r\n'
                    b'{"powerType": 1, "status": true, "id": "cmd_power", "sequence_id": 2}\r\n'
                )
                await read_until_final(cmd_reader)
                await read_until_final(cmd_reader)
            seen: dict[str, dict[str, Any]] = {}
            while len(seen) < len(recorded):
                message = json.loads(await asyncio.wait_for(reader.readuntil(b"\r\n"), WAIT_S))
                seen.setdefault(message["id"], message)
            return before, seen

    before, seen = asyncio.run(main())
    assert [m["id"] for m in before] == always * 3
    assert seen.keys() == recorded.keys()
    for name, message in seen.items():
        assert _shape(message) == _shape(recorded[name]), name
    assert not set(seen) & set(STATUS_IDS)


def test_close_is_idempotent_and_frees_the_ports() -> None:
    async def main() -> tuple[int, int]:
        mock = MockM2()
        await mock.start()
        ports = mock.command_port, mock.telemetry_port
        assert all(ports)
        async with connection(mock.command_port), connection(mock.telemetry_port):
            await mock.close()
            await mock.close()
        await assert_no_stray_tasks()
        return ports

    for port in asyncio.run(main()):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, port))


def test_run_mock_m2_serves_until_cancelled() -> None:
    async def main() -> None:
        started: list[MockM2] = []
        task = asyncio.create_task(run_mock_m2(HOST, 0, 0, ready=started.append))
        await _wait_for(lambda: bool(started))
        async with connection(started[0].command_port) as (reader, _writer):
            first = await read_lines(reader, 1)
        assert first == [b'{"id": "tcpIpConnected", "isConnected": true}\r\n']
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(OSError):
            await asyncio.open_connection(HOST, started[0].command_port)
        await assert_no_stray_tasks()

    asyncio.run(main())
