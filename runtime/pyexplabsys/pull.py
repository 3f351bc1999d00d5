"""Pull sockets: DateDataPullSocket and DataPullSocket serve each codename's latest point.

Drop-in for PyExpLabSys ``common.sockets``: same constructor parameters and methods. The
wire is handled by the generated ``PullDispatcher``; this module keeps the points, their
timeouts and the activity clock, and validates points when they are set (the reference
stored anything and then failed silently when a reply could not be written).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from daqwire.errors import UnknownRequest
from daqwire.generated.pyexplabsys import (
    BAD_CHARS,
    DATA_PULL_PORT,
    DATE_PULL_PORT,
    OldData,
    Point,
    PullDispatcher,
)
from daqwire.pyexplabsys.registry import Activity, Clock, register, unregister
from daqwire.pyexplabsys.system_status import system_status
from daqwire.pyexplabsys.udp import Address, UdpServer

__all__ = ["CommonDataPullSocket", "DataPullSocket", "DateDataPullSocket", "check_codenames"]

logger = logging.getLogger(__name__)

_STALE = OldData()
_VALUE_TYPES = (int, float, bool, str, type(None))


def check_codenames(codenames: Iterable[str]) -> list[str]:
    """The codenames as a list; ValueError (the reference's texts) for duplicates or BAD_CHARS."""
    names = list(codenames)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"Codenames must be strings, not {type(name).__name__}: {name!r}")
        if names.count(name) > 1:
            raise ValueError(f"Codenames must be unique; {name!r} is present more than once")
        for char in BAD_CHARS:
            if char in name:
                raise ValueError(f"The character {char!r} is not allowed in the codenames")
    return names


def _timeouts(timeouts: Any, codenames: Sequence[str]) -> dict[str, float | None]:
    if timeouts is None or isinstance(timeouts, int | float):
        values = [timeouts] * len(codenames)
    elif isinstance(timeouts, str | bytes):
        raise TypeError("timeouts is a number, None, or a list of them (one per codename)")
    else:
        values = list(timeouts)
        if len(values) != len(codenames):
            raise ValueError(
                "If a list of timeouts is supplied, it must have as many items as there are in "
                "codenames"
            )
    for v in values:
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v < 0):
            raise ValueError(f"A timeout is a number of seconds >= 0 or None, not {v!r}")
    return {c: (None if v is None else float(v)) for c, v in zip(codenames, values, strict=True)}


def check_point(codename: str, point: Any) -> Point:
    """``point`` as an (x, y) tuple, or a clear error when a reply could not carry it."""
    if isinstance(point, str | bytes) or not isinstance(point, Sequence):
        raise TypeError(f"The point of {codename!r} is an (x, y) pair, not {point!r}")
    if len(point) != 2:
        raise ValueError(
            f"The point of {codename!r} has {len(point)} values; a point is exactly (x, y)"
        )
    x, y = point
    for value in (x, y):
        if not isinstance(value, _VALUE_TYPES):
            raise TypeError(
                f"The point of {codename!r} holds a {type(value).__name__}: {value!r}; "
                "values are int, float, bool, str or None"
            )
        if isinstance(value, str):
            for char in BAD_CHARS:
                if char in value:
                    raise ValueError(
                        f"The point of {codename!r} holds the text {value!r} with {char!r}, "
                        "a separator of the raw replies"
                    )
    return (x, y)


