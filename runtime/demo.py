"""The main job, ``daqwire demo``: all four protocol families live on loopback at once.

A short preflight checks that the generated code matches the specs; then one component per
family (AARTFAAC, PyExpLabSys, Constellation, LSST) runs on free ports while a status view
shows rates, counters and errors, live on a terminal and as a summary table otherwise.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar, TextIO

__all__ = [
    "DESCRIPTION",
    "EPILOG",
    "ComponentStatus",
    "Counts",
    "Demo",
    "DemoComponent",
    "add_arguments",
    "check_generated",
    "default_components",
    "render_table",
    "run",
    "run_demo",
]

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Run all four protocol families of daqwire together on free loopback ports, for a few
seconds, and show what they do:

  aartfaac       an emulator serving 3 image streams; a reader merges them by DATE-OBS
  pyexplabsys    a pull socket with changing values, a push socket, and a client
                 querying the one and pushing to the other
  constellation  a RandomDataSender sending CDTP2 runs to a DataReceiver
  lsst           the mock TMA streaming MTMount telemetry to the telemetry client

First a one-line preflight checks that the installed generated code matches the specs.
On a terminal one status table (rates, counters, errors per component) is redrawn in
place; otherwise (a pipe, CI) a few start lines and a summary table are printed. Every
thread stops and every port is free when the demo ends. The exit code is 1 if any
component failed to start, raised, counted an unexpected error or made no progress.
Faults the demo injects on purpose (an unknown codename, a bad telemetry line) are shown
as expected and are not errors.
"""

EPILOG = """\
examples:
  daqwire demo                     # about 15 s, a live table on a terminal
  daqwire demo --seconds 5         # a shorter run
  daqwire demo --plain > demo.txt  # no live table: start lines and a summary table
  daqwire demo --no-check          # skip the generated-code preflight

exit codes: 0 every component ran cleanly; 1 a component failed, or the generated code
is stale; 130 interrupted with Ctrl-C (every thread and port is released either way).
"""

#: how often the live table is redrawn
REFRESH_S = 0.5
#: the families run at least this long, even when the preflight used up ``seconds``
MIN_LIVE_S = 2.0
#: the rate shown while running is over this last stretch of time
RATE_WINDOW_S = 2.0


@dataclass(frozen=True, slots=True)
class Counts:
    """What a component counted so far; a component's ``_counts()`` returns one.

    ``counters`` are shown in order; ``expected`` are faults injected on purpose (never
    errors); ``errors`` are unexpected faults in the counters; ``rate_count`` is the counter
    whose rate is shown; ``no_progress`` says what is missing while nothing useful happened.
    """

    counters: dict[str, int | str]
    rate_count: int
    errors: int = 0
    expected: dict[str, int] = field(default_factory=dict)
    no_progress: str | None = None


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    """A snapshot of one component for the status view: counters, rate, errors, state."""

    name: str
    state: str  # new, starting, running, stopping, stopped, failed
    counters: dict[str, int | str]
    rate: float
    rate_unit: str
    errors: int
    last_error: str | None
    expected: dict[str, int]
    no_progress: str | None
    endpoints: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """No error, not failed, and progress made: what the exit code asks of a component."""
        return self.state != "failed" and self.errors == 0 and self.no_progress is None


