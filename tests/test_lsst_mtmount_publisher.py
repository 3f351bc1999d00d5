"""MTMount publishers: InProcessPublisher (callbacks, bounded queue, counts) and ZmqPublisher
delivering ``[topic, JSON line]`` to real ZeroMQ SUB sockets on loopback, also fed by a
TelemetryClient reading a MockTma. Nothing asserts a duration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import zmq

from daqwire.errors import LocalProtocolError
from daqwire.generated.lsst_tcpip import encode_line
from daqwire.lsst.mtmount import (
    SAL_TOPICS,
    InProcessPublisher,
    MockTma,
    Publisher,
    TelemetryClient,
    ZmqPublisher,
    ZmqSubscriber,
    array_lengths,
)
from tests.lsst_peers import WAIT_S, assert_no_stray_tasks


def run(main: Callable[[], Awaitable[None]]) -> None:
    async def wrapper() -> None:
        await asyncio.wait_for(main(), 3 * WAIT_S)
        await assert_no_stray_tasks()

    asyncio.run(wrapper())


# --- InProcessPublisher -----------------------------------------------------------------------


def test_in_process_callbacks_counts_and_last() -> None:
    calls: list[tuple[str, str, dict[str, Any]]] = []

    def sync_all(topic: str, data: dict[str, Any]) -> None:
        calls.append(("sync_all", topic, data))

    async def async_azimuth(topic: str, data: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        calls.append(("async_azimuth", topic, data))

    async def main() -> None:
        publisher = InProcessPublisher()
        assert isinstance(publisher, Publisher)
        publisher.subscribe(sync_all)
        publisher.subscribe(async_azimuth, "tel_azimuth")
        await publisher.publish("tel_azimuth", {"actualPosition": 1.0})
        await publisher.publish("evt_clockOffset", {"offset": 0.5})
        publisher.unsubscribe(async_azimuth, "tel_azimuth")
        publisher.unsubscribe(async_azimuth, "tel_elevation")  # unknown: ignored
        await publisher.publish("tel_azimuth", {"actualPosition": 2.0})
        assert calls == [
            ("async_azimuth", "tel_azimuth", {"actualPosition": 1.0}),
            ("sync_all", "tel_azimuth", {"actualPosition": 1.0}),
            ("sync_all", "evt_clockOffset", {"offset": 0.5}),
            ("sync_all", "tel_azimuth", {"actualPosition": 2.0}),
        ]
        assert publisher.counts == {"tel_azimuth": 2, "evt_clockOffset": 1}
        assert publisher.last["tel_azimuth"] == {"actualPosition": 2.0}
        assert await publisher.get(WAIT_S) == ("tel_azimuth", {"actualPosition": 1.0})

    run(main)


def test_in_process_queue_drops_the_oldest() -> None:
    async def main() -> None:
        publisher = InProcessPublisher(queue_size=3)
        for i in range(5):
            await publisher.publish("tel_azimuth", {"i": i})
        assert publisher.dropped == 2
        assert publisher.counts["tel_azimuth"] == 5
        got = [await publisher.get(WAIT_S) for _ in range(3)]
        assert [data["i"] for _, data in got] == [2, 3, 4]
        with pytest.raises(TimeoutError):
            await publisher.get(0.01)

    run(main)


def test_in_process_failing_callback_is_counted_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def broken(topic: str, data: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    async def main() -> None:
        publisher = InProcessPublisher()
        publisher.subscribe(broken)
        publisher.subscribe(lambda topic, data: seen.append(topic))
        await publisher.publish("tel_azimuth", {})
        assert publisher.callback_errors == 1
        assert seen == ["tel_azimuth"]

    run(main)
    assert any("Subscriber callback" in r.getMessage() for r in caplog.records)


def test_in_process_close_and_no_queue() -> None:
    async def main() -> None:
        publisher = InProcessPublisher(queue_size=0)
        assert publisher.queue is None
        with pytest.raises(RuntimeError, match="no queue"):
            await publisher.get()
        await publisher.publish("a", {})
        await publisher.close()
        await publisher.close()
        await publisher.publish("a", {})
        assert publisher.closed and publisher.counts == {"a": 1}

    run(main)
    with pytest.raises(ValueError):
        InProcessPublisher(queue_size=-1)


# --- ZmqPublisher -----------------------------------------------------------------------------


async def until_received(publisher: ZmqPublisher, sock: zmq.Socket[Any]) -> None:
    """Publish probes until the SUB socket gets one (ZeroMQ's subscription handshake)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            await publisher.publish("probe", {})
            if sock.poll(20):
                while sock.poll(20):
                    sock.recv_multipart()
                return


def test_zmq_publisher_sends_topic_and_generated_json_line() -> None:
    data = {"actualPosition": 1.5, "actualPositionTimestamp": 1795266220.8117886, "x": [1, 2]}

    async def main() -> None:
        publisher = ZmqPublisher("tcp://127.0.0.1:*")
        assert isinstance(publisher, Publisher)
        assert publisher.endpoint.startswith("tcp://127.0.0.1:")
        context: zmq.Context[Any] = zmq.Context()
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(publisher.endpoint)
        try:
            await until_received(publisher, sub)
            await publisher.publish("tel_azimuth", data)
            await publisher.publish("evt_clockOffset", {"offset": float("nan")})
            assert sub.poll(int(WAIT_S * 1000))
            assert sub.recv_multipart() == [b"tel_azimuth", encode_line(data)]
            assert sub.poll(int(WAIT_S * 1000))
            assert sub.recv_multipart() == [b"evt_clockOffset", b'{"offset": NaN}\r\n']
            with pytest.raises(LocalProtocolError):
                await publisher.publish("bad", {"x": object()})
            assert publisher.counts["tel_azimuth"] == 1
        finally:
            sub.close()
            context.term()
            await publisher.close()
            await publisher.close()
        await publisher.publish("tel_azimuth", data)  # after close: ignored
        assert publisher.closed

    run(main)


def test_zmq_subscriber_filters_by_topic_prefix() -> None:
    async def main() -> None:
        publisher = ZmqPublisher("tcp://127.0.0.1:*")
        subscriber = ZmqSubscriber(publisher.endpoint, topics=("evt_", "probe"))
        try:
            async with asyncio.timeout(WAIT_S):
                while subscriber.recv_nowait() is None:
                    await publisher.publish("probe", {})
                    await asyncio.sleep(0.02)
            while subscriber.recv_nowait() is not None:
                pass
            await publisher.publish("tel_azimuth", {"a": 1})
            await publisher.publish("evt_telemetryConnected", {"connected": True})
            assert await subscriber.recv(WAIT_S) == ("evt_telemetryConnected", {"connected": True})
            with pytest.raises(TimeoutError):
                await subscriber.recv(0.05)
        finally:
            subscriber.close()
            subscriber.close()
            await publisher.close()

    run(main)


def test_zmq_publisher_can_connect_to_a_binding_subscriber() -> None:
    async def main() -> None:
        context: zmq.Context[Any] = zmq.Context()
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"tel_")
        port = sub.bind_to_random_port("tcp://127.0.0.1")
        publisher = ZmqPublisher(f"tcp://127.0.0.1:{port}", bind=False)
        try:
            async with asyncio.timeout(WAIT_S):
                while not sub.poll(20):
                    await publisher.publish("tel_x", {"n": 1})
            assert sub.recv_multipart() == [b"tel_x", b'{"n": 1}\r\n']
        finally:
            await publisher.close()
            sub.close()
            context.term()

    run(main)


