"""The M2 ``TcpClient`` over loopback TCP: recorded bytes, exact errors, a monitor loop that lives.

Every recorded client line of ``lsst/m2_command_ack.json`` must come out of ``write_message``
byte for byte; every case of ``lsst/malformed.json`` is played to the monitor loop, which
must skip bad lines (where the reference died) and end cleanly on EOF or a reset.
"""

from __future__ import annotations

import ast
import asyncio
import logging
import math
from typing import Any

import pytest

from daqwire.generated.m2 import MsgType
from daqwire.lsst import ReconnectPolicy
from daqwire.lsst.m2 import TcpClient, index_generator
from tests.lsst_peers import (
    WAIT_S,
    Action,
    assert_no_stray_tasks,
    frame_bytes,
    free_port,
    full_backlog_listener,
    lsst_vector,
    script_from_vector,
    script_server,
    wait_for_value,
)

HOST = "127.0.0.1"


class Inbox:
    """Collects what a TcpClient hands to its callback (and the extra positional args)."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.args: list[tuple[Any, ...]] = []

    async def __call__(self, *args: Any, message: Any) -> None:
        self.args.append(args)
        self.messages.append(message)


def parse_call(call: str) -> tuple[MsgType, str, dict[str, Any] | None, str | None]:
    """(msg_type, name, msg_details, comp_name) of a recorded ``write_message(...)`` call."""
    node = ast.parse(call, mode="eval").body
    assert isinstance(node, ast.Call)
    kind = node.args[0]
    assert isinstance(kind, ast.Attribute)
    name = ast.literal_eval(node.args[1])
    keywords = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
    return MsgType[kind.attr], name, keywords.get("msg_details"), keywords.get("comp_name")


# --- sequence ids ---------------------------------------------------------------------------------


def test_index_generator_counts_from_one_and_wraps() -> None:
    ids = index_generator()
    assert [next(ids) for _ in range(3)] == [1, 2, 3]
    small = index_generator(imin=5, imax=7)
    assert [next(small) for _ in range(7)] == [5, 6, 7, 5, 6, 7, 5]
    top = index_generator(imin=2**31 - 2)
    assert [next(top) for _ in range(3)] == [2**31 - 2, 2**31 - 1, 2**31 - 2]
    with pytest.raises(ValueError):
        index_generator(imin=3, imax=2)


# --- recorded bytes -------------------------------------------------------------------------


def test_write_message_reproduces_recorded_client_bytes() -> None:
    vector = lsst_vector("m2_command_ack")
    steps = vector["tcpclient_steps"]
    extra = vector["client_originated_event_and_telemetry"]

    async def main() -> tuple[bytes, list[int], bytes]:
        async with script_server([]) as command, script_server([]) as telemetry:
            inbox = Inbox()
            client = TcpClient(HOST, command.port, inbox)
            tel_client = TcpClient(HOST, telemetry.port, inbox, name="telemetry")
            await client.connect(timeout=WAIT_S)
            await tel_client.connect(timeout=WAIT_S)
            assert client.last_sequence_id == -1
            seen = []
            for step in steps:
                msg_type, name, details, comp = parse_call(step["call"])
                await client.write_message(msg_type, name, msg_details=details, comp_name=comp)
                seen.append(client.last_sequence_id)
            await client.write_message(
                MsgType.Event, "mountInPosition", {"inPosition": True}, comp_name="MTMount"
            )
            await tel_client.write_message(
                MsgType.Telemetry, "elevation", {"actualPosition": 45.0}, comp_name="MTMount"
            )
            assert client.last_sequence_id == len(steps)  # events take no sequence id
            await client.close()
            await tel_client.close()
            await asyncio.wait_for(command.done.wait(), WAIT_S)
            await asyncio.wait_for(telemetry.done.wait(), WAIT_S)
            return bytes(command.received), seen, bytes(telemetry.received)

    received, seen, received_tel = asyncio.run(main())
    expected = b"".join(frame_bytes(f) for step in steps for f in step["c2s"])
    expected += b"".join(frame_bytes(f) for f in extra["event_c2s_on_command_port"])
    assert received == expected
    assert seen == [step["last_sequence_id"] for step in steps]
    assert received_tel == b"".join(
        frame_bytes(f) for f in extra["telemetry_c2s_on_telemetry_port"]
    )


def test_details_are_not_modified_and_event_without_comp_name() -> None:
    async def main() -> bytes:
        async with script_server([]) as server:
            client = TcpClient(HOST, server.port, Inbox())
            await client.connect(timeout=WAIT_S)
            details = {"powerType": 2, "status": True}
            await client.write_message(MsgType.Command, "power", msg_details=details)
            assert details == {"powerType": 2, "status": True}
            await client.write_message(MsgType.Event, "mountInPosition", {"inPosition": False})
            await client.write_message(MsgType.Telemetry, "elevation", {"actualPosition": 1})
            await client.close()
            await asyncio.wait_for(server.done.wait(), WAIT_S)
            return bytes(server.received)

    assert asyncio.run(main()) == (
        b'{"powerType": 2, "status": true, "id": "cmd_power", "sequence_id": 1}\r\n'
        b'{"inPosition": false, "id": "evt_mountInPosition"}\r\n'
        b'{"actualPosition": 1, "id": "tel_elevation"}\r\n'
    )


def test_injected_sequence_generator_is_used() -> None:
    async def main() -> bytes:
        async with script_server([]) as server:
            ids = index_generator()
            for _ in range(41):
                next(ids)
            client = TcpClient(HOST, server.port, Inbox(), sequence_generator=ids)
            await client.connect(timeout=WAIT_S)
            await client.write_message(MsgType.Command, "clearErrors")
            assert client.last_sequence_id == 42
            await client.close()
            await asyncio.wait_for(server.done.wait(), WAIT_S)
            return bytes(server.received)

    assert asyncio.run(main()) == b'{"id": "cmd_clearErrors", "sequence_id": 42}\r\n'


def test_write_message_errors_have_the_reference_texts() -> None:
    texts = lsst_vector("m2_command_ack")["write_message_errors"]

    async def main() -> None:
        async with script_server([]) as server:
            client = TcpClient(HOST, server.port, Inbox())
            with pytest.raises(RuntimeError) as before:
                await client.write_message(MsgType.Command, "clearErrors")
            assert str(before.value) == "Client not connected with tcp/ip server."
            await client.connect(timeout=WAIT_S)
            with pytest.raises(ValueError) as in_details:
                await client.write_message(MsgType.Command, "power", {"id": 1})
            assert f"ValueError: {in_details.value}" == texts["id_in_details"]
            with pytest.raises(ValueError) as bad_type:
                await client.write_message(99, "power")
            assert f"ValueError: {bad_type.value}" == texts["bad_msg_type"]
            assert client.last_sequence_id == -1  # refused messages take no id
            await client.close()
            with pytest.raises(RuntimeError) as after:
                await client.write_message(MsgType.Command, "clearErrors")
            assert f"RuntimeError: {after.value}" == texts["after_close"]
            await client.close()  # idempotent
        await assert_no_stray_tasks()

    asyncio.run(main())


def test_connect_refused_raises_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        client = TcpClient(HOST, free_port(), Inbox())
        with pytest.raises(ConnectionRefusedError):
            await client.connect(timeout=WAIT_S)
        assert not client.connected
        await client.close()

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
    assert any("Can not connect" in r.getMessage() for r in caplog.records)


def test_connect_timeout_raises_timeout_error() -> None:
    async def main() -> None:
        with full_backlog_listener() as port:
            client = TcpClient(HOST, port, Inbox())
            with pytest.raises(TimeoutError):
                await client.connect(timeout=0.2)
            assert not client.connected
            await client.close()
        await assert_no_stray_tasks()

    asyncio.run(main())


# --- the monitor loop -----------------------------------------------------------------------

GOOD_AFTER = b'{"after": 1}\r\n'

#: case -> (messages delivered, bad lines skipped, connection ends); cases that keep the
#: connection get GOOD_AFTER appended (after a terminator if the case leaves a line open)
MONITOR_CASES: dict[str, tuple[list[Any], int, bool]] = {
    "non_json_line": ([{"ok": 1}, {"after": 1}], 1, False),
    "empty_line": ([{"ok": 1}, {"after": 1}], 1, False),
    "lf_only_lines": ([{"after": 1}], 1, False),
    "terminator_split_across_segments": ([{"a": 1}, {"b": 2}, {"after": 1}], 0, False),
    "invalid_utf8": ([{"ok": 1}, {"after": 1}], 1, False),
    "line_exactly_at_limit": (["x" * 65534, {"ok": 1}, {"after": 1}], 0, False),
    "line_one_over_limit": ([{"ok": 1}, {"after": 1}], 1, False),
    "over_limit_no_terminator_yet": ([{"after": 1}], 1, False),
    "missing_terminator_then_eof": ([{"a": 1}], 0, True),
    "clean_eof": ([], 0, True),
    "peer_reset": ([], 0, True),
    "nan_tokens": ([{"v": math.nan, "w": -math.inf}, {"after": 1}], 0, False),
}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@pytest.mark.parametrize("case", sorted(MONITOR_CASES))
def test_monitor_loop_survives_malformed_input(case: str) -> None:
    vector = lsst_vector("malformed")["cases"][case]
    expected, skipped, ends = MONITOR_CASES[case]
    script: list[Action] = script_from_vector(vector["server_bytes"])
    if not ends:
        if case == "over_limit_no_terminator_yet":
            script.append(b"\r\n")
        script.append(GOOD_AFTER)

    async def main() -> None:
        async with script_server(script) as server:
            inbox = Inbox()
            client = TcpClient(HOST, server.port, inbox, "arg")
            await client.connect(timeout=WAIT_S)
            if ends:
                await asyncio.wait_for(client.monitor_task, WAIT_S)
                assert not client.connected
                assert client.done_task.done()
            else:
                await wait_for_value(lambda: len(inbox.messages), len(expected))
                assert client.connected
                assert not client.monitor_task.done()
            assert len(inbox.messages) == len(expected)
            assert all(_same(got, want) for got, want in zip(inbox.messages, expected, strict=True))
            assert all(args == ("arg",) for args in inbox.args)
            assert client.messages_skipped == skipped
            await client.close()
            assert client.monitor_task.done()
        await assert_no_stray_tasks()

    asyncio.run(main())


def test_callback_errors_are_logged_and_reading_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    got: list[Any] = []

    async def callback(message: Any) -> None:
        got.append(message)
        if len(got) == 1:
            raise KeyError("boom")

    async def main() -> None:
        async with script_server([b'{"n": 1}\r\n', b'{"n": 2}\r\n']) as server:
            client = TcpClient(HOST, server.port, callback)
            await client.connect(timeout=WAIT_S)
            await wait_for_value(lambda: len(got), 2)
            assert not client.monitor_task.done()
            await client.close()

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
    assert got == [{"n": 1}, {"n": 2}]
    assert any("Error in processing the message" in r.getMessage() for r in caplog.records)


def test_message_rate_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    lines: list[Action] = [b'{"id": "powerStatus"}\r\n'] * 3

    async def main() -> None:
        async with script_server(lines) as server:
            inbox = Inbox()
            client = TcpClient(HOST, server.port, inbox, check_message_rate=True)
            client.message_rate_period_s = 0.0  # log after every message
            await client.connect(timeout=WAIT_S)
            await wait_for_value(lambda: len(inbox.messages), 3)
            await client.close()

    with caplog.at_level(logging.DEBUG):
        asyncio.run(main())
    rates = [r for r in caplog.records if r.getMessage().startswith("Consumed ")]
    assert len(rates) == 3
    assert all(r.levelno == logging.DEBUG for r in rates)
    assert all(r.getMessage().endswith(" messages/s.") for r in rates)
    assert all(isinstance(r.args, tuple) and isinstance(r.args[0], float) for r in rates)


def test_no_rate_log_without_check_message_rate(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with script_server([b"{}\r\n"]) as server:
            inbox = Inbox()
            client = TcpClient(HOST, server.port, inbox)
            client.message_rate_period_s = 0.0
            await client.connect(timeout=WAIT_S)
            await wait_for_value(lambda: len(inbox.messages), 1)
            await client.close()

    with caplog.at_level(logging.DEBUG):
        asyncio.run(main())
    assert not [r for r in caplog.records if r.getMessage().startswith("Consumed ")]


def test_monitor_restarts_after_base_reconnect() -> None:
    async def main() -> None:
        async with script_server([b'{"hello": 1}\r\n', ("sleep", 0.05), "eof"]) as server:
            inbox = Inbox()
            client = TcpClient(
                HOST,
                server.port,
                inbox,
                reconnect=ReconnectPolicy(initial_delay_s=0.01, max_delay_s=0.05),
            )
            await client.connect(timeout=WAIT_S)
            await wait_for_value(lambda: len(inbox.messages) >= 3)
            assert inbox.messages[:3] == [{"hello": 1}] * 3
            assert client.reconnect_count >= 2
            await client.close()
            assert not client.connected
        await assert_no_stray_tasks()

    asyncio.run(main())
