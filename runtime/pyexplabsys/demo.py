"""The PyExpLabSys part of ``daqwire demo``: a pull socket with changing values, a push
socket, and a client that queries the one and pushes what it read to the other."""

from __future__ import annotations

import logging
import math
import threading

from daqwire.demo import Counts, DemoComponent
from daqwire.errors import UnknownCommandError
from daqwire.generated.pyexplabsys import Ack, OldData
from daqwire.pyexplabsys.client import PullClient, PushClient
from daqwire.pyexplabsys.pull import DateDataPullSocket
from daqwire.pyexplabsys.push import DataPushSocket

__all__ = ["PyExpLabSysDemo"]

logger = logging.getLogger(__name__)


class PyExpLabSysDemo(DemoComponent):
    """Pull and push sockets on free UDP ports; a client thread round-trips every ``period_s``.

    Every ``ghost_every``-th round asks for an unknown codename on purpose: its
    ``UNKNOWN_COMMMAND`` reply is an expected error reply, not an error.
    """

    name = "pyexplabsys"
    rate_unit = "requests/s"
    description = "pull socket with changing values, push socket, client thread"

    def __init__(self, *, period_s: float = 0.02, ghost_every: int = 25) -> None:
        super().__init__()
        self._period_s = period_s
        self._ghost_every = ghost_every
        self._pull: DateDataPullSocket | None = None
        self._push: DataPushSocket | None = None
        self._counts_lock = threading.Lock()
        self._values_seen: set[float] = set()
        self._error_replies = 0
        self._acks = 0

    def _start(self) -> None:
        self._pull = DateDataPullSocket(
            "demo instrument",
            ["temperature", "pressure"],
            port=0,
            host="127.0.0.1",
            timeouts=[5.0, None],
        )
        self._push = DataPushSocket("demo settings", port=0, host="127.0.0.1")
        self._pull.start()
        self._push.start()
        self.endpoints = (f"udp 127.0.0.1:{self._pull.port}", f"udp 127.0.0.1:{self._push.port}")
        self._spawn(self._produce, "producer")
        self._spawn(self._client, "client")

    def _produce(self) -> None:
        """Feed the pull socket values that change, like an instrument's logger would."""
        assert self._pull is not None
        i = 0
        while not self.stopping.is_set():
            self._pull.set_point_now("temperature", round(21.0 + math.sin(i / 10.0), 4))
            self._pull.set_point("pressure", (1700000000.0 + i, round(1013.25 + 0.01 * i, 2)))
            i += 1
            self.stopping.wait(0.05)

    def _client(self) -> None:
        """Query the pull socket, push the temperature to the push socket, until stopped."""
        assert self._pull is not None and self._push is not None
        with (
            PullClient("127.0.0.1", self._pull.port, timeout_s=2.0) as pull,
            PushClient("127.0.0.1", self._push.port, timeout_s=2.0) as push,
        ):
            rounds = 0
            while not self.stopping.is_set():
                rounds += 1
                try:
                    self._round(pull, push, ghost=rounds % self._ghost_every == 0)
                except Exception as exc:  # counted as an error; the client goes on
                    logger.debug("pyexplabsys demo round failed", exc_info=True)
                    self.report_error(exc)
                self.stopping.wait(self._period_s)

    def _round(self, pull: PullClient, push: PushClient, *, ghost: bool) -> None:
        if ghost:
            try:
                pull.point_json("ghost")
            except UnknownCommandError:
                with self._counts_lock:
                    self._error_replies += 1
            else:
                raise AssertionError("the unknown codename 'ghost' got a value")
            return
        points = pull.json_wn()
        temperature = points["temperature"]
        if isinstance(temperature, OldData):
            return  # before the producer's first value
        value = temperature[1]
        if not isinstance(value, float | int):
            raise AssertionError(f"temperature {value!r} is not a number")
        reply = push.json_wn({"setpoint": value, "mode": "auto"})
        if not isinstance(reply, Ack):
            raise AssertionError(f"the push socket answered {reply!r}, not an ACK")
        with self._counts_lock:
            self._acks += 1
            if len(self._values_seen) < 1000:
                self._values_seen.add(value)

    def _shutdown(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join()  # the client first: it must not query closed sockets
        for sock in (self._pull, self._push):
            if sock is not None:
                sock.stop()

    def _counts(self) -> Counts:
        pull, push = self._pull, self._push
        if pull is None or push is None:
            return Counts({"requests": 0, "replies": 0}, 0, no_progress="not started")
        stats, push_stats = pull.stats, push.stats
        with self._counts_lock:
            error_replies, acks = self._error_replies, self._acks
            values = len(self._values_seen)
        server_errors = (
            stats.serve_errors
            + stats.send_errors
            + push_stats.serve_errors
            + push_stats.send_errors
        )
        counters: dict[str, int | str] = {
            "requests": stats.requests + push_stats.requests,
            "replies": stats.replies + push_stats.replies,
            "push acks": acks,
            "distinct values": values,
        }
        no_progress = None
        if acks == 0:
            no_progress = "no push was acknowledged"
        elif values < 2:
            no_progress = "the pulled values did not change"
        return Counts(
            counters,
            stats.requests + push_stats.requests,
            errors=server_errors + push.refused,  # client errors are counted by report_error
            expected={"error replies": error_replies} if error_replies else {},
            no_progress=no_progress,
        )
