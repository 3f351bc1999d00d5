"""DataReceiver over real ZeroMQ loopback: recorded CDTP1/CDTP2 runs, run order, gaps, missing
EOR, allow-list, bad frames, zero copy; RunFileWriter output read back (HDF5 and .npy)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from daqwire.constellation.arrays import array_block, record_array
from daqwire.constellation.files import RunFileWriter, jsonable
from daqwire.constellation.receiver import (
    CdtpStateError,
    DataReceived,
    DataReceiver,
    Event,
    MessageRejected,
    RunCondition,
    RunEnded,
    RunStarted,
)
from daqwire.errors import LengthLimitError, RemoteProtocolError, StreamClosedError
from daqwire.generated import cdtp1, cdtp2
from tests.conftest import vectors_root

WAIT_S = 10.0
Frames = list[cdtp2.Block]


def _vector_dir(protocol: str) -> Path:
    return vectors_root() / "constellation" / protocol


def _frames(protocol: str, stem: str) -> list[bytes]:
    paths = sorted(_vector_dir(protocol).glob(f"{stem}.f*.bin"))
    assert paths, f"no frames for {protocol}/{stem}"
    return [p.read_bytes() for p in sorted(paths, key=lambda p: int(p.suffixes[-2][2:]))]


class Peer:
    """A plain ZeroMQ PUSH socket bound on loopback, plus a receiver connected to it."""

    def __init__(self, ctx: zmq.Context[Any]) -> None:
        self.sock = ctx.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.SNDTIMEO, int(WAIT_S * 1000))
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"

    def send(self, frames: Sequence[Any]) -> None:
        self.sock.send_multipart(list(frames), copy=False)


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def peer(ctx: zmq.Context[Any]) -> Peer:
    return Peer(ctx)


def recv_n(rx: DataReceiver, n: int) -> list[Event]:
    events: list[Event] = []
    for _ in range(n):
        event = rx.recv(timeout_s=WAIT_S)
        assert event is not None, f"only {len(events)} of {n} events arrived: {events}"
        events.append(event)
    return events


# --- encoders for hand-made runs (all bytes from the generated code) ---------------------------


def bor2(
    sender: str, tags: dict[str, Any] | None = None, config: dict[str, Any] | None = None
) -> Frames:
    records = (cdtp2.DataRecord(0, tags or {}, ()), cdtp2.DataRecord(1, config or {}, ()))
    return cdtp2.encode_bor_message(cdtp2.BorMessage(sender, records))


def data2(sender: str, *records: tuple[int, dict[str, Any], tuple[Any, ...]]) -> Frames:
    recs = tuple(cdtp2.DataRecord(s, t, b) for s, t, b in records)
    return cdtp2.encode_data_message(cdtp2.DataMessage(sender, recs))


def eor2(sender: str, metadata: dict[str, Any], tags: dict[str, Any] | None = None) -> Frames:
    records = (cdtp2.DataRecord(0, tags or {}, ()), cdtp2.DataRecord(1, metadata, ()))
    return cdtp2.encode_eor_message(cdtp2.EorMessage(sender, records))


def bor1(sender: str, meta: dict[str, Any] | None = None, payload: Any = None) -> Frames:
    return cdtp1.encode_bor_message(cdtp1.BorMessage(sender, 0, meta or {}, payload or {}))


def dat1(sender: str, seq: int, *payload: Any, meta: dict[str, Any] | None = None) -> Frames:
    return cdtp1.encode_dat_message(cdtp1.DatMessage(sender, seq, meta or {}, tuple(payload)))


def eor1(sender: str, seq: int, meta: dict[str, Any] | None = None, payload: Any = None) -> Frames:
    return cdtp1.encode_eor_message(cdtp1.EorMessage(sender, seq, meta or {}, payload or {}))


# --- recorded runs ----------------------------------------------------------------------------


def test_cdtp2_recorded_satellite_run(peer: Peer) -> None:
    run = json.loads((_vector_dir("cdtp2") / "cdtp2_satellite_run.json").read_text())
    expected = [
        cdtp2.decode_frames(_frames("cdtp2", f"cdtp2_satellite_run_msg{i}")) for i in range(3)
    ]
    with DataReceiver(peer.endpoint, protocol=2) as rx:
        for i in range(3):
            peer.send(_frames("cdtp2", f"cdtp2_satellite_run_msg{i}"))
        events = recv_n(rx, 6)
        assert rx.recv(timeout_s=0) is None
        stats = rx.stats
    started, *data, ended = events
    sender = run["satellite"]["canonical_name"]
    bor = expected[0]
    assert isinstance(bor, cdtp2.BorMessage)
    assert started == RunStarted(sender, bor.records[0].tags, bor.records[1].tags, 1)
    msg = expected[1]
    assert isinstance(msg, cdtp2.DataMessage)
    assert [type(e) for e in data] == [DataReceived] * 4
    for event, record in zip(data, msg.records, strict=True):
        assert isinstance(event, DataReceived)
        assert event.sender == sender
        assert event.sequence_number == record.sequence_number
        assert event.tags == record.tags
        assert [bytes(b) for b in event.blocks] == [bytes(b) for b in record.blocks]
    assert isinstance(data[1], DataReceived)
    assert record_array(data[1].blocks, data[1].tags).tolist() == [0, 1, 2, 3]
    assert isinstance(ended, RunEnded)
    eor = expected[2]
    assert isinstance(eor, cdtp2.EorMessage)
    assert ended.tags == eor.records[0].tags == {"final_status": "set in do_stopping()"}
    assert ended.metadata == eor.records[1].tags
    s = ended.summary
    assert (s.sender, s.run_index, s.run_id, s.records, s.missed) == (sender, 1, "run_0001", 4, 0)
    assert s.bytes == sum(b.nbytes for e in data if isinstance(e, DataReceived) for b in e.blocks)
    assert (s.first_sequence, s.last_sequence, s.sender_last_sequence) == (1, 4, 4)
    assert s.condition == RunCondition.GOOD and not s.eor_missing
    assert s.bor_tags == started.tags and s.configuration == started.configuration
    assert stats.messages == 3 and stats.records == 4 and stats.runs_ended == 1


def test_cdtp1_recorded_satellite_run(peer: Peer) -> None:
    expected = [
        cdtp1.decode_frames(_frames("cdtp1", f"cdtp1_satellite_run_msg{i}")) for i in range(6)
    ]
    with DataReceiver([peer.endpoint], protocol=1) as rx:
        for i in range(6):
            peer.send(_frames("cdtp1", f"cdtp1_satellite_run_msg{i}"))
        events = recv_n(rx, 6)
    started, *data, ended = events
    bor = expected[0]
    assert isinstance(bor, cdtp1.BorMessage)
    assert started == RunStarted("VectorDataSender.sat1", bor.meta or {}, bor.payload, 1)
    assert started.configuration["_role"] == "DYNAMIC"
    for event, msg in zip(data, expected[1:5], strict=True):
        assert isinstance(event, DataReceived) and isinstance(msg, cdtp1.DatMessage)
        assert event.sequence_number == msg.sequence_number
        assert event.tags == msg.meta
        assert [bytes(b) for b in event.blocks] == [bytes(b) for b in msg.payload]
    assert isinstance(ended, RunEnded)
    assert ended.tags == {"final_status": "set in do_stopping()"}
    assert ended.metadata == {}
    s = ended.summary
    assert (s.records, s.missed, s.sender_last_sequence, s.condition) == (
        4,
        0,
        4,
        RunCondition.GOOD,
    )
    assert s.protocol == 1


CDTP2_DATA_VECTORS = [
    "cdtp2_data_single_record_bytes",
    "cdtp2_data_numpy_tags",
    "cdtp2_data_multi_block",
    "cdtp2_data_record_no_blocks",
    "cdtp2_data_three_records",
    "cdtp2_data_rich_tags",
    "cdtp2_pusher_batch_threshold",
    "cdtp2_pusher_batch_timeout_flush",
    "cdtp2_pusher_threshold0",
]


@pytest.mark.parametrize("stem", CDTP2_DATA_VECTORS)
def test_cdtp2_data_vectors_between_bor_and_eor(peer: Peer, stem: str) -> None:
    frames = _frames("cdtp2", stem)
    msg = cdtp2.decode_frames(frames)
    assert isinstance(msg, cdtp2.DataMessage)
    last = msg.records[-1].sequence_number if msg.records else 0
    with DataReceiver(peer.endpoint) as rx:
        peer.send(bor2(msg.sender))
        peer.send(frames)
        peer.send(eor2(msg.sender, {"data_records": last, "condition_code": 0}))
        events = recv_n(rx, len(msg.records) + 2)
    assert isinstance(events[0], RunStarted)
    for event, record in zip(events[1:-1], msg.records, strict=True):
        assert isinstance(event, DataReceived)
        assert (event.sequence_number, event.tags) == (record.sequence_number, record.tags)
        assert [bytes(b) for b in event.blocks] == [bytes(b) for b in record.blocks]
    ended = events[-1]
    assert isinstance(ended, RunEnded)
    first = msg.records[0].sequence_number if msg.records else 1
    expected_missed = first - 1
    assert ended.summary.missed == expected_missed
    assert (RunCondition.INCOMPLETE in ended.summary.condition) == (expected_missed > 0)


CDTP1_DAT_VECTORS = [
    "cdtp1_dat_bytes",
    "cdtp1_dat_numpy_meta",
    "cdtp1_dat_multiframe",
    "cdtp1_dat_no_payload",
    "cdtp1_dat_empty_bytes",
    "cdtp1_dat_rich_meta",
]


@pytest.mark.parametrize("stem", CDTP1_DAT_VECTORS)
def test_cdtp1_dat_vectors_between_bor_and_eor(peer: Peer, stem: str) -> None:
    frames = _frames("cdtp1", stem)
    msg = cdtp1.decode_frames(frames)
    assert isinstance(msg, cdtp1.DatMessage)
    with DataReceiver(peer.endpoint, protocol=1) as rx:
        peer.send(bor1(msg.sender))
        peer.send(frames)
        peer.send(eor1(msg.sender, msg.sequence_number))
        started, data, ended = recv_n(rx, 3)
    assert isinstance(started, RunStarted) and isinstance(data, DataReceived)
    assert data.sequence_number == msg.sequence_number
    assert data.tags == (msg.meta or {})
    assert [bytes(b) for b in data.blocks] == [bytes(b) for b in msg.payload]
    assert isinstance(ended, RunEnded)
    assert ended.summary.records == 1
    assert ended.summary.condition == (
        RunCondition.GOOD if msg.sequence_number == 1 else RunCondition.INCOMPLETE
    )


def test_cdtp1_recorded_bor_eor_vectors(peer: Peer) -> None:
    with DataReceiver(peer.endpoint, protocol=1) as rx:
        peer.send(_frames("cdtp1", "cdtp1_bor_string_payload"))
        peer.send(_frames("cdtp1", "cdtp1_eor_datasender_style"))
        started, ended = recv_n(rx, 2)
    assert isinstance(started, RunStarted) and isinstance(ended, RunEnded)
    assert isinstance(started.configuration, str)
    assert ended.summary.records == 0


# --- sequence numbers and run conditions --------------------------------------------------------


def test_cdtp2_gap_marks_run_incomplete_and_updates_metadata(peer: Peer) -> None:
    s = "Gappy.sat"
    with DataReceiver(peer.endpoint) as rx:
        peer.send(bor2(s))
        peer.send(data2(s, (1, {}, (b"a",)), (2, {}, (b"b",))))
        peer.send(data2(s, (5, {}, (b"e",))))
        peer.send(eor2(s, {"condition_code": 1, "condition": "TAINTED", "data_records": 5}))
        events = recv_n(rx, 5)
    ended = events[-1]
    assert isinstance(ended, RunEnded)
    assert ended.summary.missed == 2
    assert ended.summary.condition == RunCondition.TAINTED | RunCondition.INCOMPLETE
    assert ended.metadata["condition_code"] == 3
    assert ended.metadata["condition"] == "TAINTED|INCOMPLETE"
    assert ended.metadata["data_records"] == 5


def test_cdtp2_sender_reports_more_records_than_seen(peer: Peer) -> None:
    s = "Short.sat"
    with DataReceiver(peer.endpoint) as rx:
        peer.send(bor2(s))
        peer.send(data2(s, (1, {}, ()), (2, {}, ())))
        peer.send(eor2(s, {"condition_code": 0, "data_records": 3}))
        ended = recv_n(rx, 4)[-1]
    assert isinstance(ended, RunEnded)
    assert ended.summary.missed == 0
    assert ended.summary.condition == RunCondition.INCOMPLETE
    assert ended.metadata == {"condition_code": 2, "data_records": 3, "condition": "INCOMPLETE"}


def test_cdtp2_good_run_keeps_metadata_untouched(peer: Peer) -> None:
    s = "Good.sat"
    meta = {"run_id": "r7", "time_end": datetime(2026, 1, 1, tzinfo=UTC), "data_records": 1}
    with DataReceiver(peer.endpoint) as rx:
        peer.send(bor2(s))
        peer.send(data2(s, (1, {}, (b"x",))))
        peer.send(eor2(s, meta))
        ended = recv_n(rx, 3)[-1]
    assert isinstance(ended, RunEnded)
    assert ended.metadata == meta and ended.summary.condition == RunCondition.GOOD
    assert ended.summary.run_id == "r7"


def test_cdtp1_gap_and_eor_sequence_mismatch(peer: Peer) -> None:
    s = "Old.sat"
    with DataReceiver(peer.endpoint, protocol=1) as rx:
        peer.send(bor1(s))
        peer.send(dat1(s, 1, b"a"))
        peer.send(dat1(s, 3, b"c"))
        peer.send(eor1(s, 3))
        peer.send(bor1(s))
        peer.send(dat1(s, 1, b"a"))
        peer.send(eor1(s, 2))
        events = recv_n(rx, 7)
    first, second = events[3], events[6]
    assert isinstance(first, RunEnded) and isinstance(second, RunEnded)
    assert (first.summary.missed, first.summary.condition) == (1, RunCondition.INCOMPLETE)
    assert first.metadata == {}  # CDTP1 EOR payloads are passed on as sent
    assert (second.summary.missed, second.summary.sender_last_sequence) == (0, 2)
    assert second.summary.condition == RunCondition.INCOMPLETE
    assert second.summary.run_index == 2


def test_out_of_order_records_are_counted_not_missed(peer: Peer) -> None:
    s = "Dup.sat"
    with DataReceiver(peer.endpoint) as rx:
        peer.send(bor2(s))
        peer.send(data2(s, (1, {}, ()), (2, {}, ()), (2, {}, ()), (3, {}, ())))
        peer.send(eor2(s, {"data_records": 3}))
        ended = recv_n(rx, 6)[-1]
    assert isinstance(ended, RunEnded)
    assert (ended.summary.out_of_order, ended.summary.missed) == (1, 0)
    assert ended.summary.condition == RunCondition.GOOD


def test_empty_data_message_gives_no_event(peer: Peer) -> None:
    s = "Empty.sat"
    with DataReceiver(peer.endpoint) as rx:
        peer.send(bor2(s))
        peer.send(data2(s))
        peer.send(eor2(s, {"data_records": 0}))
        started, ended = recv_n(rx, 2)
        assert rx.stats.messages == 3
    assert isinstance(started, RunStarted) and isinstance(ended, RunEnded)
    assert ended.summary.records == 0 and ended.summary.last_sequence is None


# --- missing EOR --------------------------------------------------------------------------------


def test_missing_eor_gives_substitute_end(peer: Peer) -> None:
    with DataReceiver(peer.endpoint, eor_timeout_s=60) as rx:
        peer.send(bor2("Quiet.a", {"run_id": "r1"}))
        peer.send(bor2("Gappy.b"))
        peer.send(data2("Gappy.b", (2, {}, (b"x",))))
        peer.send(bor2("Done.c"))
        peer.send(eor2("Done.c", {"data_records": 0}))
        assert len(recv_n(rx, 5)) == 5
        assert set(rx.open_runs) == {"Quiet.a", "Gappy.b"}
        events = rx.finish(eor_timeout_s=0.2)
        assert rx.finished and rx.recv(timeout_s=0) is None
        assert set(rx.missing_eor) == {"Quiet.a", "Gappy.b"}
        assert rx.open_runs == ()
    ends = {e.sender: e for e in events if isinstance(e, RunEnded)}
    assert set(ends) == {"Quiet.a", "Gappy.b"} and len(events) == 2
    quiet, gappy = ends["Quiet.a"], ends["Gappy.b"]
    assert quiet.summary.eor_missing and gappy.summary.eor_missing
    assert quiet.summary.condition == RunCondition.ABORTED
    assert quiet.metadata == {"condition_code": 8, "condition": "ABORTED"}
    assert quiet.summary.run_id == "r1"
    assert gappy.summary.condition == RunCondition.ABORTED | RunCondition.INCOMPLETE
    assert gappy.metadata == {"condition_code": 10, "condition": "INCOMPLETE|ABORTED"}
    assert gappy.tags == {}


def test_stop_waits_for_an_eor_that_comes(peer: Peer) -> None:
    with DataReceiver(peer.endpoint) as rx:
        peer.send(bor2("Late.sat"))
        assert isinstance(rx.recv(timeout_s=WAIT_S), RunStarted)
        rx.stop(eor_timeout_s=60)
        assert rx.stopping and not rx.finished
        peer.send(data2("Late.sat", (1, {}, (b"1",))))
        peer.send(eor2("Late.sat", {"data_records": 1}))
        events = rx.finish()
    assert [type(e) for e in events] == [DataReceived, RunEnded]
    ended = events[-1]
    assert isinstance(ended, RunEnded)
    assert not ended.summary.eor_missing and ended.summary.condition == RunCondition.GOOD
    assert rx.missing_eor == ()


def test_stop_without_open_runs_finishes_at_once(peer: Peer) -> None:
    with DataReceiver(peer.endpoint, allow_senders=["Never.sat"]) as rx:
        assert rx.finish() == []
        assert rx.finished


# --- run order errors ---------------------------------------------------------------------------


def test_order_errors_have_reference_texts_and_receiver_keeps_serving(peer: Peer) -> None:
    s = "Order.sat"
    with DataReceiver(peer.endpoint) as rx:
        peer.send(data2(s, (1, {}, ())))
        peer.send(eor2(s, {}))
        peer.send(bor2(s))
        peer.send(bor2(s))
        peer.send(data2(s, (1, {}, (b"ok",))))
        peer.send(eor2(s, {"data_records": 1}))
        peer.send(data2(s, (2, {}, ())))
        events = recv_n(rx, 7)
        stats = rx.stats
    texts = [e.error.message for e in events if isinstance(e, MessageRejected)]
    assert texts == [
        f"Error handling CDTP message with type DATA: did not receive BOR from {s}",
        f"Error handling CDTP message with type EOR: did not receive BOR from {s}",
        f"Error handling CDTP message with type BOR: already received BOR from {s}",
        f"Error handling CDTP message with type DATA: did not receive BOR from {s}",
    ]
    rejected = [e for e in events if isinstance(e, MessageRejected)]
    assert all(isinstance(e.error, CdtpStateError) and e.sender == s for e in rejected)
    assert isinstance(rejected[0].error, CdtpStateError)
    assert rejected[0].error.message_type == "DATA" and rejected[0].frames_count == 1
    assert [type(e) for e in events] == [
        MessageRejected,
        MessageRejected,
        RunStarted,
        MessageRejected,
        DataReceived,
        RunEnded,
        MessageRejected,
    ]
    assert stats.state_errors == 4 and stats.messages == 3


def test_cdtp1_order_error_names_dat(peer: Peer) -> None:
    with DataReceiver(peer.endpoint, protocol=1) as rx:
        peer.send(dat1("X.y", 1, b"z"))
        (event,) = recv_n(rx, 1)
    assert isinstance(event, MessageRejected)
    assert str(event.error.message) == (
        "Error handling CDTP message with type DAT: did not receive BOR from X.y"
    )


def test_strict_raises_and_keeps_serving(peer: Peer) -> None:
    with DataReceiver(peer.endpoint, strict=True) as rx:
        peer.send(eor2("S.t", {}))
        peer.send([b"garbage"])
        peer.send(bor2("S.t"))
        with pytest.raises(CdtpStateError, match=r"did not receive BOR from S\.t"):
            rx.recv(timeout_s=WAIT_S)
        with pytest.raises(RemoteProtocolError, match="Error decoding message"):
            rx.recv(timeout_s=WAIT_S)
        assert isinstance(rx.recv(timeout_s=WAIT_S), RunStarted)


# --- bad input ----------------------------------------------------------------------------------


def test_garbage_and_wrong_generation_are_rejected_with_typed_errors(peer: Peer) -> None:
    with DataReceiver(peer.endpoint) as rx:
        peer.send([b"\xc1garbage"])
        peer.send([b"a", b"b"])
        peer.send(_frames("cdtp1", "cdtp1_dat_bytes")[:1])
        peer.send([_frames("cdtp2", "cdtp2_data_three_records")[0][:40]])
        peer.send(bor2("Fine.sat"))
        events = recv_n(rx, 5)
        stats = rx.stats
    rejected = events[:4]
    assert all(isinstance(e, MessageRejected) and e.sender is None for e in rejected)
    errors = [e.error for e in rejected if isinstance(e, MessageRejected)]
    assert all(isinstance(err, RemoteProtocolError) for err in errors)
    assert errors[1].message == "Error decoding message: Expected 1 frame, got 2"
    assert errors[2].message == (
        "Error decoding message: Received protocol `CDTP1` does not match expected identifier "
        "`CDTP2`"
    )
    assert errors[3].message == "Error decoding message: Error unpacking data"
    assert isinstance(events[4], RunStarted)
    assert stats.decode_errors == 4


def test_cdtp2_message_into_cdtp1_receiver(peer: Peer) -> None:
    with DataReceiver(peer.endpoint, protocol=1) as rx:
        peer.send(bor2("New.sat"))
        (event,) = recv_n(rx, 1)
    assert isinstance(event, MessageRejected)
    assert event.error.message.startswith("Received message with malformed CDTP1 header: b'")


def test_max_message_bytes_disconnects_an_oversized_sender(peer: Peer) -> None:
    with DataReceiver(peer.endpoint, max_message_bytes=4096) as rx:
        peer.send(bor2("Big.sat"))
        assert isinstance(rx.recv(timeout_s=WAIT_S), RunStarted)
        peer.send(data2("Big.sat", (1, {}, (bytes(100_000),))))
        # libzmq treats the oversized frame as a protocol error: it drops the connection and
        # does not reconnect by itself; connecting again restores the flow
        assert rx.recv(timeout_s=0.2) is None
        rx.remove_endpoint(peer.endpoint)
        rx.add_endpoint(peer.endpoint)
        peer.send(eor2("Big.sat", {"data_records": 1}))
        ended = rx.recv(timeout_s=WAIT_S)
        assert isinstance(ended, RunEnded)
        assert ended.summary.records == 0
        assert ended.summary.condition == RunCondition.INCOMPLETE


# --- allow-list, limits, sockets ----------------------------------------------------------------


def test_allow_list_drops_other_senders(peer: Peer, caplog: pytest.LogCaptureFixture) -> None:
    with DataReceiver(peer.endpoint, allow_senders=["RandomDataSender.sat1"]) as rx:
        for _ in range(3):
            peer.send(bor2("Intruder.x"))
        peer.send(bor2("randomdatasender.SAT1"))
        (event,) = recv_n(rx, 1)
        assert rx.recv(timeout_s=0) is None
        assert rx.stats.dropped == 3
    assert isinstance(event, RunStarted) and event.sender == "randomdatasender.SAT1"
    drops = [r for r in caplog.records if "not in allow_senders" in r.getMessage()]
    assert len(drops) == 1 and "Intruder.x" in drops[0].getMessage()


def test_max_senders_bounds_state(peer: Peer) -> None:
    with DataReceiver(peer.endpoint, max_senders=2) as rx:
        peer.send(bor2("A.a"))
        peer.send(bor2("B.b"))
        peer.send(bor2("C.c"))
        peer.send(eor2("A.a", {}))
        peer.send(bor2("C.c"))
        events = recv_n(rx, 5)
    rejected = events[2]
    assert isinstance(rejected, MessageRejected)
    assert isinstance(rejected.error, LengthLimitError) and rejected.error.limit == 2
    assert isinstance(events[4], RunStarted) and events[4].sender == "C.c"


def test_run_index_counts_runs_per_sender(peer: Peer) -> None:
    with DataReceiver(peer.endpoint) as rx:
        for _ in range(3):
            peer.send(bor2("Rep.sat"))
            peer.send(eor2("Rep.sat", {}))
        events = recv_n(rx, 6)
        summaries = rx.summaries
    assert [e.run_index for e in events if isinstance(e, RunStarted)] == [1, 2, 3]
    assert [s.run_index for s in summaries] == [1, 2, 3]


def test_zero_copy_blocks(peer: Peer) -> None:
    big = bytes(range(256)) * 1024  # above pyzmq's copy threshold: the frame is not copied
    with DataReceiver(peer.endpoint, protocol=1) as rx:
        peer.send(bor1("Zc.sat"))
        peer.send(dat1("Zc.sat", 1, big, b"small"))
        _, data = recv_n(rx, 2)
    assert isinstance(data, DataReceived)
    assert all(isinstance(b, memoryview) for b in data.blocks)
    assert isinstance(data.blocks[0].obj, zmq.Frame)
    assert data.blocks[0] == big and data.nbytes == len(big) + 5


def test_zero_copy_cdtp2_block_is_a_slice_of_the_frame(peer: Peer) -> None:
    arr = np.arange(20_000, dtype="<f8")
    block, tags = array_block(arr)
    with DataReceiver(peer.endpoint) as rx:
        peer.send(bor2("Zc.two"))
        peer.send(data2("Zc.two", (1, tags, (block,))))
        _, data = recv_n(rx, 2)
    assert isinstance(data, DataReceived)
    assert isinstance(data.blocks[0].obj, zmq.Frame)
    out = record_array(data.blocks, data.tags)
    assert not out.flags.owndata and np.shares_memory(out, np.frombuffer(data.blocks[0], "u1"))
    np.testing.assert_array_equal(out, arr)


def test_bind_mode_and_several_senders(ctx: zmq.Context[Any]) -> None:
    with DataReceiver(["tcp://127.0.0.1:*"], bind=True, context=ctx) as rx:
        (endpoint,) = rx.endpoints
        assert endpoint.startswith("tcp://127.0.0.1:") and not endpoint.endswith("*")
        senders = []
        for name in ("One.s", "Two.s"):
            sock = ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.SNDTIMEO, int(WAIT_S * 1000))
            sock.connect(endpoint)
            sock.send_multipart(bor2(name))
            sock.send_multipart(eor2(name, {}))
            senders.append(sock)
        events = recv_n(rx, 4)
        for sock in senders:
            sock.close(linger=0)
    assert {e.sender for e in events if isinstance(e, RunEnded)} == {"One.s", "Two.s"}


def test_close_is_idempotent_and_recv_after_close_raises(peer: Peer) -> None:
    rx = DataReceiver(peer.endpoint)
    rx.close()
    rx.close()
    assert rx.closed
    with pytest.raises(StreamClosedError):
        rx.recv(timeout_s=0)
    with pytest.raises(ValueError, match="protocol"):
        DataReceiver(peer.endpoint, protocol=3)


def test_remove_endpoint(peer: Peer, ctx: zmq.Context[Any]) -> None:
    other = Peer(ctx)
    with DataReceiver([peer.endpoint, other.endpoint]) as rx:
        other.send(bor2("Other.s"))
        assert isinstance(rx.recv(timeout_s=WAIT_S), RunStarted)
        rx.remove_endpoint(other.endpoint)
        assert rx.endpoints == (peer.endpoint,)
        peer.send(bor2("Kept.s"))
        event = rx.recv(timeout_s=WAIT_S)
        assert isinstance(event, RunStarted) and event.sender == "Kept.s"


# --- with daqwire's own transmitter -------------------------------------------------------------


@pytest.mark.parametrize("protocol", [1, 2])
def test_transmitter_to_receiver_with_arrays(protocol: int) -> None:
    from daqwire.constellation.transmitter import CdtpTransmitter

    arrays = [np.arange(12, dtype="<i4").reshape(3, 4), np.linspace(0, 1, 5), np.zeros(0)]
    with CdtpTransmitter("Tx.sat", protocol=protocol, host="127.0.0.1") as tx:
        with DataReceiver(tx.endpoint, protocol=protocol) as rx:
            tx.send_bor({"run_id": "tx1"}, {"gain": 2}, run_id="tx1")
            for arr in arrays:
                tx.send_data(arr)
            tx.send_eor({"bye": True})
            events = recv_n(rx, len(arrays) + 2)
    started, *data, ended = events
    assert isinstance(started, RunStarted) and started.configuration == {"gain": 2}
    for event, arr in zip(data, arrays, strict=True):
        assert isinstance(event, DataReceived)
        np.testing.assert_array_equal(record_array(event.blocks, event.tags), arr)
    assert isinstance(ended, RunEnded) and ended.tags == {"bye": True}
    assert ended.summary.condition == RunCondition.GOOD and ended.summary.records == 3
    if protocol == 2:
        assert ended.summary.run_id == "tx1" and ended.metadata["data_records"] == 3


# --- files --------------------------------------------------------------------------------------


def _file_run(peer: Peer, protocol: int = 2) -> list[Event]:
    """A run with typed arrays, a bad dtype tag, a repeated sequence number and a datetime tag."""
    s = "Writer.sat1"
    when = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    a = np.arange(6, dtype="<f4").reshape(2, 3)
    b = np.array([1, -2, 3], dtype=">i2")
    ba, ta = array_block(a)
    bb, tb = array_block(b)
    with DataReceiver(peer.endpoint, protocol=protocol) as rx:
        if protocol == 2:
            peer.send(bor2(s, {"run_id": "run/7"}, {"nested": {"k": [1, 2]}}))
            peer.send(data2(s, (1, {**ta, "when": when}, (ba,)), (2, tb, (bb, bb))))
            peer.send(data2(s, (3, {"dtype": "nonsense"}, (b"raw!",)), (3, {}, (b"again",))))
            peer.send(data2(s, (4, {}, ())))
            peer.send(eor2(s, {"data_records": 4, "time_end": when}, {"note": "done"}))
            return recv_n(rx, 7)
        peer.send(bor1(s, {"run_id": "run/7"}, {"nested": {"k": [1, 2]}}))
        peer.send(dat1(s, 1, ba, meta=ta))
        peer.send(dat1(s, 2, bb, bb, meta=tb))
        peer.send(dat1(s, 3, b"raw!", meta={"dtype": "nonsense"}))
        peer.send(dat1(s, 3, b"again"))
        peer.send(dat1(s, 4))
        peer.send(eor1(s, 4, {"note": "done"}))
        return recv_n(rx, 7)


@pytest.mark.parametrize("protocol", [1, 2])
def test_hdf5_run_file_reads_back(peer: Peer, tmp_path: Path, protocol: int) -> None:
    h5py = pytest.importorskip("h5py")
    events = _file_run(peer, protocol)
    with RunFileWriter(tmp_path, format="hdf5", protocol=protocol) as writer:
        paths = [writer.handle(e) for e in events]
    (path,) = [p for p in paths if p is not None]
    assert path.name == "Writer.sat1_run0001_run_7.h5" and writer.paths == (path,)
    with h5py.File(path, "r") as f:
        g = f["Writer.sat1"]
        assert g.attrs["complete"] and g.attrs["run_index"] == 1
        assert json.loads(g["BOR"].attrs["user_tags"]) == {"run_id": "run/7"}
        assert json.loads(g["BOR"].attrs["configuration"]) == {"nested": {"k": [1, 2]}}
        one = g["data_000000001"]
        np.testing.assert_array_equal(one["block_00"][()], np.arange(6, dtype="<f4").reshape(2, 3))
        assert one["block_00"].dtype == np.dtype("<f4")
        two = g["data_000000002"]
        for name in ("block_00", "block_01"):
            np.testing.assert_array_equal(two[name][()], np.array([1, -2, 3], dtype=">i2"))
        bad = g["data_000000003"]
        assert (
            bytes(bad["block_00"][()]) == b"raw!"
            and "not a numpy dtype" in bad.attrs["array_error"]
        )
        assert bytes(g["data_000000003_1"]["block_00"][()]) == b"again"
        assert len(g["data_000000004"]) == 0
        eor = g["EOR"]
        assert json.loads(eor.attrs["user_tags"]) == {"note": "done"}
        assert eor.attrs["condition"] == "GOOD" and eor.attrs["records"] == 5
        assert eor.attrs["missed"] == 0 and not eor.attrs["eor_missing"]
        if protocol == 2:
            assert json.loads(one.attrs["tags"])["when"] == "2026-05-01T12:00:00+00:00"
            assert json.loads(eor.attrs["run_metadata"])["time_end"] == "2026-05-01T12:00:00+00:00"


@pytest.mark.parametrize("protocol", [1, 2])
def test_npy_run_folder_reads_back(peer: Peer, tmp_path: Path, protocol: int) -> None:
    events = _file_run(peer, protocol)
    writer = RunFileWriter(tmp_path / "out", format="npy", protocol=protocol)
    paths = [writer.handle(e) for e in events]
    writer.close()
    (path,) = [p for p in paths if p is not None]
    assert path.is_dir() and path.name == "Writer.sat1_run0001_run_7"
    bor = json.loads((path / "bor.json").read_text())
    assert bor["configuration"] == {"nested": {"k": [1, 2]}} and bor["protocol"] == protocol
    lines = [json.loads(x) for x in (path / "records.jsonl").read_text().splitlines()]
    assert [x["sequence_number"] for x in lines] == [1, 2, 3, 3, 4]
    assert lines[0]["files"] == ["data_000000001_00.npy"]
    assert lines[3]["files"] == ["data_000000003_1_00.npy"] and lines[4]["files"] == []
    assert "array_error" in lines[2]
    a = np.load(path / "data_000000001_00.npy")
    np.testing.assert_array_equal(a, np.arange(6, dtype="<f4").reshape(2, 3))
    b = np.load(path / "data_000000002_01.npy")
    assert b.dtype == np.dtype(">i2") and b.tolist() == [1, -2, 3]
    assert np.load(path / "data_000000003_00.npy").tobytes() == b"raw!"
    eor = json.loads((path / "eor.json").read_text())
    assert eor["tags"] == {"note": "done"} and eor["summary"]["records"] == 5
    assert eor["summary"]["condition"] == "GOOD"


def test_writer_closes_unfinished_runs_and_never_overwrites(peer: Peer, tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    with DataReceiver(peer.endpoint) as rx:
        peer.send(bor2("Cut.sat"))
        peer.send(data2("Cut.sat", (1, {}, (b"12",))))
        events = recv_n(rx, 2)
    (tmp_path / "Cut.sat_run0001.h5").write_bytes(b"keep me")
    writer = RunFileWriter(tmp_path)
    for event in events:
        writer.handle(event)
    writer.close()
    writer.close()
    assert writer.paths == ()
    assert (tmp_path / "Cut.sat_run0001.h5").read_bytes() == b"keep me"
    with h5py.File(tmp_path / "Cut.sat_run0001-2.h5", "r") as f:
        assert not f["Cut.sat"].attrs["complete"] and "EOR" not in f["Cut.sat"]
    with pytest.raises(ValueError, match="format"):
        RunFileWriter(tmp_path, format="csv")  # type: ignore[arg-type]


def test_jsonable() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert jsonable({"t": when, 1: b"\x01\xff", "l": (1, 2.5, None)}) == {
        "t": "2026-01-02T03:04:05+00:00",
        "1": {"$bytes": "01ff"},
        "l": [1, 2.5, None],
    }


# --- the real Constellation 1.0.2 as the sender -------------------------------------------------


def test_constellationdaq_transmitter_to_receiver(ctx: zmq.Context[Any]) -> None:
    ref_cdtp = pytest.importorskip("constellation.core.cdtp")
    ref_logging = pytest.importorskip("constellation.core.logging")
    logger = ref_logging.ConstellationLogger("cdtp-interop")
    failures: list[str] = []
    sock = ctx.socket(zmq.PUSH)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    tx = ref_cdtp.DataTransmitter("RefSender.sat1", sock, logger, failures.append)
    tx.bor_timeout = tx.data_timeout = tx.eor_timeout = 10
    tx.payload_threshold = 0  # one record per message
    arr = np.linspace(-1, 1, 64)
    with DataReceiver(f"tcp://127.0.0.1:{port}") as rx:
        tx.send_bor({"run": "interop"}, {"gain": 3})
        tx.start_sending()
        record = tx.new_data_record({"dtype": "float64"})
        record.add_block(arr.tobytes())
        tx.send_data_record(record)
        record = tx.new_data_record({})
        record.add_block(b"a")
        record.add_block(b"")
        tx.send_data_record(record)
        tx.stop_sending()
        meta = {"run_id": "interop", "condition_code": 0, "condition": "GOOD", "data_records": 2}
        tx.send_eor({"bye": 1}, meta)
        events = recv_n(rx, 4)
    sock.close(linger=0)
    assert not failures
    started, first, second, ended = events
    assert isinstance(started, RunStarted)
    assert (started.sender, started.tags, started.configuration) == (
        "RefSender.sat1",
        {"run": "interop"},
        {"gain": 3},
    )
    assert isinstance(first, DataReceived) and isinstance(second, DataReceived)
    np.testing.assert_array_equal(record_array(first.blocks, first.tags), arr)
    assert [bytes(b) for b in second.blocks] == [b"a", b""]
    assert isinstance(ended, RunEnded) and ended.metadata == meta
    assert ended.summary.condition == RunCondition.GOOD and ended.summary.records == 2
