"""DataPushSocket: takes json_wn#/raw_wn# data and stores, queues or hands it to a callback.

Drop-in for PyExpLabSys ``common.sockets.DataPushSocket``. The generated ``PushDispatcher``
reads requests and writes replies; this module holds ``last``/``updated``, the queue and the
callback thread. Every request gets a reply: a callback that raises becomes ``EXCEP#...``,
a full queue or a refused source ``ERROR#...``.
"""

from __future__ import annotations

import ipaddress
import logging
import queue as queue_module
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from daqwire.errors import RefusedRequest
from daqwire.generated.pyexplabsys import (
    PUSH_PORT,
    Ack,
    PushDispatcher,
    RawValue,
    RetJson,
    RetRaw,
    RetString,
)
from daqwire.pyexplabsys.registry import Activity, Clock, register, socket_server_status, unregister
from daqwire.pyexplabsys.system_status import system_status
from daqwire.pyexplabsys.udp import Address, UdpServer

__all__ = ["ACTIONS", "RETURN_FORMATS", "CallBackThread", "DataPushSocket"]

logger = logging.getLogger(__name__)

ACTIONS = ("store_last", "enqueue", "callback_async", "callback_direct")
RETURN_FORMATS = ("json", "raw", "string")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_STOP = object()


class CallBackThread(threading.Thread):
    """Calls ``callback(item)`` for every item put on ``queue``; an exception never ends it.

    Exceptions are logged and counted (``errors``, ``last_error``). ``stop()`` lets the thread
    finish the items already queued, then joins it.
    """

    def __init__(
        self, queue: queue_module.Queue[Any], callback: Callable[[Any], Any], *, poll_s: float = 0.5
    ) -> None:
        super().__init__(name="daqwire-CallBackThread", daemon=True)
        self.queue = queue
        self.callback = callback
        self.poll_s = poll_s
        self.calls = 0
        self.errors = 0
        self.last_error: BaseException | None = None
        self._stopping = threading.Event()

    def run(self) -> None:
        while True:
            try:
                item = self.queue.get(timeout=self.poll_s)
            except queue_module.Empty:
                if self._stopping.is_set():
                    return
                continue
            if item is _STOP:
                if self.queue.empty():
                    return
                continue
            self.calls += 1
            try:
                self.callback(item)
            except Exception as exc:
                self.errors += 1
                self.last_error = exc
                logger.exception("CallBackThread: callback %r raised", self.callback)

    def stop(self) -> None:
        """Finish the queued items, then end the thread (idempotent)."""
        self._stopping.set()
        try:
            self.queue.put_nowait(_STOP)
        except queue_module.Full:
            pass  # the poll timeout notices the stop flag once the queue drains
        if self.is_alive() and threading.current_thread() is not self:
            self.join()


def _networks(allowed: Iterable[str] | None) -> list[Network] | None:
    if allowed is None:
        return None
    if isinstance(allowed, str):
        allowed = [allowed]
    return [ipaddress.ip_network(a, strict=False) for a in allowed]


