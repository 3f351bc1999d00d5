"""Live CDTP2 interoperability with the real Constellation (``constellationdaq==1.0.2``).

Both directions over real ZeroMQ sockets on loopback, 1,000 records per run:

* daqwire's ``CdtpTransmitter(protocol=2)`` -> Constellation's ``core.cdtp.DataReceiver``
  (its pull thread and callbacks), batched and one record per message;
* Constellation's ``core.cdtp.DataTransmitter`` (its push thread) -> daqwire's
  ``DataReceiver(protocol=2)``, complete runs and runs with skipped sequence numbers;
* Constellation's message classes against daqwire's generated codec, frame by frame, for
  hypothesis-generated messages and hand-picked timestamps.

Records vary: 0, 1 or 5 blocks (empty blocks, bin8/bin16/bin32 sizes, numpy payloads) and
tags of every msgpack type (nested maps, ints beyond 2**32, floats, bools, bytes, tz-aware
datetimes). Nothing here asserts timing; every wait is bounded and every socket, context
and thread is closed by the fixtures' finalizers, also when a test fails.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings

from daqwire.constellation import (
    CdtpTransmitter,
    DataReceived,
    DataReceiver,
    Event,
    MessageRejected,
    RunCondition,
    RunEnded,
    RunStarted,
    record_array,
)
from daqwire.constellation.transmitter import Payload
from daqwire.generated import cdtp2
from daqwire.generated.cdtp2_strategies import message_values

ref_cdtp = pytest.importorskip("constellation.core.cdtp", reason="needs constellationdaq 1.0.2")
ref_msg = pytest.importorskip("constellation.core.message.cdtp2")
ref_chirp = pytest.importorskip("constellation.core.chirp")
ref_chirpmanager = pytest.importorskip("constellation.core.chirpmanager")
ref_logging = pytest.importorskip("constellation.core.logging")

#: records per run
N = 1000
#: the longest any single wait may take (generous: loaded CI machines)
WAIT_S = 20.0
OUR_NAME = "DaqwireSender.interop"
THEIR_NAME = "ConstellationSender.interop"
TZ = timezone(timedelta(hours=2, minutes=30))
ARRAY_TAGS = {"dtype": "int32", "shape": [3, 4]}


# --- the run content ---


def _bytes(length: int, seed: int) -> bytes:
    return (np.arange(length, dtype=np.uint32) * 7 + seed).astype(np.uint8).tobytes()


def _tags(i: int) -> dict[str, Any]:
    """Tags of record ``i``: empty, one int, or every msgpack type (lists, never tuples)."""
    kind = i % 4
    if kind == 0:
        return {}
    if kind == 1:
        return {"i": i}
    tags: dict[str, Any] = {
        "i": i,
        "big": 2**40 + i,
        "u64": 2**64 - 1,
        "neg": -(2**33) - i,
        "f": i / 3,
        "flag": i % 2 == 0,
        "none": None,
        "raw": _bytes(i % 5, i),
        "text": f"récord {i}",
        "nested": {"list": [1, "two", [3.0, {"deep": i}]], "map": {"a": {"b": True}}},
        # whole seconds (timestamp32) for even i, sub-second (timestamp64) for odd i
        "when": datetime(2025, 9, 3, 12, 0, tzinfo=TZ)
        + timedelta(seconds=i, microseconds=i % 2 * i),
    }
    if kind == 3:
        tags["before_1970"] = datetime(1960, 1, 1, 0, 0, 0, 250, tzinfo=UTC)  # timestamp96
    return tags


@dataclass(frozen=True)
class Rec:
    """One record: what daqwire's ``send_data`` takes and what must arrive on the wire."""

    payload: Payload  # for CdtpTransmitter.send_data
    user_tags: dict[str, Any]  # for CdtpTransmitter.send_data
    blocks: list[bytes] = field(default_factory=list)  # the blocks on the wire
    tags: dict[str, Any] = field(default_factory=dict)  # the tags on the wire


