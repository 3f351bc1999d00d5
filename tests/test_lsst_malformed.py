"""Every case of ``lsst/malformed.json`` against our ``Client.read_json`` over real loopback TCP.

Where the reference behaves well we match it exactly (error types, texts, state); where it
fails (an over-limit line raises forever, bad UTF-8 is untyped) we assert our documented
outcome: one typed error, then the next line reads and the connection stays up.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

from daqwire.errors import (
    JsonSyntaxError,
    LengthLimitError,
    LineTooLongError,
    RemoteProtocolError,
    StreamClosedError,
    TextDecodeError,
)
from daqwire.lsst import Client, PeerClosedError
from tests.lsst_peers import (
    WAIT_S,
    assert_no_stray_tasks,
    lsst_vector,
    script_from_vector,
    script_server,
    wait_for_value,
)

CASES = lsst_vector("malformed")["cases"]
OK = {"ok": 1}


def reference_reads(case: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = CASES[case]["tcpip_Client"]["read_json_results"]
    return results


class Session:
    """A client connected to a ``ScriptServer`` playing one vector case."""

    def __init__(self) -> None:
        self.events: list[bool] = []

    async def callback(self, client: Client) -> None:
        self.events.append(client.connected)


def play(
    case: str,
    body: Any,
    extra: list[Any] | None = None,
    prefix: list[Any] | None = None,
    **client_kwargs: Any,
) -> None:
    """Run ``body(client, session)`` against a server playing ``case`` (+ ``extra`` actions)."""

    async def main() -> None:
        script = (prefix or []) + script_from_vector(CASES[case]["server_bytes"]) + (extra or [])
        session = Session()
        async with script_server(script) as server:
            client = Client(
                "127.0.0.1", server.port, connect_callback=session.callback, **client_kwargs
            )
            await asyncio.wait_for(client.start_task, WAIT_S)
            try:
                await asyncio.wait_for(body(client, session), WAIT_S)
            finally:
                await client.close()
            assert session.events == [True, False]  # deduplicated, as the reference
        await assert_no_stray_tasks()

    asyncio.run(main())


async def expect_ok(client: Client) -> None:
    assert await client.read_json() == OK
    assert client.connected and client.should_be_connected


def test_vector_has_twelve_cases() -> None:
    assert len(CASES) == 12


@pytest.mark.parametrize("case", ["non_json_line", "empty_line"])
def test_non_json_lines_raise_once_then_next_line_reads(case: str) -> None:
    expected = reference_reads(case)[0]["raised"]

    async def body(client: Client, session: Session) -> None:
        with pytest.raises(json.JSONDecodeError) as info:
            await client.read_json()
        assert isinstance(info.value, JsonSyntaxError)
        assert isinstance(info.value, RemoteProtocolError)
        assert info.value.pos == expected["pos"]
        assert expected["msg_head"] in str(info.value)
        assert client.connected and client.should_be_connected
        await expect_ok(client)
        await client.write_json({"still": "writable"})
        assert client.stream_stats.decode_errors == 1

    play(case, body)


def test_lf_only_lines_are_one_frame() -> None:
    expected = reference_reads("lf_only_lines")[0]["raised"]

    async def body(client: Client, session: Session) -> None:
        with pytest.raises(JsonSyntaxError) as info:
            await client.read_json()
        assert info.value.pos == expected["pos"] == 9
        assert expected["msg_head"] in str(info.value)
        assert client.connected

    play("lf_only_lines", body)


def test_terminator_split_across_segments() -> None:
    async def body(client: Client, session: Session) -> None:
        assert await client.read_json() == {"a": 1}
        assert await client.read_json() == {"b": 2}
        assert client.connected

    play("terminator_split_across_segments", body)


def test_invalid_utf8_is_a_typed_error_then_next_line_reads() -> None:
    expected = reference_reads("invalid_utf8")[0]["raised"]

    async def body(client: Client, session: Session) -> None:
        with pytest.raises(UnicodeDecodeError) as info:
            await client.read_json()
        assert isinstance(info.value, TextDecodeError)
        assert info.value.start == expected["start"] == 7
        assert info.value.reason == expected["reason"]
        assert client.connected and client.should_be_connected
        await expect_ok(client)

    play("invalid_utf8", body)


def test_line_exactly_at_limit_is_accepted() -> None:
    async def body(client: Client, session: Session) -> None:
        value = await client.read_json()
        assert value == "x" * 65534  # body of 65 536 bytes: the quotes and 65 534 x
        await expect_ok(client)
        assert client.lines_skipped == 0

    play("line_exactly_at_limit", body)


def test_line_one_over_limit_raises_once_then_next_line_reads() -> None:
    # the reference raises LimitOverrunError on every call (livelock); we skip the line once
    async def body(client: Client, session: Session) -> None:
        with pytest.raises(asyncio.LimitOverrunError) as info:
            await client.read_json()
        assert isinstance(info.value, LineTooLongError)
        assert isinstance(info.value, LengthLimitError)
        assert info.value.limit == 65536
        assert client.connected and client.should_be_connected
        await expect_ok(client)
        assert client.lines_skipped == 1

    play("line_one_over_limit", body)


def test_over_limit_without_terminator_raises_once_and_stays_bounded() -> None:
    # the reference raises again and again with a growing buffer; we raise once, discard up to
    # the next terminator (which this test adds after the vector's bytes) and read on
    async def body(client: Client, session: Session) -> None:
        with pytest.raises(LineTooLongError):
            await client.read_json()
        assert client.connected
        await client.write(b"go\r\n")  # lets the server send the rest
        await expect_ok(client)
        assert client.lines_skipped == 1

    play("over_limit_no_terminator_yet", body, extra=["await_line", b'yyyy\r\n{"ok": 1}\r\n'])


def test_missing_terminator_then_eof() -> None:
    expected = reference_reads("missing_terminator_then_eof")

    async def body(client: Client, session: Session) -> None:
        assert await client.read_json() == {"a": 1}
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await client.read_json()
        raised = expected[1]["raised"]
        assert isinstance(info.value, PeerClosedError)
        assert isinstance(info.value, StreamClosedError)
        assert info.value.partial == raised["partial_head"].encode() == b'{"b": 2}'
        assert info.value.expected is None
        assert str(info.value) == raised["str"]
        assert not client.connected
        assert client.should_be_connected
        with pytest.raises(ConnectionError, match=r"^Not connected$"):
            await client.read_json()
        with pytest.raises(ConnectionError, match=r"^Not connected$"):
            await client.write_json(OK)

    play("missing_terminator_then_eof", body)


def test_clean_eof() -> None:
    raised = reference_reads("clean_eof")[0]["raised"]

    async def body(client: Client, session: Session) -> None:
        await client.write(b"go\r\n")  # the server closes once it has this: our read is waiting
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await client.read_json()
        assert info.value.partial == b""
        assert str(info.value) == raised["str"]
        assert not client.connected and client.should_be_connected
        assert session.events == [True, False]
        with pytest.raises(ConnectionError, match=r"^Not connected$"):
            await client.read_json()
        with pytest.raises(ConnectionError, match=r"^Not connected$"):
            await client.write_json(OK)

    play("clean_eof", body, prefix=["await_line"], monitor_connection_interval=0)


def test_peer_reset() -> None:
    async def body(client: Client, session: Session) -> None:
        await client.write(b"go\r\n")
        with pytest.raises(ConnectionResetError):
            await client.read_json()
        assert not client.connected and client.should_be_connected
        await wait_for_value(lambda: session.events, [True, False])
        with pytest.raises(ConnectionError, match=r"^Not connected$"):
            await client.read_json()
        with pytest.raises(ConnectionError, match=r"^Not connected$"):
            await client.write_json(OK)

    play("peer_reset", body, prefix=["await_line"], monitor_connection_interval=0)


def test_nan_tokens() -> None:
    async def body(client: Client, session: Session) -> None:
        value = await client.read_json()
        assert set(value) == {"v", "w"}
        assert math.isnan(value["v"])
        assert value["w"] == -math.inf

    play("nan_tokens", body)


def test_every_vector_case_is_covered() -> None:
    tested = {
        "non_json_line",
        "empty_line",
        "lf_only_lines",
        "terminator_split_across_segments",
        "invalid_utf8",
        "line_exactly_at_limit",
        "line_one_over_limit",
        "over_limit_no_terminator_yet",
        "missing_terminator_then_eof",
        "clean_eof",
        "peer_reset",
        "nan_tokens",
    }
    assert tested == set(CASES)