class DemoComponent:
    """One protocol family of the demo: ``start()``, ``status()``, idempotent ``stop()``.

    Subclasses implement ``_start`` (bind, then ``_spawn`` threads), ``_shutdown`` (make the
    threads end, close sockets) and ``_counts``. An exception in a thread is an error.
    """

    name: ClassVar[str] = "component"
    rate_unit: ClassVar[str] = "/s"
    description: ClassVar[str] = ""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "new"
        self._stop_requested = False
        self._stopping = threading.Event()  # threads watch this
        self._threads: list[threading.Thread] = []
        self._thread_errors = 0
        self._last_error: str | None = None
        self._started_at: float | None = None
        self._stopped_at: float | None = None
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self.endpoints: tuple[str, ...] = ()

    # -- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Bind and start the threads; on failure record the error, clean up and raise."""
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"{self.name}: start() called twice")
            self._state = "starting"
        self._started_at = time.monotonic()
        try:
            self._start()
        except BaseException as exc:
            self.report_error(exc)
            self.stop()
            raise
        with self._lock:
            if self._state == "starting":
                self._state = "running"

    def stop(self) -> None:
        """Make every thread end, join them and close every socket; safe to call again."""
        with self._lock:
            if self._stop_requested:
                return
            self._stop_requested = True
            if self._state != "failed":
                self._state = "stopping"
        self._stopping.set()
        try:
            self._shutdown()
        except Exception as exc:
            self.report_error(exc)
        for thread in list(self._threads):
            thread.join()
        with self._lock:
            self._stopped_at = time.monotonic()
            if self._state != "failed":
                self._state = "stopped"

    def report_error(self, exc: BaseException | str) -> None:
        """Count one error of this component and keep its text as the last error."""
        text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._thread_errors += 1
            self._last_error = text
            if self._state in ("new", "starting"):
                self._state = "failed"

    def fail(self, exc: BaseException | str) -> None:
        """Record an error that ends this component (it is then shown as failed)."""
        self.report_error(exc)
        with self._lock:
            self._state = "failed"

    def status(self) -> ComponentStatus:
        """A snapshot: counters, the recent rate (the average once stopped), errors."""
        counts = self._counts()
        now = time.monotonic()
        with self._lock:
            state = self._state
            errors = counts.errors + self._thread_errors
            last_error = self._last_error
            rate = self._rate(counts.rate_count, now)
        return ComponentStatus(
            name=self.name,
            state=state,
            counters=dict(counts.counters),
            rate=rate,
            rate_unit=self.rate_unit,
            errors=errors,
            last_error=last_error,
            expected=dict(counts.expected),
            no_progress=counts.no_progress,
            endpoints=self.endpoints,
        )

    def _rate(self, count: int, now: float) -> float:
        if self._started_at is None:
            return 0.0
        if self._stopped_at is not None:
            return count / max(self._stopped_at - self._started_at, 1e-9)
        samples = self._samples
        samples.append((now, count))
        while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW_S:
            samples.popleft()
        t_old, c_old = samples[0]
        if len(samples) < 2 or now - t_old < 0.2:
            t_old, c_old = self._started_at, 0
        return (count - c_old) / max(now - t_old, 1e-9)

    # -- for subclasses -------------------------------------------------------------------

    @property
    def stopping(self) -> threading.Event:
        """Set once ``stop()`` was called: the component's threads end when they see it."""
        return self._stopping

    def _spawn(self, target: Callable[[], None], role: str) -> threading.Thread:
        """Start an owned thread; an exception in it is counted as an error of this component."""

        def body() -> None:
            try:
                target()
            except Exception as exc:
                logger.exception("%s: %s thread failed", self.name, role)
                self.fail(exc)

        thread = threading.Thread(target=body, name=f"daqwire-demo-{self.name}-{role}")
        self._threads.append(thread)
        thread.start()
        return thread

    def _start(self) -> None:
        raise NotImplementedError

    def _shutdown(self) -> None:
        raise NotImplementedError

    def _counts(self) -> Counts:
        raise NotImplementedError


def default_components() -> list[DemoComponent]:
    """One component per protocol family, not started (imported here to keep --help fast)."""
    from daqwire.aartfaac.demo import AartfaacDemo
    from daqwire.constellation.demo import ConstellationDemo
    from daqwire.lsst.demo import LsstDemo
    from daqwire.pyexplabsys.demo import PyExpLabSysDemo

    return [AartfaacDemo(), PyExpLabSysDemo(), ConstellationDemo(), LsstDemo()]


# --- rendering ----------------------------------------------------------------------------------

_COLUMNS = (("component", 15), ("state", 10), ("rate", 18), ("errors", 7))
_COUNTERS_INDENT = 4


def _human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _format_counters(status: ComponentStatus) -> list[str]:
    parts = []
    for key, value in status.counters.items():
        shown = _human_bytes(value) if key == "bytes" and isinstance(value, int) else value
        parts.append(f"{key} {shown}")
    parts += [f"{key} {value} (expected)" for key, value in status.expected.items()]
    return parts


def _pack(parts: list[str], width: int) -> list[str]:
    """Join ``parts`` with ", " into lines of at most ``width`` (a part is never split)."""
    lines: list[str] = []
    current = ""
    for i, part in enumerate(parts):
        piece = part + ("," if i < len(parts) - 1 else "")
        if current and len(current) + 1 + len(piece) > width:
            lines.append(current)
            current = piece
        else:
            current = f"{current} {piece}" if current else piece
    return [*lines, current] if current else lines


def _format_rate(status: ComponentStatus) -> str:
    rate = status.rate
    shown = f"{rate:.0f}" if rate >= 100 else f"{rate:.1f}"
    return f"{shown} {status.rate_unit}"


def _bar(elapsed_s: float, total_s: float, width: int = 30) -> str:
    done = 0 if total_s <= 0 else min(width, round(width * elapsed_s / total_s))
    return f"[{'#' * done}{'-' * (width - done)}] {min(elapsed_s, total_s):4.1f} / {total_s:.1f} s"