def _record(i: int) -> Rec:
    tags = _tags(i)
    nblocks = (0, 1, 5)[i % 3]
    if nblocks == 0:
        return Rec(None, tags, [], tags)
    if nblocks == 1:
        if i % 5 == 1:  # a numpy array: daqwire adds the dtype/shape tags
            arr = (np.arange(12, dtype="<i4") * i - 5000).reshape(3, 4)
            return Rec(arr, tags, [arr.tobytes()], {**tags, **ARRAY_TAGS})
        if i % 5 == 2:
            return Rec(b"", tags, [b""], tags)
        block = _bytes(i % 300, i)  # bin8 and bin16 sizes
        return Rec(block, tags, [block], tags)
    floats = np.linspace(-1.0, 1.0, 4) * i
    big = _bytes(70_000 if i % 100 == 2 else 300, i)  # bin32 in some records, else bin16
    small = _bytes(i % 7, i)
    payload: Payload = [b"", small, bytearray(small[::-1]), memoryview(big), floats]
    blocks = [b"", small, small[::-1], big, floats.tobytes()]
    return Rec(payload, tags, blocks, tags)


RECORDS = {i: _record(i) for i in range(1, N + 1)}
BOR_TAGS: dict[str, Any] = {"run": "interop", "when": datetime(2025, 9, 3, tzinfo=UTC), "n": 2**35}
CONFIGURATION: dict[str, Any] = {
    "gain": 3,
    "threshold": -0.5,
    "enabled": True,
    "name": "détecteur ✓",
    "calibration": b"\x00\xff",
    "channels": [1, 2, [3, 4]],
    "_data": {"payload_threshold": 128, "queue_size": 32768, "timeouts": {"bor": 10.0}},
}
EOR_TAGS: dict[str, Any] = {"bye": 1, "at": datetime(2025, 9, 3, 13, 0, 0, 123456, tzinfo=TZ)}


def _logger(name: str) -> Any:
    return ref_logging.ConstellationLogger(name)


