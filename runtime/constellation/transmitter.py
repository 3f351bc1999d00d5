"""CdtpTransmitter: the CDTP sender core shared by CDTP1 and CDTP2 satellites.

A PUSH socket (bound at construction), a bounded send queue and one owned push thread. Every
message is encoded by ``daqwire.generated.cdtp1``/``cdtp2`` on the caller's thread, so a bad
payload is refused at the call (``LocalProtocolError``) before anything is queued or sent, and
no sequence number is used up. The push thread sends with ``NOBLOCK`` and waits on
``POLLOUT`` while no receiver takes data: backpressure fills the queue, and ``send_data`` then
waits up to ``data_timeout_s`` for room before raising :class:`SendTimeout` (the caller keeps
the data). Nothing accepted into the queue is dropped unless the caller gives up
(:meth:`CdtpTransmitter.discard`, or ``close`` after its drain timeout).

Payloads: ``None`` (no frame/block), one bytes-like block, a sequence of blocks, or a numpy
array. Empty payloads (``b""``) are sent as one empty frame/block, never dropped. A numpy
array is handed over without a Python copy (a memoryview of its raw bytes, byte order as
stored; libzmq copies each frame once, CDTP2 packs blocks into its one frame) with the tags
``{"dtype": str(arr.dtype), "shape": list(arr.shape)}`` (``"float64"``, ``">i4"``, ...;
``numpy.dtype(tags["dtype"])`` rebuilds it). Do not modify a buffer after handing it over
until the message is sent; hand over a copy if you reuse buffers.

Sequence numbers: CDTP1 BOR 0, DAT 1, 2, ..., EOR = last DAT; CDTP2 BOR/EOR records 0 and 1,
data records 1, 2, ... after each BOR (batched into one message until their blocks reach
``payload_threshold_bytes`` or ``flush_interval_s`` passes; threshold 0 = one per message).
"""

from __future__ import annotations

import collections
import enum
import logging
import socket as socket_module
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import EllipsisType
from typing import Any, Literal

import numpy as np
import zmq

from daqwire.constellation.arrays import array_block
from daqwire.errors import DaqwireError, LocalProtocolError
from daqwire.generated import cdtp1, cdtp2
from daqwire.zmq_context import TERM_GRACE_S, term_bounded

__all__ = ["Block", "CdtpTransmitter", "Payload", "SendTimeout", "TransmitterError"]

logger = logging.getLogger(__name__)

Block = bytes | bytearray | memoryview
#: what ``send_data`` takes: nothing, one block, several blocks or one numpy array
Payload = Block | Sequence[Block | np.ndarray[Any, Any]] | np.ndarray[Any, Any] | None

#: how long the push thread waits on POLLOUT before it checks for stop/cancel requests
_POLL_S = 0.05


class SendTimeout(DaqwireError, TimeoutError):
    """Nothing took a message within its timeout; the message was not sent or queued."""

    def __init__(self, message: str, *, timeout_s: float | None = None, queued: int = 0) -> None:
        self.message = message
        self.timeout_s = timeout_s
        self.queued = queued
        super().__init__(message)


class TransmitterError(DaqwireError):
    """The transmitter cannot send (closed, or its push thread hit an unexpected error)."""


class _Kind(enum.Enum):
    DATA = "DATA"
    BOR = "BOR"
    EOR = "EOR"


@dataclass(slots=True, eq=False)
class _Item:
    kind: _Kind
    frames: list[Block] | None = None  # encoded message (CDTP1 all, CDTP2 control)
    record: list[Block] | None = None  # CDTP2 record, encoded alone, waiting to be batched
    nbytes: int = 0  # payload block bytes
    records: int = 0  # data records it carries
    #: set once a control message (BOR/EOR) was sent or given up; data items have none
    done: threading.Event | None = None
    sent: bool = False
    cancelled: bool = False


def _fmt_timeout(timeout_s: float | None) -> str:
    return "forever" if timeout_s is None else f"{timeout_s:g} s"


def _merge_array_tags(tags: dict[str, Any], array_tags: dict[str, Any]) -> None:
    for key, value in array_tags.items():
        if key in tags and tags[key] != value:
            raise LocalProtocolError(
                f"tag {key!r}={tags[key]!r} contradicts the numpy payload ({value!r})",
                protocol="cdtp",
                field_path=f"tags.{key}",
            )
        tags[key] = value


def _block_nbytes(block: Any) -> int:
    try:
        return memoryview(block).nbytes
    except TypeError:
        return 0


