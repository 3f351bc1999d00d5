"""The pull side of CDTP1 and CDTP2: a PULL socket, per-sender run bookkeeping, typed events.

:class:`DataReceiver` is used from one thread: ``recv()`` returns the next event (or
``None`` on timeout). Every message is parsed by the generated decoders
(:mod:`daqwire.generated.cdtp1`, :mod:`daqwire.generated.cdtp2`); data blocks are
zero-copy ``memoryview`` slices of the received ZeroMQ frames.

Per sender a run goes BOR, then data, then EOR. A message that breaks that order, does not
decode, or comes from too many senders is answered with a :class:`MessageRejected` event
(or raised, with ``strict=True``) and the receiver keeps serving. Sequence gaps are counted;
at EOR the run condition gets ``INCOMPLETE`` when records were missed or the sender's last
sequence number differs from the last one seen. ``stop()`` waits up to ``eor_timeout_s``
for the EORs of open runs, then ends them with a substitute (``ABORTED[|INCOMPLETE]``,
``RunSummary.eor_missing``).
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import zmq

from daqwire.errors import LengthLimitError, RemoteProtocolError, StreamClosedError
from daqwire.generated import cdtp1, cdtp2
from daqwire.generated.cdtp2 import RunCondition

__all__ = [
    "CdtpStateError",
    "DataReceived",
    "DataReceiver",
    "Event",
    "MessageRejected",
    "ReceiverStats",
    "RunCondition",
    "RunEnded",
    "RunStarted",
    "RunSummary",
    "condition_name",
]

log = logging.getLogger(__name__)

#: a poll never blocks longer than this, so Ctrl-C and deadlines are noticed
_POLL_SLICE_S = 0.5
#: at most this many distinct dropped sender names are logged at WARNING
_MAX_LOGGED_DROPS = 64


class CdtpStateError(RemoteProtocolError):
    """A message breaks its sender's run order (BOR, then data, then EOR).

    ``message`` is the reference text, e.g. ``"Error handling CDTP message with type BOR:
    already received BOR from Sender.name"``.
    """

    def __init__(self, message: str, *, sender: str, message_type: str, protocol: str) -> None:
        self.sender = sender
        self.message_type = message_type
        super().__init__(message, protocol=protocol)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a receiver saw of one run of one sender.

    ``records``/``bytes`` count data records (CDTP2) or DAT messages (CDTP1) and their
    block bytes; ``missed`` the sequence numbers skipped; ``out_of_order`` records whose
    sequence number was not above the last one (duplicates, a restarted sender).
    ``sender_last_sequence`` is what the sender reported at EOR (CDTP2 ``data_records``,
    CDTP1 EOR sequence number). ``eor_missing`` marks a substitute end made by ``stop()``.
    """

    sender: str
    protocol: int
    run_index: int
    run_id: str | None
    records: int
    bytes: int
    missed: int
    out_of_order: int
    first_sequence: int | None
    last_sequence: int | None
    sender_last_sequence: int | None
    condition: RunCondition
    eor_missing: bool
    bor_tags: dict[str, Any]
    configuration: Any
    eor_tags: dict[str, Any]
    metadata: Any
    duration_s: float


@dataclass(frozen=True, slots=True)
class RunStarted:
    """A BOR: ``tags`` are the user tags, ``configuration`` the sender's configuration.

    For CDTP1 ``configuration`` is the BOR payload object as sent (normally a map).
    ``run_index`` counts this sender's runs seen by this receiver, from 1.
    """

    sender: str
    tags: dict[str, Any]
    configuration: Any
    run_index: int


@dataclass(frozen=True, slots=True)
class DataReceived:
    """One data record (CDTP2) or DAT message (CDTP1); blocks are views of the ZeroMQ frames."""

    sender: str
    sequence_number: int
    tags: dict[str, Any]
    blocks: tuple[memoryview, ...]

    @property
    def nbytes(self) -> int:
        """Bytes in all blocks."""
        return sum(b.nbytes for b in self.blocks)


@dataclass(frozen=True, slots=True)
class RunEnded:
    """An EOR, or a substitute end (``summary.eor_missing``) after ``stop()``'s timeout.

    ``metadata`` is the CDTP2 run metadata with ``condition_code``/``condition`` updated
    when the receiver added ``INCOMPLETE``; for CDTP1 it is the EOR payload as sent.
    """

    sender: str
    tags: dict[str, Any]
    metadata: Any
    summary: RunSummary


@dataclass(frozen=True, slots=True)
class MessageRejected:
    """A message was not accepted: it did not decode, or broke the run order, or a limit."""

    error: RemoteProtocolError
    sender: str | None
    frames_count: int


