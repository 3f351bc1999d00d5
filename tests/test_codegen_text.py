"""The spec language's text_commands family: what the loader refuses (with file, line and path),
and what the generator makes of a small valid text spec (modules that import, lint and work)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings

from daqwire.codegen import load_spec, render_spec
from daqwire.errors import (
    FieldValueError,
    LocalProtocolError,
    RefusedRequest,
    RequestRefusedError,
    SpecError,
    UnknownCommandError,
    UnknownRequest,
)
from tests.generated_pkg import REPO, import_generated

#: a small text_commands spec that uses every kind of grammar, literal and one-part forms,
#: a typed request, a point reply, a repr reply and all four service error kinds
MINI = """\
daqwire: 1
protocol: mini
title: A tiny text protocol
doc: A toy request/reply protocol for the generator tests.
family: text_commands
encoding: utf-8
constants:
  NOPE:
    value: NOPE
    doc: The unknown reply.
  SEPS: ["#", ";"]
grammars:
  pt:
    kind: point
    doc: A point 'x,y'.
    separators: [","]
    reserved: "#,;"
    stale: STALE
  pts:
    kind: point_list
    doc: Points joined by ';'.
    separators: [";"]
    point: pt
  kv:
    kind: typed_map
    doc: "'key=type=v1,v2' items joined by ';'."
    separators: [";", "=", ","]
    types: [int, str]
    reserved: "#;=,"
  tbl:
    kind: typed_table
    doc: "'type:' then rows joined by '&'."
    separators: ["&", ",", ":"]
    types: [int, float]
    reserved: "#&,:"
messages:
  ping:
    direction: request
    doc: Are you there?
    form: ping
    reply: pong
  pong:
    direction: reply
    form: PONG
  get:
    direction: request
    doc: One key's point.
    form: "get#{key}"
    parts:
      key: {type: str, pattern: "[a-z]+"}
    reply: got
  got:
    direction: reply
    form: "{point}"
    parts:
      point: {type: grammar, grammar: pt}
  all:
    direction: request
    doc: Every point.
    form: all
    reply: all_reply
  all_reply:
    direction: reply
    form: "{points}"
    parts:
      points: {type: grammar, grammar: pts}
  put:
    direction: request
    doc: Store typed values.
    form: "put#{values}"
    idempotent: false
    parts:
      values: {type: grammar, grammar: kv, pattern: "[^#]*"}
    reply: ok
  ok:
    direction: reply
    form: "OK#{echo}"
    parts:
      echo: {type: repr}
  table:
    direction: request
    doc: A table of numbers.
    form: table
    reply: table_reply
  table_reply:
    direction: reply
    form: "T#{rows}"
    parts:
      rows: {type: grammar, grammar: tbl}
  nope:
    direction: reply
    form: NOPE
  bad:
    direction: reply
    form: "BAD#{message}"
    parts:
      message: {type: str}
services:
  main:
    doc: The one service.
    requests: [ping, get, all, put, table]
    errors:
      unknown: nope
      malformed: bad
      refused: bad
      failed: bad
"""

PKG = "textgen_mini"


def _replace(old: str, new: str, text: str = MINI) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def _line_of(text: str, needle: str, after: str = "") -> int:
    """The 1-based line of the first ``needle`` at or after the first line holding ``after``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i, line in enumerate(lines[start:], start + 1) if needle in line)


def _load_error(tmp_path: Path, text: str) -> SpecError:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path, display_name="specs/x.yaml")
    return info.value


# ---- the loader refuses ----------------------------------------------------------------------