def _deadline_wait(what: str, check: Callable[[], bool], on_timeout: Callable[[], str]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {WAIT_S} s: {on_timeout()}")
        time.sleep(0.02)


# --- fixtures: everything registered in one ExitStack, closed in reverse order ---


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


@pytest.fixture
def ctx(stack: ExitStack) -> zmq.Context[Any]:
    context: zmq.Context[Any] = zmq.Context()
    stack.callback(context.destroy, linger=0)  # runs last: every socket user is gone by then
    return context


class TheirReceiver:
    """Constellation's DataReceiver with callbacks that record what arrives."""

    def __init__(self, ctx: zmq.Context[Any]) -> None:
        self.bor: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.records: list[tuple[str, int, dict[str, Any], list[bytes]]] = []
        self.eor: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.rx = ref_cdtp.DataReceiver(
            ctx, _logger("interop.rx"), self._on_bor, self._on_data, self._on_eor, None
        )

    def _on_bor(self, sender: str, tags: dict[str, Any], configuration: dict[str, Any]) -> None:
        self.bor.append((sender, tags, configuration))

    def _on_data(self, sender: str, record: Any) -> None:
        self.records.append((sender, record.sequence_number, record.tags, list(record.blocks)))

    def _on_eor(self, sender: str, tags: dict[str, Any], run_metadata: dict[str, Any]) -> None:
        self.eor.append((sender, tags, run_metadata))

    def connect(self, port: int) -> None:
        """Start the pull thread and connect to a sender as CHIRP discovery would."""
        self.rx.start_receiving()
        service = ref_chirpmanager.DiscoveredService(
            uuid.uuid4(), ref_chirp.CHIRPServiceIdentifier.DATA, "127.0.0.1", port
        )
        self.rx.add_sender(service)

    def wait_for_eor(self) -> None:
        def state() -> str:
            return (
                f"{len(self.bor)} BOR, {len(self.records)} records, {len(self.eor)} EOR, "
                f"pull thread error {self.rx._pull_thread_exc!r}"
            )

        _deadline_wait(
            "the EOR", lambda: bool(self.eor) or self.rx._pull_thread_exc is not None, state
        )
        self.rx.check_exception()

    def close(self) -> None:
        # stop_receiving waits eor_timeout for missing EORs and then raises; after a failed
        # test just stop the (non-daemon) pull thread and close its sockets
        thread = self.rx._pull_thread
        if thread is not None and thread.is_alive():
            self.rx._stop_pull_thread()


@pytest.fixture
def their_receiver(stack: ExitStack, ctx: zmq.Context[Any]) -> TheirReceiver:
    receiver = TheirReceiver(ctx)
    stack.callback(receiver.close)
    return receiver


@pytest.fixture
def our_transmitter(stack: ExitStack, ctx: zmq.Context[Any]) -> Callable[..., CdtpTransmitter]:
    def make(**kwargs: Any) -> CdtpTransmitter:
        tx = CdtpTransmitter(
            OUR_NAME,
            protocol=2,
            host="127.0.0.1",
            context=ctx,
            bor_timeout_s=WAIT_S,
            data_timeout_s=WAIT_S,
            eor_timeout_s=WAIT_S,
            **kwargs,
        )
        stack.callback(tx.close, timeout_s=2.0)
        return tx

    return make


class TheirSender:
    """Constellation's DataTransmitter on a PUSH socket it binds, driven from a thread."""

    def __init__(self, ctx: zmq.Context[Any], payload_threshold_kib: int) -> None:
        self.sock = ctx.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.failures: list[str] = []
        self.errors: list[BaseException] = []
        self.dtm = ref_cdtp.DataTransmitter(
            THEIR_NAME, self.sock, _logger("interop.tx"), self.failures.append
        )
        self.dtm.bor_timeout = self.dtm.data_timeout = self.dtm.eor_timeout = int(WAIT_S)
        self.dtm.payload_threshold = payload_threshold_kib
        self.thread: threading.Thread | None = None

    def start(self, run: Callable[[Any], None]) -> None:
        def target() -> None:
            try:
                run(self.dtm)
            except BaseException as exc:  # reported by the test
                self.errors.append(exc)

        self.thread = threading.Thread(target=target, name="their-sender", daemon=True)
        self.thread.start()

    def join(self) -> None:
        assert self.thread is not None
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive(), "Constellation's sender thread did not finish"
        if self.errors:
            raise self.errors[0]
        assert not self.failures

    def close(self) -> None:
        # the push thread is not a daemon: stop it before the socket goes
        self.dtm._stopevt.set()
        push = self.dtm._push_thread
        if push is not None:
            push.join(WAIT_S + 5)
        if self.thread is not None:
            self.thread.join(WAIT_S + 5)
        self.sock.close(linger=0)


@pytest.fixture
def their_sender(stack: ExitStack, ctx: zmq.Context[Any]) -> Callable[[int], TheirSender]:
    def make(payload_threshold_kib: int) -> TheirSender:
        sender = TheirSender(ctx, payload_threshold_kib)
        stack.callback(sender.close)
        return sender

    return make


@pytest.fixture
def our_receiver(stack: ExitStack, ctx: zmq.Context[Any]) -> Callable[[], DataReceiver]:
    """Made before the sender it connects to, so it is closed after it (LIFO)."""

    def make() -> DataReceiver:
        rx = DataReceiver(protocol=2, context=ctx, eor_timeout_s=WAIT_S)
        stack.callback(rx.close)
        return rx

    return make


def _recv_run(rx: DataReceiver) -> list[Event]:
    """Events up to and including the first RunEnded (fails after WAIT_S without one)."""
    events: list[Event] = []
    deadline = time.monotonic() + WAIT_S
    while True:
        remaining = deadline - time.monotonic()
        event = rx.recv(timeout_s=max(remaining, 0.001)) if remaining > 0 else None
        if event is None:
            pytest.fail(f"no EOR within {WAIT_S} s; got {len(events)} events: {events[-3:]}")
        events.append(event)
        if isinstance(event, RunEnded):
            return events


# --- 1. daqwire sender -> Constellation receiver ---


@pytest.mark.parametrize(
    "threshold", [128 * 1024, 0], ids=["batched-128KiB", "one-record-per-message"]
)
def test_daqwire_transmitter_to_constellation_receiver(
    threshold: int,
    our_transmitter: Callable[..., CdtpTransmitter],
    their_receiver: TheirReceiver,
) -> None:
    tx = our_transmitter(payload_threshold_bytes=threshold)
    their_receiver.connect(tx.port)

    tx.send_bor(BOR_TAGS, CONFIGURATION, run_id="interop-1")
    for i in range(1, N + 1):
        rec = RECORDS[i]
        assert tx.send_data(rec.payload, rec.user_tags) == i
    extra = {"license": "ODC-By-1.0", "custom": {"nested": [1, 2.5, None]}}
    tx.send_eor(EOR_TAGS, extra)
    their_receiver.wait_for_eor()
    their_receiver.rx.stop_receiving()  # the EOR is in: returns at once

    assert their_receiver.bor == [(OUR_NAME, BOR_TAGS, CONFIGURATION)]
    got = their_receiver.records
    assert [seq for _, seq, _, _ in got] == list(range(1, N + 1))
    for (sender, seq, tags, blocks), i in zip(got, range(1, N + 1), strict=True):
        expected = RECORDS[i]
        assert (sender, seq, tags, blocks) == (OUR_NAME, i, expected.tags, expected.blocks)
    assert their_receiver.rx.bytes_received == sum(
        len(b) for rec in RECORDS.values() for b in rec.blocks
    )

    [(sender, eor_tags, metadata)] = their_receiver.eor
    assert (sender, eor_tags) == (OUR_NAME, EOR_TAGS)
    # their receiver rewrites condition/condition_code when it saw a gap or a data_records
    # mismatch; it must not have here, so the metadata is exactly what daqwire sent
    ours = tx.run_metadata() | extra  # as sent, except for time_end (taken at send time)
    assert isinstance(metadata["time_end"], datetime) and metadata["time_end"].tzinfo
    assert metadata == {**ours, "time_end": metadata["time_end"]}
    assert metadata["condition"] == "GOOD" and metadata["condition_code"] == RunCondition.GOOD
    assert metadata["data_records"] == N and metadata["run_id"] == "interop-1"

    assert tx.records_sent == N
    if threshold == 0:
        assert tx.messages_sent == N + 2  # BOR + one message per record + EOR
    else:
        assert tx.messages_sent < N + 2


# --- 2. Constellation sender -> daqwire receiver ---


def _their_run(skip: frozenset[int], skip_last: bool) -> Callable[[Any], None]:
    """A run of N sent records; sequence numbers in ``skip`` are taken but never sent."""

    def run(dtm: Any) -> None:
        dtm.send_bor(BOR_TAGS, CONFIGURATION)
        dtm.start_sending()
        sent = 0
        while sent < N:
            record = dtm.new_data_record(dict(RECORDS[sent + 1].tags))
            if record.sequence_number in skip:
                continue  # a gap: the record is never sent
            sent += 1
            for block in RECORDS[sent].blocks:
                record.add_block(block)
            _deadline_wait("room in the send queue", dtm.can_send_record, lambda: "queue full")
            dtm.send_data_record(record)
        if skip_last:
            dtm.new_data_record()  # one more sequence number, never sent
        dtm.stop_sending()
        dtm.check_exception()
        dtm.send_eor(EOR_TAGS, _their_metadata(dtm.sequence_number))

    return run


def _their_metadata(data_records: int) -> dict[str, Any]:
    """Run metadata in the order and form constellationdaq 1.0.2's TransmitterSatellite uses."""
    return {
        "version": "1.0.2",
        "cnstln_version": "0.6",
        "cnstln_codename": "interop",
        "run_id": "interop-2",
        "time_start": datetime(2025, 9, 3, 12, 0, 0, 500_000, tzinfo=UTC),
        "license": "ODC-By-1.0",
        "time_end": datetime(2025, 9, 3, 12, 5, tzinfo=UTC),
        "condition_code": 0,
        "condition": "GOOD",
        "data_records": data_records,
    }


def _check_their_records(events: list[Event], expected_seqs: list[int]) -> None:
    assert not [e for e in events if isinstance(e, MessageRejected)]
    started, *data, ended = events
    assert isinstance(started, RunStarted) and isinstance(ended, RunEnded)
    assert (started.sender, started.tags, started.configuration) == (
        THEIR_NAME,
        BOR_TAGS,
        CONFIGURATION,
    )
    assert all(isinstance(e, DataReceived) for e in data)
    assert [e.sequence_number for e in data if isinstance(e, DataReceived)] == expected_seqs
    for i, event in enumerate(data, start=1):
        assert isinstance(event, DataReceived)
        rec = RECORDS[i]
        assert event.sender == THEIR_NAME
        assert event.tags == rec.tags
        assert [bytes(b) for b in event.blocks] == rec.blocks
        if event.tags.get("dtype") == ARRAY_TAGS["dtype"]:
            arr = record_array(event.blocks, event.tags)
            np.testing.assert_array_equal(arr, np.frombuffer(rec.blocks[0], "<i4").reshape(3, 4))


@pytest.mark.parametrize(
    "threshold_kib", [128, 0], ids=["batched-128KiB", "one-record-per-message"]
)
def test_constellation_transmitter_to_daqwire_receiver(
    threshold_kib: int,
    their_sender: Callable[[int], TheirSender],
    our_receiver: Callable[[], DataReceiver],
) -> None:
    rx = our_receiver()
    sender = their_sender(threshold_kib)
    rx.add_endpoint(sender.endpoint)
    sender.start(_their_run(frozenset(), skip_last=False))
    events = _recv_run(rx)
    sender.join()

    _check_their_records(events, list(range(1, N + 1)))
    ended = events[-1]
    assert isinstance(ended, RunEnded)
    assert ended.sender == THEIR_NAME
    assert ended.tags == EOR_TAGS
    assert ended.metadata == _their_metadata(N)
    summary = ended.summary
    assert summary.condition == RunCondition.GOOD and not summary.eor_missing
    assert (summary.records, summary.missed, summary.out_of_order) == (N, 0, 0)
    assert (summary.first_sequence, summary.last_sequence, summary.sender_last_sequence) == (
        1,
        N,
        N,
    )
    assert summary.run_id == "interop-2"
    assert summary.bytes == sum(len(b) for rec in RECORDS.values() for b in rec.blocks)
    assert (rx.stats.decode_errors, rx.stats.state_errors) == (0, 0)
    assert sender.dtm.records_transmitted == N


@pytest.mark.parametrize(
    ("skip", "skip_last", "missed"),
    [(frozenset({10, 500, 501}), False, 3), (frozenset(), True, 0)],
    ids=["gaps-in-the-middle", "last-sequence-never-sent"],
)
def test_constellation_sequence_gaps_make_the_run_incomplete(
    skip: frozenset[int],
    skip_last: bool,
    missed: int,
    their_sender: Callable[[int], TheirSender],
    our_receiver: Callable[[], DataReceiver],
) -> None:
    rx = our_receiver()
    sender = their_sender(128)
    rx.add_endpoint(sender.endpoint)
    sender.start(_their_run(skip, skip_last))
    events = _recv_run(rx)
    sender.join()

    seqs = [s for s in range(1, N + len(skip) + 1) if s not in skip]
    _check_their_records(events, seqs)
    ended = events[-1]
    assert isinstance(ended, RunEnded)
    last_sent = N + len(skip) + int(skip_last)
    # as constellationdaq's own receiver does: INCOMPLETE OR-ed into the sender's condition
    assert ended.metadata == {
        **_their_metadata(last_sent),
        "condition_code": int(RunCondition.INCOMPLETE),
        "condition": "INCOMPLETE",
    }
    summary = ended.summary
    assert summary.condition == RunCondition.INCOMPLETE
    assert summary.missed == missed and summary.records == N
    assert summary.last_sequence == seqs[-1] and summary.sender_last_sequence == last_sent


# --- 3. message classes, frame by frame ---

_THEIR_TYPE = {
    cdtp2.DataMessage: ref_msg.CDTP2Message.Type.DATA,
    cdtp2.BorMessage: ref_msg.CDTP2Message.Type.BOR,
    cdtp2.EorMessage: ref_msg.CDTP2Message.Type.EOR,
}
_ENCODE: dict[type, Callable[[Any], list[cdtp2.Block]]] = {
    cdtp2.DataMessage: cdtp2.encode_data_message,
    cdtp2.BorMessage: cdtp2.encode_bor_message,
    cdtp2.EorMessage: cdtp2.encode_eor_message,
}


def _our_records(msg: cdtp2.Message) -> list[tuple[int, dict[str, Any], list[bytes]]]:
    return [(r.sequence_number, r.tags, [bytes(b) for b in r.blocks]) for r in msg.records]


def _their_records(msg: Any) -> list[tuple[int, dict[str, Any], list[bytes]]]:
    for r in msg.data_records:
        assert all(type(b) is bytes for b in r.blocks)
    return [(r.sequence_number, r.tags, list(r.blocks)) for r in msg.data_records]


def _theirs_from_ours(msg: cdtp2.Message) -> Any:
    their = ref_msg.CDTP2Message(msg.sender, _THEIR_TYPE[type(msg)])
    for r in msg.records:
        record = ref_msg.DataRecord(r.sequence_number, r.tags)
        for block in r.blocks:
            record.add_block(bytes(block))
        their.add_data_record(record)
    return their


def _check_ours_with_theirs(msg: cdtp2.Message) -> None:
    frames = _ENCODE[type(msg)](msg)
    their = ref_msg.CDTP2Message.disassemble(frames)
    assert (their.sender, their.type) == (msg.sender, _THEIR_TYPE[type(msg)])
    assert _their_records(their) == _our_records(msg)
    if isinstance(msg, cdtp2.BorMessage):
        bor = ref_msg.CDTP2BORMessage.cast(their)
        assert (bor.user_tags, bor.configuration) == (msg.records[0].tags, msg.records[1].tags)
    elif isinstance(msg, cdtp2.EorMessage):
        eor = ref_msg.CDTP2EORMessage.cast(their)
        assert (eor.user_tags, eor.run_metadata) == (msg.records[0].tags, msg.records[1].tags)


def _check_theirs_with_ours(msg: cdtp2.Message) -> None:
    frames = _theirs_from_ours(msg).assemble().frames
    assert len(frames) == 1
    ours = cdtp2.decode_frames(frames)
    assert type(ours) is type(msg)
    assert ours.sender == msg.sender
    assert _our_records(ours) == _our_records(msg)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msg=message_values())
