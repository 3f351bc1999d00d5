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
  demo       check the generated code against the specs, round-trip a synthetic sky
             image as an AARTFAAC window, run a live 3-stream emulator, read and merge
             its images for a few seconds, then serve a PyExpLabSys pull socket with
             changing values and query it with daqwire's client
  generate   regenerate daqwire.generated from the specs (--check: fail on drift)
  aartfaac   AARTFAAC image streams: emulate, read (and merge), snapshot to PNG
  pyexplabsys
             PyExpLabSys UDP data sockets: serve-pull, serve-push, query, push
  cdtp       Constellation data transmission (CDTP1/CDTP2): send a test run, receive
             runs and write them to HDF5 or .npy files

Run `daqwire COMMAND --help` for the options of a command.
"""


def _demo(args: argparse.Namespace) -> int:
    from daqwire.demo import run_demo

    return run_demo(size=(args.width, args.height), seed=args.seed, live_s=args.live_s)


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
        help="check generated code, round-trip an AARTFAAC window, merge live streams",
        description="Regenerate every spec into a temporary folder and compare it with the "
        "installed daqwire.generated; encode a synthetic sky image as an AARTFAAC "
        "window, decode it and print the header, the FITS keywords and image statistics; "
        "then start an emulator with 3 streams on free loopback ports, read and merge them "
        "for a few seconds and print the merged groups and the statistics; finally serve a "
        "PyExpLabSys pull socket whose values change and query it with daqwire's client.",
    )
    demo.add_argument("--width", type=int, default=256, help="NAXIS1, pixels (default 256)")
    demo.add_argument("--height", type=int, default=192, help="NAXIS2, pixels (default 192)")
    demo.add_argument("--seed", type=int, default=2026, help="seed of the synthetic sky")
    demo.add_argument(
        "--live-s",
        type=float,
        default=4.0,
        help="seconds of the live 3-stream emulator/merge part (0 skips it; default 4)",
    )
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

    from daqwire.aartfaac.cli import DESCRIPTION as AF_DESCRIPTION
    from daqwire.aartfaac.cli import EPILOG as AF_EPILOG
    from daqwire.aartfaac.cli import add_arguments as add_aartfaac_arguments

    aartfaac = sub.add_parser(
        "aartfaac",
        help="AARTFAAC image streams: emulate, read (and merge), snapshot",
        description=AF_DESCRIPTION,
        epilog=AF_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_aartfaac_arguments(aartfaac)

    from daqwire.pyexplabsys.cli import DESCRIPTION as PX_DESCRIPTION
    from daqwire.pyexplabsys.cli import EPILOG as PX_EPILOG
    from daqwire.pyexplabsys.cli import add_arguments as add_pyexplabsys_arguments

    pyexplabsys = sub.add_parser(
        "pyexplabsys",
        help="PyExpLabSys data sockets: serve-pull, serve-push, query, push",
        description=PX_DESCRIPTION,
        epilog=PX_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_pyexplabsys_arguments(pyexplabsys)

    from daqwire.constellation.cli import add_parser as add_cdtp_parser

    add_cdtp_parser(sub)

    from daqwire.lsst.cli import add_parser as add_lsst_parser

    add_lsst_parser(sub)
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
