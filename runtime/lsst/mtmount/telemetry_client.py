"""TelemetryClient: read the MTMount TMA telemetry stream and publish it as SAL-shaped topics.

A drop-in for ts_mtmount's ``TelemetryClient(host, port=50035, connection_timeout=10)``. Every
frame is parsed by the generated codecs (``lsst_tcpip`` framing through the base Client,
``mtmount_telemetry.decode_message``/``to_dict`` for the topics) and published through a
:class:`~daqwire.lsst.mtmount.publisher.Publisher` instead of SAL.

Behaviour as the reference, except: a malformed line (not JSON, bad UTF-8, longer than the line
limit) is counted in ``malformed_count``, logged and skipped; the reference gives up on it.

TAI: timestamps from the TMA are TAI unix seconds. ``current_tai()`` is UTC + 37 s
(``TAI_MINUS_UTC_S``): no leap second has been added since 2017, none is announced, and it
avoids astropy's leap-second table (which may want to download updates). This is also what
the reference vectors were recorded with.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from daqwire.errors import JsonSyntaxError, LineTooLongError, TextDecodeError
from daqwire.generated.lsst_tcpip import MAX_LINE_BYTES, TERMINATOR
from daqwire.generated.mtmount_telemetry import (
    BY_TOPIC_ID,
    CLOCK_OFFSET_EVENT_INTERVAL,
    CLOCK_OFFSET_TOPIC_IDS,
    HEARTBEAT_INTERVAL,
    TAI_MINUS_UTC,
    TELEMETRY_PORT,
    TELEMETRY_TIMEOUT,
    Message,
    decode_message,
    to_dict,
)
from daqwire.lsst.client import Client
from daqwire.lsst.mtmount.publisher import InProcessPublisher, Publisher, ZmqPublisher

__all__ = [
    "SAL_TOPICS",
    "TAI_MINUS_UTC_S",
    "TOPIC_CLASSES",
    "TelemetryClient",
    "TelemetryStats",
    "current_tai",
]

logger = logging.getLogger(__name__)

#: TAI - UTC in seconds, valid since 2017-01-01 (see the module docstring)
TAI_MINUS_UTC_S = float(TAI_MINUS_UTC)
#: the generated message class of every topic id the TMA sends
TOPIC_CLASSES: dict[int, type[Message]] = dict(BY_TOPIC_ID)
#: SAL topic name (without ``tel_``) of every topic id the TMA sends
SAL_TOPICS: dict[int, str] = {topic_id: cls.WIRE_NAME for topic_id, cls in TOPIC_CLASSES.items()}
#: distinct unknown topic ids remembered for the once-per-id log (beyond: counted only)
MAX_REMEMBERED_UNKNOWN_IDS = 1024

Preprocessor = Callable[[dict[str, Any]], None]


def current_tai() -> float:
    """The current TAI time as unix seconds (UTC + ``TAI_MINUS_UTC_S``)."""
    return time.time() + TAI_MINUS_UTC_S


@dataclass(frozen=True, slots=True)
class TelemetryStats:
    """A snapshot of one TelemetryClient's counters."""

    frames: int  # topic samples published
    malformed: int  # lines skipped: not JSON, bad UTF-8, too long
    errors: int  # frames that could not be handled ("read_loop could not handle ...")
    unknown: int  # frames of unsupported topic ids
    clock_offsets: int  # evt_clockOffset samples published
    heartbeats: int  # tel_telemetryClientHeartbeat samples published


