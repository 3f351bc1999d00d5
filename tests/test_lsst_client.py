"""``daqwire.lsst.Client`` over real loopback TCP: the plain JSON exchange vectors byte for byte,
connection semantics of ts_tcpip, and our fixes (line limit, connect timeout, reconnection).
"""

from __future__ import annotations

import ast
import asyncio
import ctypes
import logging
import math
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from daqwire.errors import LineTooLongError, StreamTimeoutError
from daqwire.generated.lsst_tcpip import decode_line
from daqwire.lsst import (
    DEFAULT_LINE_LIMIT,
    HEARTBEAT,
    Client,
    PeerClosedError,
    ReconnectPolicy,
)
from tests.lsst_peers import (
    WAIT_S,
    EchoServer,
    assert_no_stray_tasks,
    echo_server,
    free_port,
    full_backlog_listener,
    lsst_vector,
    script_server,
    wait_for_value,
)

PLAIN = lsst_vector("plain_json_exchange")
SEMANTICS = lsst_vector("connection_semantics")
FAST = ReconnectPolicy(initial_delay_s=0.02, max_delay_s=0.1)


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

    async def __call__(self, client: Any) -> None:
        self.states.append(client.connected)


async def connect(port: int | None, **kwargs: Any) -> Client:
    client = Client("127.0.0.1", port, **kwargs)
    await asyncio.wait_for(client.start_task, WAIT_S)
    return client


def sent_value(text: str) -> Any:
    """The Python value of a vector's ``sent_python`` repr (nan and inf included)."""
    tree = ast.parse(text, mode="eval")
    return eval(compile(tree, "<vector>", "eval"), {"nan": math.nan, "inf": math.inf})


def same(a: Any, b: Any) -> bool:
    return repr(a) == repr(b)


# --- 1. plain JSON exchange vectors -------------------------------------------------------------


JSON_EXCHANGES = [x for x in PLAIN["exchanges"] if not x["sent_python"].startswith("write_str(")]


@pytest.mark.parametrize("exchange", JSON_EXCHANGES, ids=lambda x: x["sent_python"][:30])
def test_plain_json_exchange_is_byte_exact(exchange: dict[str, Any]) -> None:
    c2s, s2c = (bytes.fromhex(f["hex"]) for f in exchange["frames"])
    value = sent_value(exchange["sent_python"])

    async def main() -> None:
        async with echo_server() as server, Client("127.0.0.1", server.port) as client:
            await client.write_json(value)
            echoed = await client.readuntil(b"\r\n")
            assert echoed == s2c
            assert server.lines == [c2s]
            await client.write_json(value)
            reply = await client.read_json()
            assert repr(reply) == exchange["decoded_reply_repr"]
            assert server.lines == [c2s, c2s]

    run(main)


def test_write_str_read_str_exchange() -> None:
    (exchange,) = [x for x in PLAIN["exchanges"] if x["sent_python"].startswith("write_str(")]
    call = ast.parse(exchange["sent_python"], mode="eval").body
    assert isinstance(call, ast.Call)
    text = ast.literal_eval(call.args[0])
    c2s, s2c = (bytes.fromhex(f["hex"]) for f in exchange["frames"])

    async def main() -> None:
        async with echo_server() as server, Client("127.0.0.1", server.port) as client:
            await client.write_str(text)
            assert await client.read_str() == exchange["read_str_result"]
            assert server.lines == [c2s]
            await client.write_str(text)
            assert await client.readuntil(b"\r\n") == s2c

    run(main)


class ShortStruct(ctypes.Structure):
    _pack_ = 1
    _fields_ = [
        ("ushort_0", ctypes.c_ushort),
        ("int64_0", ctypes.c_int64),
        ("double_0", ctypes.c_double),
        ("float_0", ctypes.c_float),
    ]


class NativeStruct(ctypes.Structure):
    _fields_ = [("ushort_0", ctypes.c_ushort), ("int64_0", ctypes.c_int64)]


class BigEndianStruct(ctypes.BigEndianStructure):
    _pack_ = 1
    _fields_ = [("ushort_0", ctypes.c_ushort), ("int64_0", ctypes.c_int64)]


STRUCTS: dict[str, type[ctypes.Structure]] = {
    "ShortStruct": ShortStruct,
    "NativeStruct": NativeStruct,
    "BigEndianStruct": BigEndianStruct,
}


