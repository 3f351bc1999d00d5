"""The LSST part of ``daqwire demo``: the mock TMA streaming MTMount telemetry to the telemetry
client, in an asyncio loop of its own thread, with one bad line injected on purpose."""

from __future__ import annotations

import asyncio
import logging
import threading

from daqwire.demo import Counts, DemoComponent
from daqwire.lsst.mtmount.mock_tma import MockTma
from daqwire.lsst.mtmount.publisher import InProcessPublisher
from daqwire.lsst.mtmount.telemetry_client import SAL_TOPICS, TelemetryClient

__all__ = ["BAD_LINE", "LsstDemo"]

logger = logging.getLogger(__name__)

#: the line injected on purpose: a telemetry frame with bad UTF-8 in it
BAD_LINE = b'{"topicID": 6, "actualPosition": \xff}\r\n'


class LsstDemo(DemoComponent):
    """MockTma at ``rate_hz`` per topic and a TelemetryClient; ``BAD_LINE`` is written after
    ``inject_after_s``, and the client must skip it and stay connected."""

    name = "lsst"
    rate_unit = "lines/s"
    description = "mock TMA streaming telemetry to the MTMount TelemetryClient"

    def __init__(
        self, *, rate_hz: float = 10.0, inject_after_s: float = 0.5, start_timeout_s: float = 10.0
    ) -> None:
        super().__init__()
        self._rate_hz = rate_hz
        self._inject_after_s = inject_after_s
        self._start_timeout_s = start_timeout_s
        self._publisher = InProcessPublisher(queue_size=0)
        self._tma: MockTma | None = None
        self._client: TelemetryClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._quit: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._injected = 0

    def _start(self) -> None:
        self._spawn(self._thread_main, "loop")
        if not self._ready.wait(self._start_timeout_s):
            raise TimeoutError(
                f"the mock TMA and client did not start in {self._start_timeout_s} s"
            )
        if self._start_error is not None:
            raise self._start_error
        assert self._tma is not None
        self.endpoints = (f"tcp 127.0.0.1:{self._tma.port}",)

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        finally:
            self._ready.set()  # never leave start() waiting

    async def _main(self) -> None:
        self._quit = asyncio.Event()
        self._loop = asyncio.get_running_loop()  # after _quit: _shutdown reads them in turn
        if self.stopping.is_set():
            return
        try:
            async with MockTma(port=0, rate_hz=self._rate_hz) as tma:
                self._tma = tma
                # a 5 s telemetry timeout (not 1 s): a busy CI host must not end the demo
                client = TelemetryClient(
                    "127.0.0.1", tma.port, publisher=self._publisher, telemetry_timeout=5.0
                )
                self._client = client
                try:
                    await client.start_task
                    if client.start_error is not None:
                        raise client.start_error
                    self._ready.set()
                    await self._stream(tma, client)
                finally:
                    await client.close()
        except BaseException as exc:
            if not self._ready.is_set():
                self._start_error = exc
                return
            raise

    async def _stream(self, tma: MockTma, client: TelemetryClient) -> None:
        assert self._quit is not None
        try:
            await asyncio.wait_for(self._quit.wait(), self._inject_after_s)
        except TimeoutError:
            await tma.inject(BAD_LINE)
            self._injected += 1
            await self._quit.wait()
        if not client.connected:
            self.report_error("the telemetry client lost its connection to the mock TMA")

    def _shutdown(self) -> None:
        loop, quit_event = self._loop, self._quit
        if loop is not None and quit_event is not None:
            try:
                loop.call_soon_threadsafe(quit_event.set)
            except RuntimeError:  # the loop already ended
                pass

    def _counts(self) -> Counts:
        client, tma = self._client, self._tma
        if client is None or tma is None:
            return Counts({"lines": 0, "topics": "0/0"}, 0, no_progress="not started")
        stats = client.stats
        counts = self._publisher.counts
        topics = sum(1 for name in SAL_TOPICS.values() if counts.get(f"tel_{name}"))
        lines = stats.frames + stats.malformed + stats.unknown + stats.errors
        malformed = max(stats.malformed - self._injected, 0)
        counters: dict[str, int | str] = {
            "lines": lines,
            "messages": stats.frames,
            "topics": f"{topics}/{len(SAL_TOPICS)}",
            "heartbeats": stats.heartbeats,
            "malformed": malformed,
        }
        skipped = min(stats.malformed, self._injected)
        expected = {"bad lines injected": skipped} if skipped else {}
        errors = malformed + stats.errors + stats.unknown + self._publisher.callback_errors
        running = self._ready.is_set() and not self.stopping.is_set()
        if running and not client.connected:
            errors += 1  # the client gave up on the stream (reported again at stop)
        no_progress = None
        if stats.frames == 0:
            no_progress = "no telemetry sample published"
        elif topics < len(SAL_TOPICS):
            no_progress = f"only {topics} of {len(SAL_TOPICS)} topics seen"
        return Counts(counters, lines, errors=errors, expected=expected, no_progress=no_progress)
