"""Constants of the ts_tcpip-compatible layer (names as in ``lsst.ts.tcpip``, plus ours)."""

from __future__ import annotations

from typing import Final

from daqwire.generated import lsst_tcpip as _codec

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
    "HEARTBEAT_CHECK_INTERVAL",
    "KEEPALIVE_OPTIONS",
    "LOCALHOST_IPV4",
    "LOCALHOST_IPV6",
    "LOCAL_HOST",
    "READ_CHUNK_BYTES",
    "TERMINATOR",
]

LOCALHOST_IPV4: Final[str] = _codec.LOCALHOST_IPV4
LOCALHOST_IPV6: Final[str] = _codec.LOCALHOST_IPV6
DEFAULT_LOCALHOST: Final = LOCALHOST_IPV4
#: deprecated ts_tcpip alias of ``DEFAULT_LOCALHOST``
LOCAL_HOST: Final = DEFAULT_LOCALHOST

DEFAULT_TERMINATOR: Final[bytes] = _codec.TERMINATOR
#: deprecated ts_tcpip alias of ``DEFAULT_TERMINATOR``
TERMINATOR: Final[bytes] = DEFAULT_TERMINATOR
DEFAULT_ENCODING: Final[str] = _codec.ENCODING
DEFAULT_MONITOR_CONNECTION_INTERVAL: Final[float] = _codec.DEFAULT_MONITOR_CONNECTION_INTERVAL


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode(DEFAULT_ENCODING)


#: body of the heartbeat line (bytes, as ts_tcpip; the generated constant is text)
HEARTBEAT: Final[bytes] = _as_bytes(_codec.HEARTBEAT)
DEFAULT_HEARTBEAT_SEND_SLEEP: Final = 1.0
DEFAULT_MAX_HEARTBEAT_INTERVAL: Final[float] = _codec.DEFAULT_MAX_HEARTBEAT_INTERVAL
#: how often a server with heartbeat monitoring checks the time of the last heartbeat (s)
HEARTBEAT_CHECK_INTERVAL: Final = 1.0

#: longest accepted line body in bytes (terminator excluded); ours, the reference hard-wires 64 KiB
DEFAULT_LINE_LIMIT: Final[int] = _codec.MAX_LINE_BYTES
#: seconds a connect may take (ours; the reference Client has none of its own)
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
#: seconds to wait for a closing socket to finish (the reference lost its bound in 2025-08)
DEFAULT_CLOSE_TIMEOUT: Final = 5.0
#: bytes asked of the socket per read
READ_CHUNK_BYTES: Final = 65536

#: (option name, value) set on every connected or accepted socket, as ts_tcpip does
KEEPALIVE_OPTIONS: Final = (
    ("TCP_KEEPIDLE", _codec.KEEPALIVE_IDLE_S),
    ("TCP_KEEPCNT", _codec.KEEPALIVE_COUNT),
    ("TCP_KEEPINTVL", _codec.KEEPALIVE_INTERVAL_S),
)
