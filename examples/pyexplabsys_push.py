"""Push data to DataPushSockets with a PushClient: callbacks, return formats, a full queue.

Three push sockets on free loopback ports: callback_direct replying in the json and in the
raw return format, and enqueue with a queue bounded to two items. The PushClient reads each
reply as a typed object: Ack, RetJson, RetRaw, or an error.
Run it from the repository root: python examples/pyexplabsys_push.py
"""

import logging
import sys
from typing import Any

from daqwire.errors import RequestFailedError, RequestRefusedError
from daqwire.pyexplabsys import DataPushSocket, PushClient

logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s")


def set_heater(data: dict[str, Any]) -> Any:
    """The callback: runs in the socket's thread; what it returns goes back to the client."""
    note = data.pop("note", None)  # changes this dict only, not the socket's `last`
    if data.get("setpoint", 0) > 500:
        raise ValueError(f"setpoint {data['setpoint']} is above 500")
    if "table" in data:
        return [[1.0, 2.0], [3.0, 4.0]]  # a list of rows: the raw format's table form
    return {"setpoint": data["setpoint"], "ramp": [0.5, 1.0], "note": note or "none"}


heater = DataPushSocket(
    "heater", action="callback_direct", callback=set_heater, host="127.0.0.1", port=0
)
with heater, PushClient("127.0.0.1", heater.port) as client:
    print("name:", client.name())
    print("json_wn:", client.json_wn({"setpoint": 450.0, "note": "warm up"}))
    print("last:", heater.last)  # a copy: the callback's pop did not touch it
    print("raw_wn: ", client.raw_wn({"setpoint": 455.0}))
    try:
        client.json_wn({"setpoint": 900.0})
    except RequestFailedError as exc:
        print("callback raised:", exc.reply)

raw = DataPushSocket(
    "heater raw",
    action="callback_direct",
    callback=set_heater,
    return_format="raw",
    host="127.0.0.1",
    port=0,
)
with raw, PushClient("127.0.0.1", raw.port, return_format="raw") as client:
    print("raw format, dict:", client.json_wn({"setpoint": 450.0}))
    print("raw format, rows:", client.json_wn({"table": True}))
    try:
        client.json_wn({"setpoint": 450.0, "note": "a;b"})  # ';' separates raw items
    except RequestFailedError as exc:
        print("raw format refused:", exc.message)

log = DataPushSocket("log", action="enqueue", max_queue_size=2, host="127.0.0.1", port=0)
with log, PushClient("127.0.0.1", log.port) as client:
    for i in range(3):
        try:
            print(f"push {i}:", client.json_wn({"i": i}))
        except RequestRefusedError as exc:
            print(f"push {i}: refused:", exc.reply)
    queued = log.queue
    assert queued is not None
    print("taken from the queue:", queued.get_nowait(), queued.get_nowait())
    print("push 3:", client.raw_wn({"i": 3, "tags": ["a", "b"]}))
    print("last:", log.last, "updated:", log.updated)
