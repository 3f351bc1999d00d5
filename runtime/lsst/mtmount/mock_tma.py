"""MockTma: a TMA telemetry server streaming all 26 MTMount topics, for tests and demos.

Serves one client at a time (the base ``OneClientServer``) and streams every topic at its
rate with the real field names and array lengths of ``daqwire.generated.mtmount_telemetry``,
each frame encoded by the generated encoder. Values are plausible and smooth: azimuth and
elevation sweep slowly (position, velocity, acceleration, jerk consistent), drive currents
follow the motion, temperatures, pressures and the like drift around typical values. All
timestamps of one frame are the TAI time it was made (as the reference mock does).

Unlike the reference mock TMA (topics 6, 15 and 8 only, and it needs a client on its command
port), this one has no command port.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable
from functools import cache
from typing import Any

from daqwire.generated.mtmount_telemetry import (
    SCHEMAS,
    TELEMETRY_PORT,
    Message,
    encode,
)
from daqwire.lsst.mtmount.telemetry_client import TOPIC_CLASSES, current_tai
from daqwire.lsst.server import OneClientServer

__all__ = ["MockTma", "array_lengths", "make_message", "run_mock_tma"]

logger = logging.getLogger(__name__)

#: (keyword in the lower-cased field name, typical value, amplitude of the slow drift)
_TYPICAL: tuple[tuple[str, float, float], ...] = (
    ("humidity", 35.0, 3.0),
    ("temperature", 12.0, 1.5),
    ("filmthickness", 0.06, 0.005),
    ("pressure", 6.5, 0.2),
    ("voltage", 400.0, 2.0),
    ("current", 2.0, 0.3),
    ("flow", 20.0, 1.0),
    ("valve", 45.0, 5.0),
    ("percentage", 20.0, 5.0),
    ("torque", 150.0, 20.0),
    ("blown", 0.0, 0.0),
    ("version", 3.0, 0.0),
    ("position", 0.0, 0.5),
    ("velocity", 0.0, 0.01),
)
#: azimuth sweep: amplitude (deg) and period (s); elevation: centre, amplitude, period
_AZ_AMPLITUDE, _AZ_PERIOD = 90.0, 1200.0
_EL_CENTRE, _EL_AMPLITUDE, _EL_PERIOD = 55.0, 25.0, 900.0
#: axis fields of azimuth, elevation and the camera cable wrap -> index in the sweep tuple
_AXIS_FIELDS = {
    "actualPosition": 0,
    "demandPosition": 0,
    "actualVelocity": 1,
    "demandVelocity": 1,
    "actualAcceleration": 2,
    "actualJerk": 3,
}


@cache
def array_lengths(topic_id: int) -> dict[str, int]:
    """Element count of every array field of a topic, from its generated JSON Schema."""
    cls = TOPIC_CLASSES[topic_id]
    keys = set(SCHEMAS[cls.MESSAGE_NAME]["properties"])
    lengths: dict[str, int] = {}
    for field in dataclasses.fields(cls):
        if not str(field.type).startswith("tuple"):
            continue
        name, suffix = field.name, ""
        if name.endswith("Timestamp") and f"{name[:-9]}1Timestamp" in keys:
            name, suffix = name[:-9], "Timestamp"
        count = 0
        while f"{name}{count + 1}{suffix}" in keys:
            count += 1
        lengths[field.name] = count
    return lengths


def _sweep(t: float, centre: float, amplitude: float, period: float) -> tuple[float, ...]:
    """Position, velocity, acceleration and jerk of a sine sweep at time t."""
    w = 2.0 * math.pi / period
    s, c = math.sin(w * t), math.cos(w * t)
    return (
        centre + amplitude * s,
        amplitude * w * c,
        -amplitude * w * w * s,
        -amplitude * w * w * w * c,
    )


def _typical(name: str, index: int, t: float) -> float:
    lower = name.lower()
    for keyword, value, amplitude in _TYPICAL:
        if keyword in lower:
            phase = 0.7 * index + (zlib.crc32(lower.encode()) % 97) / 15.0
            return round(value + amplitude * math.sin(t / 30.0 + phase), 6)
    return 0.0


def make_message(topic_id: int, tai: float, t: float) -> Message:
    """One plausible sample of ``topic_id`` at elapsed time ``t`` s, stamped ``tai``."""
    cls = TOPIC_CLASSES[topic_id]
    lengths = array_lengths(topic_id)
    az = _sweep(t, 0.0, _AZ_AMPLITUDE, _AZ_PERIOD)
    el = _sweep(t, _EL_CENTRE, _EL_AMPLITUDE, _EL_PERIOD)
    axis = {6: az, 15: el, 8: _sweep(t, 0.0, 0.5 * _AZ_AMPLITUDE, _AZ_PERIOD)}.get(topic_id)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        name = field.name
        count = lengths.get(name)
        if name.endswith("Timestamp") or name == "timestamp":
            value: Any = tai if count is None else (tai,) * count
        elif axis is not None and name in _AXIS_FIELDS:
            value = round(axis[_AXIS_FIELDS[name]], 9)
        elif topic_id in (5, 14) and count is not None:
            accel = (az if topic_id == 5 else el)[2]
            value = tuple(round(2.0 + 4000.0 * accel + 0.01 * i, 6) for i in range(count))
        elif count is not None:
            value = tuple(_typical(name, i, t) for i in range(count))
        elif topic_id == 15 and name == "elevationInclinometer":
            value = round(el[0] + 0.002, 9)
        else:
            value = _typical(name, 0, t)
        values[name] = value
    return cls(**values)


class MockTma:
    """A TCP server streaming MTMount telemetry to one client at a time.

    ``rate_hz`` is the rate of every topic, ``topic_rates_hz`` overrides it per topic id
    (0 = never sent). ``history_size`` > 0 keeps the last sent messages in ``history`` as
    ``(topic_id, message)``. ``inject(data)`` writes raw bytes to the client between frames.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        rate_hz: float = 10.0,
        topic_rates_hz: dict[int, float] | None = None,
        history_size: int = 0,
        log: logging.Logger | None = None,
    ) -> None:
        rates = {topic_id: float(rate_hz) for topic_id in TOPIC_CLASSES}
        for topic_id, rate in (topic_rates_hz or {}).items():
            if topic_id not in rates:
                raise ValueError(f"unknown topic id {topic_id}")
            rates[topic_id] = float(rate)
        if any(rate < 0 or not math.isfinite(rate) for rate in rates.values()):
            raise ValueError("rates must be finite and >= 0")
        self.host = host
        self._port = port
        self.rates_hz = rates
        self.log = log or logger
        self.sent_counts: Counter[int] = Counter()
        self.history: deque[tuple[int, Message]] = deque(maxlen=max(history_size, 0))
        self._history_size = history_size
        self._server: OneClientServer | None = None
        self._stream_task: asyncio.Task[None] | None = None
        self._client_connected = asyncio.Event()
        self._t0 = time.monotonic()
        self._closed = False

    @property
    def port(self) -> int:
        """The listening port (the OS's choice when constructed with 0, after start())."""
        return self._port

    @property
    def connected(self) -> bool:
        """True while a client is connected."""
        return self._server is not None and self._server.connected

    async def start(self) -> None:
        """Start listening; idempotent (RuntimeError once closed)."""
        if self._closed:
            raise RuntimeError("MockTma is closed")
        if self._server is not None:
            await self._server.start_task
            return
        self._server = OneClientServer(
            self.host,
            self._port,
            log=self.log,
            connect_callback=self._connect_callback,
            name="MockTma",
        )
        await self._server.start_task
        self._port = int(self._server.port or 0)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until a client is connected."""
        if self._server is None:
            raise RuntimeError("MockTma is not started")
        async with asyncio.timeout(timeout):
            # ``connected`` turns false at the peer's EOF, before the server reacts to it
            while not self.connected:
                await asyncio.sleep(0.005)
            await self._client_connected.wait()

    async def inject(self, data: bytes) -> None:
        """Write raw bytes (anything, e.g. ``b"not json\\r\\n"``) to the client now."""
        if self._server is None:
            raise ConnectionError("Not connected")
        await self._server.write(data)

    async def send(self, message: Message) -> None:
        """Encode one message with the generated encoder and write it to the client now."""
        await self.inject(encode(message))

    async def close(self) -> None:
        """Stop streaming and close the client and the listening socket; idempotent."""
        self._closed = True
        await self._stop_stream()
        if self._server is not None:
            await self._server.close()

    async def __aenter__(self) -> MockTma:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- streaming -------------------------------------------------------------------------

    async def _connect_callback(self, server: OneClientServer) -> None:
        if server.connected:
            self._client_connected.set()
        else:
            self._client_connected.clear()
        await self._stop_stream()
        if server.connected and not self._closed:
            self._stream_task = asyncio.create_task(self._stream(server))

    async def _stop_stream(self) -> None:
        task = self._stream_task
        if task is None or task is asyncio.current_task():
            return
        self._stream_task = None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _stream(self, server: OneClientServer) -> None:
        periods = {tid: 1.0 / rate for tid, rate in self.rates_hz.items() if rate > 0}
        if not periods:
            return
        start = time.monotonic()
        due = dict.fromkeys(periods, start)
        try:
            while server.connected:
                now = time.monotonic()
                ready = [tid for tid in periods if due[tid] <= now]
                if ready:
                    tai = current_tai()
                    lines = []
                    for tid in ready:
                        message = make_message(tid, tai, now - self._t0)
                        lines.append(encode(message))
                        if self._history_size > 0:
                            self.history.append((tid, message))
                        # keep the cadence, but never burst to catch up after a stall
                        due[tid] = max(due[tid] + periods[tid], now)
                    await server.writelines(lines)
                    self.sent_counts.update(ready)
                await asyncio.sleep(max(0.0, min(due.values()) - time.monotonic()))
        except ConnectionError:
            self.log.info("MockTma: the client went away")


async def run_mock_tma(
    host: str = "127.0.0.1",
    port: int = TELEMETRY_PORT,
    *,
    rate_hz: float = 10.0,
    topic_rates_hz: dict[int, float] | None = None,
    ready: Callable[[MockTma], object] | None = None,
) -> None:
    """Serve a MockTma until cancelled (the CLI's ``mock-tma``); ``ready(mock)`` once listening."""
    mock = MockTma(host, port, rate_hz=rate_hz, topic_rates_hz=topic_rates_hz)
    try:
        await mock.start()
        logger.info("MockTma streaming %d topics on %s:%d", len(TOPIC_CLASSES), host, mock.port)
        if ready is not None:
            ready(mock)
        await asyncio.Event().wait()
    finally:
        await mock.close()
