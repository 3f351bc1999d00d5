"""The spec language's json_lines family: what the loader refuses (with file, line and path), and
what the generator makes of two small specs (modules that import, lint and behave).

``JMINI`` uses every kind of key: constants, prefixes and a catch-all as selectors, optional
and nullable keys, enums (a type and a list), patterns, byte limits, bounds, arrays, numbered
and timestamped keys, and the four ways of treating extra keys. ``JSTRICT`` is one message
without a selector, in the strict dialect, with its own terminator and line limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daqwire.codegen import load_spec, render_spec
from daqwire.errors import (
    FieldValueError,
    JsonSyntaxError,
    LineTooLongError,
    LocalProtocolError,
    SpecError,
    TextDecodeError,
)
from daqwire.generated import lsst_tcpip
from daqwire.sansio import NEED_DATA
from tests.generated_pkg import REPO, import_generated, stage_as_generated

FRAMING = """\
framing:
  doc: Newline-ended lines of at most 200 bytes.
  terminator: "\\n"
  encoding: utf-8
  max_line_bytes: 200
  dialect: python
"""

JMINI = f"""\
daqwire: 1
protocol: jmini
title: A tiny JSON-lines protocol
doc: A toy protocol for the json_lines generator tests.
family: json_lines
{FRAMING}select: kind
enums:
  Color:
    doc: A colour.
    values: {{Red: 1, Green: 2}}
constants:
  PORT:
    doc: The port.
    value: 1234
messages:
  point:
    doc: A point.
    direction: out
    keys:
      - {{name: kind, type: str, const: point}}
      - {{name: x, type: int, min: 0, max: 100, doc: The abscissa.}}
      - {{name: y, type: float}}
      - {{name: label, type: str, optional: true, pattern: "[a-z]+"}}
      - {{name: note, type: str, nullable: true, max_bytes: 4}}
      - {{name: color, type: int, enum: Color}}
      - {{name: shape, type: str, enum: [round, square]}}
      - name: nums
        type: array
        items: {{type: int, nullable: true}}
        min_items: 1
        max_items: 3
  sample:
    extra_keys: ignore
    wire_name: theSample
    keys:
      - {{name: kind, type: str, const: sample}}
      - {{name: value, type: array, items: {{type: float}}, count: 3, numbered: true,
         timestamped: true}}
      - {{name: level, type: float, timestamped: true}}
      - {{name: timestamp, type: float}}
  request:
    extra_keys: first
    extra_field: params
    keys:
      - {{name: kind, type: str, prefix: do_, field: name}}
      - {{name: seq, type: int}}
  event:
    extra_keys: last
    keys:
      - {{name: kind, type: str, prefix: ev_, field: name}}
      - {{name: tags, type: array, items: {{type: str}}, max_items: 4}}
      - {{name: meta, type: map, optional: true}}
      - {{name: raw, type: any, optional: true}}
  other:
    extra_keys: last
    keys:
      - {{name: kind, type: str, field: name}}
"""

JSTRICT = """\
daqwire: 1
protocol: jstrict
title: One strict message
family: json_lines
framing:
  terminator: ";"
  encoding: ascii
  max_line_bytes: 32
  dialect: strict
messages:
  reading:
    keys:
      - {name: v, type: float}
      - {name: unit, type: str, optional: true}
"""

PKG = "jsongen_pkg"


def _replace(old: str, new: str, text: str = JMINI) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def _line_of(text: str, needle: str, after: str = "") -> int:
    """The 1-based line of the first ``needle`` at or after the first line holding ``after``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i, line in enumerate(lines[start:], start + 1) if needle in line)


def _load_error(tmp_path: Path, text: str, name: str = "x") -> SpecError:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path, display_name=f"specs/{name}.yaml")
    return info.value


# ---- the loader refuses ----------------------------------------------------------------------

