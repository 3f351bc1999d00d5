"""The seed drop-in DataSender on real ZeroMQ (loopback), CDTP1 and CDTP2: whole runs through the
FSM, BOR/EOR payloads and tags, stop with a full queue, no receiver at start, a stalled and a
vanished receiver, interrupt, a second run, RandomDataSender, PushThread, the argument parser.

The receiver is a plain PULL socket with the generated decoders. No duration is asserted;
where order matters, Events inside do_run say what happened first.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import zmq

from daqwire.constellation.datasender import (
    CDTPMessageIdentifier,
    DataSender,
    DataSenderArgumentParser,
    PushThread,
    PushTimeouts,
    RandomDataSender,
    timeout_ms_to_s,
)
from daqwire.constellation.states import SatelliteState, TransitionFailed
from daqwire.constellation.transmitter import SendTimeout
from daqwire.errors import LocalProtocolError
from daqwire.generated import cdtp1, cdtp2
from tests.test_constellation_transmitter import Puller, records

S = SatelliteState
WAIT_S = 5.0  # the longest a test waits; never asserted
FAST = {"_bor_timeout": 5000, "_data_timeout": 5000, "_eor_timeout": 5000}


class Counter(DataSender):
    """Queues ``count`` payloads (``payload_size`` bytes each), then waits for stop."""

    def __init__(self, *args: Any, count: int = 5, payload_size: int = 8, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.count = count
        self.payload_size = payload_size
        self.queued = threading.Event()
        self.errors: list[BaseException] = []

    def do_starting(self, run_identifier: str) -> str | None:
        self.bor_tags = {"run": run_identifier}
        return None

    def do_stopping(self) -> str | None:
        self.eor_tags = {"final_status": "stopped"}
        return None

    def do_run(self, run_identifier: str) -> str:
        for i in range(self.count):
            payload = i.to_bytes(2, "big") * (self.payload_size // 2)
            self.data_queue.put((payload, {"i": i}))
        self.queued.set()
        self.stop_running.wait()
        return f"queued {self.count}"


class Endless(DataSender):
    """Queues until stopped; counts what the transmitter accepted."""

    def __init__(self, *args: Any, payload_size: int = 65536, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.payload = b"e" * payload_size
        self.accepted = 0
        self.started = threading.Event()

    def do_run(self, run_identifier: str) -> str:
        self.started.set()
        while not self.stop_running.is_set():
            self.data_queue.put((self.payload, {"n": self.accepted}))
            self.accepted += 1
        return "done"


@pytest.fixture
def closer() -> Iterator[list[Any]]:
    things: list[Any] = []
    yield things
    for thing in reversed(things):
        thing.close()


def make(
    closer: list[Any], cls: type[DataSender] = Counter, *, connect: bool = True, **kwargs: Any
) -> tuple[Any, Any]:
    rcvhwm = kwargs.pop("rcvhwm", None)
    sat = cls("sat1", "testgroup", **kwargs)
    closer.append(sat)
    rx = None
    if connect:
        rx = Puller(f"tcp://127.0.0.1:{sat.data_port}", sat.protocol, rcvhwm=rcvhwm)
        closer.append(rx)
    return sat, rx


def run_once(sat: Any, run_id: str = "run_0001", config: dict[str, Any] | None = None) -> None:
    sat.initialize(dict(FAST) if config is None else config)
    sat.launch()
    sat.start(run_id)
    assert sat.queued.wait(WAIT_S)
    sat.stop()


# --- whole runs --------------------------------------------------------------------------------


def test_cdtp1_run_through_the_fsm(closer: list[Any]) -> None:
    sat, rx = make(closer, count=4)
    assert sat.protocol == 1  # the seed-era default
    run_once(sat, config={"voltage": 12.5, "_bor_timeout": 5000})
    assert sat.state == S.ORBIT and sat.status == "queued 4"
    msgs = rx.until_eor()
    assert len(msgs) == 6
    bor = msgs[0]
    assert bor == cdtp1.BorMessage(
        "Counter.sat1",
        0,
        {"run": "run_0001"},
        {"voltage": 12.5, "_bor_timeout": 5000, "_data_timeout": 10000, "_eor_timeout": 10000},
    )
    for i, msg in enumerate(msgs[1:5]):
        assert (msg.sequence_number, msg.meta) == (i + 1, {"i": i})
        assert [bytes(b) for b in msg.payload] == [i.to_bytes(2, "big") * 4]
    assert msgs[5] == cdtp1.EorMessage("Counter.sat1", 4, {"final_status": "stopped"}, {})
    assert rx.nothing_pending()


def test_cdtp2_run_through_the_fsm(closer: list[Any]) -> None:
    sat, rx = make(closer, count=4, protocol=2, flush_interval_s=60.0)
    run_once(sat, config={"voltage": 12.5})
    msgs = rx.until_eor()
    bor = msgs[0]
    assert isinstance(bor, cdtp2.BorMessage)
    assert bor.records[0].tags == {"run": "run_0001"}
    assert bor.records[1].tags == {
        "voltage": 12.5,
        "_bor_timeout": 10000,
        "_data_timeout": 10000,
        "_eor_timeout": 10000,
    }
    recs = records(msgs)
    assert [(r.sequence_number, r.tags) for r in recs] == [(i + 1, {"i": i}) for i in range(4)]
    assert len(msgs) == 3  # the four records travel in one batch, flushed by the EOR
    eor = msgs[-1]
    assert eor.records[0].tags == {"final_status": "stopped"}
    meta = eor.records[1].tags
    assert (meta["run_id"], meta["condition"], meta["data_records"]) == ("run_0001", "GOOD", 4)


@pytest.mark.parametrize("protocol", [1, 2])
def test_second_run_after_land_and_launch_restarts_sequences(
    closer: list[Any], protocol: int
) -> None:
    sat, rx = make(closer, count=2, protocol=protocol, payload_threshold_bytes=0)
    run_once(sat, "run_a")
    first = rx.until_eor()
    sat.land()
    sat.launch()
    sat.queued.clear()
    sat.start("run_b")
    assert sat.queued.wait(WAIT_S)
    sat.stop()
    second = rx.until_eor()
    assert sat.data_port == int(rx.sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
    if protocol == 1:
        assert [m.sequence_number for m in first] == [m.sequence_number for m in second]
        assert [m.sequence_number for m in second] == [0, 1, 2, 2]
        assert second[0].meta == {"run": "run_b"}
    else:
        assert [r.sequence_number for r in records(second)] == [1, 2]
        assert second[-1].records[1].tags["run_id"] == "run_b"


@pytest.mark.parametrize("protocol", [1, 2])
def test_bor_and_eor_payload_properties(closer: list[Any], protocol: int) -> None:
    sat, rx = make(closer, count=0, protocol=protocol)
    sat.BOR = {"custom": "bor"}
    sat.EOR = {"custom": "eor"}
    run_once(sat)
    msgs = rx.until_eor()
    if protocol == 1:
        assert (msgs[0].payload, msgs[-1].payload) == ({"custom": "bor"}, {"custom": "eor"})
    else:
        assert msgs[0].records[1].tags == {"custom": "bor"}
        meta = msgs[-1].records[1].tags
        assert meta["custom"] == "eor" and meta["condition"] == "GOOD"  # merged into the metadata


# --- backpressure, missing and vanishing receivers ---------------------------------------------


@pytest.mark.parametrize("protocol", [1, 2])
def test_stop_with_a_full_queue_drains_everything_before_the_eor(
    closer: list[Any], protocol: int
) -> None:
    sat, rx = make(
        closer,
        count=40,
        payload_size=65536,
        protocol=protocol,
        max_queue=4,
        sndhwm=1,
        rcvhwm=1,
        payload_threshold_bytes=0,
    )
    sat.initialize(dict(FAST))
    sat.launch()
    sat.start("run1")
    got: list[Any] = []
    reader_go = threading.Event()

    def read() -> None:
        reader_go.wait(WAIT_S)
        got.extend(rx.until_eor())

    reader = threading.Thread(target=read)
    reader.start()
    while sat.transmitter.queue_depth < sat.transmitter.max_queue and not sat.queued.is_set():
        time.sleep(0.005)  # wait until the queue is full (or everything fit somewhere)
    reader_go.set()
    assert sat.queued.wait(WAIT_S)
    sat.stop()  # returns once the EOR went out after all data
    reader.join(WAIT_S)
    assert sat.state == S.ORBIT
    if protocol == 1:
        assert [m.sequence_number for m in got] == [0, *range(1, 41), 40]
    else:
        assert [r.sequence_number for r in records(got)] == list(range(1, 41))
        assert got[-1].records[1].tags["data_records"] == 40
    assert sat.transmitter.queue_depth == 0


@pytest.mark.parametrize("protocol", [1, 2])
def test_no_receiver_at_start_is_a_clear_error(closer: list[Any], protocol: int) -> None:
    sat, _ = make(closer, connect=False, protocol=protocol)
    sat.initialize({"_bor_timeout": 300})
    sat.launch()
    with pytest.raises(TransitionFailed, match=r"no DataReceiver took the BOR within 0\.3 s"):
        sat.start("run1")
    assert sat.state == S.ERROR
    assert sat.status.startswith("SendTimeout in start: no DataReceiver took the BOR within 0.3 s")
    assert not sat.transmitter.in_run
    # recovery: initialize again, connect a receiver, run
    rx = Puller(f"tcp://127.0.0.1:{sat.data_port}", protocol)
    closer.append(rx)
    run_once(sat, "run2")
    msgs = rx.until_eor()
    first_tags = msgs[0].meta if protocol == 1 else msgs[0].records[0].tags
    assert first_tags == {"run": "run2"}  # the failed BOR was never sent late


def test_receiver_stalls_for_two_seconds_then_resumes(closer: list[Any]) -> None:
    sat, rx = make(
        closer, Endless, max_queue=4, sndhwm=1, rcvhwm=1, payload_threshold_bytes=0, protocol=2
    )
    sat.initialize(dict(FAST))
    sat.launch()
    sat.start("run1")
    assert sat.started.wait(WAIT_S)
    time.sleep(2.0)  # the receiver does not read for 2 s: the sender waits, no ERROR
    assert sat.state == S.RUN
    seen: list[Any] = []
    reader = threading.Thread(target=lambda: seen.extend(rx.until_eor()))  # resume
    reader.start()
    sat.stop()
    reader.join(WAIT_S)
    recs = records(seen)
    assert sat.state == S.ORBIT
    assert [r.sequence_number for r in recs] == list(range(1, sat.accepted + 1))
    assert [r.tags["n"] for r in recs] == list(range(sat.accepted))
    assert seen[-1].records[1].tags["data_records"] == sat.accepted


@pytest.mark.parametrize("protocol", [1, 2])
def test_receiver_that_disappears_gives_data_timeout_error(
    closer: list[Any], protocol: int
) -> None:
    sat, rx = make(
        closer,
        Endless,
        protocol=protocol,
        max_queue=2,
        sndhwm=1,
        rcvhwm=1,
        payload_threshold_bytes=0,
    )
    sat.initialize({"_data_timeout": 300, "_eor_timeout": 300, "_bor_timeout": 5000})
    sat.launch()
    sat.start("run1")
    rx.recv()  # the BOR
    rx.close()  # the receiver vanishes
    assert sat.wait_for_state(S.ERROR, WAIT_S)
    assert sat.status.startswith("SendTimeout in do_run: send_data: the send queue stayed full")
    assert "for 0.3 s" in sat.status
    tx = sat.transmitter
    assert tx._thread.is_alive()  # the push thread survived and can be stopped
    assert not tx.in_run and tx.queue_depth == 0  # given up on the unsent records
    assert tx.records_discarded > 0
    sat.shutdown()
    assert sat.state == S.DEAD and not tx._thread.is_alive()


def test_failure_while_do_run_waits_forever_for_room(closer: list[Any]) -> None:
    sat, rx = make(closer, Endless, payload_size=1 << 20, max_queue=2, sndhwm=1, rcvhwm=1)
    sat.initialize({"_data_timeout": -1, "_eor_timeout": 300})
    sat.launch()
    sat.start("run1")
    rx.recv()  # the BOR; then the receiver stops reading for good
    last = -1
    while sat.accepted != last:  # until do_run blocks in data_queue.put (no timeout)
        last = sat.accepted
        time.sleep(0.3)
    sat.failure("operator gives up")  # returns: the give-up releases the waiting put
    assert sat.transmitter.records_discarded > 0
    assert (sat.state, sat.status) == (S.ERROR, "operator gives up")
    assert not sat.transmitter.in_run
    sat.initialize(dict(FAST))  # the acquisition thread ended
    assert sat.state == S.INIT


# --- interrupt and failure ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [1, 2])
def test_interrupt_from_run_ends_the_run_with_an_eor(closer: list[Any], protocol: int) -> None:
    sat, rx = make(closer, count=3, protocol=protocol, payload_threshold_bytes=0)
    sat.initialize(dict(FAST))
    sat.launch()
    sat.start("run1")
    assert sat.queued.wait(WAIT_S)
    sat.interrupt()
    assert sat.state == S.SAFE
    msgs = rx.until_eor()
    if protocol == 1:
        assert [m.sequence_number for m in msgs] == [0, 1, 2, 3, 3]
    else:
        meta = msgs[-1].records[1].tags
        assert (meta["condition"], meta["condition_code"], meta["data_records"]) == (
            "INTERRUPTED",
            4,
            3,
        )
    sat.initialize(dict(FAST))  # SAFE -> INIT
    assert sat.state == S.INIT


@pytest.mark.parametrize("protocol", [1, 2])
def test_interrupt_from_orbit_sends_nothing(closer: list[Any], protocol: int) -> None:
    sat, rx = make(closer, protocol=protocol)
    sat.initialize(dict(FAST))
    sat.launch()
    sat.interrupt()
    assert sat.state == S.SAFE
    assert rx.nothing_pending()


def test_failure_during_a_run_sends_an_aborted_eor(closer: list[Any]) -> None:
    sat, rx = make(closer, count=2, protocol=2, payload_threshold_bytes=0)
    sat.initialize(dict(FAST))
    sat.launch()
    sat.start("run1")
    assert sat.queued.wait(WAIT_S)
    sat.failure("operator says no")
    assert (sat.state, sat.status) == (S.ERROR, "operator says no")
    meta = rx.until_eor()[-1].records[1].tags
    assert meta["condition"] == "TAINTED|ABORTED" and meta["data_records"] == 2


# --- payload handling through data_queue -------------------------------------------------------


class Mixed(DataSender):
    """Queues a bad payload between two good ones, and numpy and empty payloads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refused: list[BaseException] = []
        self.queued = threading.Event()

    def do_run(self, run_identifier: str) -> str:
        self.data_queue.put((b"first", None))
        try:
            self.data_queue.put(("not bytes", None))
        except LocalProtocolError as exc:
            self.refused.append(exc)
        self.data_queue.put((np.arange(4, dtype=np.float32), {"sensor": "a"}))
        self.data_queue.put((b"", {}))
        self.data_queue.put_nowait((None, None))
        self.queued.set()
        self.stop_running.wait()
        return "mixed"


