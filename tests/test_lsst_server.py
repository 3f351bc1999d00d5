"""``OneClientServer`` and ``OneClientReadLoopServer`` over real loopback TCP.

One client at a time, ``port=0``, ``connected_task``, close semantics, the read loop (an
ordinary disconnect is INFO, a bad line is skipped, a handler bug drops the client) and the
heartbeat monitor (whole-line heartbeats only).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from daqwire.lsst import (
    LOCALHOST_IPV4,
    Client,
    OneClientReadLoopServer,
    OneClientServer,
)
from tests.lsst_peers import (
    WAIT_S,
    EchoServer,
    assert_no_stray_tasks,
    echo_server,
    wait_for_value,
)


def run(main: Callable[[], Awaitable[None]]) -> None:
    """Run a test coroutine, then check that no background task outlived it."""

    async def wrapper() -> None:
        await asyncio.wait_for(main(), 3 * WAIT_S)
        await assert_no_stray_tasks()

    asyncio.run(wrapper())


class Events:
    """A connect_callback that records ``connected`` at every call."""

    def __init__(self) -> None:
        self.states: list[bool] = []

    async def __call__(self, peer: Any) -> None:
        self.states.append(peer.connected)


async def connect(port: int | None, **kwargs: Any) -> Client:
    client = Client("127.0.0.1", port, **kwargs)
    await asyncio.wait_for(client.start_task, WAIT_S)
    return client


class FailingServer(OneClientReadLoopServer):
    """Reads JSON; ``{"fail": true}`` makes the handler raise."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(port=0, **kwargs)
        self.values: list[Any] = []

    async def read_and_dispatch(self) -> None:
        value = await self.read_json()
        if value == {"fail": True}:
            raise RuntimeError("handler bug")
        self.values.append(value)


class Positional(OneClientReadLoopServer):
    async def read_and_dispatch(self) -> None:
        await self.read_json()


def test_port_zero_fills_port_and_connected_task() -> None:
    async def main() -> None:
        events = Events()
        server = OneClientServer(LOCALHOST_IPV4, 0, connect_callback=events)
        await server.start_task
        assert server.port != 0
        assert not server.connected_task.done()
        client = await connect(server.port)
        await asyncio.wait_for(server.connected_task, WAIT_S)
        assert server.connected and server.should_be_connected
        await server.write_json({"from": "server"})
        assert await client.read_json() == {"from": "server"}
        await client.write_json([1, 2])
        assert await server.read_json() == [1, 2]
        first_task = server.connected_task
        reading = asyncio.ensure_future(client.read_json())
        await asyncio.sleep(0.01)
        await server.close_client()
        assert server.connected_task is not first_task and not server.connected_task.done()
        assert not server.should_be_connected
        with pytest.raises(asyncio.IncompleteReadError):
            await reading
        await client.close()
        await server.close()
        await server.close()
        assert server.done_task.done()
        assert events.states == [True, False]

    run(main)


def test_monitor_notices_a_client_that_left() -> None:
    async def main() -> None:
        events = Events()
        server = OneClientServer(LOCALHOST_IPV4, 0, connect_callback=events)
        await server.start_task
        client = await connect(server.port)
        await wait_for_value(lambda: events.states, [True])
        await client.close()
        await wait_for_value(lambda: events.states, [True, False])
        assert not server.connected and server.should_be_connected  # unexpected loss
        again = await connect(server.port)
        await wait_for_value(lambda: events.states, [True, False, True])
        await again.close()
        await server.close()

    run(main)


def test_new_client_replaces_a_vanished_one_nobody_noticed() -> None:
    async def main() -> None:
        server = OneClientServer(LOCALHOST_IPV4, 0, monitor_connection_interval=0)
        await server.start_task
        first = await connect(server.port)
        await wait_for_value(lambda: server.connected)
        await first.close()
        await wait_for_value(lambda: server.connected, False)
        second = await connect(server.port)
        await wait_for_value(lambda: server.connected)
        await second.write_json({"second": 1})
        assert await server.read_json() == {"second": 1}
        assert server.rejected_count == 0
        await second.close()
        await server.close()

    run(main)


def test_second_client_is_rejected_and_first_is_kept() -> None:
    async def main() -> None:
        async with echo_server() as server:
            first = await connect(server.port)
            await wait_for_value(lambda: server.connected)
            second = await connect(server.port)
            with pytest.raises(ConnectionError):  # EOF (IncompleteReadError) or Not connected
                await second.read_json()
            await wait_for_value(lambda: server.rejected_count, 1)
            await first.write_json({"ok": 1})
            assert await first.read_json() == {"ok": 1}
            await second.close()
            await first.close()

    run(main)


