"""The tutorial's kettle client: the generated KettleClientStub over a plain UDP socket.

Run it as ``python docs/tutorial/kettle_client.py PORT`` against a running kettle_server.py,
with the generated ``kettle_api`` package on ``PYTHONPATH``.
"""

from __future__ import annotations

import socket
import sys
from typing import TypeVar

from kettle_api.kettle import KETTLE_PORT, KettleClientStub, Request

from daqwire.errors import LocalProtocolError, RequestRefusedError, RequestTimeoutError

T = TypeVar("T")


class KettleClient(KettleClientStub):
    """A blocking kettle client: each attempt on a fresh socket; safe requests are sent twice."""

    def __init__(self, host: str, port: int = KETTLE_PORT, *, timeout_s: float = 1.0) -> None:
        self.address = (host, port)
        self.timeout_s = timeout_s

    def _call(self, request: Request[T]) -> T:
        attempts = 2 if request.idempotent else 1
        for _ in range(attempts):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(self.timeout_s)
                sock.connect(self.address)
                sock.send(request.data)
                try:
                    reply = sock.recv(65535)
                except TimeoutError:
                    continue
            return request.parse(reply)  # the typed value, or a RemoteProtocolError
        raise RequestTimeoutError(
            f"no reply to {request.name} within {self.timeout_s} s",
            peer=f"{self.address[0]}:{self.address[1]}",
            attempts=attempts,
        )


def main() -> int:
    kettle = KettleClient("127.0.0.1", int(sys.argv[1]))
    kettle.ping()
    print("ping: the kettle answers")
    sensors = kettle.sensors()
    print("sensors:", sensors)
    for name in sensors:
        _when, value = kettle.read(name)
        print(f"{name}: {value} °C")
    settings = kettle.set({"target_c": 80, "heating": True})
    print("settings:", settings)
    _when, plate_c = kettle.read("plate_c")
    print(f"plate_c now: {plate_c} °C")
    try:
        kettle.set({"target_c": 250})
    except RequestRefusedError as exc:
        print("refused:", exc.message)
    try:
        kettle.read("lid_c")
    except RequestRefusedError as exc:
        print("refused:", exc.message)
    try:
        kettle.read("Lid C")
    except LocalProtocolError as exc:
        print("not sent:", exc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
