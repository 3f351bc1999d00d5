"""Sentinels shared by every sans-IO decoder: need more bytes, and the stream has ended."""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["NEED_DATA", "STREAM_END", "NeedData", "StreamEnd"]


class NeedData(enum.Enum):
    """Returned by ``next_event()`` when the buffered bytes hold no complete message yet."""

    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"

    __str__ = __repr__


class StreamEnd(enum.Enum):
    """Returned by ``next_event()`` once the stream was closed and every message was taken."""

    STREAM_END = "STREAM_END"

    def __repr__(self) -> str:
        return "STREAM_END"

    __str__ = __repr__


NEED_DATA: Final = NeedData.NEED_DATA
STREAM_END: Final = StreamEnd.STREAM_END
