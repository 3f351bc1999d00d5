"""M2 cell controller (ts_m2com drop-ins): ``TcpClient``, ``Controller`` and ``MockM2``."""

from daqwire.generated.m2 import CommandStatus, MsgType
from daqwire.lsst.m2.commands import CommandFailedError, CommandTimeoutError, CommandTracker
from daqwire.lsst.m2.controller import Controller
from daqwire.lsst.m2.mock import MockM2, run_mock_m2
from daqwire.lsst.m2.tcp_client import TcpClient, index_generator

__all__ = [
    "CommandFailedError",
    "CommandStatus",
    "CommandTimeoutError",
    "CommandTracker",
    "Controller",
    "MockM2",
    "MsgType",
    "TcpClient",
    "index_generator",
    "run_mock_m2",
]
