"""Conformance of a ``json_lines`` peer over TCP: a telemetry stream, or the M2 command flow.

A stream (``mtmount_telemetry``, or ``--service stream`` of any spec) is read line by line
with the generated ``LineFramer`` and every line decoded by the generated ``decode``. For
``m2`` the command port is driven: hypothesis draws ``cmd_*`` messages from the generated
strategies, each is sent with a fresh sequence_id, and the flow a spec cannot say is checked:
``ack`` then exactly one ``success`` or ``fail`` (or one ``noack``), and no status for an id
never sent. After each command an unknown command (:data:`PROBE`) is sent; its ``noack``
marks the end of the first command's answers, so a late or doubled status is caught.
Beware: the drawn commands are real commands; point the kit at a mock or a safe controller.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from daqwire.conform.context import Context, UsageError, parse_host_port
from daqwire.conform.report import escape_case
from daqwire.conform.search import Problem, search
from daqwire.errors import RemoteProtocolError

__all__ = ["PROBE", "run"]

logger = logging.getLogger(__name__)

#: the command sent after each drawn one: unknown to any controller, so answered ``noack``
PROBE = "daqwireConformProbe"
#: the status messages of the command flow, by the generated class name
_STATUSES = {"Ack": "ack", "Noack": "noack", "Success": "success", "Fail": "fail"}
#: seconds between reconnect attempts while a one-client server lets the last client go
_RECONNECT_PAUSE_S = 0.05
#: the least time given to a one-client server to let the last client go (a loaded host
#: can take longer than one reply's ``timeout_s`` to notice a closed connection)
_RECONNECT_WAIT_S = 10.0


class _Lines:
    """A TCP connection cut into lines by the generated framer; reads bounded by a deadline."""

    def __init__(self, ctx: Context) -> None:
        host, port = parse_host_port(ctx.target, schemes=("tcp",))
        self.codec = ctx.spec.codec
        self.sock = socket.create_connection((host, port), timeout=ctx.timeout_s)
        self.framer = self.codec.LineFramer()
        self.number = 0
        self.ended = False

    def close(self) -> None:
        self.sock.close()

    def send(self, line: bytes) -> None:
        self.sock.sendall(line)

    def next(self, deadline: float) -> tuple[int, int, bytes] | RemoteProtocolError | None:
        """(line number, stream offset, body), a framing error, or None (timeout or closed)."""
        while True:
            start = self.framer.offset
            try:
                item = self.framer.next_line()
            except RemoteProtocolError as exc:
                self.number += 1
                return exc
            if isinstance(item, bytes):
                self.number += 1
                return self.number, start, item
            if self.ended:
                return None
            wait = deadline - time.monotonic()
            if wait <= 0:
                return None
            self.sock.settimeout(wait)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            except ConnectionError:
                data = b""
            if data:
                self.framer.feed(data)
            else:
                self.ended = True
                self.framer.feed_eof()


def _directions(ctx: Context) -> dict[str, str]:
    model = ctx.spec.model.json
    assert model is not None
    return {m.name: m.direction for m in model.messages}


def _decode(
    ctx: Context, directions: dict[str, str], number: int, start: int, line: bytes
) -> tuple[Any, Problem | None]:
    """The message of one line from the peer, or the problem with it."""
    try:
        msg = ctx.spec.codec.decode(line, offset=start)
    except RemoteProtocolError as exc:
        return None, Problem.from_error("item", exc, line, start=start)
    name = type(msg).MESSAGE_NAME
    if directions.get(name, "").startswith("to_"):
        return msg, Problem(
            "item",
            f"line {number} is a {name} message, which only a client sends ({directions[name]})",
            field_path=name,
            evidence=line,
        )
    return msg, None


# --- a stream of lines ---------------------------------------------------------------------------


def _run_stream(ctx: Context) -> None:
    directions = _directions(ctx)
    lines = _Lines(ctx)
    try:
        while ctx.report.checked < ctx.examples:
            got = lines.next(time.monotonic() + ctx.timeout_s)
            if got is None:
                how = (
                    "closed the connection"
                    if lines.ended
                    else (f"sent nothing for {ctx.timeout_s:g} s")
                )
                ctx.report.notes.append(f"the peer {how} after {lines.number} line(s)")
                return
            ctx.report.checked += 1
            if isinstance(got, RemoteProtocolError):
                ctx.report.count("bad line")
                ctx.deviate(
                    Problem(
                        "item",
                        got.message,
                        field_path=got.field_path or None,
                        evidence=getattr(got, "partial", None),
                    ),
                    case=f"line {lines.number} (stream byte {got.offset})",
                    reproduce=ctx.command(examples=lines.number),
                )
                continue
            number, start, line = got
            msg, problem = _decode(ctx, directions, number, start, line)
            if problem is None:
                ctx.report.count(type(msg).MESSAGE_NAME)
                continue
            ctx.report.count("bad line")
            ctx.deviate(
                problem,
                case=f"line {number} (stream bytes {start}..{start + len(line)}):"
                f" {escape_case(line[:120])}",
                reproduce=ctx.command(examples=number),
            )
    finally:
        lines.close()


# --- the M2 command flow -------------------------------------------------------------------------


class _Flow:
    """One command connection: the statuses of every id sent on it, and the lines seen."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.codec = ctx.spec.codec
        self.directions = _directions(ctx)
        self.lines: _Lines | None = None
        #: sequence id -> "sent", "acked", "done" or "abandoned"
        self.ids: dict[int, str] = {}
        self.next_id = 1
        self.reserved: set[int] = set()
        self.problems: list[Problem] = []
        self.sent: list[tuple[Any, bytes]] = []
        #: set when the peer would not keep a connection: nothing more can be checked
        self.gone: Problem | None = None

    # -- connection ---------------------------------------------------------------------------

    def close(self) -> None:
        if self.lines is not None:
            self.lines.close()
            self.lines = None
        self.ids.clear()

    def connect(self) -> None:
        """Connect and take the welcome burst: every line up to the probe's status."""
        wait_s = max(self.ctx.timeout_s, _RECONNECT_WAIT_S)
        deadline = time.monotonic() + wait_s
        while True:
            self.lines = _Lines(self.ctx)
            self.problems = []
            seen = self.probe(welcome=True)
            if seen or not self.lines.ended:
                break
            if time.monotonic() >= deadline:
                self.gone = Problem(
                    "flow",
                    f"the peer closed every connection at once, without a line, for {wait_s:g} s",
                )
                return
            self.close()  # a one-client server that still holds the last client: again
            time.sleep(_RECONNECT_PAUSE_S)
        for problem in self.problems:
            self.ctx.deviate(
                problem,
                case="the lines sent on connect (welcome burst)",
                reproduce=self.ctx.command(examples=1),
            )
        self.problems = []

    def fresh_id(self) -> int:
        while self.next_id in self.reserved or self.next_id in self.ids:
            self.next_id += 1
        seq = self.next_id
        self.next_id += 1
        return seq

    # -- lines ---------------------------------------------------------------------------------

    def problem(self, problem: Problem) -> None:
        self.problems.append(problem)

    def observe(self, number: int, start: int, line: bytes, *, welcome: bool = False) -> None:
        """Check one line from the controller and track the status it carries."""
        self.ctx.report.count("welcome line" if welcome else "line")
        msg, problem = _decode(self.ctx, self.directions, number, start, line)
        if problem is not None:
            self.ctx.report.count("bad line")
            self.problem(problem)
            return
        kind = _STATUSES.get(type(msg).__name__)
        if kind is None:
            return
        seq = msg.sequence_id
        state = self.ids.get(seq)
        path = f"{kind}.sequence_id"
        if state is None:
            self.problem(
                Problem(
                    "flow",
                    f"{kind} for sequence_id {seq}, which was never sent",
                    field_path=path,
                    evidence=line,
                )
            )
            return
        if state == "abandoned":
            self.ctx.report.count("late status")
            return
        wrong = None
        if kind == "ack":
            if state == "sent":
                self.ids[seq] = "acked"
            else:
                wrong = (
                    f"a second ack for sequence_id {seq}"
                    if state == "acked"
                    else (f"ack for sequence_id {seq} after its final status")
                )
        elif kind == "noack":
            if state == "sent":
                self.ids[seq] = "done"
            else:
                after = "ack" if state == "acked" else "final status"
                wrong = f"noack for sequence_id {seq} after its {after}"
        elif state == "acked":
            self.ids[seq] = "done"
        elif state == "sent":
            wrong = f"{kind} for sequence_id {seq} before its ack"
            self.ids[seq] = "done"
        else:
            wrong = (
                f"{kind} for sequence_id {seq} after its final status (one success or fail only)"
            )
        if wrong is not None:
            self.problem(Problem("flow", wrong, field_path=path, evidence=line))

    def wait_final(self, seq: int, *, welcome: bool = False) -> bool:
        """Read lines until ``seq`` has its final status; False after the timeout or EOF.

        Outside the welcome burst the wait also ends at the first problem: the case has
        failed, and its connection is dropped.
        """
        lines = self.lines
        assert lines is not None
        deadline = time.monotonic() + self.ctx.timeout_s
        while self.ids.get(seq) != "done":
            if self.problems and not welcome:
                return True
            got = lines.next(deadline)
            if got is None:
                return False
            if isinstance(got, RemoteProtocolError):
                self.ctx.report.count("bad line")
                self.problem(Problem("item", got.message, field_path=got.field_path or None))
                continue
            self.observe(*got, welcome=welcome)
        return True

    def probe(self, *, welcome: bool = False) -> int:
        """Send :data:`PROBE` and read up to its final status; returns the lines read."""
        lines = self.lines
        assert lines is not None
        before = lines.number
        seq = self.fresh_id()
        self.ids[seq] = "sent"
        try:
            lines.send(self.codec.encode_command(PROBE, seq))
        except OSError as exc:
            self.problem(Problem("flow", f"the peer closed the connection: {exc}"))
            return 0
        if not self.wait_final(seq, welcome=welcome):
            state = self.ids.get(seq)
            self.ids[seq] = "abandoned"
            if not (welcome and lines.ended and lines.number == before):
                self.problem(self._silence(f"the probe command cmd_{PROBE}", seq, state))
        return lines.number - before

    def _silence(self, what: str, seq: int, state: str | None) -> Problem:
        """``what`` got no final status: say how far it got and why the wait ended."""
        lines = self.lines
        assert lines is not None
        got = "an ack but no success or fail" if state == "acked" else "no status"
        how = (
            "before the peer closed the connection"
            if lines.ended
            else f"within {self.ctx.timeout_s:g} s"
        )
        return Problem("flow", f"{what} (sequence_id {seq}) got {got} {how}")

    # -- one command ---------------------------------------------------------------------------

    def check(self, line: bytes, seq: int) -> Problem | None:
        """Send one command line and check the flow of its answers (and of the probe's)."""
        if self.gone is not None:
            return None
        if self.lines is None or self.lines.ended:
            self.close()
            self.connect()
            if self.gone is not None:
                return None
        self.ctx.report.checked += 1
        lines = self.lines
        assert lines is not None
        self.problems = []
        self.ids[seq] = "sent"
        terminator = self.codec.TERMINATOR
        try:
            lines.send(line if line.endswith(terminator) else line + terminator)
        except OSError as exc:
            self.close()
            return Problem("flow", f"the peer closed the connection: {exc}")
        if not self.wait_final(seq):
            state = self.ids.get(seq)
            self.ids[seq] = "abandoned"
            self.problem(self._silence("the command", seq, state))
        elif not self.problems:
            self.probe()
        if self.problems:
            self.ctx.report.count("deviating command")
            self.close()  # start the next case on a clean connection
            return self.problems[0]
        self.ctx.report.count("command")
        return None