Event: TypeAlias = RunStarted | DataReceived | RunEnded | MessageRejected


@dataclass(frozen=True, slots=True)
class ReceiverStats:
    """Counters since the receiver was created."""

    messages: int
    records: int
    bytes: int
    decode_errors: int
    state_errors: int
    dropped: int
    runs_started: int
    runs_ended: int


def condition_name(condition: RunCondition) -> str:
    """The flag names joined by ``|`` as Constellation writes them (``"TAINTED|ABORTED"``)."""
    name = condition.name
    return name if name else str(int(condition))


class _Run:
    __slots__ = (
        "bor_tags",
        "configuration",
        "first_seq",
        "last_seq",
        "missed",
        "nbytes",
        "out_of_order",
        "records",
        "run_index",
        "sender",
        "started",
    )

    def __init__(self, sender: str, run_index: int, tags: dict[str, Any], config: Any) -> None:
        self.sender = sender
        self.run_index = run_index
        self.bor_tags = tags
        self.configuration = config
        self.started = time.monotonic()
        self.records = 0
        self.nbytes = 0
        self.missed = 0
        self.out_of_order = 0
        self.first_seq: int | None = None
        self.last_seq = 0

    def record(self, seq: int, nbytes: int) -> None:
        if self.first_seq is None:
            self.first_seq = seq
        if seq > self.last_seq:
            self.missed += seq - self.last_seq - 1
            self.last_seq = seq
        else:
            self.out_of_order += 1
        self.records += 1
        self.nbytes += nbytes


class _Sender:
    __slots__ = ("run", "runs")

    def __init__(self) -> None:
        self.runs = 0
        self.run: _Run | None = None


