"""The state of one conformance run, shared by the drivers."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from daqwire.conform.report import Deviation, Report, escape_case
from daqwire.conform.search import Found, Problem
from daqwire.conform.specs import ConformSpec

__all__ = ["Context", "UsageError", "parse_host_port"]


class UsageError(ValueError):
    """The run cannot start: a bad target, service or option (the CLI exits 2)."""


def parse_host_port(target: str, *, schemes: tuple[str, ...] = ("tcp", "udp")) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``tcp://HOST:PORT`` as (host, port)."""
    text = target
    for scheme in schemes:
        if text.startswith(scheme + "://"):
            text = text[len(scheme) + 3 :]
            break
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"target {target!r} is not HOST:PORT")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


@dataclass(slots=True)
class Context:
    """What a driver needs: the spec, the target, the options and the report it fills."""

    spec: ConformSpec
    target: str
    report: Report
    service: str | None = None
    #: a service the kit picked because the spec has no other: left out of reproducers
    implied_service: str | None = None
    examples: int = 100
    seed: int | None = None
    timeout_s: float = 2.0
    shrink_budget_s: float = 30.0
    replay: bytes | None = None
    hostile: bool = True

    def command(
        self,
        *,
        replay: bytes | None = None,
        examples: int | None = None,
        service: str | None = None,
    ) -> str:
        """The ``daqwire conform`` command line that checks this target again, narrowed."""
        parts = ["daqwire", "conform", self.spec.name, self.target]
        service = service or self.service
        if service and service != self.implied_service:
            parts += ["--service", service]
        if examples is not None:
            parts += ["--examples", str(examples)]
        if replay is not None:
            parts += ["--replay", escape_case(replay)]
        if self.timeout_s != 2.0:
            parts += ["--timeout-s", f"{self.timeout_s:g}"]
        return shlex.join(parts)

    def deviate(
        self,
        problem: Problem,
        *,
        case: str,
        reproduce: str,
        shrunk: bool = False,
    ) -> None:
        """Record ``problem`` as a deviation of the peer."""
        self.report.add(
            Deviation(
                check=problem.check,
                message=problem.message,
                case=case,
                reproduce=reproduce,
                field_path=problem.field_path,
                offset=problem.offset,
                evidence_hex=Deviation.evidence(problem.evidence),
                shrunk=shrunk,
            )
        )

    def deviate_replay(self, problem: Problem) -> None:
        """Record the problem of the ``--replay`` case, reproduced by the same command."""
        assert self.replay is not None
        self.deviate(
            problem, case=escape_case(self.replay), reproduce=self.command(replay=self.replay)
        )

    def deviate_found(self, found: Found[bytes], *, service: str | None = None) -> None:
        """Record a shrunk request/reply failure, reproduced by ``--replay``."""
        self.deviate(
            found.problem,
            case=escape_case(found.case),
            reproduce=self.command(replay=found.case, service=service),
            shrunk=found.shrunk,
        )