class DataPushSocket:
    """UDP server that receives data pushes (``json_wn#...``, ``raw_wn#...``)."""

    socket_type = "push"

    def __init__(
        self,
        name: str,
        port: int = PUSH_PORT,
        action: str = "store_last",
        queue: queue_module.Queue[Any] | None = None,
        callback: Callable[[dict[str, Any]], Any] | None = None,
        return_format: str = "json",
        check_activity: bool = False,
        activity_timeout: float = 900,
        *,
        host: str = "",
        allowed_sources: Iterable[str] | None = None,
        max_queue_size: int = 0,
        clock: Clock = time.time,
    ) -> None:
        if action not in ACTIONS:
            raise ValueError(f"Unknown action '{action}'. Must be one of: {list(ACTIONS)}")
        if queue is not None and action != "enqueue":
            raise ValueError("The 'queue' argument can only be used when the action is 'enqueue'")
        if callback is not None and action not in ("callback_async", "callback_direct"):
            raise ValueError(
                "The 'callback' argument can only be used when the action is "
                "'callback_async' or 'callback_direct'"
            )
        if action in ("callback_async", "callback_direct") and not callable(callback):
            raise ValueError(f"Value for callback: '{callback}' is not callable")
        if return_format not in RETURN_FORMATS:
            raise ValueError(
                "The 'return_format' argument may only be one of the 'json', 'raw' or "
                "'string' values"
            )
        if max_queue_size < 0:
            raise ValueError(f"max_queue_size is >= 0 (0: unbounded), not {max_queue_size}")
        self.name = name
        self.action = action
        self.return_format = return_format
        self.callback = callback
        self._clock = clock
        self._allowed = _networks(allowed_sources)
        self._lock = threading.Lock()
        self._last: dict[str, Any] | None = None
        self._updated: dict[str, Any] = {}
        self.last_time: float | None = None
        self.updated_time: float | None = None
        self._queue: queue_module.Queue[Any] | None = None
        if action in ("enqueue", "callback_async"):
            self._queue = queue if queue is not None else queue_module.Queue(max_queue_size)
        self.activity = Activity(check_activity, activity_timeout, clock)
        self.callback_thread: CallBackThread | None = None
        self.refused = 0
        self.dispatcher = PushDispatcher(self, on_error=self._log_error)
        self._server = UdpServer(host, port, self._serve, name="DataPushSocket")

    # ---- drop-in properties and methods ---------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        return int(self._server.port)

    @property
    def stats(self) -> Any:
        """Server counters: requests, replies, send_errors, serve_errors."""
        return self._server.stats

    @property
    def last(self) -> dict[str, Any] | None:
        """The last data received (a copy of what was handed to the queue or callback)."""
        return self._last

    @property
    def updated(self) -> dict[str, Any]:
        """Every key received so far with its latest value."""
        return self._updated

    @property
    def queue(self) -> queue_module.Queue[Any] | None:
        """The queue data is put on (enqueue and callback_async), else None."""
        return self._queue

    def set_last_to_none(self) -> None:
        """Forget the last data."""
        with self._lock:
            self._last = None
            self.last_time = None

    def clear_updated(self) -> None:
        """Forget every key received so far."""
        with self._lock:
            self._updated = {}
            self.updated_time = None

    def poke(self) -> None:
        """Mark the socket active."""
        self.activity.poke()

    def start(self) -> None:
        """Start serving (and, for callback_async, the callback thread)."""
        if self.action == "callback_async" and self.callback_thread is None:
            assert self._queue is not None and self.callback is not None
            self.callback_thread = CallBackThread(self._queue, self.callback)
            self.callback_thread.start()
        self._server.start()
        register(self)

    def stop(self) -> None:
        """Stop serving, close the socket (port free at once) and finish queued callbacks."""
        unregister(self)
        self._server.stop()
        if self.callback_thread is not None:
            self.callback_thread.stop()

    def is_alive(self) -> bool:
        """True while the server thread runs."""
        return self._server.running

    def __enter__(self) -> DataPushSocket:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the handler the generated PushDispatcher calls ------------------------------------
    def on_name(self) -> str:
        return self.name

    def on_status(self) -> dict[str, Any]:
        return {"system_status": system_status(), "socket_server_status": socket_server_status()}

    def on_json_wn(self, data: dict[str, Any]) -> Ack | RetJson | RetRaw | RetString:
        return self._accept(data)

    def on_raw_wn(self, data: dict[str, RawValue]) -> Ack | RetJson | RetRaw | RetString:
        return self._accept(dict(data))

    def _accept(self, data: dict[str, Any]) -> Ack | RetJson | RetRaw | RetString:
        if self._queue is not None:
            try:
                self._queue.put_nowait(data)
            except queue_module.Full:
                raise RefusedRequest(
                    f"The queue is full ({self._queue.maxsize} items); the data was not stored"
                ) from None
        now = self._clock()
        with self._lock:
            self._last = dict(data)
            self._updated.update(data)
            self.last_time = self.updated_time = now
        if self.activity.check_activity:
            self.activity.poke()
        if self.action != "callback_direct":
            return Ack(data)
        assert self.callback is not None
        result = self.callback(data)
        if self.return_format == "json":
            return RetJson(result)
        if self.return_format == "raw":
            return RetRaw(result)
        return RetString(result)

    def handle(self, data: bytes, source: str = "127.0.0.1") -> bytes:
        """The reply to one request datagram from ``source``, without the network."""
        return self._serve(data, (source, 0))

    def _serve(self, data: bytes, addr: Address) -> bytes:
        if self._allowed is not None:
            ip = ipaddress.ip_address(addr[0])
            if not any(ip in net for net in self._allowed):
                self.refused += 1
                return self.dispatcher.error_reply(
                    "refused", f"The source {addr[0]} is not allowed to use this socket"
                )
        return self.dispatcher.handle(data)

    def _log_error(self, kind: str, message: str, exc: BaseException | None) -> None:
        if exc is not None and kind == "failed":
            logger.warning("DataPushSocket %r: request failed: %.200s", self.name, message)
        else:
            logger.debug("DataPushSocket %r: %s request: %.200s", self.name, kind, message)
