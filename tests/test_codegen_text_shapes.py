"""text_commands parts the generator once got wrong: a JSON point without a stale marker,
a point grammar without ``stale``, and a request whose JSON object part lists ``keys``.

Each spec is generated into a throw-away package that must pass ruff and ``mypy --strict``,
and its client, dispatcher and strategies must work together.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from daqwire.codegen import load_spec, render_spec
from daqwire.errors import FieldValueError
from tests.generated_pkg import REPO, import_generated, stage_as_generated

GADGET = """\
daqwire: 1
protocol: gadget
title: Shapes once generated wrong
doc: A toy positioner. Its points have no stale marker, and a move names its keys.
family: text_commands
encoding: utf-8
grammars:
  xy:
    kind: point
    doc: "A point as 'x,y'."
    separators: [","]
messages:
  where:
    direction: request
    doc: The current position as JSON.
    form: where
    reply: here
  here:
    direction: reply
    form: "{point}"
    parts:
      point: {type: json, shape: point}
  last:
    direction: request
    doc: The current position as 'x,y'.
    form: last
    reply: last_point
  last_point:
    direction: reply
    form: "{point}"
    parts:
      point: {type: grammar, grammar: xy}
  move:
    direction: request
    doc: Move to a position.
    form: "move:{target}"
    idempotent: false
    parts:
      target: {type: json, shape: object, keys: [x, y]}
    reply: moved
  moved:
    direction: reply
    form: "OK#{position}"
    parts:
      position: {type: json, shape: object, keys: [x, y]}
  unknown_command: {direction: reply, form: "ERR#unknown"}
  error:
    direction: reply
    form: "ERR#{message}"
    parts:
      message: {type: str}
services:
  gadget:
    doc: The positioner's port.
    requests: [where, last, move]
    errors: {unknown: unknown_command, malformed: error, refused: error, failed: error}
