"""Serve changing values from a DateDataPullSocket and query them with a PullClient.

A producer thread sets ten readings of two codenames, 0.05 s apart, while the client polls
them. temperature has a 1 s timeout, pressure none: once the producer stops, temperature
turns OLD_DATA and pressure keeps its last value. Everything runs on a free loopback port.
Run it from the repository root: python examples/pyexplabsys_pull.py
"""

import threading
import time

from daqwire.errors import UnknownCommandError
from daqwire.pyexplabsys import DateDataPullSocket, OldData, PullClient


def produce(sock: DateDataPullSocket, first: threading.Event) -> None:
    """The instrument loop: ten readings, then it stops (as if the instrument hung)."""
    for i in range(10):
        sock.set_point_now("temperature", round(20.0 + i / 10, 1))  # x = now, y = the value
        sock.set_point("pressure", (time.time(), 1013.0 + i / 4))  # the same, spelt out
        first.set()
        time.sleep(0.05)


sock = DateDataPullSocket(
    "oven", ["temperature", "pressure"], timeouts=[1.0, None], host="127.0.0.1", port=0
)
with sock, PullClient("127.0.0.1", sock.port, timeout_s=1.0) as client:
    print(f"name {client.name()!r}, codenames {client.codenames_json()}")
    print("before any set_point:", client.json_wn())  # x = 0.0 is older than any timeout

    first = threading.Event()
    producer = threading.Thread(target=produce, args=(sock, first))
    producer.start()
    first.wait()
    seen = []
    while producer.is_alive():
        points = client.json_wn()  # {codename: (x, y) or OldData()}
        x, y = points["temperature"]
        seen.append(y)
        print(f"temperature {y} ({time.time() - x:.2f} s old), pressure {points['pressure'][1]}")
        time.sleep(0.12)
    producer.join()
    print("the values changed while the producer ran:", len(set(seen)) > 1)

    print("last values:", client.point_json("temperature")[1], client.point_raw("pressure")[1])
    time.sleep(1.1)  # longer than temperature's timeout
    temperature = client.point_raw("temperature")
    print("1.1 s later:", temperature, isinstance(temperature, OldData), client.raw()[1][1])
    try:
        client.point_raw("humidity")  # not a codename of this socket
    except UnknownCommandError as exc:
        print("humidity#raw:", type(exc).__name__, exc.reply)

    status = client.status()
    entry = status["socket_server_status"][str(sock.port)]
    print("status:", entry["name"], entry["type"], entry["status"])
    facts = list(status["system_status"])
    print(f"system_status: {len(facts)} host facts ({', '.join(facts[:3])}, ...)")

print(sock.stats)  # final once the socket is stopped