class CommonDataPullSocket:
    """What the two pull sockets share: codenames, points, timeouts, the server thread."""

    socket_type = "common"
    #: the port when none is given (9000 for date sockets, 9010 for data sockets)
    default_port = 0

    def __init__(
        self,
        name: str,
        codenames: Iterable[str],
        port: int | None = None,
        default_x: Any = 0.0,
        default_y: Any = 0.0,
        timeouts: Any = None,
        check_activity: bool = True,
        activity_timeout: float = 900,
        poke_on_set: bool = True,
        *,
        host: str = "",
        clock: Clock = time.time,
    ) -> None:
        self.name = name
        self._clock = clock
        names = list(codenames)
        self._timeouts = _timeouts(timeouts, names)
        self.codenames = check_codenames(names)
        default = check_point("default", (default_x, default_y))
        for codename in self.codenames:
            self._check_x(codename, default)
        self._lock = threading.Lock()
        self._points: dict[str, Point] = dict.fromkeys(self.codenames, default)
        self._times: dict[str, float] = dict.fromkeys(self.codenames, 0.0)
        self._reset: set[str] = set()
        self._timed = [(c, t) for c, t in self._timeouts.items() if t is not None]
        self.activity = Activity(check_activity, activity_timeout, clock)
        self.poke_on_set = poke_on_set
        self.dispatcher = PullDispatcher(self, on_error=self._log_error)
        self._fresh_until = math.inf
        self._cached_at = 0.0
        self._invalidate()
        port = self.default_port if port is None else port
        self._server = UdpServer(host, port, self._serve, name=type(self).__name__)

    # ---- lifecycle ----------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        return int(self._server.port)

    @property
    def stats(self) -> Any:
        """Server counters: requests, replies, send_errors, serve_errors."""
        return self._server.stats

    def start(self) -> None:
        """Start answering requests in a background thread."""
        self._server.start()
        register(self)

    def stop(self) -> None:
        """Stop answering and close the socket: the port is free when this returns."""
        unregister(self)
        self._server.stop()

    def is_alive(self) -> bool:
        """True while the server thread runs."""
        return self._server.running

    def __enter__(self) -> CommonDataPullSocket:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def poke(self) -> None:
        """Mark the socket active (the data producer is alive)."""
        self.activity.poke()

    # ---- data -----------------------------------------------------------------------------
    def _store(self, codename: str, point: Any, timestamp: float) -> None:
        if codename not in self._points:
            raise ValueError(
                f"The codename {codename!r} is not registered; the codenames are {self.codenames}"
            )
        checked = check_point(codename, point)
        self._check_x(codename, checked)
        with self._lock:
            self._points[codename] = checked
            self._times[codename] = timestamp
            self._reset.discard(codename)
        self._invalidate()
        if self.activity.check_activity and self.poke_on_set:
            self.activity.poke()

    def _check_x(self, codename: str, point: Point) -> None:
        """Hook: the date socket needs a number as x when the codename has a timeout."""

    def mark_reset(self, codenames: Iterable[str]) -> None:
        """Serve OLD_DATA for ``codenames`` until they are set again (LiveSocket.reset)."""
        names = list(codenames)
        for c in names:
            if c not in self._points:
                raise ValueError(f"The codename {c!r} is not registered")
        with self._lock:
            self._reset.update(names)
        self._invalidate()

    def _is_stale(self, codename: str, point: Point, now: float) -> bool:
        raise NotImplementedError

    def _expiry(self, codename: str, timeout: float) -> float:
        """The time after which ``codename`` reads OLD_DATA."""
        raise NotImplementedError

    def _invalidate(self) -> None:
        """Drop the cached replies; note when the next fresh point goes stale."""
        now = self._clock() if self._timed else 0.0
        fresh_until = math.inf
        with self._lock:
            for codename, timeout in self._timed:
                if codename not in self._reset:
                    expiry = self._expiry(codename, timeout)
                    if now <= expiry < fresh_until:
                        fresh_until = expiry
        self._fresh_until = fresh_until
        self._cached_at = now
        self.dispatcher.clear_cache()

    def _current(self, codename: str, now: float) -> Point | OldData:
        point = self._points[codename]
        if codename in self._reset or self._is_stale(codename, point, now):
            return _STALE
        return point

    def _snapshot(self) -> dict[str, Point | OldData]:
        now = self._clock() if self._timed else 0.0
        with self._lock:
            if not self._timed and not self._reset:
                return dict(self._points)
            return {c: self._current(c, now) for c in self._points}

    # ---- the handler the generated PullDispatcher calls ------------------------------------
    def on_name(self) -> str:
        return self.name

    def on_codenames_raw(self) -> list[str]:
        return self.codenames

    def on_codenames_json(self) -> list[str]:
        return self.codenames

    def on_raw(self) -> list[Point | OldData]:
        return list(self._snapshot().values())

    def on_raw_wn(self) -> dict[str, Point | OldData]:
        return self._snapshot()

    def on_json(self) -> list[Point | OldData]:
        return list(self._snapshot().values())

    def on_json_wn(self) -> dict[str, Point | OldData]:
        return self._snapshot()

    def on_status(self) -> dict[str, Any]:
        from daqwire.pyexplabsys.registry import socket_server_status

        return {"system_status": system_status(), "socket_server_status": socket_server_status()}

    def on_point_raw(self, codename: str) -> Point | OldData:
        return self._point(codename)

    def on_point_json(self, codename: str) -> Point | OldData:
        return self._point(codename)

    def _point(self, codename: str) -> Point | OldData:
        if codename not in self._points:
            raise UnknownRequest(f"unknown codename {codename!r}")
        now = self._clock()
        with self._lock:
            return self._current(codename, now)

    def _serve(self, data: bytes, addr: Address) -> bytes:
        return self.handle(data)

    def handle(self, data: bytes) -> bytes:
        """The reply to one request datagram, without the network (what the server sends)."""
        if self._timed:
            now = self._clock()
            if now > self._fresh_until or now < self._cached_at:
                self._invalidate()
        return self.dispatcher.handle(data)

    def _log_error(self, kind: str, message: str, exc: BaseException | None) -> None:
        if exc is not None and kind == "failed":
            logger.error("%s %r: request failed: %.200s", type(self).__name__, self.name, message)
        else:
            logger.debug("%s %r: %s request: %.200s", type(self).__name__, self.name, kind, message)


