"""One CDTP2 run from a CdtpTransmitter to a DataReceiver: numpy records, tags, the summary."""

import numpy as np

from daqwire.constellation import (
    CdtpTransmitter,
    DataReceived,
    DataReceiver,
    RunEnded,
    RunStarted,
    record_array,
)

with CdtpTransmitter("Example.sender", protocol=2, port=0, host="127.0.0.1") as tx:
    with DataReceiver(tx.endpoint, protocol=2) as rx:
        tx.send_bor({"operator": "demo"}, {"gain": 4, "channels": 8}, run_id="run_0042")
        for i in range(5):
            samples = np.arange(8, dtype=np.float32) * i  # sent zero-copy, dtype/shape tags
            tx.send_data(samples, {"event": i})
        tx.send_data(b"")  # an empty payload is a record with one empty block
        tx.send_eor({"comment": "done"})

        while True:
            event = rx.recv(timeout_s=10)
            if isinstance(event, RunStarted):
                print(f"BOR from {event.sender}: configuration {event.configuration}")
            elif isinstance(event, DataReceived):
                if event.tags.get("dtype"):
                    array = record_array(event.blocks[0], event.tags)
                    print(f"record {event.sequence_number}: event {event.tags['event']}, {array}")
                else:
                    print(f"record {event.sequence_number}: {event.nbytes} bytes")
            elif isinstance(event, RunEnded):
                s = event.summary
                print(f"EOR: {s.records} records, missed {s.missed}, condition {s.condition.name}")
                meta = event.metadata
                print(f"run id {meta['run_id']}, data_records {meta['data_records']}")
                break
