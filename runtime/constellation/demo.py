"""The Constellation part of ``daqwire demo``: a RandomDataSender streaming to our receiver."""

from __future__ import annotations

import time
from typing import TextIO

from daqwire.constellation.arrays import record_array
from daqwire.constellation.datasender import RandomDataSender
from daqwire.constellation.receiver import (
    DataReceived,
    DataReceiver,
    MessageRejected,
    RunEnded,
    RunStarted,
)

__all__ = ["run_constellation_demo"]


def run_constellation_demo(
    out: TextIO, *, section: int = 5, run_s: float = 1.5, interval_s: float = 0.1
) -> int:
    """Run one CDTP2 run of a RandomDataSender into a DataReceiver; 0 when it arrived whole."""
    print(
        f"\n== {section}. Constellation: a RandomDataSender streaming CDTP2 to our receiver "
        f"for {run_s:g} s",
        file=out,
    )
    satellite = RandomDataSender(
        "sat1", "demo", data_port=0, data_host="127.0.0.1", protocol=2, interval_s=interval_s
    )
    receiver = DataReceiver(satellite.transmitter.endpoint, protocol=2)
    print(f"sender {satellite.canonical_name} on {satellite.transmitter.endpoint}", file=out)
    records = 0
    nbytes = 0
    ended: RunEnded | None = None
    try:
        satellite.initialize({"_bor_timeout": 5000})
        satellite.launch()
        satellite.start("demo_run_1")
        deadline = time.monotonic() + run_s
        while time.monotonic() < deadline:
            event = receiver.recv(timeout_s=0.1)
            if isinstance(event, DataReceived):
                records += 1
                nbytes += event.nbytes
                if records == 1:
                    samples = record_array(event.blocks[0], event.tags)
                    print(
                        f"first record: seq {event.sequence_number}, tags {event.tags}, "
                        f"{samples.size} samples of {samples.dtype}, first "
                        f"{samples[0]:+.3f} {samples[1]:+.3f} {samples[2]:+.3f} ...",
                        file=out,
                    )
            elif isinstance(event, RunStarted):
                print(
                    f"BOR from {event.sender}, configuration keys: {sorted(event.configuration)}",
                    file=out,
                )
            elif isinstance(event, MessageRejected):
                print(f"rejected: {event.error}", file=out)
                return 1
        satellite.stop()
        while ended is None:
            event = receiver.recv(timeout_s=5.0)
            if event is None:
                print("no EOR within 5 s", file=out)
                return 1
            if isinstance(event, DataReceived):
                records += 1
                nbytes += event.nbytes
            elif isinstance(event, RunEnded):
                ended = event
        satellite.land()
    finally:
        satellite.close()
        receiver.close()
    s = ended.summary
    print(
        f"EOR: {s.records} records, {s.bytes} bytes, missed {s.missed}, condition "
        f"{ended.metadata.get('condition')}, run id {ended.metadata.get('run_id')}",
        file=out,
    )
    if records != s.records or s.missed or records == 0:
        print("CONSTELLATION RUN INCOMPLETE", file=out)
        return 1
    print("constellation ok", file=out)
    return 0