def test_daqwire_frames_decode_with_constellation_message_classes(msg: cdtp2.Message) -> None:
    _check_ours_with_theirs(msg)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msg=message_values())
def test_constellation_frames_decode_with_daqwire_codec(msg: cdtp2.Message) -> None:
    _check_theirs_with_ours(msg)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msg=message_values())
def test_both_packers_write_the_same_bytes(msg: cdtp2.Message) -> None:
    ours = b"".join(bytes(f) for f in _ENCODE[type(msg)](msg))
    assert ours == _theirs_from_ours(msg).assemble().frames[0]


HANDPICKED: list[cdtp2.Message] = [
    cdtp2.DataMessage(OUR_NAME, ()),  # zero records: both codecs accept it
    cdtp2.DataMessage(
        OUR_NAME,
        tuple(cdtp2.DataRecord(i, RECORDS[i].tags, tuple(RECORDS[i].blocks)) for i in range(1, 9)),
    ),
    cdtp2.DataMessage(OUR_NAME, (cdtp2.DataRecord(2**64 - 1, {}, (b"", b"x" * 70_000)),)),
    cdtp2.BorMessage(
        OUR_NAME, (cdtp2.DataRecord(0, BOR_TAGS, ()), cdtp2.DataRecord(1, CONFIGURATION, ()))
    ),
    cdtp2.EorMessage(
        OUR_NAME,
        (cdtp2.DataRecord(0, EOR_TAGS, ()), cdtp2.DataRecord(1, _their_metadata(7), ())),
    ),
]


@pytest.mark.parametrize("msg", HANDPICKED, ids=lambda m: f"{type(m).__name__}-{len(m.records)}")
def test_handpicked_messages_both_ways(msg: cdtp2.Message) -> None:
    """Timestamps (32/64/96-bit, non-UTC zones), bin32 blocks, uint64 sequence numbers."""
    _check_ours_with_theirs(msg)
    _check_theirs_with_ours(msg)
    ours = b"".join(bytes(f) for f in _ENCODE[type(msg)](msg))
    assert ours == _theirs_from_ours(msg).assemble().frames[0]
    for record in ref_msg.CDTP2Message.disassemble([ours]).data_records:
        for value in record.tags.values():
            if isinstance(value, datetime):
                assert value.tzinfo is not None  # aware, in UTC, equal to the sent instant