#: (old, new) edits of MINI, the SpecError path and message, and where it points:
#: the first line holding the last text at or after the first line holding the one before it
BAD_SPECS: dict[str, tuple[str, str, str, str, tuple[str, str]]] = {
    "two_placeholders": (
        'form: "get#{key}"',
        'form: "get#{key}#{other}"',
        "messages.get.form",
        "a form has at most one placeholder, 'get#{key}#{other}' has 2",
        ("", "get#{key}#{other}"),
    ),
    "part_not_the_placeholder": (
        '      key: {type: str, pattern: "[a-z]+"}',
        "      name: {type: str}",
        "messages.get.parts",
        "parts must declare exactly {key}",
        ("  get:", "    parts:"),
    ),
    "parts_without_placeholder": (
        "    form: PONG\n",
        "    form: PONG\n    parts:\n      x: {type: str}\n",
        "messages.pong.parts",
        "the form has no placeholder for these parts",
        ("  pong:", "    parts:"),
    ),
    "reply_is_a_request": (
        "    reply: pong\n",
        "    reply: get\n",
        "messages.ping.reply[0]",
        "'get' is not a reply message",
        ("", "    reply: get"),
    ),
    "reply_does_not_exist": (
        "    reply: pong\n",
        "    reply: pongg\n",
        "messages.ping.reply[0]",
        "'pongg' is not a reply message",
        ("", "    reply: pongg"),
    ),
    "request_without_reply": (
        "    form: ping\n    reply: pong\n",
        "    form: ping\n",
        "messages.ping",
        "a request needs reply:",
        ("", "  ping:"),
    ),
    "unknown_grammar": (
        "grammar: pt}",
        "grammar: ptt}",
        "messages.got.parts.point.grammar",
        "no grammar named 'ptt'",
        ("", "grammar: ptt}"),
    ),
    "point_list_of_a_map": (
        "    point: pt\n",
        "    point: kv\n",
        "grammars.pts.point",
        "point: must name a grammar of kind point",
        ("", "    point: kv"),
    ),
    "point_with_two_separators": (
        '    separators: [","]\n',
        '    separators: [",", ";"]\n',
        "grammars.pt.separators",
        "a point grammar has 1 separator(s)",
        ("", '    separators: [",", ";"]'),
    ),
    "typed_map_with_two_separators": (
        '    separators: [";", "=", ","]\n',
        '    separators: [";", "="]\n',
        "grammars.kv.separators",
        "a typed_map grammar has 3 separator(s)",
        ("", '    separators: [";", "="]'),
    ),
    "duplicate_literal_forms": (
        "  nope:\n",
        "  ping2:\n    direction: request\n    form: ping\n    reply: pong\n  nope:\n",
        "services.main.requests[1]",
        "'ping2' has the same form as 'ping'",
        ("", "requests: [ping, ping2,"),
    ),
    "error_reply_part_not_str": (
        "      malformed: bad\n",
        "      malformed: got\n",
        "services.main.errors.malformed",
        "'got' must carry its message as a str part",
        ("", "      malformed: got"),
    ),
    "unknown_grammar_error_key": (
        '    reserved: "#;=,"\n',
        '    reserved: "#;=,"\n    errors:\n      nonsense: "x"\n',
        "grammars.kv.errors.nonsense",
        "unknown error 'nonsense'; known: "
        "['bool', 'convert', 'item_type', 'mixed', 'parts', 'reserved', 'type']",
        ("", '      nonsense: "x"'),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_loader_refuses_with_file_line_and_path(tmp_path: Path, case: str) -> None:
    old, new, path, message, (after, needle) = BAD_SPECS[case]
    text = _replace(old, new)
    if case == "duplicate_literal_forms":
        text = _replace("requests: [ping, get", "requests: [ping, ping2, get", text)
    err = _load_error(tmp_path, text)
    assert err.path == path
    assert err.message == message
    assert err.file == "specs/x.yaml"
    assert err.line == _line_of(text, needle, after)
    assert str(err).startswith(f"specs/x.yaml:{err.line}:")
    assert str(err).endswith(f"{path}: {message}")


def test_unknown_grammar_error_key_lists_the_known_keys_of_its_kind(tmp_path: Path) -> None:
    text = _replace(
        '    reserved: "#&,:"\n', '    reserved: "#&,:"\n    errors:\n      parts2: x\n'
    )
    err = _load_error(tmp_path, text)
    assert err.path == "grammars.tbl.errors.parts2"
    assert "'empty_row'" in err.message and "'not_rows'" in err.message


def test_mini_spec_loads(tmp_path: Path) -> None:
    path = tmp_path / "mini.yaml"
    path.write_text(MINI)
    spec = load_spec(path)
    assert spec.family == "text_commands"


# ---- the generator's output for the small spec -----------------------------------------------


@pytest.fixture(scope="module")
def gen_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("textgen")
    spec_dir = root / "specs"
    spec_dir.mkdir()
    (spec_dir / "mini.yaml").write_text(MINI)
    files = render_spec(load_spec(spec_dir / "mini.yaml"), "specs/mini.yaml")
    assert sorted(f.name for f in files) == ["mini.py", "mini_strategies.py"]
    out = root / PKG
    out.mkdir()
    (out / "__init__.py").write_text('"""Generated for a test."""\n')
    for f in files:
        (out / f.name).write_text(f.text, "utf-8")
    return root


@pytest.fixture(scope="module")
def mini(gen_root: Path) -> ModuleType:
    (module,) = import_generated(gen_root, PKG, "mini")
    return module


@pytest.fixture
def mini_strategies(
    gen_root: Path, mini: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> ModuleType:
    """The strategies module, imported with its codec registered where it looks for it."""
    import daqwire.generated

    monkeypatch.setitem(sys.modules, "daqwire.generated.mini", mini)
    monkeypatch.setattr(daqwire.generated, "mini", mini, raising=False)
    monkeypatch.syspath_prepend(str(gen_root))
    sys.modules.pop(f"{PKG}.mini_strategies", None)
    module = __import__(f"{PKG}.mini_strategies", fromlist=["x"])
    return module


def test_output_is_stamped_and_exports_what_the_spec_declares(mini: ModuleType) -> None:
    assert mini.PROTOCOL == "mini"
    assert mini.ENCODING == "utf-8"
    assert mini.NOPE == "NOPE"
    assert mini.SEPS == ("#", ";")
    assert mini.PING_BYTES == b"ping" and mini.PONG_BYTES == b"PONG"
    for name in (
        "format_pt parse_pt format_pts parse_pts format_kv parse_kv format_tbl parse_tbl "
        "encode_get decode_get decode_got encode_put decode_put MainDispatcher MainRequests "
        "MainHandler MainClientStub AsyncMainClientStub Stale"
    ).split():
        assert name in mini.__all__, name
        assert hasattr(mini, name), name


def test_grammar_codecs_of_the_small_spec(mini: ModuleType) -> None:
    assert mini.format_pt((1, "a")) == "1,a"
    assert mini.parse_pt("1.5,None") == (1.5, None)
    assert mini.format_pt(mini.Stale()) == "STALE"
    assert isinstance(mini.parse_pt("STALE"), mini.Stale)
    assert mini.format_pts([(1, 2), mini.Stale(), (True, "x")]) == "1,2;STALE;True,x"
    assert mini.format_kv({"a": 1, "b": ["x", "y"]}) == "a=int=1;b=str=x,y"
    assert mini.parse_kv("a=int=1;b=str=x,y") == {"a": 1, "b": ["x", "y"]}
    assert mini.format_tbl([[1, 2], [3]]) == "int:1,2&3"
    assert mini.parse_tbl("float:1.5&2.0,3.0") == [[1.5], [2.0, 3.0]]
    for bad in ({"a;b": 1}, {"a": "x=y"}, {"a": 1.5}):
        with pytest.raises(LocalProtocolError):
            mini.format_kv(bad)
    with pytest.raises(LocalProtocolError):
        mini.format_pt(("a,b", 1))
    with pytest.raises(FieldValueError, match="3 parts"):
        mini.parse_kv("a=int")
    with pytest.raises(FieldValueError):
        mini.parse_kv("a=float=1.5")  # float is not one of this grammar's types


class _Server:
    """A MainHandler: a point per key, a failure for 'boom', a refusal for 'no'."""

    def __init__(self, mini: ModuleType) -> None:
        self.mini = mini
        self.points: dict[str, Any] = {"a": (1, 2.5), "old": mini.Stale()}
        self.stored: list[dict[str, Any]] = []

    def on_get(self, key: str) -> Any:
        if key == "boom":
            raise RuntimeError("it broke")
        if key == "no":
            raise RefusedRequest("not for you")
        if key not in self.points:
            raise UnknownRequest(f"no key {key!r}")
        return self.points[key]

    def on_all(self) -> list[Any]:
        return list(self.points.values())

    def on_put(self, values: dict[str, Any]) -> object:
        self.stored.append(values)
        return values

    def on_table(self) -> list[list[float]]:
        return [[1.0, 2.0], [3.5]]


def test_dispatcher_answers_every_request_and_every_error(mini: ModuleType) -> None:
    server = _Server(mini)
    errors: list[tuple[str, str]] = []
    d = mini.MainDispatcher(server, on_error=lambda kind, msg, exc: errors.append((kind, msg)))
    assert d.handle(b"ping") == b"PONG"
    assert d.handle(b"get#a") == b"1,2.5"
    assert d.handle(b"get#old") == b"STALE"
    assert d.handle(b"all") == b"1,2.5;STALE"
    assert d.handle(b"put#a=int=1,2;b=str=x") == b"OK#{'a': [1, 2], 'b': 'x'}"
    assert server.stored == [{"a": [1, 2], "b": "x"}]
    assert d.handle(b"table") == b"T#float:1.0,2.0&3.5"
    assert errors == []
    assert d.handle(b"get#zz") == b"NOPE"
    assert d.handle(b"get#ABC") == b"NOPE"  # the key's pattern does not match: unknown
    assert d.handle(b"pong") == b"NOPE"
    assert d.handle(b"get#no") == b"BAD#not for you"
    assert d.handle(b"get#boom") == b"BAD#it broke"
    assert d.handle(b"put#a=int=x") == (
        b"BAD#Unable to convert values to 'int': invalid literal for int() with base 10: 'x'"
    )
    not_utf8 = b"BAD#the datagram is not valid utf-8: invalid start byte (byte 0xff)"
    assert d.handle(b"\xff") == not_utf8
    assert [k for k, _ in errors] == [
        "unknown",
        "unknown",
        "unknown",
        "refused",
        "failed",
        "malformed",
        "malformed",
    ]
    assert server.stored == [{"a": [1, 2], "b": "x"}]


def test_request_builders_round_trip_through_the_dispatcher(mini: ModuleType) -> None:
    d = mini.MainDispatcher(_Server(mini))
    r = mini.MainRequests
    assert r.ping().data == b"ping" and r.ping().idempotent
    assert r.get("a").data == b"get#a"
    assert r.get("a").parse(d.handle(r.get("a").data)) == (1, 2.5)
    assert isinstance(r.get("old").parse(d.handle(b"get#old")), mini.Stale)
    assert r.all().parse(d.handle(b"all"))[0] == (1, 2.5)
    put = r.put({"k": ["p", "q"]})
    assert put.data == b"put#k=str=p,q" and not put.idempotent
    assert put.parse(d.handle(put.data)) == "{'k': ['p', 'q']}"
    assert r.table().parse(d.handle(b"table")) == [[1.0, 2.0], [3.5]]
    with pytest.raises(UnknownCommandError):
        r.get("zz").parse(d.handle(b"get#zz"))
    with pytest.raises(RequestRefusedError, match="not for you"):
        r.get("no").parse(d.handle(b"get#no"))
    with pytest.raises(LocalProtocolError):
        r.get("ABC")  # the builder checks the part's pattern


def test_client_stub_calls_through_call(mini: ModuleType) -> None:
    d = mini.MainDispatcher(_Server(mini))

    class Client(mini.MainClientStub):  # type: ignore[name-defined,misc]
        def _call(self, request: Any) -> Any:
            return request.parse(d.handle(request.data))

    client = Client()
    assert client.get("a") == (1, 2.5)
    assert client.put({"n": 5}) == "{'n': 5}"


def test_generated_strategies_round_trip(mini_strategies: ModuleType, mini: ModuleType) -> None:
    @settings(max_examples=40, deadline=None)
    @given(mini_strategies.kv_values())
    def kv(value: dict[str, Any]) -> None:
        assert mini.parse_kv(mini.format_kv(value)) == value

    @settings(max_examples=40, deadline=None)
    @given(mini_strategies.tbl_values())
    def tbl(rows: list[list[Any]]) -> None:
        back = mini.parse_tbl(mini.format_tbl(rows))
        assert [[repr(v) for v in row] for row in back] == [[repr(v) for v in row] for row in rows]

    kv()
    tbl()


def test_generated_request_strategy_respects_part_patterns(
    mini_strategies: ModuleType, mini: ModuleType
) -> None:
    @settings(max_examples=60, deadline=None)
    @given(mini_strategies.main_requests())
    def requests(datagram: bytes) -> None:
        errors: list[str] = []
        d = mini.MainDispatcher(_Server(mini), on_error=lambda kind, m, e: errors.append(kind))
        d.handle(datagram)
        assert "malformed" not in errors

    requests()


def test_generated_strategies_import_next_to_their_codec(gen_root: Path, mini: ModuleType) -> None:
    sys.modules.pop(f"{PKG}.mini_strategies", None)
    sys.path.insert(0, str(gen_root))
    try:
        module = __import__(f"{PKG}.mini_strategies", fromlist=["x"])
    finally:
        sys.path.remove(str(gen_root))
    assert module.codec is mini


def test_keyword_part_name_is_a_spec_error(tmp_path: Path) -> None:
    text = _replace('      key: {type: str, pattern: "[a-z]+"}', "      class: {type: str}")
    text = _replace("get#{key}", "get#{class}", text)
    path = tmp_path / "mini.yaml"
    path.write_text(text)
    with pytest.raises(SpecError):
        render_spec(load_spec(path))


def test_separators_are_always_reserved(tmp_path: Path) -> None:
    text = MINI.replace('    reserved: "#;=,"\n', "").replace('    reserved: "#,;"\n', "")
    root = tmp_path / "out"
    path = tmp_path / "mini.yaml"
    path.write_text(text)
    try:
        files = render_spec(load_spec(path))
    except SpecError:
        return  # refusing the spec is a fix too
    pkg = root / "textgen_noreserved"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for f in files:
        (pkg / f.name).write_text(f.text)
    (module,) = import_generated(root, "textgen_noreserved", "mini")
    with pytest.raises(LocalProtocolError):
        module.format_kv({"a;b=c": "x;y=z,w"})
    with pytest.raises(LocalProtocolError):
        module.format_pt(("a,b", 1))


def test_generated_pyexplabsys_passes_ruff() -> None:
    ruff = [sys.executable, "-m", "ruff"]
    config = ["--config", str(REPO / "pyproject.toml")]
    targets = [str(REPO / "generated" / n) for n in ("pyexplabsys.py", "pyexplabsys_strategies.py")]
    check = subprocess.run([*ruff, "check", *config, *targets], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = subprocess.run(
        [*ruff, "format", *config, "--check", *targets], capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_small_spec_output_passes_ruff(gen_root: Path) -> None:
    ruff = [sys.executable, "-m", "ruff"]
    config = ["--config", str(REPO / "pyproject.toml")]
    out = str(gen_root / PKG)
    check = subprocess.run(
        [*ruff, "check", *config, "--extend-ignore", "E501,RUF059", out],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_committed_pyexplabsys_module_is_what_the_spec_renders() -> None:
    spec = load_spec(REPO / "specs" / "pyexplabsys.yaml", display_name="specs/pyexplabsys.yaml")
    files = {f.name: f.text for f in render_spec(spec, "specs/pyexplabsys.yaml")}
    for name, text in files.items():
        assert (REPO / "generated" / name).read_text("utf-8") == text, name