@pytest.mark.parametrize("protocol", [1, 2])
def test_data_queue_payloads(closer: list[Any], protocol: int) -> None:
    sat, rx = make(closer, Mixed, protocol=protocol, payload_threshold_bytes=0)
    run_once(sat)
    assert len(sat.refused) == 1
    assert sat.state == S.ORBIT
    msgs = rx.until_eor()
    if protocol == 1:
        dats = msgs[1:-1]
        items = [(m.sequence_number, m.meta, [bytes(b) for b in m.payload]) for m in dats]
    else:
        items = [(r.sequence_number, r.tags, [bytes(b) for b in r.blocks]) for r in records(msgs)]
    assert items == [
        (1, {}, [b"first"]),
        (
            2,
            {"sensor": "a", "dtype": "float32", "shape": [4]},
            [np.arange(4, dtype="f4").tobytes()],
        ),
        (3, {}, [b""]),
        (4, {}, []),
    ]


def test_data_queue_interface(closer: list[Any]) -> None:
    sat, _ = make(closer, max_queue=7)
    q = sat.data_queue
    assert (q.maxsize, q.qsize(), q.empty(), q.full()) == (7, 0, True, False)
    with pytest.raises(TypeError, match=r"\(payload, meta\) tuple"):
        q.put(b"bare payload")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="send_bor first"):
        q.put((b"x", None))  # not in a run


