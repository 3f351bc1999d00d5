"""``daqwire conform`` against CDTP senders: our transmitter passes, a sequence gap is caught."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import zmq

from daqwire.conform import UsageError, conform
from daqwire.constellation.transmitter import CdtpTransmitter
from daqwire.generated import cdtp1, cdtp2
from tests.aartfaac_servers import free_port

SENDER = "RandomDataSender.conform"

Frames = Sequence[Any]


class RawPush:
    """A PUSH socket that sends prepared CDTP frames from its own thread once a peer is there."""

    def __init__(self, messages: list[Frames]) -> None:
        self.context = zmq.Context()
        self.sock = self.context.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.SNDTIMEO, 10_000)
        self.sock.setsockopt(zmq.LINGER, 2_000)
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.messages = messages
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._send, name="raw-cdtp-push", daemon=True)
        self.thread.start()

    def _send(self) -> None:
        try:
            for frames in self.messages:
                self.sock.send_multipart([bytes(f) for f in frames])
        except zmq.ZMQError as exc:  # nobody connected within SNDTIMEO
            self.error = exc

    def close(self) -> None:
        self.thread.join(15)
        assert not self.thread.is_alive()
        self.sock.close()
        self.context.term()

    @property
    def target(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"


@pytest.fixture
def raw_push() -> Iterator[Callable[[list[Frames]], RawPush]]:
    made: list[RawPush] = []

    def make(messages: list[Frames]) -> RawPush:
        push = RawPush(messages)
        made.append(push)
        return push

    yield make
    for push in made:
        push.close()


def cdtp2_run(seqs: Sequence[int], *, data_records: int | None = None) -> list[Frames]:
    """BOR, one DATA message per sequence number, EOR (all by the generated encoders)."""
    bor = cdtp2.BorMessage(
        SENDER, (cdtp2.DataRecord(0, {}, ()), cdtp2.DataRecord(1, {"interval_s": 0.1}, ()))
    )
    meta = {
        "run_id": "run1",
        "condition_code": 0,
        "condition": "GOOD",
        "data_records": seqs[-1] if data_records is None else data_records,
    }
    eor = cdtp2.EorMessage(SENDER, (cdtp2.DataRecord(0, {}, ()), cdtp2.DataRecord(1, meta, ())))
    data = [
        cdtp2.encode_data_message(
            cdtp2.DataMessage(SENDER, (cdtp2.DataRecord(s, {"dtype": "uint8"}, (bytes(4),)),))
        )
        for s in seqs
    ]
    return [cdtp2.encode_bor_message(bor), *data, cdtp2.encode_eor_message(eor)]


def cdtp1_run(seqs: Sequence[int]) -> list[Frames]:
    bor = cdtp1.encode_bor_message(cdtp1.BorMessage(SENDER, 0, {}, {"interval_s": 0.1}))
    data = [
        cdtp1.encode_dat_message(cdtp1.DatMessage(SENDER, s, {"dtype": "uint8"}, (bytes(4),)))
        for s in seqs
    ]
    eor = cdtp1.encode_eor_message(cdtp1.EorMessage(SENDER, seqs[-1], {}, {}))
    return [bor, *data, eor]


@pytest.mark.parametrize("protocol", [1, 2])
def test_our_transmitter_run_conforms(protocol: int) -> None:
    tx = CdtpTransmitter(SENDER, protocol=protocol, host="127.0.0.1", payload_threshold_bytes=0)
    errors: list[BaseException] = []

    def send_run() -> None:
        try:
            tx.send_bor({"run_id": "run1"}, {"interval_s": 0.1})
            for i in range(25):
                tx.send_data(bytes([i]) * 16, {"dtype": "uint8"})
            tx.send_eor()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=send_run, name="conform-cdtp-run")
    thread.start()
    try:
        report = conform(f"cdtp{protocol}", tx.endpoint, examples=100)
    finally:
        thread.join(20)
        tx.close()
    assert not errors
    assert report.ok, report.summary()
    assert report.checked == 27
    expected = {"BOR": 1, "data record": 25, "EOR": 1}
    if protocol == 2:
        expected |= {"DATA message": 25, "condition GOOD": 1}
    assert report.counts == expected


def test_examples_stop_the_run_after_that_many_records(raw_push: Any) -> None:
    push = raw_push(cdtp2_run(range(1, 11)))
    report = conform("cdtp2", push.target, examples=4)
    assert report.ok, report.summary()
    assert report.counts == {"BOR": 1, "DATA message": 4, "data record": 4}


def test_a_sequence_gap_is_found_with_the_exact_numbers(raw_push: Any) -> None:
    push = raw_push(cdtp2_run([1, 2, 3, 4, 5, 7, 8, 9, 10]))
    report = conform("cdtp2", push.target, examples=100)
    assert not report.ok
    [dev] = report.deviations
    assert dev.check == "sequence"
    assert dev.message == "record after sequence 5 has sequence 7: 1 missing"
    assert dev.case == "data record 6 (message 7)"
    assert dev.field_path == "data_message.records.sequence_number"
    assert dev.reproduce == f"daqwire conform cdtp2 {push.target} --examples 6"
    assert report.counts["data record"] == 9
    assert report.counts["EOR"] == 1
    assert any(
        "1 data record(s) never arrived, yet the EOR condition is GOOD" in n for n in report.notes
    )


def test_a_cdtp1_gap_and_a_wrong_eor_sequence_are_found(raw_push: Any) -> None:
    frames = cdtp1_run([1, 2, 4])
    frames[-1] = cdtp1.encode_eor_message(cdtp1.EorMessage(SENDER, 5, {}, {}))
    push = raw_push(frames)
    report = conform("cdtp1", push.target, examples=100)
    messages = [(d.check, d.message) for d in report.deviations]
    assert messages == [
        ("sequence", "record after sequence 2 has sequence 4: 1 missing"),
        ("run", "the EOR has sequence number 5, but the last data record had 4"),
    ]
    assert report.deviations[0].reproduce.endswith("--examples 3")


def test_eor_data_records_that_disagree_with_the_run(raw_push: Any) -> None:
    push = raw_push(cdtp2_run([1, 2, 3], data_records=5))
    report = conform("cdtp2", push.target, examples=100)
    [dev] = report.deviations
    assert dev.message == (
        "the EOR says data_records = 5, but the last data record had sequence 3"
        " (the run is INCOMPLETE)"
    )
    assert dev.field_path == "eor_message.records.tags.data_records"


def test_missing_bor_and_undecodable_message(raw_push: Any) -> None:
    frames = cdtp2_run([1, 2, 3])[1:]  # no BOR
    frames.insert(1, [b"\xa5CDTP\x02\xa6Sender\x07\x90"])  # type 7 is no message type
    push = raw_push(frames)
    report = conform("cdtp2", push.target, examples=100)
    checks = [(d.check, d.case) for d in report.deviations]
    assert checks == [
        ("run", "message 1: data record with sequence 1"),
        ("item", "message 2 (after data record 1, 1 frame(s))"),
    ]
    bad = report.deviations[1]
    assert bad.field_path == "data_message.type"
    assert bad.offset == 13  # after the protocol id (6 bytes) and the sender (7)
    assert bad.evidence_hex == b"\xa5CDTP\x02\xa6Sender\x07\x90".hex()


def test_a_run_without_eor_is_a_deviation(raw_push: Any) -> None:
    push = raw_push(cdtp2_run([1, 2, 3])[:-1])
    report = conform("cdtp2", push.target, examples=100, timeout_s=0.5)
    [dev] = report.deviations
    assert dev.message == (
        "the run has no EOR: nothing arrived for 0.5 s after 3 data record(s) (last sequence 3)"
    )
    assert dev.reproduce.endswith("--examples 3 --timeout-s 0.5")


def test_usage_errors_and_unreachable_sender() -> None:
    with pytest.raises(UsageError, match="no driver for cscp1"):
        conform("cscp1", "tcp://127.0.0.1:5555")
    with pytest.raises(UsageError, match="--replay does not apply"):
        conform("cdtp2", "tcp://127.0.0.1:5555", replay=b"x")
    with pytest.raises(ConnectionRefusedError):
        conform("cdtp2", f"tcp://127.0.0.1:{free_port()}")
