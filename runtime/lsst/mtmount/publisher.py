"""Where the MTMount telemetry client puts what it reads: the Publisher protocol and two backends.

The reference TelemetryClient writes SAL topics through ts_salobj (DDS, later Kafka). daqwire
keeps the topic names and data shapes (``tel_<salTopic>``, ``evt_telemetryConnected``,
``evt_clockOffset``, ``tel_telemetryClientHeartbeat``; data = the SAL field dict) and leaves the
transport to a :class:`Publisher`:

* :class:`InProcessPublisher` - callbacks (sync or async, per topic or for all) and a bounded
  ``asyncio.Queue``, for code in the same process.
* :class:`ZmqPublisher` - a ZeroMQ PUB socket; every message is two frames
  ``[topic (ASCII), JSON line]``, the line made by the generated ``lsst_tcpip.encode_line``,
  so any machine can subscribe by topic prefix (:class:`ZmqSubscriber` is a small helper).

A Kafka backend plugs in the same way: a class with ``async publish(topic, data)`` and
``async close()``. ``publish`` would hand ``encode_line(data)`` (or an Avro record built from
the SAL schema, as ts_salobj's Kafka branch does) to an asyncio producer (e.g. aiokafka's
``AIOKafkaProducer.send(f"lsst.sal.MTMount.{topic}", value)``) without awaiting delivery,
and ``close`` would flush and stop the producer. Nothing in the client changes: pass it as
``TelemetryClient(..., publisher=KafkaPublisher(...))``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

import zmq

from daqwire.generated.lsst_tcpip import TERMINATOR, decode_line, encode_line
from daqwire.zmq_context import TERM_GRACE_S, term_bounded

__all__ = [
    "Callback",
    "InProcessPublisher",
    "Publisher",
    "ZmqPublisher",
    "ZmqSubscriber",
]

logger = logging.getLogger(__name__)

#: a subscriber callback: ``callback(topic, data)``, plain or ``async``
Callback = Callable[[str, dict[str, Any]], Awaitable[None] | None]


@runtime_checkable
class Publisher(Protocol):
    """Anything that takes SAL-shaped topic data: ``publish(topic, data)`` and ``close()``."""

    async def publish(self, topic: str, data: dict[str, Any]) -> None:
        """Publish one sample of ``topic`` (``tel_azimuth``, ``evt_clockOffset``, ...)."""
        ...

    async def close(self) -> None:
        """Release the backend; idempotent."""
        ...


class InProcessPublisher:
    """Callbacks plus a bounded queue of ``(topic, data)``, for consumers in this process.

    ``subscribe(callback, topic=None)`` registers a plain or ``async`` callback for one topic
    or (``topic=None``) for all; a failing callback is logged and counted, never raised. The
    queue keeps the newest ``queue_size`` samples: when full, the oldest is dropped and
    ``dropped`` counts it (``queue_size=0``: no queue). ``counts`` holds samples per topic and
    ``last`` the newest data per topic.
    """

    def __init__(self, *, queue_size: int = 1000, log: logging.Logger | None = None) -> None:
        if queue_size < 0:
            raise ValueError(f"queue_size must be >= 0, not {queue_size}")
        self.log = log or logger
        self.queue_size = queue_size
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] | None = (
            asyncio.Queue(maxsize=queue_size) if queue_size > 0 else None
        )
        self.counts: Counter[str] = Counter()
        self.last: dict[str, dict[str, Any]] = {}
        self.dropped = 0
        self.callback_errors = 0
        self._callbacks: dict[str | None, list[Callback]] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once close() was called; later samples are ignored."""
        return self._closed

    def subscribe(self, callback: Callback, topic: str | None = None) -> None:
        """Call ``callback(topic, data)`` for every sample of ``topic`` (None: of every topic)."""
        self._callbacks.setdefault(topic, []).append(callback)

    def unsubscribe(self, callback: Callback, topic: str | None = None) -> None:
        """Undo one subscribe() with the same arguments; unknown pairs are ignored."""
        callbacks = self._callbacks.get(topic, [])
        if callback in callbacks:
            callbacks.remove(callback)

    async def publish(self, topic: str, data: dict[str, Any]) -> None:
        """Count, remember, queue and hand ``data`` to the callbacks of ``topic``."""
        if self._closed:
            return
        self.counts[topic] += 1
        self.last[topic] = data
        if self.queue is not None:
            if self.queue.full():
                self.queue.get_nowait()
                self.dropped += 1
            self.queue.put_nowait((topic, data))
        for callback in (*self._callbacks.get(topic, ()), *self._callbacks.get(None, ())):
            try:
                result = callback(topic, data)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.callback_errors += 1
                self.log.exception("Subscriber callback %r failed on %s", callback, topic)

    async def get(self, timeout: float | None = None) -> tuple[str, dict[str, Any]]:
        """The oldest queued ``(topic, data)``; waits up to ``timeout`` s (TimeoutError)."""
        if self.queue is None:
            raise RuntimeError("this publisher has no queue (queue_size=0)")
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def close(self) -> None:
        """Stop taking samples; queued ones stay readable. Idempotent."""
        self._closed = True


