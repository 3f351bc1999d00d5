"""Activity clocks and the list of socket servers that ``status`` reports.

The reference keeps every socket's data in one process-global dict keyed by port. Here each
socket owns its state; the registry only lists the running sockets, so that ``status`` and
:func:`socket_server_status` can still report all of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Activity", "register", "socket_server_status", "unregister"]

Clock = Callable[[], float]


class Activity:
    """A socket's activity clock: ``OK`` while poked within ``activity_timeout`` seconds."""

    def __init__(self, check_activity: bool, activity_timeout: float, clock: Clock) -> None:
        self.check_activity = check_activity
        self.activity_timeout = activity_timeout
        self._clock = clock
        self.last_activity = clock()

    def poke(self) -> None:
        """Mark the socket active now."""
        self.last_activity = self._clock()

    def status(self) -> tuple[str, float | None]:
        """``(status, since_last_activity)``: DISABLED/None, OK or INACTIVE with the age in s."""
        if not self.check_activity:
            return "DISABLED", None
        since = self._clock() - self.last_activity
        return ("OK" if since < self.activity_timeout else "INACTIVE"), since


class Reported(Protocol):
    """What the registry needs from a socket server."""

    name: str
    socket_type: str
    activity: Activity

    @property
    def port(self) -> int: ...


_lock = threading.Lock()
_sockets: dict[int, Reported] = {}


def register(sock: Reported) -> None:
    """List ``sock`` in every ``status`` reply of this process (while it runs)."""
    with _lock:
        _sockets[id(sock)] = sock


def unregister(sock: Reported) -> None:
    """Stop listing ``sock`` (idempotent)."""
    with _lock:
        _sockets.pop(id(sock), None)


def socket_server_status() -> dict[str, dict[str, Any]]:
    """One entry per registered socket server, keyed by its port as a string."""
    with _lock:
        sockets = list(_sockets.values())
    out: dict[str, dict[str, Any]] = {}
    for sock in sockets:
        status, since = sock.activity.status()
        out[str(sock.port)] = {
            "name": sock.name,
            "type": sock.socket_type,
            "status": status,
            "since_last_activity": since,
        }
    return out