@pytest.mark.parametrize("name", list(STRUCTS))
def test_ctypes_wire_images_round_trip(name: str) -> None:
    meta = PLAIN["ctypes"][name]
    cls = STRUCTS[name]
    wire = bytes.fromhex(meta["wire_hex"])
    assert ctypes.sizeof(cls) == meta["sizeof"] == len(wire)

    async def main() -> None:
        async with (
            echo_server(binary_size=len(wire)) as server,
            Client("127.0.0.1", server.port) as client,
        ):
            values: dict[str, float] = {"ushort_0": 1, "int64_0": 2}
            if cls is ShortStruct:
                values.update(double_0=3.3, float_0=4.4)
            out = cls(**values)
            await client.write_from(out, out)
            back = cls()
            await client.read_into(back)
            assert server.blocks[0] == wire
            assert bytes(back) == wire
            second = await client.readexactly(len(wire))
            assert second == wire
            if cls is ShortStruct:
                expected = PLAIN["ctypes"]["read_into_roundtrip"]
                assert {f[0]: getattr(back, f[0]) for f in cls._fields_} == expected

    run(main)


def test_heartbeat_frame_and_heartbeat_word_inside_json() -> None:
    frame = bytes.fromhex(PLAIN["heartbeat_frame"]["hex"])

    async def main() -> None:
        async with (
            echo_server(run_heartbeat_monitor_task=True) as server,
            Client(
                "127.0.0.1", server.port, run_heartbeat_send_task=True, heartbeat_send_sleep=0.05
            ) as client,
        ):
            await wait_for_value(lambda: server.heartbeats_received >= 2)
            assert frame in server.lines
            assert set(server.lines) == {frame}
            await client.write_json({"id": "heartbeat"})
            assert await client.read_json() == {"id": "heartbeat"}  # not eaten by substring
            await client.write_str("heartbeats")
            assert await client.read_str() == "heartbeats"
        assert HEARTBEAT + b"\r\n" == frame

    run(main)


# --- 2. connection semantics (connection_semantics.json) -----------------------------------------


def test_peer_close_with_unread_data_stays_connected_until_read() -> None:
    expected = SEMANTICS["peer_close_with_unread_data"]

    async def main() -> None:
        events = Events()
        async with script_server([b'{"unread": true}\r\n', "eof"]) as server:
            client = await connect(server.port, connect_callback=events)
            await server.done.wait()
            reader = client._reader
            assert reader is not None
            await wait_for_value(lambda: reader._eof)  # type: ignore[attr-defined]  # FIN is in
            assert client.connected is expected["connected_after_0.5s_with_unread_line"]
            assert events.states == [True]
            assert await client.read_json() == expected["read_after_peer_close"]
            assert client.connected is expected["connected_after_reading_it"]
            await wait_for_value(lambda: events.states, [True, False])
            assert client.should_be_connected
            await client.close()
            assert events.states == [True, False]

    run(main)


@pytest.mark.parametrize("interval", [0.1, 0])
def test_peer_close_without_data_and_monitoring(interval: float) -> None:
    expected = SEMANTICS["peer_close_no_data"][f"monitor_connection_interval={interval}"]

    async def main() -> None:
        events = Events()
        async with script_server(["await_line", "eof"]) as server:
            client = await connect(
                server.port, connect_callback=events, monitor_connection_interval=interval
            )
            await client.write(b"go\r\n")
            await server.done.wait()
            if interval:
                await wait_for_value(lambda: events.states, [True, False])
            else:
                await wait_for_value(lambda: client.connected, False)
                await asyncio.sleep(0.3)
                assert events.states == [True]  # nobody notices without reading or monitoring
            assert client.connected is expected["connected"]
            assert client.should_be_connected is expected["should_be_connected"]
            await client.close()
            assert events.states == [True, False]
            assert not client.should_be_connected

    run(main)


def test_second_client_is_refused_by_one_client_server() -> None:
    expected = SEMANTICS["second_client_rejected_by_OneClientServer"]

    async def main() -> None:
        async with echo_server() as server:
            first = await connect(server.port)
            await wait_for_value(lambda: server.connected)
            second = Client("127.0.0.1", server.port)
            await second.start_task
            assert expected["c2_start_task_ok"]
            if second.connected:  # usually; the server's close may already have arrived
                with pytest.raises(asyncio.IncompleteReadError) as info:
                    await second.read_json()
                assert str(info.value) == expected["c2_first_read"]["raised"].split(": ", 1)[1]
                assert info.value.partial == b""
            else:
                with pytest.raises(ConnectionError, match=r"^Not connected$"):
                    await second.read_json()
            await first.write_json({"first": "still served"})
            assert await first.read_json() == {"first": "still served"}
            assert server.rejected_count == 1
            await second.close()
            await first.close()

    run(main)


