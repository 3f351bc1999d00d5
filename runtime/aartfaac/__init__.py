"""AARTFAAC image streams: reader, connector, merger, emulator and the tkp.stream drop-in API.

Native API: ``WindowReader``/``AsyncWindowReader`` (one socket), ``Connector`` (one stream,
reconnecting), ``Merger`` (group by DATE-OBS), ``MergedStreams`` (N streams merged) and
``Emulator``. Drop-in for ``tkp.stream``: ``read_window``, ``reconstruct_fits``, ``merger``,
``stream_generator`` and the rest, with the same names and contracts.
"""

from __future__ import annotations

from daqwire.aartfaac.compat import (
    CHECKSUM,
    connection_handler,
    connector,
    extract_timestamp,
    getbytes,
    merger,
    read_window,
    reconstruct_fits,
    stream_generator,
)
from daqwire.aartfaac.connection import Connector, StreamStats, backoff_delay
from daqwire.aartfaac.emulator import Emulator, EmulatorPortStats
from daqwire.aartfaac.framing import FramePool, FramerStats, WindowFramer
from daqwire.aartfaac.merging import BACK_LOG, MergedGroup, Merger, MergerStats, parse_date_obs
from daqwire.aartfaac.reader import (
    DEFAULT_TIMEOUT_S,
    AsyncWindowReader,
    StreamImage,
    WindowReader,
    stream_name,
)
from daqwire.aartfaac.streams import MergedStreams, parse_address

__all__ = [
    "BACK_LOG",
    "CHECKSUM",
    "DEFAULT_TIMEOUT_S",
    "AsyncWindowReader",
    "Connector",
    "Emulator",
    "EmulatorPortStats",
    "FramePool",
    "FramerStats",
    "MergedGroup",
    "MergedStreams",
    "Merger",
    "MergerStats",
    "StreamImage",
    "StreamStats",
    "WindowFramer",
    "WindowReader",
    "backoff_delay",
    "connection_handler",
    "connector",
    "extract_timestamp",
    "getbytes",
    "merger",
    "parse_address",
    "parse_date_obs",
    "read_window",
    "reconstruct_fits",
    "stream_generator",
    "stream_name",
]