def _command_strategy(ctx: Context) -> st.SearchStrategy[Any]:
    """Every message of the spec whose select key says ``cmd_``: the commands."""
    model = ctx.spec.model.json
    assert model is not None
    found = []
    for m in model.messages:
        key = m.selector
        if key is None:
            continue
        if (isinstance(key.const, str) and key.const.startswith("cmd_")) or key.prefix == "cmd_":
            found.append(getattr(ctx.spec.strategies, f"{m.name}_values")())
    if not found:
        raise UsageError(f"{ctx.spec.protocol} declares no cmd_ messages to send")
    return st.one_of(found)


def _replay_id(ctx: Context, line: bytes) -> int:
    """The sequence_id of a ``--replay`` line, which must be one command."""
    body = line.removesuffix(ctx.spec.codec.TERMINATOR)
    try:
        msg = ctx.spec.codec.decode(body)
    except RemoteProtocolError as exc:
        raise UsageError(f"--replay is not a {ctx.spec.protocol} message: {exc}") from None
    seq = getattr(msg, "sequence_id", None)
    direction = _directions(ctx).get(type(msg).MESSAGE_NAME, "")
    if not isinstance(seq, int) or not direction.startswith("to_"):
        raise UsageError("--replay must be one command line (a cmd_ message with a sequence_id)")
    return seq


