"""The tutorial's kettle server: a simulated kettle behind the generated KettleDispatcher, on UDP.

Run it as ``python docs/tutorial/kettle_server.py PORT`` (0: a free port) with the generated
``kettle_api`` package on ``PYTHONPATH``; it prints its port and serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import time
from typing import Any

from kettle_api.kettle import KettleDispatcher, Point

from daqwire.errors import RefusedRequest
from daqwire.pyexplabsys.udp import UdpServer

ROOM_C = 18.5


class Kettle:
    """A simulated kettle; it has the methods of the generated ``KettleHandler`` protocol."""

    def __init__(self) -> None:
        self.settings: dict[str, Any] = {"target_c": 20, "heating": False}

    def on_sensors(self) -> list[str]:
        return ["water_c", "plate_c"]

    def on_read(self, sensor: str) -> Point:
        if sensor == "water_c":
            return (time.time(), ROOM_C)
        if sensor == "plate_c":
            plate_c = self.settings["target_c"] if self.settings["heating"] else ROOM_C
            return (time.time(), float(plate_c))
        raise RefusedRequest(f"no sensor {sensor!r}")

    def on_set(self, changes: dict[str, Any]) -> dict[str, Any]:
        for key, value in changes.items():
            if key == "target_c":
                if type(value) not in (int, float) or not 20 <= value <= 100:
                    raise RefusedRequest(f"target_c must be a number from 20 to 100, not {value!r}")
            elif key == "heating":
                if type(value) is not bool:
                    raise RefusedRequest(f"heating must be true or false, not {value!r}")
            else:
                raise RefusedRequest(f"no setting {key!r}")
        self.settings.update(changes)
        return self.settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int, help="UDP port to listen on (0: a free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--bug", action="store_true", help="answer set with OK: instead of OK#")
    args = parser.parse_args()

    dispatcher = KettleDispatcher(Kettle())

    def serve(datagram: bytes, _peer: tuple[str, int]) -> bytes:
        reply = dispatcher.handle(datagram)
        if args.bug and reply.startswith(b"OK#"):
            reply = b"OK:" + reply[3:]  # a deliberate bug, for the conformance step
        return reply

    server = UdpServer(args.host, args.port, serve, name="kettle")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops it like Ctrl-C
    server.start()
    print(f"kettle listening on {server.host}:{server.port}", flush=True)
    try:
        while True:
            time.sleep(60)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    print("kettle stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
