"""Conformance of a CDTP sender (``msgpack_frames``: cdtp1, cdtp2): receive a run, check it.

A PULL socket connects to the sender's PUSH; every message is decoded by the generated
``decode_frames``. What a spec cannot say is checked here: a run is BOR, data, EOR; data
sequence numbers count from 1 without gaps; the EOR's last sequence number and run
condition agree with what arrived.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import zmq

from daqwire.conform.context import Context, UsageError, parse_host_port
from daqwire.conform.search import Problem
from daqwire.errors import RemoteProtocolError
from daqwire.zmq_context import TERM_GRACE_S, term_bounded

__all__ = ["run"]

logger = logging.getLogger(__name__)

#: the CDTP version of each spec this driver knows
_PROTOCOLS = {"cdtp1": 1, "cdtp2": 2}


@dataclass(slots=True)
class _Run:
    """What arrived of the run so far."""

    sender: str | None = None
    started: bool = False
    ended: bool = False
    last_seq: int = 0
    #: data records checked (the ``--examples`` unit)
    records: int = 0
    missed: int = 0
    messages: int = 0


def _check_target(ctx: Context) -> tuple[str, int]:
    if ctx.spec.protocol not in _PROTOCOLS:
        raise UsageError(
            f"daqwire conform has no driver for {ctx.spec.protocol}: it checks CDTP senders"
            " (cdtp1, cdtp2); CSCP control (REQ/REP) is not covered"
        )
    if ctx.replay is not None:
        raise UsageError("--replay does not apply to a CDTP run; use --examples N")
    host, port = parse_host_port(ctx.target, schemes=("tcp",))
    return host, port


def _probe(host: str, port: int, timeout_s: float) -> None:
    """Fail at once (ConnectionRefusedError, TimeoutError) when nothing listens there."""
    with socket.create_connection((host, port), timeout=timeout_s):
        pass


def run(ctx: Context) -> None:
    """Receive one run (or ``ctx.examples`` data records) from the sender at ``ctx.target``."""
    host, port = _check_target(ctx)
    _probe(host, port, ctx.timeout_s)
    endpoint = f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"
    zctx = zmq.Context()
    try:
        sock = zctx.socket(zmq.PULL)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            if ":" in host:
                sock.setsockopt(zmq.IPV6, 1)
            sock.connect(endpoint)
            _receive(ctx, sock)
        finally:
            sock.close(linger=0)
    finally:
        term_bounded(zctx, TERM_GRACE_S, owner="daqwire conform")


def _receive(ctx: Context, sock: zmq.Socket[Any]) -> None:
    state = _Run()
    checker = _Checker(ctx, state)
    while not state.ended and state.records < ctx.examples:
        if not sock.poll(max(1, int(ctx.timeout_s * 1000))):
            checker.silent()
            return
        frames = sock.recv_multipart(copy=True)
        checker.message([bytes(f) for f in frames])


class _Checker:
    """The run rules, applied to one message at a time."""

    def __init__(self, ctx: Context, state: _Run) -> None:
        self.ctx = ctx
        self.state = state
        self.codec = ctx.spec.codec
        self.version = _PROTOCOLS[ctx.spec.protocol]
        self.started_at = time.monotonic()

    def deviate(
        self,
        check: str,
        message: str,
        *,
        case: str,
        evidence: bytes | None = None,
        field_path: str | None = None,
        offset: int | None = None,
    ) -> None:
        self.ctx.deviate(
            Problem(check, message, field_path=field_path, offset=offset, evidence=evidence),
            case=case,
            reproduce=self.ctx.command(examples=max(1, self.state.records)),
        )

    def silent(self) -> None:
        """No message within the idle timeout."""
        state, ctx = self.state, self.ctx
        if state.messages == 0:
            raise TimeoutError(
                f"no CDTP message from {ctx.target} within {ctx.timeout_s:g} s"
                " (is a run going on? the sender sends only during a run)"
            )
        if state.started:
            self.deviate(
                "run",
                f"the run has no EOR: nothing arrived for {ctx.timeout_s:g} s after"
                f" {state.records} data record(s) (last sequence {state.last_seq})",
                case=f"after data record {state.records}",
            )
        else:
            ctx.report.notes.append(f"no message for {ctx.timeout_s:g} s; stopped listening")

    def message(self, frames: list[bytes]) -> None:
        state, ctx = self.state, self.ctx
        state.messages += 1
        where = f"message {state.messages}"
        try:
            msg = self.codec.decode_frames(frames)
        except RemoteProtocolError as exc:
            ctx.report.checked += 1
            ctx.report.count("bad message")
            self.deviate(
                "item",
                exc.message,
                case=f"{where} (after data record {state.records}, {len(frames)} frame(s))",
                evidence=frames[0] if frames else b"",
                field_path=exc.field_path or None,
                offset=exc.offset,
            )
            return
        kind = type(msg).__name__
        if state.sender is not None and msg.sender != state.sender:
            self.deviate(
                "run",
                f"{kind} from {msg.sender!r} inside the run of {state.sender!r}",
                case=where,
                evidence=frames[0],
                field_path=f"{_snake(kind)}.sender",
            )
        state.sender = state.sender or msg.sender
        if kind == "BorMessage":
            self.bor(msg, where, frames)
        elif kind == "EorMessage":
            self.eor(msg, where, frames)
        else:
            self.data(msg, where, frames)

    def bor(self, msg: Any, where: str, frames: list[bytes]) -> None:
        state = self.state
        self.ctx.report.checked += 1
        self.ctx.report.count("BOR")
        if state.started:
            self.deviate(
                "run",
                f"a second BOR after {state.records} data record(s) without an EOR",
                case=where,
                evidence=frames[0],
            )
        if self.version == 1 and msg.sequence_number != 0:
            self.deviate(
                "run",
                f"the BOR has sequence number {msg.sequence_number}, not 0",
                case=where,
                evidence=frames[0],
                field_path="bor_message.sequence_number",
            )
        state.started = True
        state.last_seq = 0

    def data(self, msg: Any, where: str, frames: list[bytes]) -> None:
        state, ctx = self.state, self.ctx
        if self.version == 2:
            seqs = [r.sequence_number for r in msg.records]
            ctx.report.count("DATA message")
        else:
            seqs = [msg.sequence_number]
        if not state.started:
            self.deviate(
                "run",
                "data before any BOR: a run starts with a BOR (connect the kit before the"
                " sender starts its run)",
                case=f"{where}: data record with sequence {seqs[0] if seqs else '-'}",
                evidence=frames[0],
            )
            state.started = True  # check the rest as a run
        for seq in seqs:
            if state.records >= ctx.examples:
                return
            state.records += 1
            ctx.report.checked += 1
            ctx.report.count("data record")
            expected = state.last_seq + 1
            if seq == expected:
                state.last_seq = seq
                continue
            if seq > expected:
                missing = seq - expected
                state.missed += missing
                message = (
                    f"record after sequence {state.last_seq} has sequence {seq}: {missing} missing"
                )
                state.last_seq = seq
            else:
                message = (
                    f"record after sequence {state.last_seq} has sequence {seq}:"
                    " not above the last one (a duplicate or a restart)"
                )
            self.deviate(
                "sequence",
                message,
                case=f"data record {state.records} ({where})",
                evidence=frames[0],
                field_path="data_message.records.sequence_number"
                if self.version == 2
                else "dat_message.sequence_number",
            )

    def eor(self, msg: Any, where: str, frames: list[bytes]) -> None:
        state, ctx = self.state, self.ctx
        ctx.report.checked += 1
        ctx.report.count("EOR")
        state.ended = True
        if not state.started:
            self.deviate(
                "run",
                "an EOR without a BOR before it (connect the kit before the sender starts its run)",
                case=where,
                evidence=frames[0],
            )
            return
        if self.version == 1:
            if msg.sequence_number != state.last_seq:
                self.deviate(
                    "run",
                    f"the EOR has sequence number {msg.sequence_number}, but the last data"
                    f" record had {state.last_seq}",
                    case=where,
                    evidence=frames[0],
                    field_path="eor_message.sequence_number",
                )
            return
        metadata = msg.records[1].tags
        self.condition(metadata, where, frames[0])

    def condition(self, metadata: Mapping[str, Any], where: str, evidence: bytes) -> None:
        """CDTP2 run metadata: data_records, condition_code and condition agree with the run."""
        state = self.state
        path = "eor_message.records.tags"
        last = metadata.get("data_records")
        if last is not None and last != state.last_seq:
            self.deviate(
                "run",
                f"the EOR says data_records = {last!r}, but the last data record had sequence"
                f" {state.last_seq} (the run is INCOMPLETE)",
                case=where,
                evidence=evidence,
                field_path=f"{path}.data_records",
            )
        code = metadata.get("condition_code")
        if code is None:
            return
        flags = self.codec.RunCondition
        known = sum(int(f) for f in flags)
        if not isinstance(code, int) or isinstance(code, bool) or code < 0 or code & ~known:
            self.deviate(
                "run",
                f"condition_code {code!r} is not a combination of RunCondition flags",
                case=where,
                evidence=evidence,
                field_path=f"{path}.condition_code",
            )
            return
        condition = flags(code)
        names = "|".join(f.name for f in flags if f and f in condition) or "GOOD"
        text = metadata.get("condition")
        if text is not None and text != names:
            self.deviate(
                "run",
                f"condition {text!r} does not match condition_code {code} ({names})",
                case=where,
                evidence=evidence,
                field_path=f"{path}.condition",
            )
        self.ctx.report.count(f"condition {names}")
        if state.missed and not condition & flags.INCOMPLETE and last == state.last_seq:
            self.ctx.report.notes.append(
                f"{state.missed} data record(s) never arrived, yet the EOR condition is {names}"
            )


def _snake(class_name: str) -> str:
    return {"BorMessage": "bor_message", "EorMessage": "eor_message"}.get(
        class_name, "dat_message" if class_name == "DatMessage" else "data_message"
    )