def render_table(
    statuses: Sequence[ComponentStatus], *, width: int | None = None, title: str = ""
) -> list[str]:
    """The status table as lines: one row per component, its counters indented below it,
    wrapped at ``width`` (None: 100) so the table fits any terminal."""
    indent = " " * _COUNTERS_INDENT
    wrap_at = max(width or 100, 40) - _COUNTERS_INDENT
    lines = [title] if title else []
    lines.append("".join(f"{name:<{w}}" for name, w in _COLUMNS).rstrip())
    for st in statuses:
        cells = (st.name, st.state, _format_rate(st), str(st.errors))
        row = "".join(f"{cell:<{w - 1}} " for cell, (_, w) in zip(cells, _COLUMNS, strict=True))
        lines.append(row.rstrip())
        lines += [indent + part for part in _pack(_format_counters(st), wrap_at)]
        if st.last_error:
            lines.append(f"{indent}last error: {st.last_error}")
    return lines


def _terminal_width(out: TextIO) -> int:
    try:
        columns = os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError, AttributeError):
        columns = 0
    return columns if columns >= 40 else 100


class _LiveView:
    """Redraws the table in place with ANSI escapes (cursor up, clear); no curses needed."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lines = 0

    @property
    def width(self) -> int:
        """The terminal's width now (100 when it cannot be told)."""
        return _terminal_width(self._out)

    def draw(self, lines: list[str]) -> None:
        width = self.width
        parts = []
        if self._lines:
            parts.append(f"\x1b[{self._lines}F")  # to the start of the table's first line
        else:
            parts.append("\x1b[?25l")  # hide the cursor while redrawing
        for line in lines:
            parts.append(line[: width - 1] + "\x1b[K\n")
        parts.append("\x1b[J")  # clear what a longer previous table left below
        self._out.write("".join(parts))
        self._out.flush()
        self._lines = len(lines)

    def forget(self) -> None:
        """Draw the next table below whatever is on screen now."""
        self._lines = 0

    def close(self) -> None:
        self._out.write("\x1b[?25h")  # show the cursor again
        self._out.flush()