class ZmqPublisher:
    """A ZeroMQ PUB socket sending ``[topic, JSON line]`` per sample, e.g. to other machines.

    ``bind=True`` (default) binds ``endpoint`` (``tcp://*:5556``; ``tcp://127.0.0.1:*`` picks
    a free port, see :attr:`endpoint`); ``bind=False`` connects to it (a forwarder or a
    binding subscriber). The publisher owns its ZeroMQ context; close() gives queued frames up
    to ``linger_s`` seconds, then terminates the context. PUB never blocks: samples to slow or
    absent subscribers are dropped by ZeroMQ at ``sndhwm``.
    """

    def __init__(
        self,
        endpoint: str,
        bind: bool = True,
        *,
        sndhwm: int | None = None,
        linger_s: float = 1.0,
        log: logging.Logger | None = None,
    ) -> None:
        self.log = log or logger
        self.linger_s = linger_s
        self.sent = 0
        self.counts: Counter[str] = Counter()
        self._closed = False
        self._context: zmq.Context[Any] = zmq.Context()
        self._socket: zmq.Socket[Any] = self._context.socket(zmq.PUB)
        try:
            if sndhwm is not None:
                self._socket.setsockopt(zmq.SNDHWM, sndhwm)
            if bind:
                self._socket.bind(endpoint)
                resolved = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
                #: the endpoint subscribers can connect to (wildcard host/port resolved)
                self.endpoint = resolved.replace("tcp://0.0.0.0:", "tcp://127.0.0.1:")
            else:
                self._socket.connect(endpoint)
                self.endpoint = endpoint
        except BaseException:
            self._socket.close(linger=0)
            self._context.term()
            raise

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    async def publish(self, topic: str, data: dict[str, Any]) -> None:
        """Send ``[topic, encode_line(data)]``; never blocks (PUB drops at its high-water mark)."""
        if self._closed:
            return
        line = encode_line(data)
        self._socket.send_multipart([topic.encode("ascii"), line], zmq.NOBLOCK)
        self.sent += 1
        self.counts[topic] += 1

    async def close(self) -> None:
        """Close the socket (waiting at most ``linger_s`` for queued frames) and the context."""
        if self._closed:
            return
        self._closed = True
        self._socket.close(linger=int(self.linger_s * 1000))
        await asyncio.to_thread(
            term_bounded, self._context, self.linger_s + TERM_GRACE_S, owner="ZmqPublisher"
        )


class ZmqSubscriber:
    """A SUB socket for :class:`ZmqPublisher` output: ``await recv()`` -> ``(topic, data)``.

    Connects to ``endpoint`` and subscribes to the topic prefixes in ``topics`` (``""`` = all).
    Owns its context; close() is idempotent.
    """

    def __init__(self, endpoint: str, topics: tuple[str, ...] = ("",)) -> None:
        self._closed = False
        self._context: zmq.Context[Any] = zmq.Context()
        self._socket: zmq.Socket[Any] = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        for prefix in topics:
            self._socket.setsockopt(zmq.SUBSCRIBE, prefix.encode("ascii"))
        self._socket.connect(endpoint)
        self.endpoint = endpoint

    def recv_nowait(self) -> tuple[str, Any] | None:
        """The next sample if one is waiting, else None."""
        try:
            frames = self._socket.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None
        topic, line = frames[0], frames[1]
        if line.endswith(TERMINATOR):
            line = line[: -len(TERMINATOR)]
        return topic.decode("ascii"), decode_line(line)

    async def recv(self, timeout: float | None = None, *, poll_s: float = 0.005) -> tuple[str, Any]:
        """The next sample; waits up to ``timeout`` s (then TimeoutError), polling every poll_s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            sample = self.recv_nowait()
            if sample is not None:
                return sample
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no sample from {self.endpoint} within {timeout} s")
            await asyncio.sleep(poll_s)

    def close(self) -> None:
        """Close the socket and terminate the context; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._socket.close(linger=0)
        self._context.term()
