"""Conformance of a ``text_commands`` UDP service: PyExpLabSys pull, push and live sockets.

Requests are drawn from the generated ``<service>_calls()`` strategy and every reply is
named by the generated ``match_<service>_reply``; hostile datagrams must get an error reply
(or, when they look like a request, a reply that request allows). One-way services (the
live socket's updates) are checked by listening on TARGET and decoding every datagram.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from daqwire.conform.context import Context, UsageError, parse_host_port
from daqwire.conform.report import escape_case
from daqwire.conform.search import Problem, search
from daqwire.errors import RemoteProtocolError

__all__ = ["run"]

logger = logging.getLogger(__name__)

#: the largest UDP payload; a reply is read whole
_MAX_DATAGRAM = 65535


class _Exchange:
    """One UDP request and its reply, each on a fresh socket so a late reply cannot mislead."""

    def __init__(self, address: tuple[str, int], timeout_s: float) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self.family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET

    def __call__(self, data: bytes, *, retries: int = 1) -> bytes | None:
        for _attempt in range(retries + 1):
            with socket.socket(self.family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(self.timeout_s)
                sock.connect(self.address)
                try:
                    sock.send(data)
                    return sock.recv(_MAX_DATAGRAM)
                except TimeoutError:
                    continue
                except ConnectionRefusedError:  # ICMP port unreachable: nobody listens
                    return None
        return None


def _services(ctx: Context) -> dict[str, Any]:
    text = ctx.spec.model.text
    assert text is not None
    return dict(text.services)


def _is_request_service(ctx: Context, name: str) -> bool:
    text = ctx.spec.model.text
    assert text is not None
    service = text.services[name]
    return any(text.messages[r].direction == "request" for r in service.requests)


def _pick_service(ctx: Context, exchange: _Exchange) -> str:
    """The service whose literal requests the peer answers best (``--service`` overrides)."""
    services = _services(ctx)
    if ctx.service is not None:
        if ctx.service not in services:
            known = ", ".join(services)
            raise UsageError(f"{ctx.spec.protocol} has no service {ctx.service!r} (it has {known})")
        return ctx.service
    candidates = [name for name in services if _is_request_service(ctx, name)]
    if len(candidates) == 1:
        ctx.implied_service = candidates[0]
        return candidates[0]
    text = ctx.spec.model.text
    assert text is not None
    scores: dict[str, float] = {}
    answered = False
    for name in candidates:
        match = getattr(ctx.spec.codec, f"match_{name}_reply")
        errors = getattr(ctx.spec.codec, f"{name.upper()}_ERROR_REPLIES")
        probes = [m for m in services[name].requests if text.messages[m].part is None]
        good = 0
        for m in probes:
            reply = exchange(getattr(ctx.spec.codec, f"encode_{m}")())
            if reply is None:
                continue
            answered = True
            try:
                good += match(m, reply) not in errors
            except RemoteProtocolError:
                pass
        scores[name] = good / len(probes) if probes else 0.0
    if not answered:
        raise TimeoutError(f"no reply from {ctx.target} within {ctx.timeout_s:g} s")
    best = max(scores.values())
    winners = [n for n, s in scores.items() if s == best]
    if best == 0 or len(winners) > 1:
        raise UsageError(
            f"cannot tell which service {ctx.target} offers ({scores}); give --service"
        )
    ctx.report.notes.append(
        f"service {winners[0]} detected from its answers to literal requests "
        + ", ".join(f"{n} {s:.0%}" for n, s in scores.items())
    )
    return winners[0]


def _check_reply(
    ctx: Context, service: str, exchange: _Exchange, phase: str = ""
) -> Callable[[bytes], Problem | None]:
    codec = ctx.spec.codec
    match = getattr(codec, f"match_{service}_reply")
    identify = getattr(codec, f"identify_{service}_request")
    errors = getattr(codec, f"{service.upper()}_ERROR_REPLIES")

    def check(datagram: bytes) -> Problem | None:
        ctx.report.checked += 1
        request = identify(datagram)
        reply = exchange(datagram, retries=1 if request is not None else 0)
        if reply is None:
            ctx.report.count(f"{phase}no reply")
            return Problem(
                "no-reply", f"no reply within {ctx.timeout_s:g} s (one request gets one reply)"
            )
        try:
            name = match(request, reply)
        except RemoteProtocolError as exc:
            ctx.report.count(f"{phase}bad reply")
            return Problem.from_error("reply", exc, reply)
        if request is None and name not in errors:
            ctx.report.count(f"{phase}bad reply")
            return Problem(
                "reply",
                f"a datagram that is no {service} request was answered with {name}, "
                f"not with an error reply ({', '.join(errors)})",
                field_path=service,
                offset=0,
                evidence=reply,
            )
        ctx.report.count(f"{phase}reply {name}")
        return None

    return check


def _hostile(ctx: Context) -> st.SearchStrategy[bytes]:
    """Datagrams a careless or hostile client sends: noise, near-misses of real requests."""
    calls = getattr(ctx.spec.strategies, f"{ctx.service}_calls")()
    valid = calls.map(lambda call: call[1])
    return st.one_of(
        st.binary(max_size=512),
        st.tuples(valid, st.binary(min_size=1, max_size=8)).map(lambda t: t[0] + t[1]),
        st.tuples(valid, st.binary(min_size=1, max_size=8)).map(lambda t: t[1] + t[0]),
        valid.map(lambda d: d[:-1]),
        st.text(max_size=64).map(lambda s: s.encode("utf-8", "surrogatepass")),
    )


def _run_one_way(ctx: Context, service: str) -> None:
    """Listen on TARGET and decode every datagram of a one-way service (a live socket's)."""
    text = ctx.spec.model.text
    assert text is not None
    names = [m for m in text.services[service].requests if text.messages[m].direction == "datagram"]
    decoders = [(m, getattr(ctx.spec.codec, f"decode_{m}")) for m in names]
    host, port = parse_host_port(ctx.target)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, port))
        sock.settimeout(ctx.timeout_s)
        ctx.report.notes.append(f"listened on {host}:{port} for {service} datagrams")
        for index in range(ctx.examples):
            try:
                data = sock.recv(_MAX_DATAGRAM)
            except TimeoutError:
                ctx.report.notes.append(
                    f"no datagram for {ctx.timeout_s:g} s after {index}; stopped listening"
                )
                return
            ctx.report.checked += 1
            first: RemoteProtocolError | None = None
            for name, decode in decoders:
                try:
                    decode(data)
                except RemoteProtocolError as exc:
                    first = first or exc
                    continue
                ctx.report.count(f"datagram {name}")
                break
            else:
                ctx.report.count("bad datagram")
                assert first is not None
                ctx.deviate(
                    Problem.from_error("datagram", first, data),
                    case=f"datagram {index + 1}: {escape_case(data[:80])}",
                    reproduce=ctx.command(examples=index + 1),
                )