# --- configuration, seed API -------------------------------------------------------------------


def test_timeouts_are_milliseconds_and_minus_one_is_forever(closer: list[Any]) -> None:
    assert timeout_ms_to_s(250) == 0.25
    assert timeout_ms_to_s(-1) is None
    for bad in ("10", True, float("nan")):
        with pytest.raises(ValueError, match="milliseconds"):
            timeout_ms_to_s(bad)
    sat, _ = make(closer, connect=False)
    sat.initialize({"_bor_timeout": -1, "data_timeout": 1500})
    assert (sat.bor_timeout_s, sat.data_timeout_s, sat.eor_timeout_s) == (None, 1.5, 10.0)
    assert sat.transmitter.data_timeout_s == 1.5
    assert sat.config == {"_bor_timeout": -1, "data_timeout": 1500, "_eor_timeout": 10000}


def test_seed_positional_arguments_and_random_port(closer: list[Any]) -> None:
    sat = DataSender("sat1", "grp", 23999, 61234, 55556, None, data_port=0)
    closer.append(sat)
    assert sat.canonical_name == "DataSender.sat1"
    assert (sat.cmd_port, sat.hb_port, sat.mon_port) == (23999, 61234, 55556)
    assert sat.data_port > 0 and sat.transmitter.port == sat.data_port


