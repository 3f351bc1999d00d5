"""CdtpTransmitter on real ZeroMQ (loopback): exact CDTP1/CDTP2 content and sequence numbers,
batching, empty and numpy payloads, refusals before anything is sent, a missing receiver,
backpressure, a receiver that vanishes, close().

The receiver is a plain PULL socket decoded with the generated ``decode_frames``. Nothing here
asserts a duration; timeouts only keep a broken sender from hanging the run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
import pytest
import zmq

from daqwire.constellation.arrays import array_block
from daqwire.constellation.transmitter import CdtpTransmitter, SendTimeout, TransmitterError
from daqwire.errors import DaqwireError, LocalProtocolError
from daqwire.generated import cdtp1, cdtp2

WAIT_S = 5.0  # the longest a test waits for a message; never asserted
SENDER = "Tester.t1"


class Puller:
    """A PULL socket connected to a transmitter, decoding with the generated codec."""

    def __init__(self, endpoint: str, protocol: int, *, rcvhwm: int | None = None) -> None:
        self.protocol = protocol
        self.sock = zmq.Context.instance().socket(zmq.PULL)
        self.sock.setsockopt(zmq.LINGER, 0)
        if rcvhwm is not None:
            self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
            self.sock.setsockopt(zmq.RCVBUF, 4096)
        self.sock.connect(endpoint)

    def recv_frames(self, timeout_s: float = WAIT_S) -> list[zmq.Frame]:
        if not self.sock.poll(int(timeout_s * 1000)):
            raise AssertionError(f"no message within {timeout_s} s")
        frames: list[zmq.Frame] = self.sock.recv_multipart(copy=False)
        return frames

    def recv(self, timeout_s: float = WAIT_S) -> Any:
        frames = self.recv_frames(timeout_s)
        if self.protocol == 1:
            return cdtp1.decode_frames(frames)
        return cdtp2.decode_frames(frames)

    def until_eor(self, timeout_s: float = WAIT_S) -> list[Any]:
        """Messages up to and including the next EOR."""
        out = []
        eor = cdtp1.EorMessage if self.protocol == 1 else cdtp2.EorMessage
        while True:
            msg = self.recv(timeout_s)
            out.append(msg)
            if isinstance(msg, eor):
                return out

    def nothing_pending(self, wait_s: float = 0.2) -> bool:
        return not self.sock.poll(int(wait_s * 1000))

    def close(self) -> None:
        self.sock.close(linger=0)


def records(messages: list[Any]) -> list[cdtp2.DataRecord]:
    """All CDTP2 data records of the DATA messages in ``messages``, in order."""
    return [r for m in messages if isinstance(m, cdtp2.DataMessage) for r in m.records]


@pytest.fixture
def make() -> Iterator[Any]:
    """Build transmitters and pullers that are closed after the test."""
    made: list[Any] = []

    def factory(protocol: int = 1, **kwargs: Any) -> tuple[CdtpTransmitter, Puller | None]:
        connect = kwargs.pop("connect", True)
        rcvhwm = kwargs.pop("rcvhwm", None)
        kwargs.setdefault("bor_timeout_s", WAIT_S)
        kwargs.setdefault("data_timeout_s", WAIT_S)
        kwargs.setdefault("eor_timeout_s", WAIT_S)
        tx = CdtpTransmitter(SENDER, protocol=protocol, **kwargs)
        made.append(tx)
        puller = None
        if connect:
            puller = Puller(tx.endpoint, protocol, rcvhwm=rcvhwm)
            made.append(puller)
        return tx, puller

    yield factory
    for thing in reversed(made):
        thing.close()


# --- CDTP1 -------------------------------------------------------------------------------------


def test_cdtp1_run_exact_content_and_sequence_numbers(make: Any) -> None:
    tx, rx = make(1)
    config = {"voltage": 12.5, "mode": "passionate"}
    tx.send_bor({"run": "run_0001"}, config)
    seqs = [tx.send_data(f"payload {i}".encode(), {"index": i}) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    tx.send_eor({"final": True})
    msgs = rx.until_eor()
    assert msgs[0] == cdtp1.BorMessage(SENDER, 0, {"run": "run_0001"}, config)
    for i, msg in enumerate(msgs[1:-1]):
        assert isinstance(msg, cdtp1.DatMessage)
        assert (msg.sender, msg.sequence_number, msg.meta) == (SENDER, i + 1, {"index": i})
        assert [bytes(b) for b in msg.payload] == [f"payload {i}".encode()]
    assert msgs[-1] == cdtp1.EorMessage(SENDER, 5, {"final": True}, {})
    assert len(msgs) == 7
    assert (tx.records_sent, tx.messages_sent, tx.queue_depth) == (5, 7, 0)


def test_cdtp1_eor_without_data_has_sequence_zero_and_a_second_run_restarts(make: Any) -> None:
    tx, rx = make(1)
    tx.send_bor()
    tx.send_eor(payload={"custom": 1})
    assert rx.until_eor() == [
        cdtp1.BorMessage(SENDER, 0, {}, {}),
        cdtp1.EorMessage(SENDER, 0, {}, {"custom": 1}),
    ]
    tx.send_bor()
    assert tx.send_data(b"a") == 1
    tx.send_eor()
    msgs = rx.until_eor()
    assert [m.sequence_number for m in msgs] == [0, 1, 1]


def test_cdtp1_multiframe_empty_and_no_payload(make: Any) -> None:
    tx, rx = make(1)
    tx.send_bor()
    tx.send_data([b"a", b"", bytearray(b"cc")])
    tx.send_data(b"")  # one empty frame, not dropped
    tx.send_data([])  # no frames
    tx.send_data(None)  # no frames
    tx.send_eor()
    dats = rx.until_eor()[1:-1]
    assert [[bytes(b) for b in m.payload] for m in dats] == [[b"a", b"", b"cc"], [b""], [], []]
    assert [m.sequence_number for m in dats] == [1, 2, 3, 4]


# --- CDTP2 -------------------------------------------------------------------------------------


def test_cdtp2_run_exact_content_and_run_metadata(make: Any) -> None:
    tx, rx = make(2, payload_threshold_bytes=0)
    config = {"_data": {"bor_timeout": 2}, "voltage": 12.5}
    tx.send_bor({"run": "run_0001"}, config, run_id="run_0001")
    for i in range(4):
        tx.send_data([f"block {i}".encode(), b"x" * i], {"index": i})
    tx.send_eor({"final_status": "ok"})
    msgs = rx.until_eor()
    assert msgs[0] == cdtp2.BorMessage(
        SENDER, (cdtp2.DataRecord(0, {"run": "run_0001"}, ()), cdtp2.DataRecord(1, config, ()))
    )
    data = msgs[1:-1]
    assert [len(m.records) for m in data] == [1, 1, 1, 1]  # threshold 0: one record per message
    for i, rec in enumerate(records(data)):
        assert rec.sequence_number == i + 1
        assert rec.tags == {"index": i}
        assert [bytes(b) for b in rec.blocks] == [f"block {i}".encode(), b"x" * i]
    eor = msgs[-1]
    assert isinstance(eor, cdtp2.EorMessage)
    assert eor.records[0] == cdtp2.DataRecord(0, {"final_status": "ok"}, ())
    meta = eor.records[1].tags
    assert eor.records[1].sequence_number == 1
    assert list(meta) == [
        "version",
        "run_id",
        "time_start",
        "time_end",
        "condition_code",
        "condition",
        "data_records",
    ]
    assert (meta["run_id"], meta["condition_code"], meta["condition"]) == ("run_0001", 0, "GOOD")
    assert meta["data_records"] == 4
    assert isinstance(meta["time_start"], datetime) and meta["time_start"].tzinfo is not None
    assert meta["time_start"] <= meta["time_end"]


def test_cdtp2_eor_condition_flags_and_merged_metadata(make: Any) -> None:
    tx, rx = make(2)
    tx.send_bor()
    flags = cdtp2.RunCondition.TAINTED | cdtp2.RunCondition.INTERRUPTED
    tx.send_eor(payload={"license": "ODC-By-1.0"}, condition=flags)
    meta = rx.until_eor()[-1].records[1].tags
    assert (meta["condition_code"], meta["condition"]) == (5, "TAINTED|INTERRUPTED")
    assert meta["license"] == "ODC-By-1.0" and meta["data_records"] == 0


def test_cdtp2_records_are_batched_until_the_eor_flushes_them(make: Any) -> None:
    tx, rx = make(2, payload_threshold_bytes=1 << 20, flush_interval_s=60.0)
    tx.send_bor()
    for i in range(10):
        tx.send_data(b"r" * 100, {"i": i})
    tx.send_eor()
    msgs = rx.until_eor()
    data = msgs[1:-1]
    assert len(data) == 1  # far below the threshold, flush interval never reached: the EOR flushed
    assert [r.sequence_number for r in records(data)] == list(range(1, 11))
    assert [r.tags["i"] for r in records(data)] == list(range(10))


def test_cdtp2_batches_stop_at_the_threshold(make: Any) -> None:
    tx, rx = make(2, payload_threshold_bytes=250, flush_interval_s=60.0)
    tx.send_bor()
    for _ in range(9):
        tx.send_data(b"r" * 100)
    tx.send_eor()
    data = rx.until_eor()[1:-1]
    assert all(len(m.records) <= 3 for m in data)  # 3 x 100 B >= 250 B closes a batch
    assert [r.sequence_number for r in records(data)] == list(range(1, 10))


def test_cdtp2_flush_interval_sends_a_partial_batch(make: Any) -> None:
    tx, rx = make(2, payload_threshold_bytes=1 << 20, flush_interval_s=0.05)
    tx.send_bor()
    tx.send_data(b"lonely")
    msgs = [rx.recv(), rx.recv()]  # BOR, then DATA without any EOR
    assert [bytes(b) for b in msgs[1].records[0].blocks] == [b"lonely"]
    tx.send_eor()


def test_cdtp2_empty_payloads_are_empty_blocks(make: Any) -> None:
    tx, rx = make(2, payload_threshold_bytes=0)
    tx.send_bor()
    tx.send_data(b"")
    tx.send_data(None)
    tx.send_data([b"", b""])
    tx.send_eor()
    recs = records(rx.until_eor())
    assert [[bytes(b) for b in r.blocks] for r in recs] == [[b""], [], [b"", b""]]


# --- numpy -------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [1, 2])
def test_numpy_arrays_travel_with_dtype_and_shape(make: Any, protocol: int) -> None:
    tx, rx = make(protocol, payload_threshold_bytes=0)
    arrays = [
        np.arange(12, dtype=np.float64).reshape(3, 4),
        np.arange(6, dtype=">i4"),  # non-native byte order survives
        np.arange(20, dtype=np.int16).reshape(4, 5)[:, ::2],  # non-contiguous: copied once
        np.zeros((0, 3), dtype=np.uint8),
    ]
    tx.send_bor()
    for arr in arrays:
        tx.send_data(arr, {"name": "x"})
    tx.send_eor()
    msgs = rx.until_eor()[1:-1]
    got = []
    for msg in msgs:
        tags, blocks = (
            (msg.meta, msg.payload)
            if protocol == 1
            else (
                msg.records[0].tags,
                msg.records[0].blocks,
            )
        )
        assert tags["name"] == "x"
        got.append(np.frombuffer(blocks[0], dtype=tags["dtype"]).reshape(tags["shape"]))
    for sent, received in zip(arrays, got, strict=True):
        assert received.dtype == sent.dtype
        np.testing.assert_array_equal(received, sent)


def test_numpy_send_is_a_view_not_a_copy() -> None:
    arr = np.arange(1000, dtype=np.float64)
    view, tags = array_block(arr)
    assert np.shares_memory(np.frombuffer(view, dtype=np.uint8), arr)
    assert tags == {"dtype": "float64", "shape": [1000]}


def test_numpy_refusals(make: Any) -> None:
    tx, rx = make(1)
    tx.send_bor()
    with pytest.raises(LocalProtocolError, match="contradicts"):
        tx.send_data(np.zeros(3), {"dtype": "int8"})
    with pytest.raises(LocalProtocolError, match="object"):
        tx.send_data(np.array([object()]))
    assert tx.send_data(np.zeros(3), {"dtype": "float64"}) == 1  # agreeing tags are fine
    tx.send_eor()
    assert [m.sequence_number for m in rx.until_eor()] == [0, 1, 1]


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [1, 2])
@pytest.mark.parametrize(
    ("payload", "tags"),
    [
        ("text", None),
        ([b"ok", "text"], None),
        (12, None),
        (b"ok", {1: "int key"}),
        (b"ok", {"naive": datetime(2026, 1, 1)}),
        (b"ok", {"obj": object()}),
    ],
)
def test_bad_payloads_are_refused_before_anything_is_sent(
    make: Any, protocol: int, payload: Any, tags: Any
) -> None:
    tx, rx = make(protocol, payload_threshold_bytes=0)
    tx.send_bor()
    assert tx.send_data(b"before") == 1
    with pytest.raises(LocalProtocolError):
        tx.send_data(payload, tags)
    assert tx.sequence_number == 1  # no sequence number used up
    assert tx.send_data(b"after") == 2
    tx.send_eor()
    msgs = rx.until_eor()
    if protocol == 1:
        assert [[bytes(b) for b in m.payload] for m in msgs[1:-1]] == [[b"before"], [b"after"]]
        assert [m.sequence_number for m in msgs] == [0, 1, 2, 2]
    else:
        assert [r.sequence_number for r in records(msgs)] == [1, 2]
        assert [bytes(r.blocks[0]) for r in records(msgs)] == [b"before", b"after"]


def test_data_and_eor_outside_a_run_and_double_bor_are_refused(make: Any) -> None:
    tx, _ = make(1)
    with pytest.raises(LocalProtocolError, match="send_bor first"):
        tx.send_data(b"x")
    with pytest.raises(LocalProtocolError, match="send_bor first"):
        tx.send_eor()
    tx.send_bor()
    with pytest.raises(LocalProtocolError, match="run is open"):
        tx.send_bor()


def test_cdtp2_bor_configuration_must_be_a_dict(make: Any) -> None:
    tx, _ = make(2)
    with pytest.raises(LocalProtocolError, match="dict"):
        tx.send_bor(payload="not a dict")
    assert not tx.in_run


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="protocol"):
        CdtpTransmitter(SENDER, protocol=3)
    with pytest.raises(ValueError, match="max_queue"):
        CdtpTransmitter(SENDER, max_queue=0)


# --- missing, slow and vanishing receivers -----------------------------------------------------


@pytest.mark.parametrize("protocol", [1, 2])
def test_no_receiver_bor_times_out_and_is_never_sent_late(make: Any, protocol: int) -> None:
    tx, _ = make(protocol, connect=False, bor_timeout_s=0.3)
    with pytest.raises(SendTimeout, match=r"no DataReceiver took the BOR within 0\.3 s") as info:
        tx.send_bor({"attempt": 1})
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, DaqwireError)
    assert not tx.in_run and tx.queue_depth == 0
    rx = Puller(tx.endpoint, protocol)
    try:
        tx.send_bor({"attempt": 2})
        tx.send_eor()
        msgs = rx.until_eor()
        assert len(msgs) == 2
        first_tags = msgs[0].meta if protocol == 1 else msgs[0].records[0].tags
        assert first_tags == {"attempt": 2}
    finally:
        rx.close()


def test_stalled_receiver_backpressure_loses_nothing(make: Any) -> None:
    tx, rx = make(1, max_queue=4, sndhwm=1, rcvhwm=1, data_timeout_s=None)
    tx.send_bor()
    block = b"z" * 65536
    total = 200
    producer_done = threading.Event()
    full_seen = threading.Event()

    def produce() -> None:
        for i in range(total):
            tx.send_data(block, {"i": i})
            if tx.queue_depth >= tx.max_queue:
                full_seen.set()
        producer_done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    assert full_seen.wait(WAIT_S)  # the receiver does not read: the queue fills up
    assert not producer_done.is_set()  # and send_data waits instead of failing
    msgs = []
    while len(msgs) < total + 1:
        msgs.append(rx.recv())
    producer.join(WAIT_S)
    tx.send_eor()
    msgs += rx.until_eor()
    assert [m.sequence_number for m in msgs] == [0, *range(1, total + 1), total]
    assert [m.meta["i"] for m in msgs[1:-1]] == list(range(total))


@pytest.mark.parametrize("protocol", [1, 2])
def test_full_queue_send_timeout_keeps_the_data_with_the_caller(make: Any, protocol: int) -> None:
    tx, rx = make(protocol, max_queue=2, sndhwm=1, rcvhwm=1, payload_threshold_bytes=0)
    tx.send_bor()
    rx.recv()
    rx.close()  # the receiver vanishes
    accepted = 0
    with pytest.raises(SendTimeout, match="send queue stayed full") as info:
        for _ in range(10_000):
            tx.send_data(b"q" * 65536, timeout_s=0.3)
            accepted += 1
    assert info.value.timeout_s == 0.3
    assert tx.sequence_number == accepted == tx.records_queued  # the refused one got no number
    assert tx.queue_depth >= tx.max_queue
    dropped = tx.discard("test gives up")
    assert dropped >= tx.max_queue
    assert tx.queue_depth == 0
    tx.close()
    port = tx.port  # linger 0 after giving up: the port is free at once
    again = CdtpTransmitter(SENDER, protocol=protocol, port=port)
    again.close()


def test_eor_times_out_when_nobody_drains_and_the_run_stays_open(make: Any) -> None:
    tx, rx = make(1, max_queue=4, sndhwm=1, rcvhwm=1, eor_timeout_s=0.3)
    tx.send_bor()
    rx.recv()
    rx.close()
    for _ in range(3):
        tx.send_data(b"e" * 65536, timeout_s=1.0)
    with pytest.raises(SendTimeout, match=r"EOR not sent within 0\.3 s"):
        tx.send_eor()
    assert tx.in_run
    tx.discard()
    tx.reset_run()
    assert not tx.in_run


def test_thread_survives_timeouts_and_close_is_idempotent(make: Any) -> None:
    tx, _ = make(1, connect=False, bor_timeout_s=0.1)
    for _ in range(3):
        with pytest.raises(SendTimeout):
            tx.send_bor()
    assert tx._thread.is_alive()
    tx.close()
    tx.close()
    assert not tx._thread.is_alive() and tx.closed
    with pytest.raises(TransmitterError, match="closed"):
        tx.send_bor()


def test_close_drains_what_was_queued(make: Any) -> None:
    tx, rx = make(2, payload_threshold_bytes=1 << 20, flush_interval_s=60.0)
    tx.send_bor()
    for i in range(5):
        tx.send_data(b"d", {"i": i})
    tx.close()  # no EOR: the queued records still go out
    msgs = [rx.recv(), rx.recv()]
    assert [r.tags["i"] for r in msgs[1].records] == list(range(5))


def test_caller_supplied_socket_is_used_and_closed() -> None:
    sock = zmq.Context.instance().socket(zmq.PUSH)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    tx = CdtpTransmitter(SENDER, protocol=1, socket=sock, bor_timeout_s=WAIT_S)
    rx = Puller(f"tcp://127.0.0.1:{port}", 1)
    try:
        assert tx.port == port
        tx.send_bor()
        tx.send_eor()
        assert len(rx.until_eor()) == 2
    finally:
        tx.close()
        rx.close()
    assert sock.closed
