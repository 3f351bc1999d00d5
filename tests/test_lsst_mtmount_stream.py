"""MockTma streaming all 26 topics to a TelemetryClient over real loopback TCP.

The client must publish exactly what the mock sent (compared with the mock's history), with
whole arrays and consistent timestamps, and survive a malformed line injected mid-stream.
Also the mock on its own: plausible values, rates, reconnection, idempotent start/close,
``run_mock_tma``. Nothing asserts a duration.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from daqwire.generated.lsst_tcpip import decode_line
from daqwire.generated.mtmount_telemetry import (
    Azimuth,
    Elevation,
    decode,
    encode,
    to_dict,
)
from daqwire.lsst.mtmount import (
    SAL_TOPICS,
    TOPIC_CLASSES,
    InProcessPublisher,
    MockTma,
    TelemetryClient,
    array_lengths,
    make_message,
    run_mock_tma,
)
from tests.lsst_peers import WAIT_S, assert_no_stray_tasks, wait_for_value


def run(main: Callable[[], Awaitable[None]]) -> None:
    async def wrapper() -> None:
        await asyncio.wait_for(main(), 3 * WAIT_S)
        await assert_no_stray_tasks()

    asyncio.run(wrapper())


def test_client_publishes_exactly_what_the_mock_sent_and_survives_a_bad_line() -> None:
    published: dict[str, list[dict[str, Any]]] = {}

    def record(topic: str, data: dict[str, Any]) -> None:
        published.setdefault(topic, []).append(data)

    def count(topic_id: int) -> int:
        return len(published.get(f"tel_{SAL_TOPICS[topic_id]}", []))

    async def main() -> None:
        publisher = InProcessPublisher(queue_size=0)
        publisher.subscribe(record)
        async with MockTma(rate_hz=25, topic_rates_hz={8: 50.0}, history_size=100_000) as mock:
            client = TelemetryClient(
                "127.0.0.1", mock.port, publisher=publisher, telemetry_timeout=WAIT_S
            )
            await client.start_task
            await wait_for_value(lambda: all(count(t) >= 2 for t in SAL_TOPICS))
            await mock.inject(b"this is not json\r\n")
            await mock.inject(b'{"topicID": 6, "truncated": \r\n')
            before = {t: count(t) for t in SAL_TOPICS}
            await wait_for_value(lambda: all(count(t) >= before[t] + 2 for t in SAL_TOPICS))
            assert client.connected
            await client.close()
            stats = client.stats
            history = list(mock.history)
        assert stats.malformed == 2
        assert stats.errors == 0 and stats.unknown == 0
        assert stats.frames == sum(len(v) for k, v in published.items() if k.startswith("tel_")) - (
            len(published.get("tel_telemetryClientHeartbeat", []))
        )
        assert stats.clock_offsets >= 1
        assert published["evt_telemetryConnected"] == [
            {"connected": False},
            {"connected": True},
            {"connected": True},
            {"connected": False},
        ]
        for topic_id, name in SAL_TOPICS.items():
            sent = [to_dict(m) for t, m in history if t == topic_id]
            got = published[f"tel_{name}"]
            assert got == sent[: len(got)], name  # in order, nothing lost, nothing changed
            lengths = array_lengths(topic_id)
            for data in got:
                for field, n in lengths.items():
                    assert len(data[field]) == n
                stamps = [v for k, v in data.items() if k.endswith("Timestamp")]
                for stamp in stamps:
                    assert stamp == data["timestamp"] or stamp == [data["timestamp"]] * len(stamp)
            assert [d["timestamp"] for d in got] == sorted(d["timestamp"] for d in got)
        # the camera cable wrap was sent at twice the rate of the others
        assert len([1 for t, _ in history if t == 8]) > len([1 for t, _ in history if t == 6])

    run(main)


def test_mock_values_are_plausible_and_move() -> None:
    for topic_id in SAL_TOPICS:
        message = make_message(topic_id, 1795266220.5, 10.0)
        line = encode(message)
        assert decode(line[:-2]) == message  # the generated codec round-trips it
        for key, value in decode_line(line[:-2]).items():
            assert isinstance(value, int | float) and math.isfinite(value), key
    az0, az1 = make_message(6, 0.0, 0.0), make_message(6, 0.0, 60.0)
    assert isinstance(az0, Azimuth) and isinstance(az1, Azimuth)
    assert az0.actualPosition != az1.actualPosition
    assert -90.0 <= az1.actualPosition <= 90.0
    assert az1.actualVelocity > 0  # sweeping up at t=60 s
    for t in (0.0, 200.0, 450.0, 700.0):
        el = make_message(15, 0.0, t)
        assert isinstance(el, Elevation)
        assert 30.0 <= el.actualPosition <= 80.0
        assert abs(el.elevationInclinometer - el.actualPosition) < 0.01
    drives = to_dict(make_message(5, 0.0, 300.0))
    assert len(drives["current"]) == 16 and all(-20 < c < 20 for c in drives["current"])
    thermal = to_dict(make_message(4, 0.0, 0.0))
    assert all(5.0 < x < 20.0 for x in thermal["actualTemperature"])


def test_topic_rates_and_arguments() -> None:
    async def main() -> None:
        rates = dict.fromkeys(TOPIC_CLASSES, 0.0) | {6: 50.0, 15: 50.0}
        async with MockTma(topic_rates_hz=rates) as mock:
            reader, writer = await asyncio.open_connection("127.0.0.1", mock.port)
            ids: set[int] = set()
            for _ in range(10):
                line = await asyncio.wait_for(reader.readuntil(b"\r\n"), WAIT_S)
                ids.add(decode_line(line[:-2])["topicID"])
            assert ids == {6, 15}
            writer.close()
            await writer.wait_closed()

    run(main)
    with pytest.raises(ValueError, match="unknown topic id"):
        MockTma(topic_rates_hz={20: 1.0})
    with pytest.raises(ValueError):
        MockTma(rate_hz=-1.0)


def test_mock_start_close_inject_and_reconnect() -> None:
    async def main() -> None:
        mock = MockTma(rate_hz=0)
        with pytest.raises(ConnectionError):
            await mock.inject(b"x\r\n")
        await mock.start()
        await mock.start()
        assert mock.port > 0 and not mock.connected
        for round_ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", mock.port)
            await mock.wait_connected(WAIT_S)
            await mock.inject(b"raw bytes\r\n")
            message = make_message(21, 1.0, 0.0)
            await mock.send(message)
            assert await reader.readuntil(b"\r\n") == b"raw bytes\r\n", round_
            assert await reader.readuntil(b"\r\n") == encode(message)
            writer.close()
            await writer.wait_closed()
            await wait_for_value(lambda: mock.connected, False)
        await mock.close()
        await mock.close()
        with pytest.raises(RuntimeError, match="closed"):
            await mock.start()

    run(main)


def test_run_mock_tma_serves_until_cancelled() -> None:
    async def main() -> None:
        started: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def ready(mock: MockTma) -> None:
            started.set_result(mock.port)

        task = asyncio.create_task(run_mock_tma("127.0.0.1", 0, rate_hz=20, ready=ready))
        port = await asyncio.wait_for(started, WAIT_S)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        seen: set[int] = set()
        async with asyncio.timeout(WAIT_S):
            while len(seen) < len(TOPIC_CLASSES):
                seen.add(decode_line((await reader.readuntil(b"\r\n"))[:-2])["topicID"])
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        rest = await asyncio.wait_for(reader.read(), WAIT_S)  # EOF after whole lines
        assert rest == b"" or rest.endswith(b"\r\n")
        writer.close()
        await writer.wait_closed()

    run(main)
