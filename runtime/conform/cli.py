"""``daqwire conform``: check a live peer against a spec, print a verdict and reproducers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["DESCRIPTION", "EPILOG", "add_parser", "run"]

DESCRIPTION = """\
Check a live peer against a spec. daqwire draws requests from the spec with hypothesis,
sends them, and checks every reply with the code generated from the spec; for streams it
reads every window, record or line and checks it. The first failure of each kind is
shrunk to a minimal case and printed as a `daqwire conform ... --replay CASE` (or
`--examples N`) command that shows it again. Exit status: 0 the peer conforms, 1 it
deviates, 2 the run could not be made (bad spec or target, peer unreachable).

SPEC is a shipped spec name (see `daqwire specs list`) or a path to a YAML spec (it is
generated into a temporary folder first). TARGET per family:
  pyexplabsys (text_commands)  HOST:PORT of a pull or push socket (UDP; the service is
                               detected, or --service pull|push); --service live listens
                               on HOST:PORT and checks the datagrams a LiveSocket sends
  aartfaac (binary)            HOST:PORT of an AARTFAAC image stream server (TCP)
  cdtp1, cdtp2 (msgpack)       tcp://HOST:PORT of a Constellation data sender (ZeroMQ)
  m2 (json_lines)              HOST:PORT of an M2 controller's command port: the
                               command flow (ack, then success or fail, or noack)
  mtmount_telemetry            HOST:PORT of a TMA telemetry server: every line
"""

EPILOG = """\
examples:
  daqwire conform pyexplabsys 127.0.0.1:9000
  daqwire conform pyexplabsys 127.0.0.1:8500 --service push --examples 500 --seed 1
  daqwire conform pyexplabsys 127.0.0.1:9000 --replay 'json_wn'
  daqwire conform aartfaac 127.0.0.1:6666 --examples 20 --report aartfaac.html
  daqwire conform cdtp2 tcp://127.0.0.1:23999 --examples 1000
  daqwire conform mtmount_telemetry 127.0.0.1:50035 --examples 200 --report tma.json
  daqwire conform specs/pyexplabsys.yaml 127.0.0.1:9000 --service pull

The same checks run from pytest: see the `daqwire_conform` fixture in docs/conformance.md.
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``conform`` subcommand."""
    parser = subparsers.add_parser(
        "conform",
        help="check a live peer against a spec (hypothesis-driven, shrinks failures)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spec", metavar="SPEC", help="shipped spec name or path to a YAML spec")
    parser.add_argument("target", metavar="TARGET", help="HOST:PORT or tcp://HOST:PORT")
    parser.add_argument(
        "--service",
        metavar="NAME",
        help="the spec's service to check (text_commands specs: pull, push, live; "
        "default: detected from the peer's answers)",
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=100,
        metavar="N",
        help="requests to draw, or stream items to read (default 100)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, metavar="S", help="hypothesis seed (default: random)"
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the report to FILE: .json or .html",
    )
    parser.add_argument(
        "--replay",
        default=None,
        metavar="CASE",
        help="send only this case (a request as printed by a failed run; \\xNN escapes)",
    )
    parser.add_argument(
        "--timeout-s",
        type=float,
        default=2.0,
        metavar="T",
        help="seconds to wait for a reply or the next item (default 2)",
    )
    parser.add_argument(
        "--shrink-s",
        type=float,
        default=30.0,
        metavar="T",
        help="seconds of shrinking against the peer after the first failure (default 30)",
    )
    parser.add_argument(
        "--no-hostile",
        action="store_true",
        help="skip the hostile datagrams (noise, near-miss requests) after the valid ones",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the check; print the summary; return 0, 1 or 2."""
    from daqwire.conform import UsageError, conform
    from daqwire.conform.report import unescape_case
    from daqwire.errors import SpecError

    if args.report is not None and args.report.suffix.lower() not in (".json", ".html", ".htm"):
        print("daqwire conform: --report must end in .json or .html", file=sys.stderr)
        return 2
    try:
        replay = None if args.replay is None else unescape_case(args.replay)
        report = conform(
            args.spec,
            args.target,
            service=args.service,
            examples=args.examples,
            seed=args.seed,
            timeout_s=args.timeout_s,
            shrink_budget_s=args.shrink_s,
            replay=replay,
            hostile=not args.no_hostile,
        )
    except (UsageError, SpecError, ValueError) as exc:
        print(f"daqwire conform: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"daqwire conform: cannot reach {args.target}: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    if args.report is not None:
        text = report.to_json() if args.report.suffix.lower() == ".json" else report.to_html()
        args.report.write_text(text, encoding="utf-8")
        print(f"report written to {args.report}")
    return 0 if report.ok else 1
