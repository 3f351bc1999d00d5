"""The LSST part of ``daqwire demo``: the mock TMA streaming to the MTMount telemetry client."""

from __future__ import annotations

import asyncio
from typing import Any, TextIO

from daqwire.lsst.mtmount.mock_tma import MockTma
from daqwire.lsst.mtmount.publisher import InProcessPublisher
from daqwire.lsst.mtmount.telemetry_client import SAL_TOPICS, TelemetryClient

__all__ = ["run_lsst_demo"]


def run_lsst_demo(
    out: TextIO, *, section: int = 6, run_s: float = 1.5, rate_hz: float = 10.0
) -> int:
    """Stream every TMA topic into a TelemetryClient with one bad line; 0 when all arrived."""
    print(
        f"\n== {section}. LSST: the mock TMA streaming 26 telemetry topics to the MTMount "
        f"telemetry client for {run_s:g} s",
        file=out,
    )
    return asyncio.run(_run(out, run_s=run_s, rate_hz=rate_hz))


async def _run(out: TextIO, *, run_s: float, rate_hz: float) -> int:
    publisher = InProcessPublisher(queue_size=0)
    first: dict[str, dict[str, Any]] = {}

    def keep_first(topic: str, data: dict[str, Any]) -> None:
        first.setdefault(topic, data)

    publisher.subscribe(keep_first)
    async with MockTma(port=0, rate_hz=rate_hz) as tma:
        client = TelemetryClient("127.0.0.1", tma.port, publisher=publisher)
        print(f"mock TMA on 127.0.0.1:{tma.port}, {rate_hz:g} Hz per topic", file=out)
        try:
            await client.start_task
            if client.start_error is not None:
                print(f"could not connect: {client.start_error!r}", file=out)
                return 1
            await asyncio.sleep(run_s / 2)
            await tma.inject(b'{"topicID": 6, "actualPosition": \xff}\r\n')
            await asyncio.sleep(run_s / 2)
            connected = client.connected
        finally:
            await client.close()
    stats = client.stats
    topics = [t for t in publisher.counts if t.removeprefix("tel_") in SAL_TOPICS.values()]
    azimuth = first.get("tel_azimuth", {})
    drives = first.get("tel_azimuthDrives", {})
    print(
        f"published {stats.frames} samples of {len(topics)}/{len(SAL_TOPICS)} topics; "
        f"clock offsets {stats.clock_offsets}, heartbeats {stats.heartbeats}",
        file=out,
    )
    if azimuth and drives:
        print(
            f"tel_azimuth actualPosition {azimuth['actualPosition']:.4f} deg; "
            f"tel_azimuthDrives current: {len(drives['current'])} values "
            f"(wire keys current1..current{len(drives['current'])})",
            file=out,
        )
    print(
        f"a line of bad UTF-8 was injected: skipped {stats.malformed}, still connected {connected}",
        file=out,
    )
    if len(topics) != len(SAL_TOPICS) or stats.malformed != 1 or not connected:
        print("LSST TELEMETRY INCOMPLETE", file=out)
        return 1
    print("lsst ok", file=out)
    return 0