#: (old, new) edits of JMINI, the SpecError path and message, and where it points: the first
#: line holding the last text at or after the first line holding the one before it
BAD_SPECS: dict[str, tuple[str, str, str, str, tuple[str, str]]] = {
    "framing_ref_missing": (
        FRAMING,
        "framing: nowhere\n",
        "framing",
        "no spec 'nowhere' next to this one (nowhere.yaml)",
        ("", "framing: nowhere"),
    ),
    "select_missing": (
        "select: kind\n",
        "",
        "select",
        "more than one message: name the key that tells them apart",
        ("", "daqwire: 1"),
    ),
    "duplicate_const": (
        "const: sample}",
        "const: point}",
        "messages.sample",
        "kind 'point' also selects 'point'",
        ("", "  sample:"),
    ),
    "overlapping_prefixes": (
        "prefix: ev_,",
        "prefix: do_x,",
        "messages.event",
        "prefix 'do_x' overlaps 'do_' of 'request'",
        ("", "  event:"),
    ),
    "two_catch_alls": (
        "  other:\n",
        "  other2:\n    keys:\n      - {name: kind, type: str}\n  other:\n",
        "messages.other",
        "'other2' already takes every other kind",
        ("", "  other:"),
    ),
    "catch_all_of_floats": (
        "      - {name: kind, type: str, field: name}\n",
        "      - {name: kind, type: float, field: name}\n",
        "messages.other",
        "a catch-all kind is a str or an int",
        ("", "  other:"),
    ),
    "selector_missing_in_a_message": (
        "      - {name: kind, type: str, field: name}\n",
        "      - {name: kinds, type: str, field: name}\n",
        "messages.other.keys",
        "no key 'kind', which tells the messages apart",
        ("  other:", "    keys:"),
    ),
    "selector_optional": (
        "{name: kind, type: str, field: name}",
        "{name: kind, type: str, field: name, optional: true}",
        "messages.other.keys",
        "the key 'kind' must be plain and required",
        ("  other:", "    keys:"),
    ),
    "numbered_without_count": (
        "count: 3, numbered: true",
        "numbered: true",
        "messages.sample.keys[1].numbered",
        "numbered keys need type: array and a count",
        ("", "{name: value, type: array"),
    ),
    "numbered_scalar": (
        "{name: timestamp, type: float}",
        "{name: timestamp, type: float, numbered: true}",
        "messages.sample.keys[3].numbered",
        "numbered keys need type: array and a count",
        ("", "{name: timestamp, type: float, numbered"),
    ),
    "numbered_optional": (
        "numbered: true,\n         timestamped: true}",
        "numbered: true,\n         optional: true}",
        "messages.sample.keys[1].numbered",
        "numbered keys cannot be optional or nullable",
        ("", "{name: value, type: array"),
    ),
    "optional_and_nullable": (
        "{name: label, type: str, optional: true,",
        "{name: label, type: str, optional: true, nullable: true,",
        "messages.point.keys[3].optional",
        "a key is optional (absent means None) or nullable, not both",
        ("", "{name: label,"),
    ),
    "timestamped_optional": (
        "{name: level, type: float, timestamped: true}",
        "{name: level, type: float, timestamped: true, optional: true}",
        "messages.sample.keys[2].timestamped",
        "timestamped keys are required scalars or numbered arrays",
        ("", "{name: level,"),
    ),
    "timestamped_plain_array": (
        "        max_items: 3\n",
        "        max_items: 3\n        timestamped: true\n",
        "messages.point.keys[7].timestamped",
        "timestamped keys are required scalars or numbered arrays",
        ("- name: nums", "timestamped: true"),
    ),
    "two_keys_one_field": (
        "{name: y, type: float}",
        "{name: y, type: float, field: x}",
        "messages.point.keys[2]",
        "field 'x' is also that of 'x'",
        ("", "{name: y,"),
    ),
    "timestamp_field_clash": (
        "{name: timestamp, type: float}",
        "{name: timestamp, type: float}\n      - {name: lt, type: float, field: levelTimestamp}",
        "messages.sample.keys[4]",
        "field 'levelTimestamp' is also that of 'level'",
        ("", "{name: lt,"),
    ),
    "numbered_wire_key_clash": (
        "{name: timestamp, type: float}",
        "{name: timestamp, type: float}\n      - {name: value2, type: float, field: v2}",
        "messages.sample.keys[4]",
        "wire key 'value2' is also a key of 'value'",
        ("", "{name: value2,"),
    ),
    "keyword_field": (
        "{name: y, type: float}",
        "{name: class, type: float}",
        "messages.point",
        "'class' cannot be a Python field named 'class'; give it `field:`",
        ("", "  point:"),
    ),
    "field_not_an_identifier": (
        "{name: y, type: float}",
        "{name: y-pos, type: float}",
        "messages.point",
        "'y-pos' cannot be a Python field named 'y-pos'; give it `field:`",
        ("", "  point:"),
    ),
    "reserved_field": (
        "{name: y, type: float}",
        "{name: WIRE_NAME, type: float}",
        "messages.point",
        "'WIRE_NAME' cannot be a Python field named 'WIRE_NAME'; give it `field:`",
        ("", "  point:"),
    ),
    "key_named_like_the_extra_field": (
        "{name: seq, type: int}",
        "{name: params, type: int}",
        "messages.request.keys[1]",
        "field 'params' is also that of 'extra_field'",
        ("", "{name: params,"),
    ),
    "class_name_clash": (
        "  other:\n",
        "  sample_:\n    keys:\n      - {name: kind, type: str, const: z}\n  other:\n",
        "messages.sample_",
        "its class name Sample is also that of 'sample'",
        ("", "  sample_:"),
    ),
    "unknown_enum": (
        "enum: Color}",
        "enum: Colour}",
        "messages.point.keys[5].enum",
        "no enum named 'Colour'",
        ("", "enum: Colour}"),
    ),
    "enum_type_on_str": (
        "{name: shape, type: str, enum: [round, square]}",
        "{name: shape, type: str, enum: Color}",
        "messages.point.keys[6].enum",
        "an enum type applies to int values only",
        ("", "{name: shape,"),
    ),
    "enum_value_of_the_wrong_type": (
        "enum: [round, square]",
        "enum: [round, 2]",
        "messages.point.keys[6].enum",
        "2 is not a str",
        ("", "{name: shape,"),
    ),
    "enum_bool_among_ints": (
        "{name: x, type: int, min: 0, max: 100, doc: The abscissa.}",
        "{name: x, type: int, enum: [1, true]}",
        "messages.point.keys[1].enum",
        "True is not a int",
        ("", "{name: x,"),
    ),
    "enum_list_on_a_map": (
        "{name: meta, type: map, optional: true}",
        "{name: meta, type: map, optional: true, enum: [1]}",
        "messages.event.keys[2].enum",
        "a list of values applies to int, float, str and bool, not map",
        ("", "{name: meta,"),
    ),
    "invalid_pattern": (
        'pattern: "[a-z]+"',
        'pattern: "[a-z"',
        "messages.point.keys[3].pattern",
        "not a regular expression: unterminated character set at position 0",
        ("", "{name: label,"),
    ),
    "pattern_on_int": (
        "{name: seq, type: int}",
        "{name: seq, type: int, pattern: x}",
        "messages.request.keys[1].pattern",
        "pattern and max_bytes apply to str, not int",
        ("", "{name: seq,"),
    ),
    "max_bytes_on_int": (
        "{name: seq, type: int}",
        "{name: seq, type: int, max_bytes: 3}",
        "messages.request.keys[1].max_bytes",
        "pattern and max_bytes apply to str, not int",
        ("", "{name: seq,"),
    ),
    "min_greater_than_max": (
        "min: 0, max: 100",
        "min: 100, max: 0",
        "messages.point.keys[1].min",
        "min is greater than max",
        ("", "{name: x,"),
    ),
    "min_on_str": (
        "{name: seq, type: int}",
        "{name: seq, type: str, min: 1}",
        "messages.request.keys[1].min",
        "min and max apply to int and float, not str",
        ("", "{name: seq,"),
    ),
    "extra_field_when_ignoring": (
        "    extra_keys: ignore\n",
        "    extra_keys: ignore\n    extra_field: rest\n",
        "messages.sample.extra_field",
        "extra_field needs extra_keys: first or last",
        ("", "extra_field: rest"),
    ),
    "extra_field_when_refusing": (
        "    doc: A point.\n",
        "    doc: A point.\n    extra_field: rest\n",
        "messages.point.extra_field",
        "extra_field needs extra_keys: first or last",
        ("", "extra_field: rest"),
    ),
    "const_of_the_wrong_type": (
        "{name: kind, type: str, const: point}",
        "{name: kind, type: str, const: 1}",
        "messages.point.keys[0].const",
        "1 is not a constant str",
        ("  point:", "{name: kind,"),
    ),
    "const_float": (
        "{name: kind, type: str, const: point}",
        "{name: kind, type: float, const: 1}",
        "messages.point.keys[0].const",
        "1 is not a constant float",
        ("  point:", "{name: kind,"),
    ),
    "const_optional": (
        "{name: kind, type: str, const: point}",
        "{name: kind, type: str, const: point, optional: true}",
        "messages.point.keys[0].const",
        "a constant key takes no optional, prefix, numbered or timestamped",
        ("  point:", "{name: kind,"),
    ),
    "prefix_on_int": (
        "{name: seq, type: int}",
        "{name: seq, type: int, prefix: x}",
        "messages.request.keys[1].prefix",
        "a prefix applies to str keys only",
        ("", "{name: seq,"),
    ),
    "items_on_int": (
        "{name: seq, type: int}",
        "{name: seq, type: int, items: {type: int}}",
        "messages.request.keys[1].items",
        "items apply to arrays only",
        ("", "{name: seq,"),
    ),
    "count_on_int": (
        "{name: seq, type: int}",
        "{name: seq, type: int, count: 2}",
        "messages.request.keys[1].count",
        "count, min_items and max_items apply to arrays, not int",
        ("", "{name: seq,"),
    ),
    "count_and_max_items": (
        "count: 3, numbered: true",
        "count: 3, max_items: 3, numbered: true",
        "messages.sample.keys[1].count",
        "an array has a count or min_items/max_items, not both",
        ("", "{name: value,"),
    ),
    "non_ascii_terminator_in_ascii": (
        '  terminator: "\\n"\n  encoding: utf-8\n',
        '  terminator: "\\u00e9"\n  encoding: ascii\n',
        "framing.terminator",
        "the terminator is not ASCII",
        ("", "terminator:"),
    ),
    "self_overlapping_terminator": (
        '  terminator: "\\n"\n',
        '  terminator: "\\n\\n"\n',
        "framing.terminator",
        "'\\n\\n' overlaps itself (it begins with its own end), so lines would be ambiguous",
        ("", "terminator:"),
    ),
    "message_named_line": (
        "  other:\n",
        "  line:\n    keys:\n      - {name: kind, type: str, const: l}\n  other:\n",
        "messages.line",
        "a message named 'line' would replace decode_line()",
        ("", "  line:"),
    ),
    "constant_named_like_the_framing": (
        "constants:\n",
        "constants:\n  MAX_LINE_BYTES: 5\n",
        "constants.MAX_LINE_BYTES",
        "MAX_LINE_BYTES is a name the generated module defines",
        ("", "MAX_LINE_BYTES: 5"),
    ),
    "class_named_like_the_module_api": (
        "  other:\n",
        "  line_framer:\n    keys:\n      - {name: kind, type: str, const: l}\n  other:\n",
        "messages.line_framer",
        "its class name LineFramer is a name the generated module defines",
        ("", "  line_framer:"),
    ),
    "unknown_key": (
        "{name: seq, type: int}",
        "{name: seq, type: int, colour: blue}",
        "messages.request.keys[1].colour",
        "unknown key 'colour' (allowed here: const, count, doc, enum, field, items, max, "
        "max_bytes, max_items, min, min_items, name, nullable, numbered, optional, pattern, "
        "prefix, timestamped, type)",
        ("", "{name: seq,"),
    ),
    "binary_key_in_json_lines": (
        "select: kind\n",
        "select: kind\nbyte_order: little\n",
        "byte_order",
        "key 'byte_order' is not allowed in the json_lines family",
        ("", "byte_order: little"),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_loader_refuses_with_file_line_and_path(tmp_path: Path, case: str) -> None:
    old, new, path, message, (after, needle) = BAD_SPECS[case]
    text = _replace(old, new)
    err = _load_error(tmp_path, text)
    assert err.path == path
    assert err.message == message
    assert err.file == "specs/x.yaml"
    assert err.line == _line_of(text, needle, after)
    assert str(err).startswith(f"specs/x.yaml:{err.line}:")
    assert str(err).endswith(f"{path}: {message}")


def _borrowing(ref: str) -> str:
    return _replace(FRAMING, f"framing: {ref}\n")


def test_borrowed_framing_must_be_a_json_lines_spec_with_its_own(tmp_path: Path) -> None:
    (tmp_path / "cdtp1.yaml").write_text((REPO / "specs" / "cdtp1.yaml").read_text())
    for name in ("lsst_tcpip", "m2"):
        (tmp_path / f"{name}.yaml").write_text((REPO / "specs" / f"{name}.yaml").read_text())
    for ref in ("cdtp1", "m2"):
        err = _load_error(tmp_path, _borrowing(ref))
        assert err.path == "framing"
        assert err.message == f"{ref!r} is not a json_lines spec with a framing of its own"
    spec = load_spec(_write(tmp_path, "ok", _borrowing("lsst_tcpip")))
    assert spec.json is not None and spec.json.framing_ref == "lsst_tcpip"
    assert spec.json.framing.terminator == "\r\n" and spec.json.framing.max_line_bytes == 65536
    empty = "daqwire: 1\nprotocol: e\ntitle: t\nfamily: json_lines\nframing: lsst_tcpip\n"
    err = _load_error(tmp_path, empty + "messages: {}\n")
    assert err.path == "messages"
    assert err.message == "a spec that borrows its framing needs at least one message"


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("old", "new", "word"),
    [
        ("  dialect: python\n", "  dialect: js\n", "'js'"),
        ("  max_line_bytes: 200\n", "  max_line_bytes: 0\n", "minimum"),
        ("  encoding: utf-8\n", "  encoding: latin-1\n", "'latin-1'"),
    ],
)
def test_bad_framing_value_is_named(tmp_path: Path, old: str, new: str, word: str) -> None:
    err = _load_error(tmp_path, _replace(old, new))

    assert err.path.startswith("framing.")
    assert word in err.message and "is not of type 'string'" not in err.message


def test_message_named_no_is_a_spec_error(tmp_path: Path) -> None:
    text = _replace(
        "  other:\n", "  no:\n    keys:\n      - {name: kind, type: str, const: n}\n  other:\n"
    )

    err = _load_error(tmp_path, text)
    assert err.path.startswith("messages")


@pytest.mark.parametrize("name", ["KIND", "encode"])
def test_field_names_the_generated_code_uses_are_refused(tmp_path: Path, name: str) -> None:
    # KIND is the class constant of the selector (Point.KIND = "point"): a field of that name
    # silently replaces it; a field named encode shadows encode() inside encode_point()
    err = _load_error(
        tmp_path, _replace("{name: y, type: float}", f"{{name: {name}, type: float}}")
    )
    assert err.path == "messages.point" and name in err.message


# ---- the generator's output for the small specs ----------------------------------------------


@pytest.fixture(scope="module")
def gen_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("jsongen")
    spec_dir = root / "specs"
    spec_dir.mkdir()
    out = root / PKG
    out.mkdir()
    (out / "__init__.py").write_text('"""Generated for a test."""\n')
    for name, text in (("jmini", JMINI), ("jstrict", JSTRICT)):
        (spec_dir / f"{name}.yaml").write_text(text)
        files = render_spec(load_spec(spec_dir / f"{name}.yaml"), f"specs/{name}.yaml")
        assert sorted(f.name for f in files) == [f"{name}.py", f"{name}_strategies.py"]
        for f in files:
            (out / f.name).write_text(f.text, "utf-8")
    return root


@pytest.fixture(scope="module")
def mods(gen_root: Path) -> tuple[ModuleType, ModuleType]:
    jmini, jstrict = import_generated(gen_root, PKG, "jmini", "jstrict")
    return jmini, jstrict


@pytest.fixture(scope="module")
def jm(mods: tuple[ModuleType, ModuleType]) -> ModuleType:
    return mods[0]


@pytest.fixture(scope="module")
def js(mods: tuple[ModuleType, ModuleType]) -> ModuleType:
    return mods[1]


@pytest.fixture
def jm_strategies(gen_root: Path, jm: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The strategies module, imported with its codec registered where it looks for it."""
    import daqwire.generated

    monkeypatch.setitem(sys.modules, "daqwire.generated.jmini", jm)
    monkeypatch.setattr(daqwire.generated, "jmini", jm, raising=False)
    monkeypatch.syspath_prepend(str(gen_root))
    sys.modules.pop(f"{PKG}.jmini_strategies", None)
    return __import__(f"{PKG}.jmini_strategies", fromlist=["x"])


def point(jm: ModuleType, **over: Any) -> Any:
    values: dict[str, Any] = {
        "x": 3,
        "y": 1.5,
        "note": None,
        "color": jm.Color.Green,
        "shape": "round",
        "nums": (1, None),
    }
    values.update(over)
    return jm.Point(**values)


def test_output_exports_what_the_spec_declares(jm: ModuleType, js: ModuleType) -> None:
    assert jm.PROTOCOL == "jmini" and jm.PORT == 1234
    assert (jm.TERMINATOR, jm.ENCODING, jm.MAX_LINE_BYTES, jm.DIALECT) == (
        b"\n",
        "utf-8",
        200,
        "python",
    )
    assert (js.TERMINATOR, js.ENCODING, js.MAX_LINE_BYTES, js.DIALECT) == (
        b";",
        "ascii",
        32,
        "strict",
    )
    assert list(jm.MESSAGES) == ["point", "sample", "request", "event", "other"]
    assert jm.BY_KIND == {"point": jm.Point, "sample": jm.Sample}
    assert (jm.Point.KIND, jm.Sample.KIND) == ("point", "sample")
    assert (jm.Request.PREFIX, jm.Event.PREFIX) == ("do_", "ev_")
    assert (jm.Sample.WIRE_NAME, jm.Point.WIRE_NAME) == ("theSample", "point")
    assert jm.Point.__doc__ == "A point." and jm.Point.MESSAGE_NAME == "point"
    assert [int(c) for c in jm.Color] == [1, 2]
    for name in jm.__all__:
        assert hasattr(jm, name), name
    for name in ("encode_point", "decode_point", "Point", "LineFramer", "validate", "SCHEMAS"):
        assert name in jm.__all__
    assert not any(n.startswith("BY_") for n in js.__all__)
    assert js.LineFramer is not lsst_tcpip.LineFramer


def test_encode_writes_keys_in_spec_order(jm: ModuleType) -> None:
    line = jm.encode(point(jm))
    assert line == (
        b'{"kind": "point", "x": 3, "y": 1.5, "note": null, "color": 2, "shape": "round", '
        b'"nums": [1, null]}\n'
    )
    assert (
        jm.encode_point(x=3, y=1.5, note=None, color=jm.Color.Green, shape="round", nums=(1, None))
        == line
    )
    with_label = jm.encode(point(jm, label="abc", note="n"))
    assert list(json.loads(with_label)) == [
        "kind", "x", "y", "label", "note", "color", "shape", "nums",
    ]  # fmt: skip
    assert jm.decode(line[:-1]) == point(jm)
    assert jm.to_dict(point(jm)) == {
        "x": 3, "y": 1.5, "label": None, "note": None, "color": 2, "shape": "round",
        "nums": [1, None],
    }  # fmt: skip


def test_optional_absent_and_nullable_null(jm: ModuleType) -> None:
    base = json.loads(jm.encode(point(jm)))
    assert "label" not in base and base["note"] is None
    with pytest.raises(FieldValueError) as info:  # optional: absent, not null
        jm.decode_message(dict(base, label=None))
    assert info.value.field_path == "point.label"
    missing = {k: v for k, v in base.items() if k != "note"}
    with pytest.raises(FieldValueError, match="the key 'note' is missing") as info:
        jm.decode_message(missing)  # nullable: present, maybe null
    assert info.value.field_path == "point.note"
    assert jm.decode_message(dict(base, label="ab")).label == "ab"


#: (a change to a valid point, the field named, whether the JSON Schema refuses it too);
#: the schema cannot say "bytes" (max_bytes), "no fraction" (1.0 is an integer to JSON
#: Schema) or "not a tuple"
BAD_VALUES: list[tuple[dict[str, Any], str, bool]] = [
    ({"x": -1}, "point.x", True),
    ({"x": 101}, "point.x", True),
    ({"x": 1.0}, "point.x", False),
    ({"x": True}, "point.x", True),
    ({"y": "1"}, "point.y", True),
    ({"y": False}, "point.y", True),
    ({"label": "ab1"}, "point.label", True),
    ({"label": ""}, "point.label", True),
    ({"note": "abcde"}, "point.note", False),
    ({"note": "\u00e9\u00e9\u00e9"}, "point.note", False),  # 6 bytes in UTF-8
    ({"color": 3}, "point.color", True),
    ({"color": "Red"}, "point.color", True),
    ({"shape": "oval"}, "point.shape", True),
    ({"nums": []}, "point.nums", True),
    ({"nums": [1, 2, 3, 4]}, "point.nums", True),
    ({"nums": [1, "2"]}, "point.nums[1]", True),
    ({"nums": (1,)}, "point.nums", False),  # a tuple is not a JSON array
]


@pytest.mark.parametrize(("over", "field", "schema_too"), BAD_VALUES)
def test_values_outside_the_spec(
    jm: ModuleType, over: dict[str, Any], field: str, schema_too: bool
) -> None:
    obj = dict(json.loads(jm.encode(point(jm))), **over)
    with pytest.raises(FieldValueError) as info:
        jm.decode_message(obj)
    assert info.value.field_path == field and info.value.protocol == "jmini"
    if schema_too:
        with pytest.raises(FieldValueError) as schema:
            jm.validate("point", obj)
        assert schema.value.field_path.startswith(field.split("[")[0])
    elif over != {"nums": (1,)}:
        jm.validate("point", obj)  # the schema is looser here


def test_values_on_the_edge_are_accepted(jm: ModuleType) -> None:
    for over in (
        {"x": 0},
        {"x": 100},
        {"y": 7},  # an int where a float goes
        {"note": "abcd"},
        {"note": "\u00e9\u00e9"},  # 4 bytes
        {"nums": (None, None, None)},
        {"color": jm.Color.Red},
    ):
        msg = point(jm, **over)
        assert jm.decode(jm.encode(msg)[:-1]) == msg
        jm.validate("point", jm.to_wire(msg))


def test_encode_refuses_invalid_messages(jm: ModuleType) -> None:
    for over in ({"x": 101}, {"label": "A"}, {"color": 5}, {"nums": ()}):
        with pytest.raises(LocalProtocolError) as info:
            jm.encode(point(jm, **over))
        assert info.value.field_path.startswith("point.")


def test_extra_keys_refused(jm: ModuleType) -> None:
    obj = dict(json.loads(jm.encode(point(jm))), z=1, w=2)
    with pytest.raises(FieldValueError, match="unexpected key\\(s\\) 'z', 'w'") as info:
        jm.decode_message(obj)
    assert info.value.field_path == "point"
    with pytest.raises(FieldValueError):
        jm.validate("point", obj)


def sample(jm: ModuleType) -> Any:
    return jm.Sample(
        value=(1.0, 2.0, 3.5),
        valueTimestamp=(10.0, 11.0, 12.0),
        level=0.5,
        levelTimestamp=13.0,
        timestamp=14.0,
    )


def test_numbered_and_timestamped_keys(jm: ModuleType) -> None:
    wire = jm.to_wire(sample(jm))
    assert list(wire) == [
        "kind", "value1", "value2", "value3", "value1Timestamp", "value2Timestamp",
        "value3Timestamp", "level", "levelTimestamp", "timestamp",
    ]  # fmt: skip
    assert [wire[f"value{i}"] for i in (1, 2, 3)] == [1.0, 2.0, 3.5]
    assert wire["levelTimestamp"] == 13.0
    assert jm.decode(jm.encode(sample(jm))[:-1]) == sample(jm)
    assert jm.to_dict(sample(jm))["value"] == [1.0, 2.0, 3.5]
    assert list(jm.SCHEMAS["sample"]["properties"]) == list(wire)
    assert jm.SCHEMAS["sample"]["required"] == list(wire)
    for gone in ("value3", "value2Timestamp", "levelTimestamp"):
        with pytest.raises(FieldValueError, match=f"the key '{gone}' is missing") as info:
            jm.decode_message({k: v for k, v in wire.items() if k != gone})
        assert info.value.field_path == f"sample.{gone}"


def test_extra_keys_ignored(jm: ModuleType) -> None:
    wire = dict(jm.to_wire(sample(jm)), value4=9.0, other="x")
    assert jm.decode_message(wire) == sample(jm)
    jm.validate("sample", wire)
    assert b"value4" not in jm.encode(sample(jm))


def test_extra_keys_first(jm: ModuleType) -> None:
    msg = jm.Request(name="go", seq=4, params={"speed": 2, "to": [1, 2]})
    line = jm.encode(msg)
    assert line == b'{"speed": 2, "to": [1, 2], "kind": "do_go", "seq": 4}\n'
    assert jm.encode_request("go", 4, {"speed": 2, "to": [1, 2]}) == line
    assert jm.decode(line[:-1]) == msg
    assert jm.encode_request("go", 4) == b'{"kind": "do_go", "seq": 4}\n'
    # extra keys anywhere on the wire are collected in wire order
    assert jm.decode(b'{"a": 1, "kind": "do_x", "b": 2, "seq": 1}').params == {"a": 1, "b": 2}


def test_extra_keys_last(jm: ModuleType) -> None:
    msg = jm.Event(name="e", tags=("a",), meta={"k": 1}, details={"z": None})
    line = jm.encode(msg)
    assert line == b'{"kind": "ev_e", "tags": ["a"], "meta": {"k": 1}, "z": null}\n'
    assert jm.decode(line[:-1]) == msg
    assert jm.encode(jm.Event(name="e", tags=())) == b'{"kind": "ev_e", "tags": []}\n'
    with pytest.raises(FieldValueError) as info:
        jm.decode(b'{"kind": "ev_e", "tags": [1]}')
    assert info.value.field_path == "event.tags[0]"


def test_selection_by_const_prefix_and_catch_all(jm: ModuleType) -> None:
    assert type(jm.decode(b'{"kind": "do_", "seq": 1}')) is jm.Request
    assert type(jm.decode(b'{"kind": "ev_x", "tags": []}')) is jm.Event
    other = jm.decode(b'{"kind": "do", "n": 1}')
    assert other == jm.Other(name="do", details={"n": 1})
    assert jm.encode(other) == b'{"kind": "do", "n": 1}\n'
    with pytest.raises(FieldValueError) as info:
        jm.decode(b'{"kind": 1}')  # a catch-all of str: an int selects it, then fails
    assert info.value.field_path == "other.kind"
    with pytest.raises(FieldValueError) as info:
        jm.decode(b'{"x": 1}')
    assert info.value.field_path == "kind"
    with pytest.raises(FieldValueError, match="expected a JSON object"):
        jm.decode(b"[]")
    with pytest.raises(FieldValueError, match="expected request, got other"):
        jm.decode_request({"kind": "zz"})


def test_single_message_without_a_selector(js: ModuleType) -> None:
    """JSTRICT has one message and no selector: every object is a reading."""
    assert js.decode(b'{"v": 1}') == js.Reading(v=1)
    with pytest.raises(FieldValueError, match="unexpected key"):
        js.decode(b'{"v": 1, "kind": "x"}')


def test_strict_dialect(js: ModuleType) -> None:
    assert js.encode(js.Reading(v=1.5, unit="V")) == b'{"v": 1.5, "unit": "V"};'
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(LocalProtocolError, match="not JSON compliant"):
            js.encode(js.Reading(v=bad))
        with pytest.raises(LocalProtocolError):
            js.encode_line([bad])
    for token in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(JsonSyntaxError, match=f"{token} is not standard JSON") as info:
            js.decode(f'{{"v": {token}}}'.encode())
        assert isinstance(info.value, json.JSONDecodeError)
    assert js.decode_line(b"12345678901234567890123") == 12345678901234567890123


def test_python_dialect_writes_nan(jm: ModuleType) -> None:
    msg = point(jm, y=float("nan"))
    line = jm.encode(msg)
    assert b'"y": NaN' in line
    assert repr(jm.decode(line[:-1])) == repr(msg)


def test_ascii_encoding(js: ModuleType) -> None:
    assert js.encode(js.Reading(v=1, unit="\u00b5V")) == b'{"v": 1, "unit": "\\u00b5V"};'
    with pytest.raises(TextDecodeError) as info:
        js.decode('{"v": 1, "unit": "\u00b5V"}'.encode())
    assert info.value.encoding == "ascii" and info.value.start == 18


def test_custom_terminator_and_line_limit(jm: ModuleType, js: ModuleType) -> None:
    framer = js.LineFramer()
    assert (framer.terminator, framer.max_line_bytes) == (b";", 32)
    framer.feed(b'{"v": 1};{"v": 2}\r\n;' + b"x" * 33 + b";" + b"y" * 32 + b";")
    assert js.decode(framer.next_line()) == js.Reading(v=1)
    assert js.decode(framer.next_line()) == js.Reading(v=2)  # CRLF is JSON whitespace here
    with pytest.raises(LineTooLongError) as info:
        framer.next_line()
    assert (info.value.limit, info.value.actual, info.value.offset) == (32, 33, 20)
    assert framer.next_line() == b"y" * 32
    assert framer.next_line() is NEED_DATA
    lines = jm.LineFramer()
    lines.feed(b'{"kind": "do_a", "seq": 1}\n\n' + b" " * 201 + b"\n")
    assert jm.decode(lines.next_line()) == jm.Request(name="a", seq=1)
    assert lines.next_line() == b""
    with pytest.raises(LineTooLongError):
        lines.next_line()
    # a framer can be given another terminator and limit than the spec's
    other = jm.LineFramer(terminator=b"\r\n", max_line_bytes=4)
    other.feed(b"1234\r\n12345\r\n")
    assert other.next_line() == b"1234"
    with pytest.raises(LineTooLongError):
        other.next_line()


def test_schemas_agree_with_the_checker(jm: ModuleType) -> None:
    for msg in (
        point(jm),
        point(jm, label="z", note="abcd"),
        sample(jm),
        jm.Request(name="r", seq=-1, params={"p": [None]}),
        jm.Event(name="", tags=("t",), raw=[1], details={"q": 1}),
        jm.Other(name="zzz", details={"x": {}}),
    ):
        wire = jm.to_wire(msg)
        jm.validate(msg.MESSAGE_NAME, wire)
        assert jm.decode_message(wire) == msg
    assert jm.SCHEMAS["point"]["additionalProperties"] is False
    kind = {"type": "string", "pattern": "^do_"}
    assert jm.SCHEMAS["request"]["properties"]["kind"] == kind
    assert jm.SCHEMAS["point"]["properties"]["color"] == {"enum": [1, 2]}
    assert jm.SCHEMAS["point"]["properties"]["note"] == {
        "anyOf": [{"type": "string"}, {"type": "null"}]
    }


@given(data=st.data())
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_strategies_round_trip(jm: ModuleType, jm_strategies: ModuleType, data: Any) -> None:
    msg = data.draw(jm_strategies.message_values())
    line = jm.encode(msg)
    assert line.endswith(jm.TERMINATOR) and line.count(jm.TERMINATOR) == 1
    assert jm.decode(line[: -len(jm.TERMINATOR)]) == msg
    jm.validate(msg.MESSAGE_NAME, jm.to_wire(msg))


# ---- regressions of fixed generator bugs -----------------------------------------------------


def test_non_selector_const_is_checked_on_decode(tmp_path: Path) -> None:
    mod = _generate(
        tmp_path,
        "jconst",
        "messages:\n  hello:\n    keys:\n"
        "      - {name: version, type: int, const: 2}\n      - {name: x, type: int}\n",
    )
    assert mod.encode(mod.Hello(x=1)) == b'{"version": 2, "x": 1}\r\n'
    for obj in ({"x": 1}, {"version": 3, "x": 1}):
        with pytest.raises(FieldValueError):
            mod.validate("hello", obj)  # the schema requires the const...
        with pytest.raises(FieldValueError, match="version"):
            mod.decode_message(obj)  # ...and so does the checker


@pytest.mark.parametrize("name", ["line", "text", "message"])
def test_message_names_that_shadow_the_module_api(tmp_path: Path, name: str) -> None:
    # decode_line/encode_line, decode_text, decode_message and the Message alias would all be
    # redefined by a message of that name: loading refuses the name (or the module must work)
    try:
        mod = _generate(
            tmp_path,
            f"jname{name}",
            f"select: k\nmessages:\n  {name}:\n    keys:\n"
            "      - {name: k, type: str, const: a}\n      - {name: x, type: int}\n"
            "  other:\n    keys:\n"
            "      - {name: k, type: str, const: b}\n",
        )
    except SpecError:
        return
    assert type(mod.decode(b'{"k": "a", "x": 1}')).MESSAGE_NAME == name
    assert mod.decode_line(b'{"k": "b"}') == {"k": "b"}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("enums:\n", "enums:\n  Point:\n    values: {A: 1}\n"),  # the class Point wins
        ("constants:\n", "constants:\n  TERMINATOR: x\n"),  # the framing constant wins
        ("constants:\n", "constants:\n  BY_KIND: 1\n"),  # the selector table wins
    ],
    ids=["enum-like-a-class", "constant-TERMINATOR", "constant-BY_KIND"],
)
def test_spec_names_that_collide_in_the_module(tmp_path: Path, old: str, new: str) -> None:
    err = _load_error(tmp_path, _replace(old, new))
    assert "Point" in err.message or "TERMINATOR" in err.message or "BY_KIND" in err.message


def test_bool_selector(tmp_path: Path) -> None:
    mod = _generate(
        tmp_path,
        "jbool",
        "select: ok\nmessages:\n"
        "  good:\n    keys:\n      - {name: ok, type: bool, const: true}\n"
        "  bad:\n    keys:\n      - {name: ok, type: bool, const: false}\n"
        "      - {name: why, type: str}\n",
    )
    line = mod.encode(mod.Good())
    assert line == b'{"ok": true}\r\n'
    assert mod.decode(line[:-2]) == mod.Good()


def test_flag_enum_schema_accepts_combinations(tmp_path: Path) -> None:
    mod = _generate(
        tmp_path,
        "jflags",
        "enums:\n  Bits: {values: {A: 1, B: 2}, flags: true}\n"
        "messages:\n  f:\n    keys:\n      - {name: bits, type: int, enum: Bits}\n",
    )
    assert mod.decode_message({"bits": 3}).bits == mod.Bits.A | mod.Bits.B
    mod.validate("f", {"bits": 3})


def test_unanchored_pattern_means_the_same_in_schema_and_checker(jm: ModuleType) -> None:
    obj = dict(jm.to_wire(point(jm)), label="ab1")
    with pytest.raises(FieldValueError):
        jm.decode_message(obj)
    with pytest.raises(FieldValueError):
        jm.validate("point", obj)


def test_numbered_key_name_with_braces(tmp_path: Path) -> None:
    mod = _generate(
        tmp_path,
        "jbrace",
        "messages:\n  m:\n    keys:\n"
        '      - {name: "t{i}", field: t, type: array, items: {type: int}, count: 2, '
        "numbered: true}\n",
    )
    assert mod.decode_message({"t{i}1": 1, "t{i}2": 2}) == mod.M(t=(1, 2))
    assert mod.encode(mod.M(t=(1, 2))) == b'{"t{i}1": 1, "t{i}2": 2}\r\n'


@pytest.mark.parametrize(
    "doc",
    ["    doc: 'ends with a \"quote\"'\n", "    doc: 'a key doc on\n\n      two lines'\n"],
    ids=["message-doc-quote", "key-doc-newline"],
)
def test_docs_with_quotes_and_newlines(tmp_path: Path, doc: str) -> None:
    if "quote" in doc:
        body = f"messages:\n  m:\n{doc}    keys:\n      - {{name: x, type: int}}\n"
    else:
        body = "messages:\n  m:\n    keys:\n      - name: x\n        type: int\n    " + doc
    mod = _generate(tmp_path, "jdoc", body)
    assert mod.M(x=1).x == 1


@pytest.mark.parametrize("terminator", [b"\n\n", b"\r\n\r\n"])
def test_self_overlapping_terminator_is_refused(jm: ModuleType, terminator: bytes) -> None:
    # b"x\n\n\n" could be the line b"x" or b"x\n": a terminator that begins with its own end
    # makes lines ambiguous, so the framer (and the spec loader) refuse it
    with pytest.raises(LocalProtocolError, match="overlaps itself"):
        jm.LineFramer(terminator=terminator)
    for fine in (b"\r\n", b"END", b"abca"[:3], b"\x00"):
        jm.LineFramer(terminator=fine)


# ---- regressions of fixed generator bugs: flags, patterns, names, docs, selectors ------------


def test_negative_flag_value(tmp_path: Path) -> None:
    mod = _generate(
        tmp_path,
        "jnegflag",
        "enums:\n  Bits: {values: {A: 1, B: 2}, flags: true}\n"
        "messages:\n  f:\n    keys:\n      - {name: bits, type: int, enum: Bits}\n",
    )
    with pytest.raises(FieldValueError):
        mod.validate("f", {"bits": -1})  # the schema says minimum 0
    with pytest.raises(FieldValueError):
        mod.decode_message({"bits": -1})  # today: IntFlag(-1) is Bits.A|B, i.e. 3 on re-encode


def test_prefix_key_with_an_alternation_pattern(tmp_path: Path) -> None:
    mod = _generate(
        tmp_path,
        "jalt",
        "select: k\nmessages:\n  p:\n    keys:\n"
        "      - {name: k, type: str, prefix: x_, pattern: '^a$|^b$'}\n",
    )
    assert mod.decode_message({"k": "x_b"}) == mod.P(k="b")
    mod.validate("p", {"k": "x_b"})  # today: '^x_(?:a$|^b)$' cannot match


def test_field_named_like_its_message_class(tmp_path: Path) -> None:
    try:
        mod = _generate(
            tmp_path, "jself", "messages:\n  point:\n    keys:\n      - {name: Point, type: int}\n"
        )
    except SpecError:
        return
    assert mod.encode_point(1) == b'{"Point": 1}\r\n'  # today: 'int' object is not callable


def test_message_named_json_keeps_the_json_values_strategy(tmp_path: Path) -> None:
    try:
        _generate(
            tmp_path,
            "jjson",
            "select: k\nmessages:\n  json:\n    keys:\n      - {name: k, type: str, const: a}\n"
            "  other:\n    keys:\n      - {name: k, type: str, const: b}\n",
        )
    except SpecError:
        return
    text = (tmp_path / "jsongen_jjson" / "jjson_strategies.py").read_text()
    assert text.count("def json_values(") == 1  # today: twice, the message's one wins


def test_constant_doc_on_two_lines(tmp_path: Path) -> None:
    mod = _generate(
        tmp_path,
        "jcdoc",
        "constants:\n  C:\n    doc: 'two\n\n      lines'\n    value: 1\n"
        "messages:\n  m:\n    keys:\n      - {name: x, type: int}\n",
    )  # today: NameError: name 'lines' is not defined, at import
    assert mod.C == 1


def test_spec_doc_with_triple_quotes(tmp_path: Path) -> None:
    mod = _generate(
        tmp_path,
        "jsdoc",
        'doc: \'say """hi""" \\\\d\'\nmessages:\n  m:\n    keys:\n      - {name: x, type: int}\n',
    )  # today: ruff cannot parse the generated module
    assert mod.__doc__ is not None and '"""hi"""' in mod.__doc__


def test_int_and_bool_selector_constants(tmp_path: Path) -> None:
    mod = _generate(
        tmp_path,
        "jmixed",
        "select: k\nmessages:\n  a:\n    keys:\n      - {name: k, type: int, const: 1}\n"
        "  b:\n    keys:\n      - {name: k, type: bool, const: true}\n",
    )
    assert type(mod.decode(b'{"k": 1}')) is mod.A and type(mod.decode(b'{"k": true}')) is mod.B
    assert set(mod.BY_K.values()) == {mod.A, mod.B}  # today: {1: B}; the loader could refuse


def test_prefix_selectors_only_give_strategies_without_an_empty_filter(tmp_path: Path) -> None:
    _generate(
        tmp_path,
        "jpfx",
        "select: id\nmessages:\n  cmd:\n    keys:\n      - {name: id, type: str, prefix: cmd_}\n"
        "  evt:\n    keys:\n      - {name: id, type: str, prefix: evt_}\n",
    )
    strategies = tmp_path / "jsongen_jpfx" / "jpfx_strategies.py"
    assert "not in ()" not in strategies.read_text()  # ruff RUF060: always true
    config = ["--config", str(REPO / "pyproject.toml"), "--extend-ignore", "E501"]
    check = subprocess.run(
        [sys.executable, "-m", "ruff", "check", *config, str(strategies)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def _generate(tmp_path: Path, protocol: str, body: str) -> ModuleType:
    head = f"daqwire: 1\nprotocol: {protocol}\ntitle: t\nfamily: json_lines\n"
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir(exist_ok=True)
    path = spec_dir / f"{protocol}.yaml"
    path.write_text(head + body)
    pkg = f"jsongen_{protocol}"
    out = tmp_path / pkg
    out.mkdir(exist_ok=True)
    (out / "__init__.py").write_text("")
    for f in render_spec(load_spec(path), f"specs/{protocol}.yaml"):
        (out / f.name).write_text(f.text, "utf-8")
    (module,) = import_generated(tmp_path, pkg, protocol)
    return module


# ---- generated code quality --------------------------------------------------------------------

MYPY = [sys.executable, "-m", "mypy", "--strict"]


def test_output_passes_ruff_and_mypy_strict(gen_root: Path, tmp_path: Path) -> None:
    out = gen_root / PKG
    config = ["--config", str(REPO / "pyproject.toml")]
    ruff = [sys.executable, "-m", "ruff"]
    check = subprocess.run(
        [*ruff, "check", *config, "--extend-ignore", "E501,RUF059", str(out)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = subprocess.run(
        [*ruff, "format", *config, "--check", str(out)], capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    # mypy sees the codecs as daqwire.generated modules (where their strategies import them)
    modules = stage_as_generated(stage := tmp_path / "stage", out.glob("j*.py"))
    mypy = subprocess.run(
        [*MYPY, "--config-file", str(REPO / "pyproject.toml")]
        + [arg for m in modules for arg in ("-m", m)],
        capture_output=True,
        text=True,
        cwd=stage,
    )
    assert mypy.returncode == 0, mypy.stdout


@pytest.mark.parametrize("name", ["lsst_tcpip", "m2", "mtmount_telemetry"])
def test_committed_modules_are_what_the_specs_render(name: str) -> None:
    spec = load_spec(REPO / "specs" / f"{name}.yaml", display_name=f"specs/{name}.yaml")
    files = {f.name: f.text for f in render_spec(spec, f"specs/{name}.yaml")}
    assert sorted(files) == [f"{name}.py", f"{name}_strategies.py"]
    for fname, text in files.items():
        assert (REPO / "generated" / fname).read_text("utf-8") == text, fname
