"""Conformance kit: drive a live peer with traffic drawn from a spec and check every reply.

``conform("pyexplabsys", "127.0.0.1:9000")`` sends hypothesis-drawn requests to a pull
socket, checks each reply against the spec with the generated decoders, shrinks the first
failure to a minimal case and returns a :class:`Report`. Streams (AARTFAAC windows, CDTP
runs, JSON-line telemetry) are read and every item is checked.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable

from daqwire.conform.context import Context, UsageError
from daqwire.conform.report import Deviation, NonConformanceError, Report
from daqwire.conform.specs import ConformSpec, resolve_spec

__all__ = [
    "ConformSpec",
    "Context",
    "Deviation",
    "NonConformanceError",
    "Report",
    "UsageError",
    "conform",
]

logger = logging.getLogger(__name__)

#: the driver of each spec family, and of specs whose flow a spec cannot say
_DRIVERS: dict[str, str] = {
    "text_commands": "daqwire.conform.datagrams:run",
    "binary": "daqwire.conform.streams:run",
    "msgpack_frames": "daqwire.conform.cdtp:run",
    "json_lines": "daqwire.conform.lines:run",
}


def _driver(spec: ConformSpec) -> Callable[[Context], None]:
    target = _DRIVERS.get(spec.family)
    if target is None:
        raise UsageError(f"daqwire conform has no driver for the {spec.family} family")
    module, _, name = target.partition(":")
    driver: Callable[[Context], None] = getattr(importlib.import_module(module), name)
    return driver


def conform(
    spec: str,
    target: str,
    *,
    service: str | None = None,
    examples: int = 100,
    seed: int | None = None,
    timeout_s: float = 2.0,
    shrink_budget_s: float = 30.0,
    replay: bytes | None = None,
    hostile: bool = True,
) -> Report:
    """Check the live peer at ``target`` against ``spec`` (a shipped name or a YAML path).

    ``examples`` is the number of drawn requests, or of stream items to read; ``replay``
    sends one recorded case instead (the reproducer printed for a failure). Raises
    :class:`UsageError` for a bad target or option and ``OSError`` when the peer cannot be
    reached at all; deviations are in the returned report, never raised.
    """
    if examples < 1:
        raise UsageError(f"examples must be at least 1, got {examples}")
    if timeout_s <= 0:
        raise UsageError(f"timeout_s must be positive, got {timeout_s}")
    loaded = resolve_spec(spec)
    try:
        report = Report(
            spec=spec,
            target=target,
            family=loaded.family,
            service=service,
            examples=examples,
            seed=seed,
        )
        ctx = Context(
            spec=loaded,
            target=target,
            report=report,
            service=service,
            examples=examples,
            seed=seed,
            timeout_s=timeout_s,
            shrink_budget_s=shrink_budget_s,
            replay=replay,
            hostile=hostile,
        )
        started = time.monotonic()
        try:
            _driver(loaded)(ctx)
        finally:
            report.duration_s = time.monotonic() - started
        report.service = ctx.service
        logger.info(
            "conform %s %s: %d checked, %d deviations",
            spec,
            target,
            report.checked,
            len(report.deviations),
        )
        return report
    finally:
        loaded.close()
