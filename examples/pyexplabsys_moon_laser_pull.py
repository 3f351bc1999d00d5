"""The PyExpLabSys docs' pull socket: usage data of the giant laser on the moon, on daqwire.

The moon side serves the last shot's power and duration from a DateDataPullSocket (timeouts
1.0 s and 0.7 s) and sets them with set_point_now after every shot; the secret lair's side
reads them with a PullClient, one command of each kind. Free loopback port, about 2 s.
Run it from the repository root: python examples/pyexplabsys_moon_laser_pull.py
(--seconds 60 keeps the laser firing, so `daqwire pyexplabsys query` can watch it too).
"""

import argparse
import time

from daqwire.pyexplabsys import DateDataPullSocket, OldData, PullClient

parser = argparse.ArgumentParser(description="The giant laser on the moon, pull socket")
parser.add_argument("--seconds", type=float, default=1.0, help="how long it fires (5 shots/s)")
parser.add_argument("--port", type=int, default=0, help="UDP port; 0: a free one (docs: 9000)")
args = parser.parse_args()


class GiantLaser:
    """Stands in for the laser's driver: every shot a little more power, a little longer."""

    shots = 0

    def get_values(self) -> tuple[float, float]:
        self.shots += 1
        return 42.0 + self.shots, 37.0 + self.shots  # power, duration


def y(point: tuple[float, float] | OldData) -> object:
    """The value of a point, or OLD_DATA when the socket says it is too old."""
    return "OLD_DATA" if isinstance(point, OldData) else point[1]


started = time.time()
laser = GiantLaser()
name = "Last shot usage data from the giant laser on the moon"
codenames = ["moon_laser_power", "moon_laser_duration"]
moon_socket = DateDataPullSocket(
    name, codenames, timeouts=[1.0, 0.7], host="127.0.0.1", port=args.port
)
moon_socket.start()
lair = PullClient("127.0.0.1", moon_socket.port, timeout_s=1.0)  # the client in the secret lair
try:
    print(f"the moon socket listens on 127.0.0.1:{moon_socket.port}")
    print("name:", lair.name())
    print("codenames_json:", lair.codenames_json())
    shots = max(1, round(args.seconds / 0.2))
    for shot in range(shots):
        if shot:
            time.sleep(0.2)
        power, duration = laser.get_values()
        moon_socket.set_point_now("moon_laser_power", power)  # set a value by its codename
        moon_socket.set_point_now("moon_laser_duration", duration)
        points = lair.json_wn()  # {codename: (x, y)}, x = when it was set
        print(f"shot {laser.shots}: json_wn", {c: y(p) for c, p in points.items()})

    print("json:", [y(p) for p in lair.json()])
    print("moon_laser_power#json:", y(lair.point_json("moon_laser_power")))
    print("raw_wn:", {c: y(p) for c, p in lair.raw_wn().items()})
    print("codenames_raw:", lair.codenames_raw())
    print("raw:", [y(p) for p in lair.raw()])
    print("moon_laser_power#raw:", y(lair.point_raw("moon_laser_power")))
    xs = [p[0] for p in lair.json() if not isinstance(p, OldData)]
    print("every x is a Unix time of this run:", all(started <= x <= time.time() for x in xs))

    time.sleep(1.1)  # the laser stopped: longer than both timeouts
    print("1.1 s after the last shot, json_wn", {c: y(p) for c, p in lair.json_wn().items()})
except KeyboardInterrupt:
    pass
finally:
    lair.close()
    moon_socket.stop()  # the port is free again at once
