"""MTMount (TMA) telemetry: the telemetry client, where it publishes, and a mock TMA.

``TelemetryClient`` is a drop-in for ts_mtmount's client (same constructor, SAL topic names and
data) that publishes through a ``Publisher`` (in-process callbacks/queue, ZeroMQ, or your own)
and survives malformed lines. ``MockTma`` streams all 26 topics for tests and demos.
"""

from __future__ import annotations

from daqwire.lsst.mtmount.mock_tma import MockTma, array_lengths, make_message, run_mock_tma
from daqwire.lsst.mtmount.publisher import (
    Callback,
    InProcessPublisher,
    Publisher,
    ZmqPublisher,
    ZmqSubscriber,
)
from daqwire.lsst.mtmount.telemetry_client import (
    SAL_TOPICS,
    TAI_MINUS_UTC_S,
    TOPIC_CLASSES,
    TelemetryClient,
    TelemetryStats,
    current_tai,
)

__all__ = [
    "SAL_TOPICS",
    "TAI_MINUS_UTC_S",
    "TOPIC_CLASSES",
    "Callback",
    "InProcessPublisher",
    "MockTma",
    "Publisher",
    "TelemetryClient",
    "TelemetryStats",
    "ZmqPublisher",
    "ZmqSubscriber",
    "array_lengths",
    "current_tai",
    "make_message",
    "run_mock_tma",
]
