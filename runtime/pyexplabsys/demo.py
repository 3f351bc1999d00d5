"""The PyExpLabSys part of ``daqwire demo``: a pull socket with changing values, queried."""

from __future__ import annotations

import math
import threading
from typing import TextIO

from daqwire.errors import UnknownCommandError
from daqwire.generated.pyexplabsys import OldData
from daqwire.pyexplabsys.client import PullClient, PushClient
from daqwire.pyexplabsys.pull import DateDataPullSocket
from daqwire.pyexplabsys.push import DataPushSocket

__all__ = ["run_pyexplabsys_demo"]


def run_pyexplabsys_demo(out: TextIO, *, section: int = 4, rounds: int = 5) -> int:
    """Serve two codenames whose values change, query them with our client; 0 when all is well."""
    print(f"\n== {section}. PyExpLabSys: a pull socket with changing values", file=out)
    stop = threading.Event()
    step = threading.Event()
    sock = DateDataPullSocket(
        "demo instrument",
        ["temperature", "pressure"],
        port=0,
        host="127.0.0.1",
        timeouts=[5.0, None],
    )
    push = DataPushSocket("demo settings", port=0, host="127.0.0.1")

    def produce() -> None:
        i = 0
        while not stop.is_set():
            sock.set_point_now("temperature", round(21.0 + math.sin(i / 3.0), 4))
            sock.set_point("pressure", (1700000000.0 + i, round(1013.25 + 0.5 * i, 2)))
            i += 1
            step.set()
            stop.wait(0.05)

    producer = threading.Thread(target=produce, name="daqwire-demo-producer", daemon=True)
    ok = True
    with sock, push:
        print(
            f"pull socket 'demo instrument' on 127.0.0.1:{sock.port}; push socket on "
            f"127.0.0.1:{push.port}",
            file=out,
        )
        with PullClient("127.0.0.1", sock.port) as first:
            before = _show(first.point_json("temperature"))
        print(f"temperature before the first set_point: {before}", file=out)
        producer.start()
        with PullClient("127.0.0.1", sock.port, timeout_s=1.0) as client:
            print(f"name -> {client.name()!r}; codenames -> {client.codenames_json()}", file=out)
            seen = set()
            for _ in range(rounds):
                step.clear()
                step.wait(1.0)
                points = client.json_wn()
                seen.add(str(points["temperature"]))
                print(f"json_wn -> { {k: _show(v) for k, v in points.items()} }", file=out)
            print(f"raw_wn -> {client.raw_wn()}", file=out)
            try:
                client.point_raw("ghost")
            except UnknownCommandError as exc:
                print(f"ghost#raw -> {type(exc).__name__}: {exc.message}", file=out)
            if len(seen) < 2:
                print("PYEXPLABSYS DEMO FAILED: the values did not change", file=out)
                ok = False
        with PushClient("127.0.0.1", push.port) as pusher:
            reply = pusher.json_wn({"setpoint": 21.5, "mode": "auto"})
            print(f"push json_wn#{{...}} -> {reply}; socket.last = {push.last}", file=out)
        stop.set()
        producer.join()
    print(f"served {sock.stats.requests} requests, {sock.stats.replies} replies", file=out)
    if ok:
        print("pyexplabsys ok: values changed between queries, every request got a reply", file=out)
    return 0 if ok else 1


def _show(value: object) -> object:
    return "OLD_DATA" if isinstance(value, OldData) else value
