"""The Constellation part of ``daqwire demo``: a RandomDataSender sending CDTP2 runs to our
DataReceiver, one run after another until the demo stops."""

from __future__ import annotations

import logging
import threading
from typing import Any

import zmq

from daqwire.constellation.datasender import RandomDataSender
from daqwire.constellation.receiver import (
    DataReceived,
    DataReceiver,
    MessageRejected,
    RunCondition,
    RunEnded,
    RunStarted,
    condition_name,
)
from daqwire.constellation.states import SatelliteState
from daqwire.demo import Counts, DemoComponent
from daqwire.zmq_context import TERM_GRACE_S, term_bounded

__all__ = ["ConstellationDemo"]

logger = logging.getLogger(__name__)


class ConstellationDemo(DemoComponent):
    """A sender thread runs the satellite (runs of ``run_s``); a receiver thread takes events.

    ``stop()`` ends the open run with an EOR and waits for the receiver to see it.
    """

    name = "constellation"
    rate_unit = "records/s"
    description = "RandomDataSender runs over CDTP2 into a DataReceiver"

    def __init__(self, *, run_s: float = 5.0, interval_s: float = 0.05) -> None:
        super().__init__()
        self._run_s = run_s
        self._interval_s = interval_s
        self._satellite: RandomDataSender | None = None
        self._receiver: DataReceiver | None = None
        self._context: zmq.Context[Any] | None = None
        self._sender_done = threading.Event()
        self._counts_lock = threading.Lock()
        self._records = 0
        self._bytes = 0
        self._gaps = 0
        self._runs_started = 0
        self._runs_ended = 0
        self._bad_runs = 0
        self._rejected = 0
        self._last_sequence: int | None = None

    def _start(self) -> None:
        self._satellite = RandomDataSender(
            "demo",
            "daqwire",
            data_port=0,
            data_host="127.0.0.1",
            protocol=2,
            interval_s=self._interval_s,
        )
        endpoint = self._satellite.transmitter.endpoint
        # a context of our own: term() returns once the receiver's connection is closed, so
        # the sender's port is not left in TIME_WAIT by closing the server side first
        self._context = zmq.Context()
        self._receiver = DataReceiver(
            endpoint, protocol=2, eor_timeout_s=5.0, context=self._context
        )
        self.endpoints = (endpoint,)
        self._spawn(self._receive, "receiver")
        self._spawn(self._send, "sender")

    def _send(self) -> None:
        """Initialize, launch, then runs of ``run_s`` until stop(); land at the end."""
        assert self._satellite is not None
        satellite = self._satellite
        try:
            satellite.initialize({"_bor_timeout": 5000, "interval_s": self._interval_s})
            satellite.launch()
            run = 0
            while not self.stopping.is_set():
                run += 1
                satellite.start(f"demo_run_{run}")
                self.stopping.wait(self._run_s)
                satellite.stop()
            satellite.land()
            if satellite.state == SatelliteState.ERROR:
                raise RuntimeError(f"the satellite is in ERROR: {satellite.status}")
        finally:
            self._sender_done.set()

    def _receive(self) -> None:
        """Count records and runs until the sender is done and every run has ended."""
        assert self._receiver is not None
        receiver = self._receiver
        while not receiver.finished:
            if self._sender_done.is_set() and not receiver.stopping:
                receiver.stop()  # from now on recv() ends once every open run has ended
            event = receiver.recv(timeout_s=0.1)
            if event is not None:
                self._count(event)

    def _count(self, event: object) -> None:
        with self._counts_lock:
            if isinstance(event, DataReceived):
                self._records += 1
                self._bytes += event.nbytes
                last = self._last_sequence
                if last is not None and event.sequence_number > last + 1:
                    self._gaps += event.sequence_number - last - 1
                self._last_sequence = event.sequence_number
            elif isinstance(event, RunStarted):
                self._runs_started += 1
                self._last_sequence = None
            elif isinstance(event, RunEnded):
                self._runs_ended += 1
                condition = event.summary.condition
                if condition != RunCondition.GOOD or event.summary.eor_missing:
                    self._bad_runs += 1
                    self.report_error(
                        f"run {event.summary.run_id} ended {condition_name(condition)}"
                    )
            elif isinstance(event, MessageRejected):
                self._rejected += 1
                self.report_error(event.error)

    def _shutdown(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join()  # the sender sends the EOR, the receiver waits for it
        if self._receiver is not None:
            self._receiver.close()
        if self._context is not None:
            term_bounded(self._context, TERM_GRACE_S, owner="demo CDTP receiver")
        if self._satellite is not None:
            self._satellite.close()  # frees the data port before it returns

    def _counts(self) -> Counts:
        with self._counts_lock:
            records, nbytes, gaps = self._records, self._bytes, self._gaps
            started, ended = self._runs_started, self._runs_ended
        counters: dict[str, int | str] = {
            "records": records,
            "bytes": nbytes,
            "gaps": gaps,
            "runs": ended,
            "open runs": started - ended,
        }
        no_progress = None
        if records == 0:
            no_progress = "no data record received"
        elif ended == 0:
            no_progress = "no run ended with an EOR"
        # bad runs and rejected messages are counted by report_error, gaps here
        return Counts(counters, records, errors=gaps, no_progress=no_progress)
