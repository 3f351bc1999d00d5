"""The ``daqwire`` command: regenerate code from specs, and run the demo."""

from __future__ import annotations

import argparse
import sys

from daqwire import __version__

__all__ = ["main"]

DESCRIPTION = """\
daqwire speaks the wire protocols of laboratory instruments, telescopes and
data-acquisition systems. Every wire format is a YAML spec; `daqwire generate` turns the
specs into typed Python codecs, and the runtime puts those on real sockets.
"""

EPILOG = """\
commands:
  demo       check the generated code against the specs, then encode a synthetic sky
             image as an AARTFAAC window, decode it and print what came back
  generate   regenerate daqwire.generated from the specs (--check: fail on drift)

Run `daqwire COMMAND --help` for the options of a command.
"""


def _demo(args: argparse.Namespace) -> int:
    from daqwire.demo import run_demo

    return run_demo(size=(args.width, args.height), seed=args.seed)


def _generate(args: argparse.Namespace) -> int:
    from daqwire.codegen.cli import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``daqwire`` command."""
    parser = argparse.ArgumentParser(
        prog="daqwire",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"daqwire {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="check generated code, then round-trip a synthetic AARTFAAC window",
        description="Regenerate every spec into a temporary folder and compare it with the "
        "installed daqwire.generated; then encode a synthetic sky image as an AARTFAAC "
        "window, decode it and print the header, the FITS keywords and image statistics.",
    )
    demo.add_argument("--width", type=int, default=256, help="NAXIS1, pixels (default 256)")
    demo.add_argument("--height", type=int, default=192, help="NAXIS2, pixels (default 192)")
    demo.add_argument("--seed", type=int, default=2026, help="seed of the synthetic sky")
    demo.set_defaults(func=_demo)

    from daqwire.codegen.cli import DESCRIPTION as GEN_DESCRIPTION
    from daqwire.codegen.cli import EPILOG as GEN_EPILOG
    from daqwire.codegen.cli import add_arguments

    gen = sub.add_parser(
        "generate",
        help="regenerate code from the specs (--check fails on drift)",
        description=GEN_DESCRIPTION,
        epilog=GEN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(gen)
    gen.set_defaults(func=_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``daqwire`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