def test_constructor_errors_have_reference_texts() -> None:
    texts = SEMANTICS["constructor_and_connect_errors"]

    async def sync_callback(client: Any) -> None:
        pass

    def not_async(client: Any) -> None:
        pass

    async def main() -> None:
        with pytest.raises(ValueError) as info:
            Client("127.0.0.1", 1, terminator="\r\n")  # type: ignore[arg-type]
        assert f"ValueError: {info.value}" == texts["str_terminator"]
        with pytest.raises(ValueError) as info:
            Client("127.0.0.1", 1, encoding="nope")
        assert f"ValueError: {info.value}" == texts["bad_encoding"]
        with pytest.raises(TypeError) as type_info:
            Client("127.0.0.1", 1, connect_callback=not_async)  # type: ignore[arg-type]
        assert f"TypeError: {type_info.value}" == texts["sync_connect_callback"]
        with pytest.raises(ValueError, match="line_limit"):
            Client("127.0.0.1", 1, line_limit=0)
        Client("", 1, connect_callback=sync_callback)  # async callbacks are fine

    run(main)


def test_empty_host_builds_a_closed_client() -> None:
    expected = SEMANTICS["constructor_and_connect_errors"]["host_empty"]

    async def main() -> None:
        client = Client("", 0)
        assert client.start_task.result() is expected["start_task_result"]
        assert client.done_task.result() is expected["done_task_result"]
        assert client.connected is expected["connected"]
        assert client.should_be_connected is expected["should_be_connected"]
        await client.close()
        await client.close()
        with pytest.raises(ConnectionError, match=r"^Not connected$"):
            await client.read_json()

    run(main)


