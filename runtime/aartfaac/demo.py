"""The AARTFAAC part of ``daqwire demo``: an emulator serving 3 streams, read and merged live."""

from __future__ import annotations

import logging
import queue
import threading

from daqwire.aartfaac.emulator import Emulator
from daqwire.aartfaac.streams import MergedStreams
from daqwire.demo import Counts, DemoComponent

__all__ = ["AartfaacDemo"]

logger = logging.getLogger(__name__)


class AartfaacDemo(DemoComponent):
    """Emulator with ``streams`` ports at ``rate_hz``; MergedStreams groups them by DATE-OBS."""

    name = "aartfaac"
    rate_unit = "groups/s"
    description = "emulator, 3 streams read and merged by DATE-OBS"

    def __init__(
        self, *, streams: int = 3, size: tuple[int, int] = (128, 96), rate_hz: float = 4.0
    ) -> None:
        super().__init__()
        self._emulator = Emulator([0] * streams, size=size, rate_hz=rate_hz, pattern="sky")
        self._merged: MergedStreams | None = None
        self._groups_lock = threading.Lock()
        self._complete = 0
        self._partial_running = 0
        self._partial_at_stop = 0

    def _start(self) -> None:
        self._emulator.start()
        addresses = self._emulator.addresses
        self.endpoints = tuple(f"tcp {host}:{port}" for host, port in addresses)
        self._merged = MergedStreams(addresses, max_wait_s=1.0, timeout_s=5.0)
        self._merged.start()
        self._spawn(self._consume, "merge")

    def _consume(self) -> None:
        """Take merged groups until the merger is closed and drained (None)."""
        assert self._merged is not None
        while True:
            try:
                group = self._merged.get(timeout_s=0.5)
            except queue.Empty:
                continue
            if group is None:
                return
            with self._groups_lock:
                if group.complete:
                    self._complete += 1
                elif group.reason == "flush":  # stop() cut the last group short
                    self._partial_at_stop += 1
                else:
                    self._partial_running += 1
            del group  # the images are views of pooled receive buffers: let them go

    def _shutdown(self) -> None:
        # the readers first, so their sockets (not the server's) take the TIME_WAIT
        if self._merged is not None:
            self._merged.close()
        for thread in self._threads:
            thread.join()
        self._emulator.stop()

    def _counts(self) -> Counts:
        merged = self._merged
        if merged is None:
            return Counts({"windows": 0, "complete groups": 0}, 0, no_progress="not started")
        streams = merged.stream_stats
        m = merged.merger_stats
        with self._groups_lock:
            complete, partial, at_stop = (
                self._complete,
                self._partial_running,
                self._partial_at_stop,
            )
        resyncs = sum(s.resyncs for s in streams)
        reconnects = sum(s.reconnects for s in streams)
        stream_errors = sum(s.errors + s.sink_errors + s.connect_failures for s in streams)
        counters: dict[str, int | str] = {
            "windows": "/".join(str(s.windows) for s in streams),
            "complete groups": complete,
            "partial groups": partial,
            "late": m.late,
            "errors": stream_errors,
            "resyncs": resyncs,
            "reconnects": reconnects,
        }
        expected = {"partial group cut at stop": at_stop} if at_stop else {}
        errors = stream_errors + resyncs + reconnects + m.bad_timestamps + m.duplicates
        return Counts(
            counters,
            complete,
            errors=errors,
            expected=expected,
            no_progress=None if complete else "no complete merged group",
        )