def test_shutdown_frees_the_data_port(closer: list[Any]) -> None:
    sat, _ = make(closer, connect=False)
    port = sat.data_port
    sat.initialize()
    sat.shutdown()
    again = DataSender("sat2", data_port=port)
    closer.append(again)
    assert again.data_port == port


def test_random_data_sender(closer: list[Any]) -> None:
    sat = RandomDataSender("rds", "grp", interval_s=0.01)
    closer.append(sat)
    rx = Puller(f"tcp://127.0.0.1:{sat.data_port}", 1)
    closer.append(rx)
    sat.initialize(dict(FAST))
    sat.launch()
    sat.start("run1")
    first = [rx.recv(), rx.recv(), rx.recv()]  # BOR and two packets
    sat.stop()
    msgs = first + rx.until_eor()
    assert sat.status == "Finished acquisition; Stopped"
    dats = msgs[1:-1]
    assert len(dats) == sat.packets_sent >= 2
    for m in dats:
        assert m.meta == {"dtype": "float64"}
        samples = np.frombuffer(m.payload[0], dtype=m.meta["dtype"])
        assert samples.shape == (1024,) and np.all(np.abs(samples) <= 1.0)


def test_random_data_sender_interval_from_config(closer: list[Any]) -> None:
    sat = RandomDataSender("rds", interval_s=0.5)
    closer.append(sat)
    sat.initialize({"interval_s": 0.02})
    assert sat.interval_s == 0.02


