"""The PyExpLabSys docs' laser control server and client (callback with return), on daqwire.

A LaserControl class runs the giant laser on the moon behind one callback_direct
DataPushSocket: each push names a method and its arguments, and the method's return value
goes back to the secret lair as the reply. The laser measures its temperature while active.
Server and client share one process and a free loopback port; it takes about a second.
Run it from the repository root: python examples/pyexplabsys_moon_laser_control.py
"""

import queue
import threading
import time
from typing import Any

from daqwire.errors import RequestFailedError
from daqwire.pyexplabsys import DataPushSocket, PushClient


class LaserControl:
    """Controls the giant laser on the moon; every method can be called by a push."""

    METHODS = ("update_settings", "state", "get_temperature", "stop")

    def __init__(self) -> None:
        self.settings: dict[str, Any] = {"power": 100, "focus": 100, "target": None}
        self._state = "idle"
        self._stop = threading.Event()
        self._temperatures: queue.Queue[int] = queue.Queue()
        name = "Laser control, callback socket, for giant laser on the moon"
        self.dps = DataPushSocket(
            name, action="callback_direct", callback=self.callback, host="127.0.0.1", port=0
        )
        self.dps.start()

    def callback(self, data: dict[str, Any]) -> Any:
        """The central control function: runs the method the push names."""
        method_name = data.pop("method")  # don't pass the method name on
        if method_name not in self.METHODS:
            raise ValueError(f"Unknown method: {method_name}")
        return getattr(self, method_name)(**data)

    def update_settings(self, **kwargs: Any) -> str:
        for key in kwargs:
            if key not in self.settings:
                raise ValueError(f"Not settings for key: {key}")
        self.settings.update(kwargs)
        return f"Updated settings with: {kwargs}"

    def state(self, state: str) -> str:
        self._state = state
        return f"State set to: {state}"

    def stop(self) -> str:
        self._state = "idle"
        self._stop.set()
        return "Stopped"

    def get_temperature(self) -> list[int]:
        """The temperatures measured since the last call."""
        return [self._temperatures.get() for _ in range(self._temperatures.qsize())]

    def run(self) -> None:
        """Measure the temperature every 0.05 s while active, until stopped."""
        temperature = 30
        while not self._stop.wait(0.05):
            if self._state == "active":
                self._temperatures.put(temperature)
                temperature += 5
        self.dps.stop()


laser_control = LaserControl()
moon = threading.Thread(target=laser_control.run)
moon.start()

with PushClient("127.0.0.1", laser_control.dps.port) as lair:

    def send_command(data: dict[str, Any]) -> Any:
        """Push the command as json_wn; the reply holds the method's return value."""
        try:
            reply = lair.json_wn(data)
        except RequestFailedError as exc:  # the method raised: EXCEP#<message>
            print(f"{data['method']}: the laser did not understand: {exc.message}")
            return None
        print(f"{data['method']}: {reply.value}")
        return reply.value

    print("name:", lair.name())
    send_command({"method": "update_settings", "power": 300, "focus": 10})
    send_command({"method": "update_settings", "colour": "green"})
    send_command({"method": "fire"})
    send_command({"method": "state", "state": "active"})
    temperatures: list[int] = []
    for _ in range(100):  # the measurements come back as they are made
        temperatures += lair.json_wn({"method": "get_temperature"}).value
        if len(temperatures) >= 3:
            break
        time.sleep(0.1)
    print("temperatures while active:", temperatures[:3])
    send_command({"method": "state", "state": "idle"})
    send_command({"method": "stop"})

moon.join()
print("settings:", laser_control.settings)
print("last push:", laser_control.dps.last, "socket stopped:", not laser_control.dps.is_alive())
