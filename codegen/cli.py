"""Command line of the generator (``daqwire generate`` and ``python -m daqwire.codegen``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from daqwire.codegen.render import check, default_out_dir, default_specs_dir, render_all, write
from daqwire.codegen.version import GENERATOR_VERSION
from daqwire.errors import SpecError

__all__ = ["add_arguments", "main", "run"]

DESCRIPTION = """\
Regenerate daqwire's protocol modules from the YAML specs.

Each spec in the specs folder (specs/<protocol>.yaml) becomes modules in the output folder:
<protocol>.py, the typed messages with their encoders and decoders (plus incremental
stream decoders for binary specs; request builders, dispatchers and client stubs for
text_commands specs; line framing for json_lines specs), <protocol>_strategies.py, the
hypothesis strategies, and for binary specs <protocol>_construct.py, the same layouts in
construct (a test oracle). Every file is stamped with the generator version and the
sha256 of its spec. `daqwire specs show NAME` shows what a spec declares.
"""

EPILOG = """\
examples:
  daqwire generate                      # regenerate everything after editing a spec
  daqwire generate --check              # exit 1 and print a diff if generated/ is stale (CI)
  daqwire generate --spec aartfaac --out build/gen      # render one spec elsewhere
  daqwire generate --specs-dir myspecs --out mypkg/generated
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The generator's options (shared by both entry points)."""
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a unified diff if the output folder "
        "differs from what the specs produce",
    )
    parser.add_argument(
        "--spec",
        action="append",
        default=[],
        metavar="NAME",
        help="only this protocol (the spec file name without .yaml); repeatable",
    )
    parser.add_argument(
        "--specs-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of *.yaml specs (default: the specs shipped with daqwire)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output folder (default: the daqwire.generated package)",
    )


def run(args: argparse.Namespace) -> int:
    """Generate or check; return the process exit code."""
    specs_dir = args.specs_dir or default_specs_dir()
    out_dir = args.out or default_out_dir()
    started = time.perf_counter()
    try:
        files = render_all(specs_dir, args.spec)
    except SpecError as exc:
        print(f"daqwire generate: {exc}", file=sys.stderr)
        return 2
    if not files:
        print(f"daqwire generate: no specs in {specs_dir}", file=sys.stderr)
        return 2
    if args.check:
        diff = check(files, out_dir, orphans=not args.spec)
        if diff:
            sys.stdout.write(diff)
            print(
                "daqwire generate --check: generated code is stale; run `daqwire generate`",
                file=sys.stderr,
            )
            return 1
        print(f"generated code is in step with {len(files)} files from the specs")
        return 0
    written = write(files, out_dir)
    elapsed = time.perf_counter() - started
    for path in written:
        print(f"wrote {path.name}")
    print(f"{len(files)} files from the specs, {len(written)} changed, in {elapsed:.2f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m daqwire.codegen``."""
    parser = argparse.ArgumentParser(
        prog="python -m daqwire.codegen",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=GENERATOR_VERSION)
    add_arguments(parser)
    return run(parser.parse_args(argv))
