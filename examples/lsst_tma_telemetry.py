"""A TMA telemetry listener: the MTMount TelemetryClient on a mock TMA, a bad line mid-stream.

The same client ts_mtmount's telemetry process runs (TelemetryClient(host, port) reading the
TMA's JSON lines and publishing tel_<topic>), here with an in-process publisher instead of
SAL and a MockTma on a free loopback port. It runs about a second.
Run it from the repository root: python examples/lsst_tma_telemetry.py
"""

import asyncio

from daqwire.lsst.mtmount import SAL_TOPICS, InProcessPublisher, MockTma, TelemetryClient


async def main() -> None:
    async with MockTma(port=0, rate_hz=20.0) as tma:
        publisher = InProcessPublisher(queue_size=0)
        azimuth: list[dict[str, float]] = []
        publisher.subscribe(lambda topic, data: azimuth.append(data), "tel_azimuth")

        client = TelemetryClient("127.0.0.1", tma.port, publisher=publisher)
        await client.start_task
        await asyncio.sleep(0.5)
        await tma.inject(b"this is not json\r\n")  # the reference client gives up here
        for _ in range(100):  # until the client has read that far (at most 5 s)
            if client.stats.malformed:
                break
            await asyncio.sleep(0.05)
        before = client.stats.frames
        await asyncio.sleep(0.3)
        after = client.stats.frames
        await client.close()

        topics = [t for t in publisher.counts if t.removeprefix("tel_") in SAL_TOPICS.values()]
        print(f"telemetry topics published: {len(topics)} of {len(SAL_TOPICS)}")
        print(f"malformed lines skipped: {client.stats.malformed}")
        print(f"still reading after the bad line: {after > before}")
        last = azimuth[-1]
        print(
            f"tel_azimuth: actualPosition {last['actualPosition']:.4f} deg "
            f"at TAI {last['actualPositionTimestamp']:.3f}"
        )
        print(f"events: {sorted(t for t in publisher.counts if t.startswith('evt_'))}")
        print(f"heartbeats: {publisher.counts['tel_telemetryClientHeartbeat'] >= 1}")


asyncio.run(main())