def test_connection_refused_fails_start_and_sets_done_task(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def main() -> None:
        client = Client("127.0.0.1", free_port())
        with pytest.raises(ConnectionRefusedError):
            await client.start_task
        # fixed: the reference leaves done_task pending and prints to stdout
        assert client.done_task.done()
        assert not client.connected and not client.should_be_connected
        await client.close()

    run(main)
    assert capsys.readouterr().out == ""


def test_socket_options_after_connect() -> None:
    expected = SEMANTICS["socket_options_after_connect"]

    async def main() -> None:
        async with echo_server() as server, Client("127.0.0.1", server.port) as client:
            await wait_for_value(lambda: server.connected)
            for peer in (client, server):
                writer = peer._writer
                assert writer is not None
                sock = writer.get_extra_info("socket")
                got = {
                    "SO_KEEPALIVE": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                    "TCP_KEEPIDLE": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                    "TCP_KEEPCNT": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                    "TCP_KEEPINTVL": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                    "TCP_NODELAY": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
                }
                assert got == expected

    run(main)


def test_client_heartbeat_lines_arrive() -> None:
    expected = SEMANTICS["client_heartbeat"]

    async def main() -> None:
        async with echo_server(run_heartbeat_monitor_task=True) as server:
            client = await connect(
                server.port, run_heartbeat_send_task=True, heartbeat_send_sleep=0.05
            )
            await wait_for_value(lambda: len(server.lines) >= 3)
            assert [frame.decode() for frame in server.lines[:3]] == [
                text for _, text in expected["arrivals"]
            ]
            await client.close()

    run(main)


def test_connect_callback_is_deduplicated_and_its_errors_are_swallowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    states: list[bool] = []

    async def callback(client: Any) -> None:
        states.append(client.connected)
        raise RuntimeError("callback bug")

    async def main() -> None:
        async with echo_server() as server:
            client = await connect(server.port, connect_callback=callback)
            await client.call_connect_callback()
            await client.call_connect_callback()
            await client.close()
            await client.close()
            await client.call_connect_callback()
        assert states == [True, False]

    with caplog.at_level(logging.ERROR):
        run(main)
    assert [r.getMessage() for r in caplog.records] == ["connect_callback failed."] * 2


# --- 3. line framing over the socket ------------------------------------------------------------


def test_lines_split_at_every_byte_position() -> None:
    payload = b'{"a": 1}\r\n["x", "\\u00e9"]\r\n"\xc3\xa9"\r\n'
    expected = [{"a": 1}, ["x", "\u00e9"], "\u00e9"]

    async def main() -> None:
        script: list[Any] = []
        for cut in range(1, len(payload)):
            script += [payload[:cut], ("sleep", 0.002), payload[cut:], "await_line"]
        async with script_server(script) as server:
            client = await connect(server.port)
            for _cut in range(1, len(payload)):
                assert [await client.read_json() for _ in expected] == expected
                await client.write(b"next\r\n")
            await client.close()

    run(main)


def test_cr_and_lf_in_separate_segments_and_lone_cr_inside_a_line() -> None:
    async def main() -> None:
        script: list[Any] = [b'"a"\r', ("sleep", 0.02), b'\n"b"\r', ("sleep", 0.02), b"\n"]
        script += [b"x\ry\r", ("sleep", 0.02), b"z\r\n"]
        async with script_server(script) as server:
            client = await connect(server.port)
            assert await client.read_json() == "a"
            assert await client.read_json() == "b"
            assert await client.read_str() == "x\ry\rz"
            await client.close()

    run(main)


@pytest.mark.parametrize("limit", [10, DEFAULT_LINE_LIMIT])
def test_line_of_exactly_the_limit_and_one_byte_over(limit: int) -> None:
    at_limit = b'"' + b"a" * (limit - 2) + b'"'
    over = b'"' + b"b" * (limit - 1) + b'"'
    assert len(at_limit) == limit and len(over) == limit + 1

    async def main() -> None:
        script: list[Any] = [at_limit + b"\r\n", over + b"\r\n", b"[1]\r\n", over, b"\r\n[2]\r\n"]
        async with script_server(script) as server:
            client = await connect(server.port, line_limit=limit)
            assert client.line_limit == limit
            assert await client.read_json() == "a" * (limit - 2)
            with pytest.raises(LineTooLongError) as info:
                await client.read_json()
            assert info.value.limit == limit
            assert await client.read_json() == [1]
            with pytest.raises(LineTooLongError):
                await client.read_json()
            assert await client.read_json() == [2]
            assert client.lines_skipped == 2
            assert client.connected
            await client.close()

    run(main)


def test_limit_keyword_of_open_connection_sets_the_line_limit() -> None:
    async def main() -> None:
        async with script_server([b"[12345]\r\n[1]\r\n"]) as server:
            client = await connect(server.port, limit=5)
            assert client.line_limit == 5
            with pytest.raises(LineTooLongError):
                await client.read_json()
            assert await client.read_json() == [1]
            await client.close()

    run(main)


def test_big_ints_nan_and_raw_utf8() -> None:
    async def main() -> None:
        lines = b'{"mask": 18410715311050326015}\r\n[NaN, Infinity, -Infinity]\r\n"\xc3\xa9"\r\n'
        async with script_server([lines]) as server:
            client = await connect(server.port)
            assert await client.read_json() == {"mask": 18410715311050326015}
            nan, inf, ninf = await client.read_json()
            assert math.isnan(nan) and inf == math.inf and ninf == -math.inf
            assert await client.read_json() == "\u00e9"
            await client.close()

    run(main)


def test_byte_reads_and_line_reads_share_one_buffer() -> None:
    async def main() -> None:
        data = b'{"a": 1}\r\nRAW8BYTE[2]\r\nline one\nrest\r\ntail'
        async with script_server([data, "eof"]) as server:
            client = await connect(server.port, monitor_connection_interval=0)
            assert await client.read_json() == {"a": 1}
            assert await client.readexactly(8) == b"RAW8BYTE"
            assert await client.read_json() == [2]
            assert await client.readline() == b"line one\n"
            assert await client.readuntil(b"\r\n") == b"rest\r\n"
            assert await client.read(2) == b"ta"
            assert await client.read() == b"il"
            assert not client.connected
            await client.close()

    run(main)


def test_readexactly_at_eof_raises_with_partial_and_closes() -> None:
    async def main() -> None:
        async with script_server([b"abc", "eof"]) as server:
            client = await connect(server.port, monitor_connection_interval=0)
            with pytest.raises(asyncio.IncompleteReadError) as info:
                await client.readexactly(5)
            assert isinstance(info.value, PeerClosedError)
            assert info.value.partial == b"abc" and info.value.expected == 5
            with pytest.raises(ConnectionError, match=r"^Not connected$"):
                await client.readexactly(1)
            await client.close()

    run(main)


def test_write_json_refuses_unserialisable_values() -> None:
    async def main() -> None:
        async with echo_server() as server, Client("127.0.0.1", server.port) as client:
            with pytest.raises(ValueError):
                await client.write_json({"x": object()})
            await client.write_json({"ok": True})
            assert await client.read_json() == {"ok": True}

    run(main)


def test_other_terminator_and_encoding() -> None:
    async def main() -> None:
        script: list[Any] = [b'"\xe9t\xe9"\n', b'{"a": 2}\n']
        async with script_server(script) as server:
            client = await connect(server.port, terminator=b"\n", encoding="latin-1")
            assert await client.read_json() == "\u00e9t\u00e9"
            assert await client.read_str() == '{"a": 2}'
            await client.write_str("\u00e9")
            await client.write_json({"b": 1})
            await client.close()
            await server.done.wait()
            assert bytes(server.received) == b'\xe9\n{"b": 1}\n'

    run(main)


# --- 4. connect timeout and reconnection -------------------------------------------------------


def test_connect_timeout() -> None:
    async def main() -> None:
        with full_backlog_listener() as port:
            client = Client("127.0.0.1", port, connect_timeout=0.2)
            with pytest.raises(TimeoutError) as info:
                await client.start_task
            assert isinstance(info.value, StreamTimeoutError)
            assert client.done_task.done()
            await client.close()

    run(main)


def test_reconnect_after_server_restart() -> None:
    async def main() -> None:
        events = Events()
        first = EchoServer(port=0)
        await first.start_task
        port = first.port
        client = await connect(port, connect_callback=events, reconnect=FAST)
        await client.write_json({"n": 1})
        assert await client.read_json() == {"n": 1}
        await first.close()
        await wait_for_value(lambda: events.states, [True, False])
        assert client.should_be_connected and not client.done_task.done()
        await asyncio.sleep(0.15)  # a few refused attempts
        second = EchoServer(port=port)
        await second.start_task
        await wait_for_value(lambda: events.states, [True, False, True])
        assert client.reconnect_count == 1
        await client.write_json({"n": 2})
        assert await client.read_json() == {"n": 2}
        assert client.stream_stats.connects == 2
        await client.close()
        await second.close()
        assert events.states == [True, False, True, False]

    run(main)


def test_reconnect_also_covers_a_failed_first_connect() -> None:
    async def main() -> None:
        port = free_port()
        client = Client("127.0.0.1", port, reconnect=FAST)
        await asyncio.sleep(0.1)
        assert not client.start_task.done()
        async with echo_server(port=port):
            await asyncio.wait_for(client.start_task, WAIT_S)
            assert client.connected and client.reconnect_count == 0
            await client.close()

    run(main)


def test_reconnect_gives_up_after_max_attempts() -> None:
    async def main() -> None:
        policy = ReconnectPolicy(initial_delay_s=0.01, max_delay_s=0.02, max_attempts=2)
        client = Client("127.0.0.1", free_port(), reconnect=policy)
        with pytest.raises(ConnectionRefusedError):
            await client.start_task
        assert client.done_task.done()
        server = EchoServer(port=0)
        await server.start_task
        lost = Client("127.0.0.1", server.port, reconnect=policy)
        await lost.start_task
        await server.close()
        await asyncio.wait_for(lost.done_task, WAIT_S)
        assert not lost.connected and lost.reconnect_count == 0
        await lost.close()
        await client.close()

    run(main)


def test_reconnect_policy_backoff() -> None:
    policy = ReconnectPolicy(initial_delay_s=0.1, max_delay_s=1.0, factor=2.0, max_attempts=3)
    assert [policy.delay(n) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert [policy.allows(n) for n in range(4)] == [True, True, True, False]
    assert ReconnectPolicy().allows(10**6)
    with pytest.raises(ValueError):
        ReconnectPolicy(initial_delay_s=2.0, max_delay_s=1.0)
    with pytest.raises(ValueError):
        ReconnectPolicy(factor=0.5)


def test_close_during_reconnect_stops_it() -> None:
    async def main() -> None:
        server = EchoServer(port=0)
        await server.start_task
        client = await connect(server.port, reconnect=FAST)
        await server.close()
        await wait_for_value(lambda: client.connected, False)
        await asyncio.sleep(0.05)
        await client.close()
        assert client.done_task.done() and not client.should_be_connected

    run(main)


def test_close_is_idempotent_and_reads_fail_after() -> None:
    async def main() -> None:
        async with echo_server() as server:
            client = await connect(server.port)
            await client.close()
            await client.close()
            assert client.done_task.done()
            with pytest.raises(ConnectionError, match=r"^Not connected$"):
                await client.write_json({})
            with pytest.raises(ConnectionError, match=r"^Not connected$"):
                await client.read_json()
            await asyncio.wait_for(server.read_loop_task, WAIT_S)

    run(main)


def test_decode_errors_leave_the_echo_of_later_lines_intact() -> None:
    async def main() -> None:
        async with echo_server() as server, Client("127.0.0.1", server.port) as client:
            await client.write(b"not json\r\n\xff\xfe\r\n[3]\r\n")
            assert await client.readuntil(b"\r\n") == b"not json\r\n"
            assert await client.readuntil(b"\r\n") == b"\xff\xfe\r\n"
            assert await client.read_json() == [3]
            assert [decode_line(x[:-2]) for x in server.lines[2:]] == [[3]]

    run(main)