class DateDataPullSocket(CommonDataPullSocket):
    """Pull socket whose points are (unix time, value); stale when x is older than the timeout."""

    socket_type = "date"
    default_port = DATE_PULL_PORT

    def set_point_now(self, codename: str, value: Any) -> None:
        """Set the point ``(now, value)``."""
        self.set_point(codename, (self._clock(), value))

    def set_point(self, codename: str, point: Any) -> None:
        """Set the point ``(x, y)`` of ``codename``; x is its unix time."""
        self._store(codename, point, 0.0)

    def _check_x(self, codename: str, point: Point) -> None:
        if self._timeouts[codename] is not None and not _is_number(point[0]):
            raise TypeError(
                f"The x of {codename!r} is the unix time its timeout is checked against, "
                f"not {point[0]!r}"
            )

    def _is_stale(self, codename: str, point: Point, now: float) -> bool:
        timeout = self._timeouts[codename]
        return timeout is not None and now - point[0] > timeout  # type: ignore[operator]

    def _expiry(self, codename: str, timeout: float) -> float:
        x = self._points[codename][0]
        if isinstance(x, int | float) and not isinstance(x, bool):
            return x + timeout
        return -math.inf


class DataPullSocket(CommonDataPullSocket):
    """Pull socket with free (x, y) points; stale when the time of the last set is too old."""

    socket_type = "data"
    default_port = DATA_PULL_PORT

    def set_point_now(self, codename: str, value: Any) -> None:
        """Set the point ``(now, value)`` (its timestamp is now too)."""
        now = self._clock()
        self._store(codename, (now, value), now)

    def set_point(self, codename: str, point: Any, timestamp: float | None = None) -> None:
        """Set the point ``(x, y)``; ``timestamp`` (default now) is what its timeout checks."""
        self._store(codename, point, self._clock() if timestamp is None else float(timestamp))

    def _is_stale(self, codename: str, point: Point, now: float) -> bool:
        timeout = self._timeouts[codename]
        return timeout is not None and now - self._times[codename] > timeout

    def _expiry(self, codename: str, timeout: float) -> float:
        return self._times[codename] + timeout


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
