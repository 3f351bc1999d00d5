"""PyExpLabSys UDP data sockets: pull, push and live sockets, clients and a live receiver.

Drop-in for ``PyExpLabSys.common.sockets`` (same class names, parameters and wire), with the
reference's silent failures fixed: every request gets a reply, UTF-8 works, ``port=0`` and
restarts work, and each socket owns its state. The wire is generated from
``specs/pyexplabsys.yaml`` (``daqwire.generated.pyexplabsys``).
"""

from __future__ import annotations

from daqwire.generated.pyexplabsys import (
    BAD_CHARS,
    OLD_DATA,
    PUSH_ACK,
    PUSH_ERROR,
    PUSH_EXCEP,
    PUSH_RET,
    UNKNOWN_COMMAND,
    OldData,
)
from daqwire.pyexplabsys.client import (
    AsyncPullClient,
    AsyncPushClient,
    DateDataPullClient,
    PullClient,
    PushClient,
)
from daqwire.pyexplabsys.live import LiveSocket
from daqwire.pyexplabsys.live_server import LiveServer
from daqwire.pyexplabsys.pull import CommonDataPullSocket, DataPullSocket, DateDataPullSocket
from daqwire.pyexplabsys.push import CallBackThread, DataPushSocket
from daqwire.pyexplabsys.registry import socket_server_status
from daqwire.pyexplabsys.system_status import system_status
from daqwire.pyexplabsys.udp import PortStillReserved

__all__ = [
    "BAD_CHARS",
    "OLD_DATA",
    "PUSH_ACK",
    "PUSH_ERROR",
    "PUSH_EXCEP",
    "PUSH_RET",
    "UNKNOWN_COMMAND",
    "AsyncPullClient",
    "AsyncPushClient",
    "CallBackThread",
    "CommonDataPullSocket",
    "DataPullSocket",
    "DataPushSocket",
    "DateDataPullClient",
    "DateDataPullSocket",
    "LiveServer",
    "LiveSocket",
    "OldData",
    "PortStillReserved",
    "PullClient",
    "PushClient",
    "socket_server_status",
    "system_status",
]
