"""A LiveSocket sends every update to a LiveServer, and serves the same points to pull clients.

The LiveServer stands in for the live plotting server; the LiveSocket's internal pull socket
answers pull commands on a port of its own. reset() restarts a curve on the live server and
makes the pull socket answer OLD_DATA until the codename is set again. Everything runs on
free loopback ports.
Run it from the repository root: python examples/pyexplabsys_live.py
"""

import socket

from daqwire.pyexplabsys import LiveServer, LiveSocket, PullClient

with LiveServer("127.0.0.1", 0) as server:
    live = LiveSocket(
        "oven",
        ["temperature", "power"],
        live_server=(server.host, server.port),  # required: no settings file is read
        internal_data_pull_socket_port=0,
        host="127.0.0.1",
    )
    with live, PullClient("127.0.0.1", live.port) as client:
        live.set_point("temperature", (1700000000.0, 20.5))  # one datagram per call
        live.set_batch({"temperature": (1700000001.0, 21.0), "power": (1700000001.0, 5)})
        for _ in range(2):
            update = server.get(timeout_s=2.0)
            print("live server got:", update.data, "from this host:", update.host == live.hostname)
        print("pull json_wn:", client.json_wn())

        live.reset(["temperature"])
        print("after reset, live server got:", server.get(timeout_s=2.0).data)
        print("after reset, pull raw_wn:", client.raw_wn())

        try:
            live.set_batch({"temperature": (1700000002.0, 22.0), "fan": (1700000002.0, 1)})
        except RuntimeError as exc:
            print("bad batch:", exc)
        print("nothing of the bad batch was applied:", client.json_wn())

        live.set_point("temperature", (1700000003.0, 22.5))
        print("set again, live server got:", server.get(timeout_s=2.0).data)
        print("pull temperature#json:", client.point_json("temperature"))

print("latest per codename:", server.latest[socket.gethostname()])
print("datagrams sent:", live.sent, server.stats)
