"""What a conformance run found: deviations with their minimal cases, counters, JSON and HTML."""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Deviation", "NonConformanceError", "Report", "escape_case", "unescape_case"]

#: at most this many bytes of an offending item are kept in a report (as hex)
MAX_EVIDENCE_BYTES = 256


class NonConformanceError(AssertionError):
    """The peer deviates from its spec (raised by :meth:`Report.raise_for_deviations`)."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.summary())
        self.report = report


@dataclass(frozen=True, slots=True)
class Deviation:
    """One way the peer breaks its spec, with the smallest case that shows it."""

    #: which check failed: ``reply``, ``no-reply``, ``item``, ``order``, ``flow``, ...
    check: str
    #: what is wrong, precise enough to fix the peer
    message: str
    #: the case that shows it, in words (the request sent, or the item's position)
    case: str
    #: the copy-pasteable ``daqwire conform`` command that shows it again
    reproduce: str
    #: where in the message the fault is, as the generated decoder names it
    field_path: str | None = None
    #: byte offset of the fault within the item, when known
    offset: int | None = None
    #: the first bytes of the offending reply or item, as hex
    evidence_hex: str | None = None
    #: True when hypothesis shrank the case to a minimal one
    shrunk: bool = False

    @staticmethod
    def evidence(data: bytes | bytearray | memoryview | None) -> str | None:
        """Hex of the first :data:`MAX_EVIDENCE_BYTES` bytes of ``data``."""
        if data is None:
            return None
        return bytes(data[:MAX_EVIDENCE_BYTES]).hex()


@dataclass(slots=True)
class Report:
    """The outcome of one ``daqwire conform`` run."""

    spec: str
    target: str
    family: str
    service: str | None = None
    examples: int = 0
    seed: int | None = None
    #: how many cases (requests, datagrams, windows, records or lines) were checked
    checked: int = 0
    #: outcome counters: reply names seen, items by kind, and so on
    counts: dict[str, int] = field(default_factory=dict)
    deviations: list[Deviation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing deviated and something was checked."""
        return not self.deviations and self.checked > 0

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``key``."""
        self.counts[key] = self.counts.get(key, 0) + n

    def add(self, deviation: Deviation) -> None:
        """Record a deviation (the same message and case only once)."""
        for known in self.deviations:
            if (known.check, known.message, known.case) == (
                deviation.check,
                deviation.message,
                deviation.case,
            ):
                return
        self.deviations.append(deviation)

    def raise_for_deviations(self) -> None:
        """Raise :class:`NonConformanceError` unless the run passed."""
        if not self.ok:
            raise NonConformanceError(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        data = asdict(self)
        data["ok"] = self.ok
        return data

    def to_json(self) -> str:
        """The report as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def summary(self) -> str:
        """A few lines of text: the verdict, the counters, each deviation and its reproducer."""
        where = f"{self.spec} ({self.family}"
        where += f", service {self.service})" if self.service else ")"
        lines = [f"daqwire conform {where} against {self.target}"]
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        lines.append(
            f"checked {self.checked} cases in {self.duration_s:.1f} s"
            + (f": {counts}" if counts else "")
        )
        lines += [f"note: {n}" for n in self.notes]
        if self.ok:
            lines.append("PASS: every reply and item conforms to the spec")
            return "\n".join(lines)
        if not self.deviations:
            lines.append("FAIL: nothing was checked")
            return "\n".join(lines)
        lines.append(f"FAIL: {len(self.deviations)} deviation(s)")
        for i, d in enumerate(self.deviations, 1):
            lines.append(f"{i}. [{d.check}] {d.message}")
            where_parts = []
            if d.field_path:
                where_parts.append(f"field {d.field_path}")
            if d.offset is not None:
                where_parts.append(f"byte {d.offset}")
            if where_parts:
                lines.append("   at " + ", ".join(where_parts))
            lines.append(f"   {'minimal case' if d.shrunk else 'case'}: {d.case}")
            lines.append(f"   reproduce: {d.reproduce}")
        return "\n".join(lines)

    def to_html(self) -> str:
        """A self-contained HTML page of the report."""
        e = html.escape
        verdict = "PASS" if self.ok else "FAIL"
        colour = "#1a7f37" if self.ok else "#cf222e"
        rows = "".join(
            f"<tr><td>{e(k)}</td><td>{v}</td></tr>" for k, v in sorted(self.counts.items())
        )
        devs = []
        for d in self.deviations:
            where = " ".join(
                x
                for x in (
                    f"field <code>{e(d.field_path)}</code>" if d.field_path else "",
                    f"byte {d.offset}" if d.offset is not None else "",
                )
                if x
            )
            devs.append(
                "<tr>"
                f"<td>{e(d.check)}</td><td>{e(d.message)}</td><td>{where}</td>"
                f"<td><code>{e(d.case)}</code>{' (shrunk)' if d.shrunk else ''}</td>"
                f"<td><code>{e(d.reproduce)}</code></td>"
                f"<td><code>{e(d.evidence_hex or '')}</code></td>"
                "</tr>"
            )
        notes = "".join(f"<li>{e(n)}</li>" for n in self.notes)
        service = f", service {e(self.service)}" if self.service else ""
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>daqwire conform {e(self.spec)} {e(self.target)}: {verdict}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
code {{ word-break: break-all; }}
</style></head><body>
<h1>daqwire conform: <span style="color:{colour}">{verdict}</span></h1>
<p>spec <b>{e(self.spec)}</b> ({e(self.family)}{service})
against <b>{e(self.target)}</b>; {self.checked} cases checked in {self.duration_s:.1f} s;
seed {self.seed}; started {e(self.started)}</p>
<h2>Counters</h2><table><tr><th>outcome</th><th>count</th></tr>{rows}</table>
<h2>Deviations ({len(self.deviations)})</h2>
<table><tr><th>check</th><th>message</th><th>where</th><th>case</th><th>reproduce</th>
<th>evidence (hex)</th></tr>{"".join(devs)}</table>
<ul>{notes}</ul>
</body></html>
"""


def escape_case(data: bytes) -> str:
    """``data`` as text for a command line: printable ASCII as is, other bytes as ``\\xNN``."""
    out = []
    for b in data:
        if b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def unescape_case(text: str) -> bytes:
    """The bytes of a ``--replay`` case: ``\\xNN`` and ``\\\\`` escapes, other text as UTF-8."""
    out = bytearray()
    i = 0
    simple = {"\\": b"\\", "n": b"\n", "r": b"\r", "t": b"\t", "0": b"\x00"}
    while i < len(text):
        ch = text[i]
        if ch != "\\":
            out += ch.encode("utf-8")
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt in simple:
            out += simple[nxt]
            i += 2
        elif nxt == "x" and len(text) >= i + 4:
            try:
                out.append(int(text[i + 2 : i + 4], 16))
            except ValueError:
                raise ValueError(f"bad escape {text[i : i + 4]!r} at character {i}") from None
            i += 4
        else:
            raise ValueError(f"bad escape {text[i : i + 2]!r} at character {i}")
    return bytes(out)
