"""A RandomDataSender run, the example satellite of Constellation's Python DataSender, on daqwire.

The satellite RandomDataSender.sat1 queues 1024 float64 samples of a sine of random
frequency every 0.5 s, tagged {"dtype": "float64"}. It is driven through initialize,
launch, start, stop and land, and a DataReceiver on the same free loopback port rebuilds
every record as a numpy array, as the reference's H5DataWriter does.
Run it from the repository root: python examples/constellation_random_data_sender.py
"""

import argparse
import time

import numpy as np

from daqwire.constellation import (
    DataReceived,
    DataReceiver,
    RandomDataSender,
    RunEnded,
    RunStarted,
    record_array,
)

parser = argparse.ArgumentParser(description="One run of a RandomDataSender")
parser.add_argument("--seconds", type=float, default=2.0, help="length of the run")
parser.add_argument("--proto", type=int, choices=(1, 2), default=1, help="CDTP1 (seed) or 2")
args = parser.parse_args()

sat = RandomDataSender("sat1", "example", data_port=0, data_host="127.0.0.1", protocol=args.proto)
rx = DataReceiver(sat.transmitter.endpoint, protocol=args.proto)
records: list[np.ndarray] = []


def receive(event: object) -> None:
    """Print the BOR, keep every record as the float64 array it was sent as."""
    if isinstance(event, RunStarted):
        print(f"BOR from {event.sender}, configuration {event.configuration}")
    elif isinstance(event, DataReceived):
        samples = record_array(event.blocks, event.tags)  # a view of the received bytes
        records.append(samples)
        if len(records) == 1:
            print(f"record 1: {samples.size} samples of {samples.dtype}, tags {event.tags}")


try:
    sat.initialize({"_bor_timeout": 5000})  # milliseconds, as in the seed
    sat.launch()
    print(f"{sat.canonical_name} in {sat.state.name}, CDTP{sat.protocol}")
    sat.start("run_1")
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        receive(rx.recv(timeout_s=0.1))
    sat.stop()  # do_run returns, then the EOR goes out after all queued data
    print(f"after stop: {sat.state.name}, status {sat.status!r}")
    while not isinstance(event := rx.recv(timeout_s=10), RunEnded):
        receive(event)
    sat.land()
finally:
    sat.close()
    rx.close()

summary = event.summary
first = records[0]
print(f"the sine starts at {first[0]:+.3f}; every record holds the run's sine: ", end="")
print(all(np.array_equal(r, first) for r in records))
print(f"received {len(records)} records, {sum(r.nbytes for r in records)} bytes")
print(
    f"EOR: {summary.records} records, {summary.bytes} bytes, "
    f"missed {summary.missed}, condition {summary.condition.name}"
)