def test_zmq_publisher_bad_endpoint_leaves_nothing_open() -> None:
    with pytest.raises(zmq.ZMQError):
        ZmqPublisher("nonsense://")


def test_telemetry_client_to_zmq_subscriber() -> None:
    """MockTma -> TelemetryClient -> ZmqPublisher -> SUB: every topic, whole arrays."""

    async def main() -> None:
        publisher = ZmqPublisher("tcp://127.0.0.1:*")
        subscriber = ZmqSubscriber(publisher.endpoint, topics=("tel_", "evt_"))
        seen: dict[str, dict[str, Any]] = {}
        try:
            async with MockTma(rate_hz=20) as mock:
                client = TelemetryClient(
                    "127.0.0.1", mock.port, publisher=publisher, telemetry_timeout=WAIT_S
                )
                await client.start_task
                wanted = {f"tel_{name}" for name in SAL_TOPICS.values()}
                async with asyncio.timeout(WAIT_S):
                    while not wanted <= seen.keys():
                        topic, data = await subscriber.recv()
                        seen[topic] = data
                await client.close()
                assert not client.owns_publisher and not publisher.closed
        finally:
            subscriber.close()
            await publisher.close()
        for topic_id, name in SAL_TOPICS.items():
            data = seen[f"tel_{name}"]
            for field, count in array_lengths(topic_id).items():
                assert len(data[field]) == count
            assert isinstance(data["timestamp"], float)

    run(main)
