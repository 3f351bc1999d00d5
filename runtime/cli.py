"""The ``daqwire`` command: the demo, the protocol tools, specs, generation and conformance."""

from __future__ import annotations

import argparse
import sys

from daqwire import __version__

__all__ = ["main"]

DESCRIPTION = """\
daqwire speaks the wire protocols of laboratory instruments, telescopes and
data-acquisition systems: PyExpLabSys data sockets, AARTFAAC image streams, Constellation
data (CDTP) and the LSST TCP/JSON links. Every wire format is a YAML spec: `daqwire
generate` turns the specs into typed Python codecs, the runtime puts them on real sockets,
and `daqwire conform` checks a live peer against a spec.
"""

EPILOG = """\
main job:
  demo         all four protocol families live on free loopback ports, with a status
               view; ends by itself (about 15 s) and exits non-zero on any error

protocols:
  aartfaac     AARTFAAC all-sky image streams: emulate, read (and merge), snapshot to PNG
  pyexplabsys  PyExpLabSys UDP data sockets: serve-pull, serve-push, query, push
  cdtp         Constellation data (CDTP1/CDTP2): send a test run, receive runs to files
  lsst         LSST TCP/JSON: mock TMA and M2, MTMount telemetry client, M2 commands

specs and code:
  specs        list the specs; show what one declares (messages, fields, constants)
  generate     regenerate daqwire.generated from the specs (--check: fail on drift)
  conform      check a live peer (your server, stream or sender) against a spec

examples:
  daqwire demo
  daqwire specs list
  daqwire specs show pyexplabsys
  daqwire pyexplabsys serve-pull --codenames temperature,pressure --simulate
  daqwire pyexplabsys query localhost temperature#json
  daqwire aartfaac emulate --ports 6666-6668 --size 256x256 --rate-hz 1
  daqwire conform pyexplabsys 127.0.0.1:9000
  daqwire generate --check

Run `daqwire COMMAND --help` for the options and more examples of a command.
"""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written; subcommand names count when aligning help.

    argparse (3.11) leaves the subcommand names out when it places the help column, so
    ``serve-pull`` got its help on a line of its own.
    """

    def add_argument(self, action: argparse.Action) -> None:
        if isinstance(action, argparse._SubParsersAction) and action.help is not argparse.SUPPRESS:
            indent = self._current_indent + self._indent_increment
            for choice in action._get_subactions():
                length = len(self._format_action_invocation(choice)) + indent
                self._action_max_length = max(self._action_max_length, length)
        super().add_argument(action)


def _use_formatter(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` and every parser below it :class:`HelpFormatter`."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _use_formatter(sub)


def _generate(args: argparse.Namespace) -> int:
    from daqwire.codegen.cli import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``daqwire`` command."""
    parser = argparse.ArgumentParser(
        prog="daqwire",
        usage="daqwire [-h] [--version] COMMAND ...",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"daqwire {__version__}")
    # the epilog lists the commands by group, so argparse's flat list is left out
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", help=argparse.SUPPRESS, prog="daqwire"
    )

    _add_demo_parser(sub)

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

    from daqwire.specs_cli import add_parser as add_specs_parser

    add_specs_parser(sub)

    from daqwire.conform.cli import add_parser as add_conform_parser

    add_conform_parser(sub)
    _use_formatter(parser)
    return parser


def _add_demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``daqwire demo``, from daqwire.demo's DESCRIPTION, EPILOG, add_arguments and run."""
    from daqwire import demo as demo_module

    demo = sub.add_parser(
        "demo",
        help="all four protocol families live on loopback ports, with a status view",
        description=demo_module.DESCRIPTION,
        epilog=demo_module.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo_module.add_arguments(demo)
    demo.set_defaults(func=demo_module.run)


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
