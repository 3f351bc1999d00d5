"""Every ``daqwire`` command's help: it renders, explains itself and shows real examples.

The parser tree is walked from :func:`daqwire.cli.build_parser`, so a new subcommand is
checked without touching this file. Every example line of every epilog is parsed by the
real parser: the examples are commands that exist, with options that exist.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daqwire.cli import EPILOG, build_parser

#: shell syntax that ends the daqwire part of an example line (a pipe, a background job)
SHELL_ENDS = {"|", "&", "&&", "||", ";", ">", ">>", "2>"}


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of the tree with the command words that lead to it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*path, name))


PARSERS = list(walk(build_parser()))
IDS = [" ".join(path) or "daqwire" for path, _ in PARSERS]


def example_lines(epilog: str) -> list[str]:
    """The lines of an epilog that start with ``daqwire `` (backslash continuations joined)."""
    joined = re.sub(r"\s*\\\n\s*", " ", epilog)
    return [line.strip() for line in joined.splitlines() if line.strip().startswith("daqwire ")]


def example_argv(line: str) -> list[str]:
    """The arguments of an example line: no trailing ``# comment``, nothing after a pipe."""
    words = shlex.split(re.sub(r"\s#.*$", "", line))
    for i, word in enumerate(words):
        if word in SHELL_ENDS:
            words = words[:i]
            break
    assert words[0] == "daqwire"
    return words[1:]


EXAMPLES = [(path, line) for path, parser in PARSERS for line in example_lines(parser.epilog or "")]


def test_the_tree_has_every_command() -> None:
    commands = {path for path, _ in PARSERS}
    for path in [
        ("demo",),
        ("generate",),
        ("conform",),
        ("aartfaac", "emulate"),
        ("aartfaac", "read"),
        ("aartfaac", "snapshot"),
        ("pyexplabsys", "serve-pull"),
        ("pyexplabsys", "serve-push"),
        ("pyexplabsys", "query"),
        ("pyexplabsys", "push"),
        ("cdtp", "send"),
        ("cdtp", "receive"),
        ("lsst", "mock-tma"),
        ("lsst", "mock-m2"),
        ("lsst", "telemetry"),
        ("lsst", "m2"),
        ("specs", "list"),
        ("specs", "show"),
    ]:
        assert path in commands


@pytest.mark.parametrize(("path", "parser"), PARSERS, ids=IDS)
def test_help_renders_with_description_and_examples(
    path: tuple[str, ...], parser: argparse.ArgumentParser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    text = parser.format_help()
    assert text.startswith("usage: daqwire" + "".join(f" {word}" for word in path))
    assert parser.description and parser.description.strip()
    assert parser.epilog and re.search(r"^examples:$", parser.epilog, re.M), "no examples:"
    assert example_lines(parser.epilog), "the examples section has no daqwire command"
    assert isinstance(parser.formatter_class, type)
    assert issubclass(parser.formatter_class, argparse.RawDescriptionHelpFormatter)
    long = [line for line in text.splitlines() if len(line) > 100]
    assert not long, f"help lines wider than 100 columns: {long}"


@pytest.mark.parametrize(("path", "parser"), PARSERS, ids=IDS)
def test_subcommands_have_a_one_line_help(
    path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._get_subactions():
                assert choice.help, f"{' '.join(path)} {choice.dest} has no help line"


@pytest.mark.parametrize(
    ("path", "line"), EXAMPLES, ids=[f"{' '.join(p) or 'daqwire'}: {line}" for p, line in EXAMPLES]
)
def test_every_example_is_a_real_command(path: tuple[str, ...], line: str) -> None:
    argv = example_argv(line)
    assert tuple(argv[: len(path)]) == path, "an example of another command"
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed why on stderr
        pytest.fail(f"{line!r} does not parse (exit {exc.code})")
    assert callable(args.func)


def test_examples_were_found() -> None:
    assert len(EXAMPLES) >= 60
    assert any(line.startswith("daqwire specs show") for _, line in EXAMPLES)


def test_top_level_epilog_lists_every_command_by_group() -> None:
    top = PARSERS[0][1]
    names = [path[0] for path, _ in PARSERS if len(path) == 1]
    assert sorted(names) == sorted(
        ["demo", "generate", "aartfaac", "pyexplabsys", "cdtp", "lsst", "specs", "conform"]
    )
    for name in names:
        assert re.search(rf"^  {re.escape(name)}\s{{2,}}\S", EPILOG, re.M), name
    for group in ("main job:", "protocols:", "specs and code:", "examples:"):
        assert re.search(rf"^{group}$", EPILOG, re.M)
    assert 5 <= len(example_lines(top.epilog or "")) <= 8


def test_example_lines_helpers() -> None:
    text = "examples:\n  daqwire a b \\\n      --c 'd e'\n  daqwire x   # a comment\n"
    assert example_lines(text) == ["daqwire a b --c 'd e'", "daqwire x   # a comment"]
    assert example_argv("daqwire a b --c 'd e'") == ["a", "b", "--c", "d e"]
    assert example_argv("daqwire x   # a comment") == ["x"]
    assert example_argv("daqwire q host t#json") == ["q", "host", "t#json"]
    assert example_argv("daqwire demo --plain | tee demo.txt") == ["demo", "--plain"]


def _daqwire() -> list[str]:
    script = Path(sys.executable).with_name("daqwire")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "daqwire.cli"]


def test_daqwire_help_as_a_process() -> None:
    proc = subprocess.run(
        [*_daqwire(), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "100"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: daqwire [-h] [--version] COMMAND ...")
    assert "examples:\n  daqwire demo\n" in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 100