def test_argument_parser_seed_options_and_proto() -> None:
    parser = DataSenderArgumentParser()
    args = vars(
        parser.parse_args(
            [
                *("--name", "s1", "-g", "grp", "--cscp", "1", "--cmdp", "2", "--chp", "3"),
                *("--cdtp-port", "4", "-i", "lo", "--level", "debug", "--proto", "2"),
            ]
        )
    )
    assert args == {
        "level": "DEBUG",
        "name": "s1",
        "group": "grp",
        "interface": ["lo"],
        "cmd_port": 1,
        "mon_port": 2,
        "hb_port": 3,
        "data_port": 4,
        "protocol": 2,
    }
    defaults = vars(parser.parse_args(["-g", "grp", "--data-port", "0"]))
    assert defaults["protocol"] == 1 and defaults["level"] == "INFO"
    defaults.pop("level")
    sat = DataSender(**defaults)
    try:
        assert sat.protocol == 1 and sat.group == "grp"
    finally:
        sat.close()
    with pytest.raises(SystemExit):
        parser.parse_args(["-g", "grp", "--proto", "3"])


def test_push_thread_drop_in() -> None:
    sock = zmq.Context.instance().socket(zmq.PUSH)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    rx = Puller(f"tcp://127.0.0.1:{port}", 1)
    stop, bor, eor = threading.Event(), threading.Event(), threading.Event()
    q: queue.Queue[tuple[Any, Any]] = queue.Queue()
    thread = PushThread("PT.s1", stop, bor, eor, sock, PushTimeouts(2.0, 2.0, 2.0), q)
    thread.start()
    try:
        q.put(({"payload": {"cfg": 1}, "meta": {"m": 1}}, CDTPMessageIdentifier.BOR))
        q.put((b"data", {"i": 0}))
        q.put(({"payload": {}, "meta": {}}, CDTPMessageIdentifier.EOR))
        msgs = rx.until_eor()
        assert msgs[0] == cdtp1.BorMessage("PT.s1", 0, {"m": 1}, {"cfg": 1})
        assert (msgs[1].sequence_number, [bytes(b) for b in msgs[1].payload]) == (1, [b"data"])
        assert msgs[2] == cdtp1.EorMessage("PT.s1", 1, {}, {})
        assert bor.wait(WAIT_S) and eor.wait(WAIT_S)
    finally:
        stop.set()
        thread.join(WAIT_S)
        rx.close()
    assert not thread.is_alive() and sock.closed


def test_send_timeout_is_a_timeout_error() -> None:
    assert issubclass(SendTimeout, TimeoutError)
