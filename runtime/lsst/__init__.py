"""LSST TCP/JSON line protocols: a drop-in for ``lsst.ts.tcpip`` plus M2 and MTMount clients.

The base layer (``Client``, ``OneClientServer``, ``OneClientReadLoopServer``) keeps the
ts_tcpip names and semantics and fixes its failure modes: a configurable line limit with
resync, typed decode errors that never kill a connection, connect timeout, reconnection.
The M2 and MTMount layers live in ``daqwire.lsst.m2`` and ``daqwire.lsst.mtmount``.
"""

from __future__ import annotations

from daqwire.lsst.base import (
    BaseClientOrServer,
    ConnectCallbackType,
    PeerClosedError,
    StreamStats,
    close_stream_writer,
)
from daqwire.lsst.client import Client
from daqwire.lsst.constants import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_ENCODING,
    DEFAULT_HEARTBEAT_SEND_SLEEP,
    DEFAULT_LINE_LIMIT,
    DEFAULT_LOCALHOST,
    DEFAULT_MAX_HEARTBEAT_INTERVAL,
    DEFAULT_MONITOR_CONNECTION_INTERVAL,
    DEFAULT_TERMINATOR,
    HEARTBEAT,
    LOCAL_HOST,
    LOCALHOST_IPV4,
    LOCALHOST_IPV6,
    TERMINATOR,
)
from daqwire.lsst.reconnect import ReconnectPolicy
from daqwire.lsst.server import OneClientReadLoopServer, OneClientServer

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_ENCODING",
    "DEFAULT_HEARTBEAT_SEND_SLEEP",
    "DEFAULT_LINE_LIMIT",
    "DEFAULT_LOCALHOST",
    "DEFAULT_MAX_HEARTBEAT_INTERVAL",
    "DEFAULT_MONITOR_CONNECTION_INTERVAL",
    "DEFAULT_TERMINATOR",
    "HEARTBEAT",
    "LOCALHOST_IPV4",
    "LOCALHOST_IPV6",
    "LOCAL_HOST",
    "TERMINATOR",
    "BaseClientOrServer",
    "Client",
    "ConnectCallbackType",
    "OneClientReadLoopServer",
    "OneClientServer",
    "PeerClosedError",
    "ReconnectPolicy",
    "StreamStats",
    "close_stream_writer",
]
