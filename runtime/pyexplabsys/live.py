"""LiveSocket: sends every update as one JSON datagram to a live server, and serves it too.

Drop-in for PyExpLabSys ``common.sockets.LiveSocket`` (v2). The datagram is written by the
generated ``encode_live_update``; the internal DataPullSocket answers pull requests on its
own port. A batch is checked completely before any of it is applied or sent.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Mapping
from typing import Any

from daqwire.errors import LocalProtocolError
from daqwire.generated.pyexplabsys import LIVE_PORT, MAX_DATAGRAM_BYTES, encode_live_update
from daqwire.pyexplabsys.pull import DataPullSocket, check_codenames, check_point
from daqwire.pyexplabsys.registry import Clock

__all__ = ["LiveSocket"]


class LiveSocket:
    """Pushes ``{"host": ..., "data": {codename: point}}`` datagrams to ``live_server``."""

    def __init__(
        self,
        name: str,
        codenames: Iterable[str],
        live_server: tuple[str, int] | None = None,
        no_internal_data_pull_socket: bool = False,
        internal_data_pull_socket_port: int = LIVE_PORT,
        *,
        host: str = "",
        clock: Clock = time.time,
    ) -> None:
        if live_server is None:
            raise ValueError(
                "live_server=(host, port) is required: daqwire reads no PyExpLabSys settings "
                "file (the reference took common_liveserver_host/port from it)"
            )
        self.name = name
        self.codenames = check_codenames(codenames)
        self._clock = clock
        server_host, server_port = live_server
        self.live_server = (socket.gethostbyname(server_host), int(server_port))
        self.hostname = socket.gethostname()
        self.sent = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.internal_pull_socket: DataPullSocket | None = None
        if not no_internal_data_pull_socket:
            self.internal_pull_socket = DataPullSocket(
                name, self.codenames, port=internal_data_pull_socket_port, host=host, clock=clock
            )

    @property
    def port(self) -> int | None:
        """The internal pull socket's bound port (None without one)."""
        return None if self.internal_pull_socket is None else self.internal_pull_socket.port

    def start(self) -> None:
        """Start the internal pull socket."""
        if self.internal_pull_socket is not None:
            self.internal_pull_socket.start()

    def stop(self) -> None:
        """Stop the internal pull socket and close the sending socket (idempotent)."""
        if self.internal_pull_socket is not None:
            self.internal_pull_socket.stop()
        self._sock.close()

    def __enter__(self) -> LiveSocket:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _check_names(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self.codenames:
                raise RuntimeError(f"The codename: {name!r} is not registered")

    def _datagram(self, data: Mapping[str, Any]) -> bytes:
        datagram = encode_live_update(self.hostname, dict(data))
        if len(datagram) > MAX_DATAGRAM_BYTES:
            raise LocalProtocolError(
                f"the update is {len(datagram)} bytes; a UDP datagram holds at most "
                f"{MAX_DATAGRAM_BYTES}",
                protocol="pyexplabsys",
                field_path="live_update",
            )
        return datagram

    def _send(self, datagram: bytes) -> None:
        self._sock.sendto(datagram, self.live_server)
        self.sent += 1

    def set_batch(self, data: Mapping[str, Any]) -> None:
        """Set several points at once; one datagram. Nothing is applied if any is invalid."""
        self._check_names(data)
        points = {c: check_point(c, p) for c, p in data.items()}
        datagram = self._datagram(points)
        if self.internal_pull_socket is not None:
            for c, p in points.items():
                self.internal_pull_socket.set_point(c, p)
        self._send(datagram)

    def set_batch_now(self, data: Mapping[str, Any]) -> None:
        """Set ``{codename: y}`` with x = now for all of them."""
        now = self._clock()
        self.set_batch({c: (now, y) for c, y in data.items()})

    def set_point(self, codename: str, point: Any) -> None:
        """Set one point ``(x, y)``."""
        self.set_batch({codename: point})

    def set_point_now(self, codename: str, value: Any) -> None:
        """Set one point ``(now, value)``."""
        self.set_batch_now({codename: value})

    def reset(self, codenames: Iterable[str]) -> None:
        """Tell the live server to restart these curves; they read OLD_DATA until set again."""
        names = list(codenames)
        self._check_names(names)
        datagram = self._datagram(dict.fromkeys(names, "RESET"))
        if self.internal_pull_socket is not None:
            self.internal_pull_socket.mark_reset(names)
        self._send(datagram)