class CdtpTransmitter:
    """PUSH socket + bounded queue + owned push thread, speaking CDTP1 or CDTP2.

    Binds ``tcp://{host}:{port}`` at construction (``port=0``: a random free port; see
    ``port``/``endpoint``); or takes over a PUSH ``socket`` the caller made (and closes it).
    Timeouts are seconds, ``None`` = wait forever. Thread-safe: several
    threads may call ``send_data``; their records get sequence numbers in queue order.
    """

    def __init__(
        self,
        name: str,
        *,
        protocol: int = 2,
        port: int = 0,
        host: str = "*",
        context: zmq.Context[Any] | None = None,
        max_queue: int = 32768,
        payload_threshold_bytes: int = 128 * 1024,
        flush_interval_s: float = 0.5,
        bor_timeout_s: float | None = 10.0,
        data_timeout_s: float | None = 10.0,
        eor_timeout_s: float | None = 10.0,
        sndhwm: int | None = None,
        socket: zmq.Socket[Any] | None = None,
    ) -> None:
        if protocol not in (1, 2):
            raise ValueError(f"protocol must be 1 (CDTP1) or 2 (CDTP2), not {protocol!r}")
        self._own_context: zmq.Context[Any] | None = None
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, not {max_queue}")
        if payload_threshold_bytes < 0 or flush_interval_s < 0:
            raise ValueError("payload_threshold_bytes and flush_interval_s must be >= 0")
        self.name = name
        self.protocol: Literal[1, 2] = 1 if protocol == 1 else 2
        self.max_queue = max_queue
        self.payload_threshold_bytes = payload_threshold_bytes
        self.flush_interval_s = flush_interval_s
        self.bor_timeout_s = bor_timeout_s
        self.data_timeout_s = data_timeout_s
        self.eor_timeout_s = eor_timeout_s

        self._bound_host: str | None = None if socket is not None else host
        if socket is not None:
            # a socket made (and bound or connected) by the caller: used as it is, closed by us
            self._socket: zmq.Socket[Any] = socket
            endpoint = socket.getsockopt_string(zmq.LAST_ENDPOINT)
            self.port = int(endpoint.rsplit(":", 1)[1]) if endpoint else 0
            self.endpoint = endpoint
        else:
            # a context of its own unless given one: close() terminates it, which is the only
            # way to know libzmq delivered (or dropped) every frame before the process exits
            if context is None:
                self._own_context = ctx = zmq.Context()
            else:
                ctx = context
            self._socket = ctx.socket(zmq.PUSH)
            try:
                if sndhwm is not None:
                    self._socket.setsockopt(zmq.SNDHWM, sndhwm)
                if port == 0:
                    self.port = self._socket.bind_to_random_port(f"tcp://{host}")
                else:
                    self._socket.bind(f"tcp://{host}:{port}")
                    self.port = port
            except Exception:
                self._socket.close(linger=0)
                if self._own_context is not None:
                    self._own_context.term()
                raise
            local = "127.0.0.1" if host in ("*", "0.0.0.0") else host
            self.endpoint = f"tcp://{local}:{self.port}"

        #: frames this large go to libzmq without a copy; only with our own context, whose
        #: term() in close() waits until libzmq let go of them
        self._zero_copy_bytes = 65536 if self._own_context is not None else None
        # counters (read without a lock; each is written by one thread)
        self.messages_sent = 0
        self.records_sent = 0
        self.bytes_sent = 0
        self.records_queued = 0
        self.records_discarded = 0
        #: the first unexpected error of the push thread (sticky until the next BOR)
        self.error: BaseException | None = None

        self._cond = threading.Condition()
        self._items: collections.deque[_Item] = collections.deque()
        self._queued_data = 0
        self._inflight: list[_Item] = []
        self._cancel_inflight = False
        self._stopping = False
        self._closed = False
        self._gave_up = False
        self._push_idle = False  # the push thread waits for a first item
        self._batch_need = 0  # bytes its open batch still lacks while it waits for more
        self._pending_bytes = 0  # bytes queued since the push thread was last woken
        self._send_lock = threading.Lock()  # orders sequence numbers with queue positions
        self._epoch = 0  # bumped by discard()
        self._seq = 0
        self._in_run = False
        self._run_id = ""
        self._time_start: datetime | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"daqwire-cdtp-push-{name}", daemon=True
        )
        self._thread.start()
        logger.info("%s: CDTP%d transmitter bound to port %d", name, self.protocol, self.port)

    # ------------------------------------------------------------------ state

    @property
    def queue_depth(self) -> int:
        """Records (and BOR/EOR messages) accepted but not yet sent."""
        with self._cond:
            return len(self._items) + sum(max(1, i.records) for i in self._inflight)

    @property
    def sequence_number(self) -> int:
        """The last sequence number given out (0 right after a BOR)."""
        return self._seq

    @property
    def in_run(self) -> bool:
        """True between an accepted BOR and the EOR."""
        return self._in_run

    @property
    def closed(self) -> bool:
        """True once ``close`` was called."""
        return self._closed

    # ------------------------------------------------------------------ API

    def send_bor(
        self, tags: Mapping[str, Any] | None = None, payload: Any = None, *, run_id: str = ""
    ) -> None:
        """Send the begin-of-run and wait up to ``bor_timeout_s`` for a receiver to take it.

        CDTP1: header meta ``tags``, payload frame ``payload`` (default ``{}``). CDTP2: record 0
        tags ``tags``, record 1 tags ``payload`` (the configuration dict). ``run_id`` goes into
        the CDTP2 run metadata of the EOR. Raises SendTimeout (nothing sent) on timeout.
        """
        self._check_open()
        if self._in_run:
            raise LocalProtocolError(
                "send_bor while a run is open: send_eor (or discard) first",
                protocol=self._proto_name,
            )
        tags_dict = dict(tags) if tags else {}
        body = {} if payload is None else payload
        if self.protocol == 1:
            frames: list[Block] = list(
                cdtp1.encode_bor_message(cdtp1.BorMessage(self.name, 0, tags_dict, body))
            )
        else:
            if not isinstance(body, Mapping):
                raise LocalProtocolError(
                    f"CDTP2 BOR configuration must be a dict, not {type(body).__name__}",
                    protocol="cdtp2",
                    field_path="records[1].tags",
                )
            frames = list(
                cdtp2.encode_bor_message(
                    cdtp2.BorMessage(
                        self.name,
                        (
                            cdtp2.DataRecord(0, tags_dict, ()),
                            cdtp2.DataRecord(1, dict(body), ()),
                        ),
                    )
                )
            )
        with self._send_lock:
            self.error = None
            self._send_control(
                _Item(_Kind.BOR, frames=frames, done=threading.Event()),
                self.bor_timeout_s,
                f"no DataReceiver took the BOR within {_fmt_timeout(self.bor_timeout_s)}"
                f" (is a receiver connected to {self.endpoint}?)",
            )
            self._seq = 0
            self._in_run = True
            self._run_id = run_id
            self._time_start = datetime.now(UTC)

    def send_data(
        self,
        payload: Payload,
        tags: Mapping[str, Any] | None = None,
        *,
        timeout_s: float | EllipsisType | None = ...,
    ) -> int:
        """Queue one data record; returns its sequence number.

        Waits up to ``timeout_s`` (default ``data_timeout_s``; None = forever) for room in the
        queue, then raises SendTimeout: the record was not taken and no sequence number was
        used. A payload the protocol cannot carry raises LocalProtocolError before queueing.
        """
        self._check_open()
        self._raise_thread_error()
        wait_s = self.data_timeout_s if isinstance(timeout_s, EllipsisType) else timeout_s
        deadline = None if wait_s is None else time.monotonic() + wait_s
        epoch = self._epoch
        blocks, tags_dict = self._blocks(payload, tags)
        nbytes = sum(_block_nbytes(b) for b in blocks)
        if not self._send_lock.acquire(timeout=-1 if wait_s is None else max(0.0, wait_s)):
            raise SendTimeout(
                f"send_data: no room in the send queue within {_fmt_timeout(wait_s)}",
                timeout_s=wait_s,
                queued=self.queue_depth,
            )
        try:
            if not self._in_run:
                raise LocalProtocolError(
                    "send_data outside a run: send_bor first", protocol=self._proto_name
                )
            seq = self._seq + 1
            item = self._encode_data(seq, tags_dict, blocks, nbytes)
            self._put_data(item, deadline, wait_s, epoch)
            self._seq = seq
            self.records_queued += 1
            return seq
        finally:
            self._send_lock.release()

    def send_eor(
        self,
        tags: Mapping[str, Any] | None = None,
        payload: Any = None,
        *,
        condition: cdtp2.RunCondition | int = 0,
    ) -> None:
        """Send everything queued, then the end-of-run; waits up to ``eor_timeout_s`` in all.

        CDTP1: header meta ``tags``, payload frame ``payload`` (default ``{}``), sequence
        number = the last DAT's. CDTP2: record 1 = the run metadata (``version``, ``run_id``,
        ``time_start``, ``time_end``, ``condition_code``, ``condition``, ``data_records``)
        updated with ``payload`` (a dict) if given. On timeout raises SendTimeout; the run stays
        open and the queued data stays queued (call ``discard`` to give up).
        """
        self._check_open()
        if not self._in_run:
            raise LocalProtocolError(
                "send_eor without a BOR: send_bor first", protocol=self._proto_name
            )
        tags_dict = dict(tags) if tags else {}
        timeout_s = self.eor_timeout_s
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        if not self._send_lock.acquire(timeout=-1 if timeout_s is None else timeout_s):
            raise SendTimeout(
                f"EOR not sent within {_fmt_timeout(self.eor_timeout_s)}: a send_data call"
                " still waits for room in the queue",
                timeout_s=self.eor_timeout_s,
                queued=self.queue_depth,
            )
        try:
            if self.protocol == 1:
                body = {} if payload is None else payload
                frames: list[Block] = list(
                    cdtp1.encode_eor_message(
                        cdtp1.EorMessage(self.name, self._seq, tags_dict, body)
                    )
                )
            else:
                metadata = self.run_metadata(condition)
                if payload is not None:
                    if not isinstance(payload, Mapping):
                        raise LocalProtocolError(
                            f"CDTP2 EOR run metadata must be a dict, not {type(payload).__name__}",
                            protocol="cdtp2",
                            field_path="records[1].tags",
                        )
                    metadata.update(payload)
                frames = list(
                    cdtp2.encode_eor_message(
                        cdtp2.EorMessage(
                            self.name,
                            (
                                cdtp2.DataRecord(0, tags_dict, ()),
                                cdtp2.DataRecord(1, metadata, ()),
                            ),
                        )
                    )
                )
            queued = self.queue_depth
            self._send_control(
                _Item(_Kind.EOR, frames=frames, done=threading.Event()),
                None if deadline is None else max(0.0, deadline - time.monotonic()),
                f"EOR not sent within {_fmt_timeout(self.eor_timeout_s)}: {queued} queued"
                f" message(s) ahead of it were not all taken (is a receiver connected to"
                f" {self.endpoint}?)",
            )
            self._in_run = False
        finally:
            self._send_lock.release()

    def run_metadata(self, condition: cdtp2.RunCondition | int = 0) -> dict[str, Any]:
        """The CDTP2 EOR run metadata for the current run as it stands now."""
        from daqwire import __version__

        code = cdtp2.RunCondition(int(condition))
        names = [flag.name for flag in cdtp2.RunCondition if flag and flag in code]
        return {
            "version": __version__,
            "run_id": self._run_id,
            "time_start": self._time_start or datetime.now(UTC),
            "time_end": datetime.now(UTC),
            "condition_code": int(code),
            "condition": "|".join(n for n in names if n) or "GOOD",
            "data_records": self._seq,
        }

    def discard(self, reason: str = "given up") -> int:
        """Give up on everything queued or being sent; returns how many records were dropped.

        The run stays open (send an EOR to tell the receiver; CDTP2 ``data_records`` still
        counts the dropped records, so the receiver marks the run INCOMPLETE).
        """
        with self._cond:
            dropped = [i for i in self._items if i.kind is _Kind.DATA]
            kept = [i for i in self._items if i.kind is not _Kind.DATA]
            self._items = collections.deque(kept)
            self._epoch += 1  # send_data calls waiting for room give up too
            self._queued_data = 0
            count = sum(i.records for i in dropped)
            for item in dropped:
                item.cancelled = True
                if item.done is not None:
                    item.done.set()
            if any(i.kind is _Kind.DATA for i in self._inflight):
                self._cancel_inflight = True
                count += sum(i.records for i in self._inflight)
                self._cond.notify_all()
                self._cond.wait_for(lambda: not self._inflight, timeout=10 * _POLL_S + 1.0)
            self._cancel_inflight = False
            self._gave_up = self._gave_up or count > 0
            self._cond.notify_all()
        if count:
            self.records_discarded += count
            logger.warning("%s: dropped %d unsent record(s): %s", self.name, count, reason)
        return count

    def reset_run(self) -> None:
        """Forget an open run without an EOR (after ``discard``), so a new BOR is allowed."""
        with self._send_lock:
            self._in_run = False

    def close(self, *, timeout_s: float | EllipsisType | None = ...) -> None:
        """Stop the push thread and free the port; idempotent.

        Waits up to ``timeout_s`` (default ``eor_timeout_s``) for queued messages to go out and
        lingers as long for libzmq to deliver them; what is still queued then is dropped
        (logged) and the socket closes with linger 0, which frees the port at once.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._stopping = True
            self._cond.notify_all()
        wait_s = self.eor_timeout_s if isinstance(timeout_s, EllipsisType) else timeout_s
        with self._cond:
            drained = self._cond.wait_for(
                lambda: not self._items and not self._inflight, timeout=wait_s
            )
        if not drained:
            self.discard("transmitter closed before a receiver took them")
            with self._cond:
                for item in self._items:
                    item.cancelled = True
                    if item.done is not None:
                        item.done.set()
                self._items.clear()
        with self._cond:
            self._cancel_inflight = True
            self._cond.notify_all()
        self._thread.join()
        # linger: let libzmq deliver what it already took, unless we gave up on the receiver
        linger_ms = 0 if self._gave_up else int(1000 * (10.0 if wait_s is None else wait_s))
        self._socket.close(linger=linger_ms)
        if self._own_context is not None:
            term_bounded(self._own_context, linger_ms / 1000.0 + TERM_GRACE_S, owner=self.name)
        if self._bound_host is not None:
            self._wait_port_free(self._bound_host, linger_ms / 1000.0 + 1.0)
        logger.info("%s: CDTP%d transmitter closed", self.name, self.protocol)

    def _wait_port_free(self, host: str, timeout_s: float) -> None:
        """libzmq closes the listener asynchronously: wait until the port can be bound again."""
        address = "0.0.0.0" if host == "*" else host.strip("[]")
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                probe = socket_module.create_server((address, self.port))
            except socket_module.gaierror:
                return  # an interface name or the like: nothing to probe with
            except OSError:
                if time.monotonic() >= deadline:
                    logger.warning("%s: port %d still in use after close", self.name, self.port)
                    return
                time.sleep(0.002)
            else:
                probe.close()
                return

    def __enter__(self) -> CdtpTransmitter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ caller side

    @property
    def _proto_name(self) -> str:
        return f"cdtp{self.protocol}"

    def _check_open(self) -> None:
        if self._closed:
            raise TransmitterError(f"{self.name}: transmitter is closed")

    def _raise_thread_error(self) -> None:
        if self.error is not None:
            raise TransmitterError(
                f"{self.name}: the push thread failed, data of this run was lost: {self.error!r}"
            ) from self.error

    def _blocks(
        self, payload: Payload, tags: Mapping[str, Any] | None
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        tags_dict: dict[str, Any] = dict(tags) if tags else {}
        if payload is None:
            return (), tags_dict
        if isinstance(payload, np.ndarray):
            # a non-contiguous array is copied once into C order; others go as they are
            view, array_tags = array_block(np.ascontiguousarray(payload))
            _merge_array_tags(tags_dict, array_tags)
            return (view,), tags_dict
        if isinstance(payload, (bytes, bytearray, memoryview)):
            return (payload,), tags_dict
        if isinstance(payload, (list, tuple)):
            return tuple(payload), tags_dict  # ndarrays in a list go as raw bytes, no tags
        return (payload,), tags_dict  # the encoder names the bad type

    def _encode_data(
        self, seq: int, tags: dict[str, Any], blocks: tuple[Any, ...], nbytes: int
    ) -> _Item:
        if self.protocol == 1:
            frames = list(cdtp1.encode_dat_message(cdtp1.DatMessage(self.name, seq, tags, blocks)))
            return _Item(_Kind.DATA, frames=frames, nbytes=nbytes, records=1)
        # encoded now, so that a bad record is refused at the call; the push thread joins
        # the encoded records of a batch into one message without encoding them again
        parts = cdtp2.encode_data_record(cdtp2.DataRecord(seq, tags, blocks))
        return _Item(_Kind.DATA, record=parts, nbytes=nbytes, records=1)

    def _put_data(
        self, item: _Item, deadline: float | None, wait_s: float | None, epoch: int
    ) -> None:
        with self._cond:
            while True:
                if self._epoch != epoch:
                    raise TransmitterError(
                        f"{self.name}: the run was given up (discard) while send_data waited"
                    )
                if self._queued_data < self.max_queue:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise SendTimeout(
                        f"send_data: the send queue stayed full ({self.max_queue} records) for"
                        f" {_fmt_timeout(wait_s)}; no DataReceiver is taking data from"
                        f" {self.endpoint}",
                        timeout_s=wait_s,
                        queued=self._queued_data,
                    )
                self._cond.wait(remaining)
                if self._closed:
                    raise TransmitterError(f"{self.name}: transmitter closed while waiting")
            self._items.append(item)
            self._queued_data += 1
            # wake the push thread only when it can act: idle, or its batch is now full;
            # a wake-up per record would make the two threads take turns at the GIL
            self._pending_bytes += item.nbytes
            if self._push_idle or self._pending_bytes >= self._batch_need:
                self._pending_bytes = 0
                self._cond.notify_all()

    def _send_control(self, item: _Item, timeout_s: float | None, message: str) -> None:
        done = item.done
        assert done is not None, "BOR and EOR items carry an event"
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()
        if done.wait(timeout_s):
            if item.sent:
                return
            raise TransmitterError(f"{self.name}: {item.kind.value} was dropped (closed)")
        with self._cond:
            if item in self._items:
                self._items.remove(item)
                item.cancelled = True
                done.set()
            else:
                item.cancelled = True  # the push thread holds it: it gives up at its next poll
                self._cond.notify_all()
        done.wait()
        if not item.sent:
            raise SendTimeout(message, timeout_s=timeout_s, queued=self.queue_depth)

    # ------------------------------------------------------------------ push thread

    def _run(self) -> None:
        while True:
            with self._cond:
                self._push_idle = True
                self._cond.wait_for(lambda: bool(self._items) or self._stopping)
                self._push_idle = False
                if not self._items:
                    return
                batch = [self._items.popleft()]
                if batch[0].kind is _Kind.DATA:
                    self._queued_data -= 1
                self._inflight = batch
                self._cond.notify_all()
                if batch[0].record is not None and self.payload_threshold_bytes > 0:
                    self._collect_batch(batch)
            try:
                self._send_batch(batch)
            except Exception as exc:
                logger.exception("%s: push thread could not send a message", self.name)
                if self.error is None:
                    self.error = exc
            finally:
                with self._cond:
                    for item in batch:
                        if item.done is not None:
                            item.done.set()
                    self._inflight = []
                    self._cancel_inflight = False
                    self._cond.notify_all()

    def _collect_batch(self, batch: list[_Item]) -> None:
        """Add queued CDTP2 records to ``batch`` until the threshold or the flush interval."""
        nbytes = batch[0].nbytes
        deadline = time.monotonic() + self.flush_interval_s
        while nbytes < self.payload_threshold_bytes:
            if self._items:
                head = self._items[0]
                if head.record is None:
                    return  # a BOR/EOR: flush first
                self._items.popleft()
                self._queued_data -= 1
                batch.append(head)
                nbytes += head.nbytes
                self._cond.notify_all()
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stopping:
                return
            self._batch_need = self.payload_threshold_bytes - nbytes
            self._pending_bytes = 0
            self._cond.wait(remaining)
            self._batch_need = 0

    def _send_batch(self, batch: list[_Item]) -> None:
        if batch[0].frames is not None:
            frames = batch[0].frames
        else:
            records = [i.record for i in batch if i.record is not None]
            frames = cdtp2.encode_data_message_prepacked(self.name, records)
        if not self._push(frames, batch[0]):
            return
        with self._cond:
            for item in batch:
                item.sent = True
        self.messages_sent += 1
        self.records_sent += sum(i.records for i in batch)
        self.bytes_sent += sum(i.nbytes for i in batch)

    def _push(self, frames: list[Block], head: _Item) -> bool:
        """Send one multipart message, waiting for a receiver; False if cancelled."""
        while True:
            try:
                # small frames are copied by libzmq (cheaper than zero-copy bookkeeping);
                # large ones are handed over without a copy when close() can wait for them
                big = self._zero_copy_bytes is not None and any(
                    len(f) >= self._zero_copy_bytes for f in frames
                )
                self._socket.send_multipart(frames, flags=zmq.NOBLOCK, copy=not big)
                return True
            except zmq.Again:
                pass
            with self._cond:
                if head.cancelled or self._cancel_inflight:
                    return False
            self._socket.poll(int(_POLL_S * 1000), zmq.POLLOUT)