"""

#: the same without any point grammar: only the JSON point needs the point support code
NO_GRAMMAR = (
    GADGET.replace("protocol: gadget", "protocol: gizmo")
    .replace(
        "grammars:\n  xy:\n    kind: point\n    doc: \"A point as 'x,y'.\"\n"
        '    separators: [","]\n',
        "",
    )
    .replace(
        "  last:\n    direction: request\n    doc: The current position as 'x,y'.\n"
        "    form: last\n    reply: last_point\n  last_point:\n    direction: reply\n"
        '    form: "{point}"\n    parts:\n      point: {type: grammar, grammar: xy}\n',
        "",
    )
    .replace("requests: [where, last, move]", "requests: [where, move]")
    .replace("  gadget:\n", "  gizmo:\n")
)
PKG = "textshapes_pkg"
PROTOCOLS = {"gadget": GADGET, "gizmo": NO_GRAMMAR}


@pytest.fixture(scope="module")
def gen_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("textshapes")
    out = root / PKG
    out.mkdir()
    (out / "__init__.py").write_text('"""Generated for a test."""\n')
    for protocol, text in PROTOCOLS.items():
        path = root / f"{protocol}.yaml"
        path.write_text(text)
        for f in render_spec(load_spec(path), f"specs/{protocol}.yaml"):
            (out / f.name).write_text(f.text, "utf-8")
    return root


@pytest.fixture(scope="module")
def gadget(gen_root: Path) -> ModuleType:
    (module,) = import_generated(gen_root, PKG, "gadget")
    return module


@pytest.fixture(scope="module")
def gizmo(gen_root: Path) -> ModuleType:
    (module,) = import_generated(gen_root, PKG, "gizmo")
    return module


def test_no_grammar_variant_really_has_no_grammar() -> None:
    assert "grammars:" not in NO_GRAMMAR and "last" not in NO_GRAMMAR
    assert "shape: point" in NO_GRAMMAR


def test_output_passes_ruff_and_mypy_strict(gen_root: Path, tmp_path: Path) -> None:
    out = gen_root / PKG
    config = ["--config", str(REPO / "pyproject.toml")]
    ruff = [sys.executable, "-m", "ruff"]
    check = subprocess.run(
        [*ruff, "check", *config, "--extend-ignore", "E501", str(out)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # mypy sees the modules as daqwire.generated modules (where the strategies import them)
    modules = stage_as_generated(stage := tmp_path / "stage", out.glob("g*.py"))
    assert len(modules) == 4
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", str(REPO / "pyproject.toml")]
        + [arg for m in modules for arg in ("-m", m)],
        capture_output=True,
        text=True,
        cwd=stage,
    )
    assert mypy.returncode == 0, mypy.stdout


# -- a JSON point without a stale marker ------------------------------------------------------


@pytest.mark.parametrize("protocol", ["gadget", "gizmo"])
def test_a_json_point_without_stale_is_x_y_only(
    protocol: str, gadget: ModuleType, gizmo: ModuleType
) -> None:
    codec = {"gadget": gadget, "gizmo": gizmo}[protocol]
    assert not hasattr(codec, "_STALE")
    assert codec.encode_here((1.5, "a")) == b'[1.5, "a"]'
    assert codec.decode_here(b"[2, null]") == (2, None)
    for bad, shown in [(b'"OLD_DATA"', "'OLD_DATA'"), (b"[1, 2, 3]", "[1, 2, 3]")]:
        with pytest.raises(FieldValueError) as info:
            codec.decode_here(bad)
        assert info.value.message == f"a point is [x, y], not {shown}"
        assert info.value.field_path == "here.point"


def test_a_point_grammar_without_stale(gadget: ModuleType) -> None:
    assert gadget.format_xy((1, 2.5)) == "1,2.5"
    assert gadget.parse_xy("1,2.5") == (1, 2.5)
    assert gadget.encode_last_point((3, "b")) == b"3,b"
    assert gadget.decode_last_point(b"3,b") == (3, "b")


# -- a request part with keys ------------------------------------------------------------------


class Positioner:
    """A handler: remembers the last target and answers with it."""

    def __init__(self) -> None:
        self.at: Any = None

    def on_where(self) -> Any:
        return (0, 0) if self.at is None else (self.at.x, self.at.y)

    def on_last(self) -> Any:
        return self.on_where()

    def on_move(self, target: Any) -> Any:
        self.at = target
        return target


def test_a_keyed_request_goes_from_client_to_handler_and_back(gadget: ModuleType) -> None:
    handler = Positioner()
    dispatcher = gadget.GadgetDispatcher(handler)

    class Client(gadget.GadgetClientStub):  # type: ignore[misc,name-defined]
        def _call(self, request: Any) -> Any:
            return request.parse(dispatcher.handle(request.data))

    request = gadget.GadgetRequests.move(gadget.Target(x=1, y=2))
    assert request.data == b'move:{"x": 1, "y": 2}'
    assert request.idempotent is False
    moved = Client().move(gadget.Target(x=3, y=-4))
    assert moved == gadget.Position(x=3, y=-4)
    assert handler.at == gadget.Target(x=3, y=-4)
    assert Client().where() == (3, -4)
    assert Client().last() == (3, -4)
    # keys that are extra pass; a missing key is a malformed request, answered as such
    assert dispatcher.handle(b'move:{"y": 5, "x": 6, "z": 7}') == b'OK#{"x": 6, "y": 5}'
    assert dispatcher.handle(b'move:{"x": 6}') == b"ERR#keys ['y'] are missing"
    assert gadget.decode_move(b'move:{"x": 1, "y": 2}') == gadget.Target(x=1, y=2)
    assert gadget.identify_gadget_request(b'move:{"x": 1}') == "move"
    assert gadget.match_gadget_reply("move", b'OK#{"x": 1, "y": 2}') == "moved"


@pytest.fixture(scope="module")
def gadget_strategies(gen_root: Path, gadget: ModuleType) -> Iterator[ModuleType]:
    """The strategies module, imported with its codec registered where it looks for it."""
    import daqwire.generated

    sys.modules["daqwire.generated.gadget"] = gadget
    daqwire.generated.gadget = gadget  # type: ignore[attr-defined]
    sys.path.insert(0, str(gen_root))
    try:
        yield __import__(f"{PKG}.gadget_strategies", fromlist=["x"])
    finally:
        sys.path.remove(str(gen_root))
        del sys.modules["daqwire.generated.gadget"], daqwire.generated.gadget  # type: ignore[attr-defined]


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_generated_calls_are_answered_with_a_reply_they_allow(
    data: st.DataObject, gadget_strategies: ModuleType, gadget: ModuleType
) -> None:
    name, datagram = data.draw(gadget_strategies.gadget_calls())
    assert gadget.identify_gadget_request(datagram) == name
    reply = gadget.GadgetDispatcher(Positioner()).handle(datagram)
    assert gadget.match_gadget_reply(name, reply) not in gadget.GADGET_ERROR_REPLIES
    request = data.draw(gadget_strategies.gadget_requests())
    assert gadget.identify_gadget_request(request) in {"where", "last", "move"}


# -- spec text in docstrings and comments ----------------------------------------------------

#: doc text that once broke generated modules: triple quotes, backslashes, a final quote and
#: a line break in a constant's doc (pasted onto a ``#:`` line)
HOSTILE_DOC = 'Say """hi""" to C:\\temp\\new and\n\nsay "bye"'
HOSTILE_TITLE = 'A """quoted""" \\title'
HOSTILE_TEXT = {"doc": HOSTILE_DOC, "title": HOSTILE_TITLE}


def _with_hostile_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: HOSTILE_TEXT[k]
            if k in HOSTILE_TEXT and isinstance(v, str)
            else _with_hostile_docs(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_with_hostile_docs(v) for v in node]
    return node


@pytest.mark.parametrize("name", ["aartfaac", "pyexplabsys", "cdtp2", "m2"])
def test_spec_text_cannot_break_the_generated_code(name: str, tmp_path: Path) -> None:
    doc = yaml.safe_load((REPO / "specs" / f"{name}.yaml").read_text("utf-8"))
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(_with_hostile_docs(doc), sort_keys=False), "utf-8")
    shutil.copy(REPO / "specs" / "lsst_tcpip.yaml", tmp_path)  # m2 borrows its framing
    files = render_spec(load_spec(path), f"specs/{name}.yaml")
    for f in files:
        tree = ast.parse(f.text, f.name)  # a SyntaxError here is the bug
        if f.name == f"{name}.py":
            module_doc = ast.get_docstring(tree, clean=False) or ""
            assert module_doc.startswith(HOSTILE_TITLE + ": generated "), module_doc[:80]
            assert HOSTILE_DOC in module_doc
            docs = [
                ast.get_docstring(n, clean=False)
                for n in ast.walk(tree)
                if isinstance(n, ast.FunctionDef | ast.ClassDef)
            ]
            one_line = " ".join(HOSTILE_DOC.split())
            assert any(one_line in (d or "") for d in docs), name