def _views(blocks: Sequence[Any]) -> tuple[memoryview, ...]:
    return tuple(b if isinstance(b, memoryview) else memoryview(b) for b in blocks)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class DataReceiver:
    """PULL socket for CDTP1 or CDTP2 data from one or more senders; not thread-safe.

    ``endpoints`` are ZeroMQ endpoints (``tcp://host:port``); the receiver connects to
    them (senders bind, as in Constellation) or binds them with ``bind=True``
    (``tcp://127.0.0.1:*`` picks a port; see :attr:`endpoints`). ``allow_senders``
    limits the accepted canonical names (case-insensitive); messages of others are counted
    in ``stats.dropped`` and logged. ``max_message_bytes`` sets ZeroMQ's MAXMSGSIZE: libzmq
    drops the connection of a sender whose frame is larger, without reconnecting to it (that
    frame and what was queued behind it are lost; ``remove_endpoint`` + ``add_endpoint``
    connects again; a sender that connects to a bound receiver reconnects by itself).
    ``max_senders`` bounds the per-sender state, ``max_summaries`` the kept :attr:`summaries`.
    """

    def __init__(
        self,
        endpoints: str | Sequence[str] = (),
        *,
        protocol: int = 2,
        context: zmq.Context[Any] | None = None,
        allow_senders: Collection[str] | None = None,
        eor_timeout_s: float = 10.0,
        rcvhwm: int | None = None,
        bind: bool = False,
        max_message_bytes: int | None = None,
        strict: bool = False,
        max_senders: int = 1024,
        max_summaries: int = 1000,
    ) -> None:
        if protocol not in (1, 2):
            raise ValueError(f"protocol must be 1 (CDTP1) or 2 (CDTP2), got {protocol!r}")
        if eor_timeout_s < 0:
            raise ValueError(f"eor_timeout_s must be >= 0, got {eor_timeout_s}")
        if max_senders < 1 or max_summaries < 0:
            raise ValueError("max_senders must be >= 1 and max_summaries >= 0")
        self.protocol = protocol
        self.eor_timeout_s = float(eor_timeout_s)
        self.strict = strict
        self.max_senders = max_senders
        self._protocol_name = f"cdtp{protocol}"
        self._allow = None if allow_senders is None else {s.casefold() for s in allow_senders}
        self._allow_names = tuple(allow_senders) if allow_senders is not None else ()
        self._senders: OrderedDict[str, _Sender] = OrderedDict()
        self._summaries: deque[RunSummary] = deque(maxlen=max_summaries)
        self._pending: deque[Event] = deque()
        self._logged_drops: set[str] = set()
        self._bor_seen: set[str] = set()
        self._stop_deadline: float | None = None
        self._stop_timeout_s = self.eor_timeout_s
        self._finished = False
        self._closed = False
        self.missing_eor: tuple[str, ...] = ()
        self._messages = self._records = self._bytes = 0
        self._decode_errors = self._state_errors = self._dropped = 0
        self._runs_started = self._runs_ended = 0
        self._endpoints: list[str] = []
        self._bind = bind
        ctx = context if context is not None else zmq.Context.instance()
        self._sock: zmq.Socket[Any] = ctx.socket(zmq.PULL)
        try:
            self._sock.setsockopt(zmq.LINGER, 0)
            if rcvhwm is not None:
                self._sock.setsockopt(zmq.RCVHWM, rcvhwm)
            if max_message_bytes is not None:
                self._sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
            for endpoint in [endpoints] if isinstance(endpoints, str) else endpoints:
                self.add_endpoint(endpoint)
        except BaseException:
            self._sock.close(linger=0)
            raise

    # -- sockets ------------------------------------------------------------------------

    @property
    def endpoints(self) -> tuple[str, ...]:
        """The connected endpoints, or the bound ones with the port the OS picked."""
        return tuple(self._endpoints)

    def add_endpoint(self, endpoint: str) -> str:
        """Connect to (or, with ``bind=True``, bind) one more endpoint; returns it resolved."""
        self._check_open()
        if self._bind:
            self._sock.bind(endpoint)
            last = self._sock.getsockopt(zmq.LAST_ENDPOINT)
            resolved = last.decode() if isinstance(last, bytes) else str(last)
        else:
            self._sock.connect(endpoint)
            resolved = endpoint
        self._endpoints.append(resolved)
        log.debug("%s %s", "bound" if self._bind else "connected to", resolved)
        return resolved

    def remove_endpoint(self, endpoint: str) -> None:
        """Disconnect from (or unbind) an endpoint given to or returned by add_endpoint."""
        self._check_open()
        if self._bind:
            self._sock.unbind(endpoint)
        else:
            self._sock.disconnect(endpoint)
        self._endpoints.remove(endpoint)

    # -- state --------------------------------------------------------------------------

    @property
    def stats(self) -> ReceiverStats:
        """A snapshot of the counters."""
        return ReceiverStats(
            messages=self._messages,
            records=self._records,
            bytes=self._bytes,
            decode_errors=self._decode_errors,
            state_errors=self._state_errors,
            dropped=self._dropped,
            runs_started=self._runs_started,
            runs_ended=self._runs_ended,
        )

    @property
    def summaries(self) -> tuple[RunSummary, ...]:
        """Summaries of ended runs, oldest first (the last ``max_summaries``)."""
        return tuple(self._summaries)

    @property
    def open_runs(self) -> tuple[str, ...]:
        """Senders whose run started and has not ended."""
        return tuple(name for name, s in self._senders.items() if s.run is not None)

    @property
    def stopping(self) -> bool:
        """``stop()`` was called."""
        return self._stop_deadline is not None

    @property
    def finished(self) -> bool:
        """``stop()`` was called and every open run has ended (``recv`` returns None)."""
        return self._finished

    @property
    def closed(self) -> bool:
        """``close()`` was called."""
        return self._closed

    # -- receiving ----------------------------------------------------------------------

    def recv(self, timeout_s: float | None = None) -> Event | None:
        """The next event, or ``None`` after ``timeout_s`` (None: wait) or once finished.

        Raises the rejection error instead of returning :class:`MessageRejected` when the
        receiver is ``strict``; the receiver keeps serving either way.
        """
        self._check_open()
        if self._pending:
            return self._pop()
        deadline = None if timeout_s is None else time.monotonic() + max(timeout_s, 0.0)
        while True:
            if self._finished:
                return None
            now = time.monotonic()
            if self._stop_deadline is not None:
                if not self.open_runs:
                    self._finished = True
                    return None
                if now >= self._stop_deadline:
                    self._substitute_ends()
                    return self._pop()
            if deadline is not None and now >= deadline and timeout_s != 0:
                return None
            wait = _POLL_SLICE_S
            if deadline is not None:
                wait = min(wait, max(deadline - now, 0.0))
            if self._stop_deadline is not None:
                wait = min(wait, max(self._stop_deadline - now, 0.0))
            frames = self._poll(wait)
            if frames is not None:
                self._handle(frames)
                if self._pending:
                    return self._pop()
            elif timeout_s == 0:
                return None

    def stop(self, eor_timeout_s: float | None = None) -> None:
        """Begin the end: ``recv`` goes on until every open run ended or the timeout passed.

        Open runs still without EOR after ``eor_timeout_s`` (default: the constructor's)
        get a substitute :class:`RunEnded`; :attr:`missing_eor` names their senders.
        """
        self._check_open()
        if self._stop_deadline is not None:
            return
        timeout = self.eor_timeout_s if eor_timeout_s is None else eor_timeout_s
        self._stop_timeout_s = timeout
        self._stop_deadline = time.monotonic() + max(timeout, 0.0)
        if self._allow is not None:
            silent = [n for n in self._allow_names if n.casefold() not in self._bor_seen]
            if silent:
                log.warning("BOR message never sent from %s", silent)
        log.debug("waiting up to %gs for EOR from %s", timeout, list(self.open_runs))

    def finish(self, eor_timeout_s: float | None = None) -> list[Event]:
        """``stop()``, then every remaining event (data included) until finished."""
        self.stop(eor_timeout_s)
        events: list[Event] = []
        while (event := self.recv()) is not None:
            events.append(event)
        return events

    def close(self) -> None:
        """Close the socket; pending events are discarded. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        self._sock.close(linger=0)

    def __enter__(self) -> DataReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "finished" if self._finished else "open"
        return f"<DataReceiver cdtp{self.protocol} {list(self._endpoints)} {state}>"

    # -- internals ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StreamClosedError("the receiver is closed", stream=self._protocol_name)

    def _pop(self) -> Event:
        event = self._pending.popleft()
        if self.strict and isinstance(event, MessageRejected):
            raise event.error
        return event

    def _poll(self, wait_s: float) -> list[zmq.Frame] | None:
        if not self._sock.poll(max(math.ceil(wait_s * 1000), 0)):
            return None
        try:
            return self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return None

    def _reject(self, error: RemoteProtocolError, sender: str | None, frames: int) -> None:
        self._pending.append(MessageRejected(error, sender, frames))

    def _handle(self, frames: list[zmq.Frame]) -> None:
        buffers = [f.buffer for f in frames]
        try:
            msg = (cdtp2 if self.protocol == 2 else cdtp1).decode_frames(buffers)
        except RemoteProtocolError as exc:
            self._decode_errors += 1
            log.warning("could not decode a %d-frame message: %s", len(frames), exc)
            self._reject(exc, None, len(frames))
            return
        sender = msg.sender
        if self._allow is not None and sender.casefold() not in self._allow:
            self._dropped += 1
            if len(self._logged_drops) < _MAX_LOGGED_DROPS and sender not in self._logged_drops:
                self._logged_drops.add(sender)
                log.warning("dropping messages from %r: not in allow_senders", sender)
            return
        try:
            if isinstance(msg, cdtp2.DataMessage):
                self._on_data(sender, [(r.sequence_number, r.tags, r.blocks) for r in msg.records])
            elif isinstance(msg, cdtp1.DatMessage):
                tags = msg.meta if msg.meta is not None else {}
                self._on_data(sender, [(msg.sequence_number, tags, msg.payload)])
            elif isinstance(msg, cdtp2.BorMessage):
                self._on_bor(sender, msg.records[0].tags, msg.records[1].tags)
            elif isinstance(msg, cdtp1.BorMessage):
                self._on_bor(sender, msg.meta if msg.meta is not None else {}, msg.payload)
            elif isinstance(msg, cdtp2.EorMessage):
                self._on_eor(sender, msg.records[0].tags, dict(msg.records[1].tags), None)
            else:
                tags = msg.meta if msg.meta is not None else {}
                self._on_eor(sender, tags, msg.payload, msg.sequence_number)
        except RemoteProtocolError as exc:
            if isinstance(exc, CdtpStateError):
                self._state_errors += 1
            log.warning("%s", exc.message)
            self._reject(exc, sender, len(frames))
            return
        self._messages += 1

    def _type_name(self, kind: str) -> str:
        if kind == "DATA":
            return "DATA" if self.protocol == 2 else "DAT"
        return kind

    def _state_error(self, kind: str, sender: str, reason: str) -> CdtpStateError:
        name = self._type_name(kind)
        return CdtpStateError(
            f"Error handling CDTP message with type {name}: {reason} {sender}",
            sender=sender,
            message_type=name,
            protocol=self._protocol_name,
        )

    def _open_run(self, sender: str, kind: str) -> _Run:
        state = self._senders.get(sender)
        if state is None or state.run is None:
            raise self._state_error(kind, sender, "did not receive BOR from")
        return state.run

    def _on_bor(self, sender: str, tags: dict[str, Any], configuration: Any) -> None:
        state = self._senders.get(sender)
        if state is not None and state.run is not None:
            raise self._state_error("BOR", sender, "already received BOR from")
        if state is None:
            if len(self._senders) >= self.max_senders:
                idle = next((n for n, s in self._senders.items() if s.run is None), None)
                if idle is None:
                    raise LengthLimitError(
                        f"BOR from {sender} refused: {self.max_senders} senders have open runs",
                        limit=self.max_senders,
                        actual=len(self._senders) + 1,
                        protocol=self._protocol_name,
                    )
                del self._senders[idle]
            state = self._senders[sender] = _Sender()
        else:
            self._senders.move_to_end(sender)
        state.runs += 1
        state.run = _Run(sender, state.runs, tags, configuration)
        self._bor_seen.add(sender.casefold())
        self._runs_started += 1
        log.info("BOR from %s (run %d), user tags %s", sender, state.runs, tags)
        self._pending.append(RunStarted(sender, tags, configuration, state.runs))

    def _on_data(self, sender: str, records: list[tuple[int, dict[str, Any], Any]]) -> None:
        run = self._open_run(sender, "DATA")
        for seq, tags, blocks in records:
            views = _views(blocks)
            nbytes = sum(v.nbytes for v in views)
            run.record(seq, nbytes)
            self._records += 1
            self._bytes += nbytes
            self._pending.append(DataReceived(sender, seq, tags, views))

    def _on_eor(
        self, sender: str, tags: dict[str, Any], metadata: Any, eor_seq: int | None
    ) -> None:
        run = self._open_run(sender, "EOR")
        meta_map: Mapping[str, Any] = metadata if isinstance(metadata, Mapping) else {}
        condition = RunCondition.GOOD
        code = _int_or_none(meta_map.get("condition_code"))
        if code is not None and code >= 0:
            condition = RunCondition(code)
        sender_last = eor_seq if self.protocol == 1 else _int_or_none(meta_map.get("data_records"))
        incomplete = run.missed > 0
        if sender_last is not None and sender_last != run.last_seq:
            log.warning(
                "%s reports sequence %d for its last data record, but the last one received "
                "bears sequence %d",
                sender,
                sender_last,
                run.last_seq,
            )
            incomplete = True
        if incomplete:
            condition |= RunCondition.INCOMPLETE
            if self.protocol == 2 and isinstance(metadata, dict):
                metadata["condition_code"] = int(condition)
                metadata["condition"] = condition_name(condition)
        run_id = _str_or_none(meta_map.get("run_id")) or _str_or_none(run.bor_tags.get("run_id"))
        summary = self._end(run, condition, tags, metadata, sender_last, run_id, missing=False)
        log.info(
            "EOR from %s: %d records, %d bytes, missed %d, condition %s",
            sender,
            summary.records,
            summary.bytes,
            summary.missed,
            condition_name(condition),
        )
        self._pending.append(RunEnded(sender, tags, metadata, summary))

    def _end(
        self,
        run: _Run,
        condition: RunCondition,
        tags: dict[str, Any],
        metadata: Any,
        sender_last: int | None,
        run_id: str | None,
        *,
        missing: bool,
    ) -> RunSummary:
        self._senders[run.sender].run = None
        self._runs_ended += 1
        summary = RunSummary(
            sender=run.sender,
            protocol=self.protocol,
            run_index=run.run_index,
            run_id=run_id,
            records=run.records,
            bytes=run.nbytes,
            missed=run.missed,
            out_of_order=run.out_of_order,
            first_sequence=run.first_seq,
            last_sequence=run.last_seq if run.records else None,
            sender_last_sequence=sender_last,
            condition=condition,
            eor_missing=missing,
            bor_tags=run.bor_tags,
            configuration=run.configuration,
            eor_tags=tags,
            metadata=metadata,
            duration_s=time.monotonic() - run.started,
        )
        self._summaries.append(summary)
        return summary

    def _substitute_ends(self) -> None:
        missing = self.open_runs
        self.missing_eor = missing
        log.warning(
            "Failed receiving EOR messages from %s after %gs; emitting substitute EOR messages",
            list(missing),
            self._stop_timeout_s,
        )
        for sender in missing:
            run = self._senders[sender].run
            assert run is not None
            condition = RunCondition.ABORTED
            if run.missed > 0:
                condition |= RunCondition.INCOMPLETE
            metadata = {"condition_code": int(condition), "condition": condition_name(condition)}
            run_id = _str_or_none(run.bor_tags.get("run_id"))
            summary = self._end(run, condition, {}, metadata, None, run_id, missing=True)
            self._pending.append(RunEnded(sender, {}, metadata, summary))