def _run_flow(ctx: Context) -> None:
    flow = _Flow(ctx)
    try:
        if ctx.replay is not None:
            seq = _replay_id(ctx, ctx.replay)
            flow.reserved.add(seq)
            flow.connect()
            problem = flow.check(ctx.replay, seq) or flow.gone
            if problem is not None:
                ctx.deviate_replay(problem)
            return
        flow.connect()
        if flow.gone is not None:
            ctx.deviate(flow.gone, case="connect", reproduce=ctx.command(examples=1))
            return
        ctx.report.notes.append(
            f"each command is followed by cmd_{PROBE} (answered noack) to close its answers"
        )
        sent: list[tuple[Any, bytes]] = []

        def check(msg: Any) -> Problem | None:
            seq = flow.fresh_id()
            line = flow.codec.encode(dataclasses.replace(msg, sequence_id=seq))
            body = line.removesuffix(flow.codec.TERMINATOR)
            problem = flow.check(line, seq)
            if problem is not None:
                sent.append((msg, body))
            return problem

        found = search(
            _command_strategy(ctx),
            check,
            examples=ctx.examples,
            seed=ctx.seed,
            shrink_budget_s=ctx.shrink_budget_s,
        )
        if flow.gone is not None:
            ctx.deviate(flow.gone, case="reconnect", reproduce=ctx.command(examples=1))
        if found is None:
            return
        body = next((b for m, b in reversed(sent) if m == found.case), sent[-1][1])
        ctx.deviate(
            found.problem,
            case=escape_case(body),
            reproduce=ctx.command(replay=body),
            shrunk=found.shrunk,
        )
    finally:
        flow.close()


def run(ctx: Context) -> None:
    """Check the ``json_lines`` peer at ``ctx.target``: a stream, or the m2 command flow."""
    if ctx.spec.model.json is None or not ctx.spec.model.json.messages:
        raise UsageError(f"{ctx.spec.protocol} declares no messages (a framing-only spec)")
    flows: dict[str, Callable[[Context], None]] = {"stream": _run_stream}
    if ctx.spec.protocol == "m2":
        flows["commands"] = _run_flow
    service = ctx.service or ("commands" if "commands" in flows else "stream")
    if service not in flows:
        raise UsageError(
            f"{ctx.spec.protocol} has no service {service!r} (it has {', '.join(flows)})"
        )
    if ctx.replay is not None and service != "commands":
        raise UsageError("--replay applies to the m2 command flow only; use --examples N")
    flows[service](ctx)