def test_failed_start_sets_done_task(capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> None:
        first = OneClientServer(LOCALHOST_IPV4, 0)
        await first.start_task
        clash = OneClientServer(LOCALHOST_IPV4, first.port, reuse_address=False)
        with pytest.raises(OSError):
            await clash.start_task
        assert clash.done_task.done()
        await clash.close()
        await first.close()

    run(main)
    assert capsys.readouterr().out == ""


def test_close_with_a_client_connected_ends_the_client() -> None:
    async def main() -> None:
        events = Events()
        async with echo_server() as server:
            client = await connect(server.port, connect_callback=events)
            await wait_for_value(lambda: server.connected)
        assert server.done_task.done()
        await wait_for_value(lambda: events.states, [True, False])
        assert client.should_be_connected and not client.connected
        await client.close()

    run(main)


def test_ordinary_disconnect_is_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with echo_server() as server:
            client = await connect(server.port)
            await client.write_json({"a": 1})
            assert await client.read_json() == {"a": 1}
            read_loop = server.read_loop_task
            await client.close()
            await asyncio.wait_for(read_loop, WAIT_S)
            assert not server.should_be_connected

    with caplog.at_level(logging.DEBUG, logger="daqwire.lsst"):
        run(main)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert any("went away" in r.getMessage() for r in caplog.records)
    assert all(r.exc_info is None for r in caplog.records)


def test_read_loop_skips_bad_lines_and_drops_the_client_on_a_handler_bug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        server = FailingServer(line_limit=64)
        await server.start_task
        client = await connect(server.port, monitor_connection_interval=0)
        await client.write(b"not json\r\n\xff\r\n" + b"[" * 100 + b"\r\n" + b'{"good": 1}\r\n')
        await wait_for_value(lambda: server.values, [{"good": 1}])
        assert server.connected
        await client.write_json({"fail": True})
        with pytest.raises(asyncio.IncompleteReadError):
            await client.read_json()
        await wait_for_value(lambda: server.connected, False)
        assert server.lines_skipped == 1
        assert server.stream_stats.decode_errors == 2
        await client.close()
        await server.close()

    with caplog.at_level(logging.INFO, logger="daqwire.lsst"):
        run(main)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(warnings) == 3
    assert len(errors) == 1 and "handler bug" in errors[0].getMessage()
    assert errors[0].exc_info is not None


def test_heartbeats_from_the_client_keep_the_connection() -> None:
    async def main() -> None:
        async with echo_server(run_heartbeat_monitor_task=True, max_heartbeat_interval=0.3) as srv:
            client = await connect(
                srv.port, run_heartbeat_send_task=True, heartbeat_send_sleep=0.05
            )
            await wait_for_value(lambda: srv.heartbeats_received >= 12)  # > 0.5 s of heartbeats
            assert srv.connected
            await client.write_json({"id": "heartbeat"})
            assert await client.read_json() == {"id": "heartbeat"}
            await client.close()

    run(main)


def test_missing_heartbeats_drop_the_client(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with echo_server(run_heartbeat_monitor_task=True, max_heartbeat_interval=0.2) as srv:
            client = await connect(srv.port, monitor_connection_interval=0)
            with pytest.raises(asyncio.IncompleteReadError):
                await client.read_json()
            assert not srv.connected and not srv.should_be_connected
            await client.close()

    with caplog.at_level(logging.ERROR, logger="daqwire.lsst"):
        run(main)
    assert any("No heartbeat" in r.getMessage() for r in caplog.records)


def test_unexpected_heartbeat_drops_the_client(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with echo_server() as srv:
            client = await connect(srv.port, monitor_connection_interval=0)
            await client.write(b"heartbeat\r\n")
            with pytest.raises(asyncio.IncompleteReadError):
                await client.read_json()
            await client.close()

    with caplog.at_level(logging.ERROR, logger="daqwire.lsst"):
        run(main)
    assert any("Unexpectedly received a heartbeat" in r.getMessage() for r in caplog.records)


def test_is_heartbeat_matches_whole_lines_only() -> None:
    assert EchoServer.is_heartbeat(b"heartbeat")
    assert EchoServer.is_heartbeat("heartbeat")
    assert not EchoServer.is_heartbeat(b'{"id": "heartbeat"}')
    assert not EchoServer.is_heartbeat(b"heartbeat ")
    assert not EchoServer.is_heartbeat(b"heartbeat\r\n")


def test_read_loop_server_constructor_is_keyword_only() -> None:
    async def main() -> None:
        with pytest.raises(TypeError, match="positional"):
            Positional("127.0.0.1", 0)  # type: ignore[call-arg]
        server = FailingServer()
        await server.start_task
        assert server.host == LOCALHOST_IPV4 and server.port != 0
        assert server.monitor_connection_interval == 0
        await server.close()

    run(main)


def test_server_and_client_as_context_managers() -> None:
    async def main() -> None:
        server = EchoServer()
        async with server:
            async with Client("127.0.0.1", server.port) as client:
                await client.write_json("x")
                assert await client.read_json() == "x"
        assert server.done_task.done()

    run(main)
