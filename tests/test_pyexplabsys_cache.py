"""Pull sockets reuse encoded replies; a set, a reset or a point going stale must show at once."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from daqwire.pyexplabsys import DataPullSocket, DateDataPullSocket, LiveSocket


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    yield s
    s.close()


def ask(s: socket.socket, port: int, request: bytes) -> bytes:
    s.sendto(request, ("127.0.0.1", port))
    return s.recv(65536)


def test_set_point_shows_at_once(udp: socket.socket) -> None:
    clock = Clock(1000.0)
    with DateDataPullSocket("c", ["a", "b"], port=0, host="127.0.0.1", clock=clock) as sock:
        assert ask(udp, sock.port, b"json_wn") == b'{"a": [0.0, 0.0], "b": [0.0, 0.0]}'
        assert ask(udp, sock.port, b"json_wn") == b'{"a": [0.0, 0.0], "b": [0.0, 0.0]}'
        sock.set_point("a", (999.5, 1.5))
        assert ask(udp, sock.port, b"json_wn") == b'{"a": [999.5, 1.5], "b": [0.0, 0.0]}'
        assert ask(udp, sock.port, b"a#raw") == b"999.5,1.5"
        sock.set_point("a", (999.75, 2))
        assert ask(udp, sock.port, b"a#raw") == b"999.75,2"
        assert ask(udp, sock.port, b"raw") == b"999.75,2;0.0,0.0"


@pytest.mark.parametrize("kind", ["date", "data"])
def test_staleness_follows_the_clock_both_ways(udp: socket.socket, kind: str) -> None:
    clock = Clock(1000.0)
    cls = DateDataPullSocket if kind == "date" else DataPullSocket
    with cls("c", ["a", "b"], port=0, host="127.0.0.1", timeouts=[1.0, None], clock=clock) as sock:
        sock.set_point("a", (1000.0, 7.0))
        assert ask(udp, sock.port, b"raw") == b"1000.0,7.0;0.0,0.0"
        clock.now = 1001.0  # now - x == timeout: still fresh (strict >)
        assert ask(udp, sock.port, b"raw") == b"1000.0,7.0;0.0,0.0"
        clock.now = 1001.5
        assert ask(udp, sock.port, b"raw") == b"OLD_DATA;0.0,0.0"
        assert ask(udp, sock.port, b"a#json") == b'"OLD_DATA"'
        clock.now = 1000.5  # a clock that steps back makes the point fresh again
        assert ask(udp, sock.port, b"raw") == b"1000.0,7.0;0.0,0.0"


def test_reset_shows_at_once(udp: socket.socket) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        live = LiveSocket(
            "l",
            ["a"],
            live_server=server.getsockname(),
            internal_data_pull_socket_port=0,
            host="127.0.0.1",
        )
        with live:
            port = live.port
            assert port is not None
            live.set_point("a", (1.0, 2.0))
            assert ask(udp, port, b"a#raw") == b"1.0,2.0"
            live.reset(["a"])
            assert ask(udp, port, b"a#raw") == b"OLD_DATA"
            live.set_point("a", (3.0, 4.0))
            assert ask(udp, port, b"a#raw") == b"3.0,4.0"