class TelemetryClient(Client):
    """Read MTMount telemetry from the TMA and publish ``tel_<salTopic>`` samples.

    ``start()`` publishes ``evt_telemetryConnected`` False, connects (``connection_timeout``)
    and publishes True; each (dis)connection publishes it again. While connected a heartbeat
    loop publishes ``tel_telemetryClientHeartbeat`` every ``heartbeat_interval`` s and the read
    loop publishes every frame. No frame for ``telemetry_timeout`` s, or the connection lost:
    the client logs, closes itself and ``done_task`` ends (no reconnection, as the reference).
    ``publisher`` defaults to an :class:`InProcessPublisher` owned (and closed) by the client.
    """

    def __init__(
        self,
        host: str,
        port: int = TELEMETRY_PORT,
        connection_timeout: float = 10,
        *,
        publisher: Publisher | None = None,
        log: logging.Logger | None = None,
        line_limit: int = MAX_LINE_BYTES,
        telemetry_timeout: float = TELEMETRY_TIMEOUT,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
    ) -> None:
        self.connection_timeout = connection_timeout
        self.owns_publisher = publisher is None
        self.publisher: Publisher = publisher if publisher is not None else InProcessPublisher()
        self.telemetry_timeout = telemetry_timeout
        self.heartbeat_interval = heartbeat_interval
        self.clock_offset_interval = CLOCK_OFFSET_EVENT_INTERVAL
        #: clocks, replaceable in tests: monotonic for the clockOffset rate, TAI for its value
        self.monotonic: Callable[[], float] = time.monotonic
        self.current_tai: Callable[[], float] = current_tai
        self.frame_count = 0
        self.malformed_count = 0
        self.error_count = 0
        self.unknown_count = 0
        self.clock_offset_count = 0
        self.heartbeat_count = 0
        self.unsupported_topic_ids: set[Any] = set()
        #: why the connection could not be opened, if it could not
        self.start_error: BaseException | None = None
        self._next_clock_offset: float | None = None
        self._preprocessors: dict[int, Preprocessor] = {}
        for topic_id, sal_topic in SAL_TOPICS.items():
            preprocessor = self.get_preprocessor(sal_topic)
            if preprocessor is not None:
                self._preprocessors[topic_id] = preprocessor
        self._heartbeat_loop_task: asyncio.Task[None] | None = None
        self._read_loop_task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Future[None] | None = None
        super().__init__(
            host,
            port,
            log=log or logger,
            connect_callback=self.connect_callback,
            monitor_connection_interval=0,
            name="TelemetryClient",
            terminator=TERMINATOR,
            line_limit=line_limit,
            connect_timeout=connection_timeout,
        )

    # -- counters --------------------------------------------------------------------------

    @property
    def stats(self) -> TelemetryStats:
        """The counters since construction."""
        return TelemetryStats(
            frames=self.frame_count,
            malformed=self.malformed_count,
            errors=self.error_count,
            unknown=self.unknown_count,
            clock_offsets=self.clock_offset_count,
            heartbeats=self.heartbeat_count,
        )

    # -- life cycle ------------------------------------------------------------------------

    async def start(self, **kwargs: Any) -> None:
        """Publish telemetryConnected False, connect, publish telemetryConnected True.

        A failed connection is logged, kept in ``start_error`` and, if ``done_task`` is still
        pending, set as its exception (as the reference; the base Client already resolves
        ``done_task`` with None); ``start_task`` itself ends without error.
        """
        await self.publisher.publish("evt_telemetryConnected", {"connected": False})
        if self.connected:
            raise RuntimeError("Already connected")
        try:
            await super().start(**kwargs)
        except Exception as e:
            self.log.exception(
                f"Could not open connection to host={self.host}, port={self.port}: {e!r}"
            )
            self.start_error = e
            if not self.done_task.done():
                self.done_task.set_exception(e)
            return
        await self.publisher.publish("evt_telemetryConnected", {"connected": True})

    async def connect_callback(self, client: Any) -> None:
        """Publish telemetryConnected; start the heartbeat and read loops on connection."""
        connected = self.connected
        await self.publisher.publish("evt_telemetryConnected", {"connected": connected})
        if connected:
            self._stop_loops()
            self._heartbeat_loop_task = asyncio.create_task(self.heartbeat_loop())
            self._read_loop_task = asyncio.create_task(self.read_loop())
        else:
            self._stop_loops()

    def _stop_loops(self) -> None:
        current = asyncio.current_task()
        for task in (self._heartbeat_loop_task, self._read_loop_task):
            if task is not None and task is not current:
                task.cancel()

    async def close(self) -> None:
        """Stop the loops, close the connection and an owned publisher. Idempotent.

        Called from the read or heartbeat loop (giving up), it starts closing and returns at
        once, so the loop can end; the closing runs in ``close_task`` (awaited by any later
        ``close()``, never cancelled by a cancelled caller).
        """
        if self._close_task is None:
            self._close_task = asyncio.ensure_future(self._close())
        if asyncio.current_task() in (self._read_loop_task, self._heartbeat_loop_task):
            return
        await asyncio.shield(self._close_task)

    @property
    def close_task(self) -> asyncio.Future[None] | None:
        """The closing in progress or done, once close() was called."""
        return self._close_task

    async def _close(self) -> None:
        self._stop_loops()
        try:
            await super().close()
        finally:
            tasks = [t for t in (self._heartbeat_loop_task, self._read_loop_task) if t is not None]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            if self.owns_publisher:
                await self.publisher.close()

    # -- loops -----------------------------------------------------------------------------

    async def heartbeat_loop(self) -> None:
        """Publish the field-less ``tel_telemetryClientHeartbeat`` every heartbeat_interval s."""
        self.log.info("Telemetry client heartbeat loop begins")
        while True:
            try:
                await self.publisher.publish("tel_telemetryClientHeartbeat", {})
                self.heartbeat_count += 1
            except Exception:
                self.log.exception("Could not publish tel_telemetryClientHeartbeat")
            await asyncio.sleep(self.heartbeat_interval)

    async def read_loop(self) -> None:
        """Read and publish frames until the connection ends or telemetry stops coming."""
        self.log.info("telemetry client read loop begins")
        try:
            while self.connected:
                t0 = time.monotonic()
                try:
                    data = await asyncio.wait_for(self.read_json(), timeout=self.telemetry_timeout)
                except (JsonSyntaxError, TextDecodeError, LineTooLongError) as e:
                    self.malformed_count += 1
                    count = self.malformed_count
                    self.log.warning(f"Skipping a malformed telemetry line (#{count}): {e!r}")
                    continue
                if time.monotonic() - t0 > self.telemetry_timeout * 1.1:
                    # the read succeeded late: the event loop is overloaded (as the reference)
                    raise TimeoutError("telemetry read took too long")
                await self.handle_frame(data)
            # the peer closed before a read noticed it (``connected`` looks at the stream)
            raise ConnectionError("Not connected")
        except Exception as e:
            if self._close_task is not None:
                return  # closing on purpose: the read ended because of it
            if isinstance(e, TimeoutError):
                self.log.error("Telemetry client timed out waiting for telemetry; giving up.")
            elif isinstance(e, asyncio.IncompleteReadError | ConnectionError):
                self.log.info("Telemetry client lost its connection; giving up.")
            else:
                self.log.exception(f"Telemetry client read loop failed; giving up: {e!r}")
            await self.close()

    async def handle_frame(self, data: Any) -> None:
        """Publish clockOffset (if due) and the topic of one decoded JSON frame; never raises."""
        try:
            topic_id = data["topicID"]
            if topic_id in CLOCK_OFFSET_TOPIC_IDS and self._clock_offset_due():
                offset = data["timestamp"] - self.current_tai()
                await self.publisher.publish("evt_clockOffset", {"offset": offset})
                self.clock_offset_count += 1
                self._next_clock_offset = self.monotonic() + self.clock_offset_interval
            sal_topic = SAL_TOPICS.get(topic_id) if type(topic_id) is int else None
            if sal_topic is None:
                self.unknown_count += 1
                if topic_id not in self.unsupported_topic_ids:
                    self.log.info(f"Ignoring unsupported topic ID {topic_id}; data_dict={data}")
                    if len(self.unsupported_topic_ids) < MAX_REMEMBERED_UNKNOWN_IDS:
                        self.unsupported_topic_ids.add(topic_id)
                return
            preprocessor = self._preprocessors.get(topic_id)
            if preprocessor is not None:
                preprocessor(data)
            message = decode_message(data)
            await self.publisher.publish(f"tel_{sal_topic}", to_dict(message))
            self.frame_count += 1
        except Exception:
            self.error_count += 1
            self.log.exception(f"read_loop could not handle {data}; continuing.")

    def _clock_offset_due(self) -> bool:
        return self._next_clock_offset is None or self.monotonic() >= self._next_clock_offset

    def get_preprocessor(self, name: str) -> Preprocessor | None:
        """The method ``_preprocess_<name>`` (SAL topic name) if defined; it edits the raw dict.

        None exist by default (as in the reference); subclasses add them, e.g.
        ``def _preprocess_azimuth(self, data): data["actualPosition"] *= -1``.
        """
        preprocessor: Preprocessor | None = getattr(self, f"_preprocess_{name}", None)
        return preprocessor

    # -- command line ----------------------------------------------------------------------

    @classmethod
    async def amain(cls, argv: Sequence[str] | None = None) -> int:
        """Run a client from the command line until it is done or SIGINT/SIGTERM; exit status.

        Options as the reference (``--host`` required, ``--port``, ``--loglevel``) plus
        ``--zmq ENDPOINT``: publish on a ZeroMQ PUB socket bound there (default: in-process,
        i.e. only logged at DEBUG). Returns 0 on a normal end, 1 if the client failed.
        """
        parser = argparse.ArgumentParser(description="Publish MTMount telemetry from the TMA.")
        parser.add_argument("--host", help="TMA telemetry host (required)")
        parser.add_argument("--port", type=int, default=TELEMETRY_PORT, help="telemetry port")
        parser.add_argument("--loglevel", type=int, default=logging.INFO, help="log level")
        parser.add_argument("--zmq", metavar="ENDPOINT", help="bind a ZeroMQ PUB socket here")
        ns = parser.parse_args(argv)
        if ns.host is None:
            parser.error("--host is required")
        log = logging.getLogger("daqwire.lsst.mtmount")
        previous_level = log.level
        log.setLevel(ns.loglevel)
        if not logging.getLogger().handlers:
            logging.basicConfig(level=ns.loglevel)
        publisher: Publisher
        if ns.zmq:
            publisher = ZmqPublisher(ns.zmq)
        else:
            in_process = InProcessPublisher(queue_size=0)
            in_process.subscribe(_log_sample)
            publisher = in_process
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            loop.add_signal_handler(sig, stop.set)
        client: TelemetryClient | None = None
        stop_task = asyncio.create_task(stop.wait())
        try:
            log.info(f"MTMount telemetry client: host={ns.host}; port={ns.port}")
            log.info("MTMount telemetry client starting")
            client = cls(ns.host, ns.port, publisher=publisher)
            await client.start_task
            log.info("MTMount telemetry client running")
            await asyncio.wait({client.done_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
            await client.close()
            if client.done_task.cancelled():
                log.info("MTMount telemetry client done")
                return 0
            error = client.start_error or client.done_task.exception()
            if error is not None:
                log.error(f"MTMount telemetry client failed: {error!r}")
                return 1
            return 0
        finally:
            stop_task.cancel()
            await asyncio.gather(stop_task, return_exceptions=True)
            for sig in signals:
                loop.remove_signal_handler(sig)
            if client is not None:
                await client.close()
            await publisher.close()
            log.setLevel(previous_level)


def _log_sample(topic: str, data: dict[str, Any]) -> None:
    logger.debug("%s %s", topic, data)