def _listed(ctx: Context, service: str, exchange: _Exchange) -> dict[str, Any]:
    """The decoded replies of the requests that ``examples_from`` parts draw values from."""
    text = ctx.spec.model.text
    assert text is not None
    sources = {
        m.part.examples_from
        for m in (text.messages[r] for r in text.services[service].requests)
        if m.part is not None and m.part.examples_from
    }
    replies: dict[str, Any] = {}
    for source in sorted(sources):
        reply = exchange(getattr(ctx.spec.codec, f"encode_{source}")())
        decode = getattr(ctx.spec.codec, f"decode_{text.messages[source].replies[0]}")
        try:
            replies[source] = decode(reply) if reply is not None else None
        except RemoteProtocolError:
            continue  # the drawn requests will show what is wrong with this reply
    return replies


def run(ctx: Context) -> None:
    """Check the UDP peer at ``ctx.target`` against a ``text_commands`` spec."""
    if ctx.service is not None and ctx.service in _services(ctx):
        if not _is_request_service(ctx, ctx.service):
            _run_one_way(ctx, ctx.service)
            return
    exchange = _Exchange(parse_host_port(ctx.target), ctx.timeout_s)
    ctx.service = service = _pick_service(ctx, exchange)
    check = _check_reply(ctx, service, exchange)
    if ctx.replay is not None:
        problem = check(ctx.replay)
        if problem is not None:
            ctx.deviate_replay(problem)
        return
    calls = getattr(ctx.spec.strategies, f"{service}_calls")(_listed(ctx, service, exchange))
    found = search(
        calls.map(lambda call: call[1]),
        check,
        examples=ctx.examples,
        seed=ctx.seed,
        shrink_budget_s=ctx.shrink_budget_s,
    )
    if found is not None:
        ctx.deviate_found(found)
        ctx.report.notes.append("hostile datagrams skipped: valid requests already deviate")
    elif ctx.hostile:
        found = search(
            _hostile(ctx),
            _check_reply(ctx, service, exchange, "hostile: "),
            examples=max(10, ctx.examples // 2),
            seed=ctx.seed,
            shrink_budget_s=ctx.shrink_budget_s,
        )
        if found is not None:
            found_problem = found.problem
            ctx.deviate(
                Problem(
                    "hostile",
                    found_problem.message,
                    found_problem.field_path,
                    found_problem.offset,
                    found_problem.evidence,
                ),
                case=escape_case(found.case),
                reproduce=ctx.command(replay=found.case),
                shrunk=found.shrunk,
            )
    # the peer must still answer after everything it was sent
    text = ctx.spec.model.text
    assert text is not None
    literal = [m for m in text.services[service].requests if text.messages[m].part is None]
    if literal:
        probe = getattr(ctx.spec.codec, f"encode_{literal[0]}")()
        if exchange(probe) is None:
            ctx.deviate(
                Problem(
                    "alive", f"the peer stopped answering ({literal[0]} got no reply at the end)"
                ),
                case=escape_case(probe),
                reproduce=ctx.command(),
            )