class _LogCapture(logging.Handler):
    """Keeps daqwire's warnings off the screen while the demo draws (only when logging is
    not configured); they are counted and the last one is shown."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.last = f"{record.levelname}: {record.getMessage()}"

    def line(self) -> str | None:
        if not self.count:
            return None
        text = (self.last or "").splitlines()[0] if self.last else ""
        if len(text) > 120:
            text = text[:117] + "..."
        return f"log: {self.count} warning(s) from daqwire, injected faults included; last: {text}"


@contextmanager
def _captured_logs() -> Iterator[_LogCapture | None]:
    root = logging.getLogger()
    if root.handlers:  # the user configured logging: leave it alone
        yield None
        return
    library = logging.getLogger("daqwire")
    handler = _LogCapture()
    propagate = library.propagate
    library.addHandler(handler)
    library.propagate = False
    try:
        yield handler
    finally:
        library.removeHandler(handler)
        library.propagate = propagate


# --- the run ------------------------------------------------------------------------------------


def check_generated(out: TextIO) -> bool:
    """Preflight: render every spec in memory and compare with daqwire.generated (one line)."""
    from daqwire.codegen.render import check, default_out_dir, default_specs_dir, render_all

    started = time.perf_counter()
    try:
        files = render_all(default_specs_dir())
        diff = check(files, default_out_dir())
    except Exception as exc:  # a broken spec or template: say so in one line
        logger.debug("preflight failed", exc_info=True)
        print(f"preflight: could not render the specs: {type(exc).__name__}: {exc}", file=out)
        return False
    elapsed = time.perf_counter() - started
    if diff:
        print(
            f"preflight: generated code is STALE, it differs from what the specs produce "
            f"({len(files)} modules checked); see `daqwire generate --check`, fix with "
            "`daqwire generate`",
            file=out,
        )
        return False
    print(
        f"preflight: generated code matches the specs ({len(files)} modules rendered and "
        f"compared in {elapsed:.1f} s)",
        file=out,
    )
    return True


class Demo:
    """Starts components, shows their status for a while, stops them; ``statuses`` keeps the
    final snapshots after :meth:`run`."""

    def __init__(self, components: Sequence[DemoComponent]) -> None:
        self.components = list(components)
        self.statuses: list[ComponentStatus] = []
        self.interrupted = False
        #: seconds the components ran before they were stopped (less after Ctrl-C)
        self.ran_s = 0.0

    def run(self, *, run_s: float, out: TextIO, live: bool, refresh_s: float = REFRESH_S) -> int:
        """Run every component for ``run_s`` seconds; return 0 when all were ok, else 1."""
        names = ", ".join(c.name for c in self.components)
        print(f"running {names} on loopback for {run_s:.1f} s", file=out)
        view = _LiveView(out) if live else None
        try:
            with _captured_logs() as logs:
                try:
                    self._start_all(out)
                    out.flush()
                    self._watch(run_s=run_s, out=out, view=view, refresh_s=refresh_s, logs=logs)
                finally:
                    self._stop_all()
                self.statuses = [c.status() for c in self.components]
                log_line = logs.line() if logs is not None else None
            width = view.width - 1 if view is not None else None
            lines = self._table(self.ran_s, run_s, final=True, width=width)
            lines += [log_line] if log_line else []
            if view is not None:
                view.draw(lines)
            else:
                print("", file=out)
                for line in lines:
                    print(line, file=out)
        finally:
            if view is not None:
                view.close()
        return self._verdict(out)

    def _start_all(self, out: TextIO) -> None:
        for component in self.components:
            try:
                component.start()
            except Exception as exc:
                logger.debug("%s failed to start", component.name, exc_info=True)
                print(
                    f"  {component.name:<14}FAILED to start: {type(exc).__name__}: {exc}", file=out
                )
                continue
            where = ", ".join(component.endpoints) or "-"
            print(f"  {component.name:<14}{component.description} ({where})", file=out)

    def _watch(
        self,
        *,
        run_s: float,
        out: TextIO,
        view: _LiveView | None,
        refresh_s: float,
        logs: _LogCapture | None,
    ) -> None:
        started = time.monotonic()
        deadline = started + run_s
        try:
            while True:
                now = time.monotonic()
                if view is not None:
                    lines = self._table(now - started, run_s, width=view.width - 1)
                    log_line = logs.line() if logs is not None else None
                    view.draw(lines + ([log_line] if log_line else []))
                if now >= deadline:
                    break
                time.sleep(min(refresh_s, deadline - now))
        except KeyboardInterrupt:
            self.interrupted = True
        finally:
            self.ran_s = time.monotonic() - started
        if self.interrupted:
            print("\ninterrupted: stopping", file=out)
            if view is not None:
                view.forget()

    def _stop_all(self) -> None:
        for component in self.components:
            try:
                component.stop()
            except Exception as exc:  # stop() records its own errors; be safe anyway
                component.report_error(exc)

    def _table(
        self, elapsed_s: float, total_s: float, *, final: bool = False, width: int | None = None
    ) -> list[str]:
        statuses = self.statuses if final else [c.status() for c in self.components]
        title = f"daqwire demo  {_bar(elapsed_s, total_s)}"
        if final:
            title = f"daqwire demo summary (rates are averages over the run; {elapsed_s:.1f} s)"
        return render_table(statuses, title=title, width=width)

    def _verdict(self, out: TextIO) -> int:
        bad = [st for st in self.statuses if not st.ok]
        for st in bad:
            if st.state == "failed":
                why = f"failed: {st.last_error}"
            elif st.errors:
                why = f"{st.errors} error(s)" + (
                    f", last: {st.last_error}" if st.last_error else ""
                )
            else:
                why = f"no progress: {st.no_progress}"
            print(f"ERROR {st.name}: {why}", file=out)
        if self.interrupted:
            print("demo interrupted", file=out)
            return 130
        if bad:
            print(f"demo FAILED: {len(bad)} of {len(self.statuses)} components", file=out)
            return 1
        print(f"demo ok: {len(self.statuses)} components ran without errors", file=out)
        return 0


def run_demo(
    *,
    seconds: float = 15.0,
    plain: bool | None = None,
    out: TextIO | None = None,
    preflight: bool = True,
    components: Sequence[DemoComponent] | None = None,
    refresh_s: float = REFRESH_S,
) -> int:
    """Run the demo for about ``seconds`` in all (preflight included); return the exit code.

    ``plain`` None picks the live table when ``out`` is a terminal, True forces the plain
    summary, False the live table. ``components`` replaces the four families (for tests).
    """
    out = out or sys.stdout
    live = (not plain) and (plain is False or out.isatty())
    started = time.monotonic()
    print("daqwire demo", file=out)
    if preflight and not check_generated(out):
        return 1
    parts = default_components() if components is None else list(components)
    run_s = max(MIN_LIVE_S, seconds - (time.monotonic() - started))
    return Demo(parts).run(run_s=run_s, out=out, live=live, refresh_s=refresh_s)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"seconds must be > 0 and finite, not {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``daqwire demo``."""
    parser.add_argument(
        "--seconds",
        type=_positive_seconds,
        default=15.0,
        metavar="S",
        help="total run time in seconds, preflight included (default 15)",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="no live table even on a terminal: start lines and a summary table",
    )
    parser.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="skip the preflight that compares the generated code with the specs",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``daqwire demo`` with parsed arguments; return the exit code."""
    return run_demo(
        seconds=args.seconds,
        plain=True if args.plain else None,
        preflight=getattr(args, "check", True),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m daqwire.demo``: the demo without the ``daqwire`` command."""
    parser = argparse.ArgumentParser(
        prog="python -m daqwire.demo",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
