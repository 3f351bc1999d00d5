"""The PyExpLabSys docs' push sockets for the giant laser on the moon, on daqwire.

Three DataPushSockets on free loopback ports, each fed the docs' pushes from the secret
lair: store_last (the data as network variables, `last` and `updated`, the raw_wn commands
and their two documented errors on the wire), enqueue (every push on `queue`) and
callback_async (a callback per push, in a thread of the socket).
Run it from the repository root: python examples/pyexplabsys_moon_laser_push.py
"""

import socket
from typing import Any

from daqwire.pyexplabsys import DataPushSocket, PushClient

PUSHES = [{"greeting": "Live long and prosper", "number": 47}, {"number": 42}]


def send(port: int, command: str) -> str:
    """What the docs' client does with a plain UDP socket: one datagram out, one back."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.sendto(command.encode(), ("127.0.0.1", port))
        return sock.recv(65535).decode()


# Network variables: the socket keeps the last push and every key pushed so far
name = "Data receive socket for giant laser on the moon"
with (
    DataPushSocket(name, action="store_last", host="127.0.0.1", port=0) as dps,
    PushClient("127.0.0.1", dps.port) as lair,
):
    for data in PUSHES:
        print("json_wn:", lair.json_wn(data))
        print("  last:", dps.last)
        print("  updated:", dps.updated)
    for command in (
        "raw_wn#greeting:str:Live long and prosper;number:int:47",
        "raw_wn#number:int:42",
        "raw_wn#number:88",
        "raw_wn#number:floats:88",
    ):
        print(f"{command} -> {send(dps.port, command)}")

# Every push reacted to: enqueue them
name = "Command receive socket for giant laser on the moon"
with (
    DataPushSocket(name, action="enqueue", host="127.0.0.1", port=0) as dps,
    PushClient("127.0.0.1", dps.port) as lair,
):
    for data in PUSHES:
        lair.json_wn(data)
    queue = dps.queue  # local variable to hold the queue
    assert queue is not None
    print("queue.get():", queue.get())  # one point
    for _ in range(queue.qsize()):  # all the points there are now
        print("queue.get():", queue.get())

# A callback per push, called in order by the socket's CallBackThread
STATE = "idle"


def callback_func(data: dict[str, Any]) -> None:
    """Callback of the socket: fire or stop the laser."""
    global STATE
    print(f"Received: {data}")
    STATE = data.get("action", STATE)


name = "Command callback socket for giant laser on the moon"
dps = DataPushSocket(
    name, action="callback_async", callback=callback_func, host="127.0.0.1", port=0
)
dps.start()
with PushClient("127.0.0.1", dps.port) as lair:
    replies = [
        lair.json_wn({"action": "fire", "duration": 8, "intensity": 300}),
        lair.json_wn({"action": "idle"}),
    ]
dps.stop()  # lets the CallBackThread finish what is queued, then joins it
assert dps.callback_thread is not None
print("replies:", [type(reply).__name__ for reply in replies])
print("STATE:", STATE, "callbacks:", dps.callback_thread.calls)
