"""``daqwire specs``: list the shipped specs and show what one declares, without opening YAML.

Specs are loaded through :func:`daqwire.codegen.load_spec`, the generator's own loader, so a
broken spec fails here with the same :class:`~daqwire.errors.SpecError` as in ``generate``.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import textwrap
from pathlib import Path
from typing import Any, TextIO

from daqwire.errors import SpecError

__all__ = [
    "DESCRIPTION",
    "EPILOG",
    "add_parser",
    "describe",
    "render_text",
    "run_list",
    "run_show",
]

#: output width of the text views
WIDTH = 100

DESCRIPTION = """\
See what the wire-format specs declare without opening YAML. Every spec is loaded and
checked by the generator's own loader (daqwire.codegen), so what you see is exactly what
`daqwire generate` turns into code, and a broken spec fails with the same message.
"""

EPILOG = """\
examples:
  daqwire specs list
  daqwire specs show pyexplabsys
  daqwire specs show m2 --json
  daqwire specs show path/to/myproto.yaml
  daqwire specs list --specs-dir path/to/specs
"""

LIST_DESCRIPTION = """\
List the specs of a folder (default: the ones shipped with daqwire), one row each: name,
family, number of messages, file and title. Every spec is loaded and checked by the
generator's loader; exit status 2 if one does not load (its error goes to stderr).
"""

SHOW_DESCRIPTION = """\
Show what one spec declares: protocol, title, family and framing, constants, enums,
messages with their fields (types and constraints), services, and the generated modules
with the names to start from. Exit status 2 if the spec is unknown (the known names are
listed) or does not load (the loader's message: file, line, column and path in the spec).
"""

LIST_EPILOG = """\
examples:
  daqwire specs list
  daqwire specs list --json
  daqwire specs list --specs-dir path/to/specs
"""

SHOW_EPILOG = """\
NAME is a spec file name without .yaml (see `daqwire specs list`); anything ending in
.yaml/.yml or containing a / is read as a path.

examples:
  daqwire specs show pyexplabsys
  daqwire specs show aartfaac
  daqwire specs show cdtp2 --json
  daqwire specs show path/to/myproto.yaml
  daqwire specs show myproto --specs-dir path/to/specs
"""

#: constraint keys whose strings are wire text (shown quoted), not names
QUOTED = {"const", "prefix", "pattern", "separator", "reserved", "literal", "terminator"}

#: one line on each family, shown next to it
FAMILY_SHAPES = {
    "binary": "fixed binary headers, text and bytes blocks, numeric arrays",
    "text_commands": "text request and reply datagrams with separator grammars",
    "msgpack_frames": "ZeroMQ frames of msgpack objects and raw payload frames",
    "json_lines": "one JSON value per terminated line",
}


# -- loading ---------------------------------------------------------------------------------


def _default_specs_dir() -> Path:
    from daqwire.codegen.render import default_specs_dir

    return default_specs_dir()


def _spec_files(specs_dir: Path) -> list[Path]:
    return sorted(specs_dir.glob("*.yaml"))


def _load(path: Path, shown: str) -> Any:
    from daqwire.codegen import load_spec

    return load_spec(path, display_name=shown)


def _is_path(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text


# -- description: one JSON-able dict per spec ------------------------------------------------


def _value(value: Any) -> Any:
    """A spec value as JSON: tuples as lists, everything else as it is."""
    if isinstance(value, tuple | list):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _value(v) for k, v in value.items()}
    return value


def _drop_empty(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` without the constraint keys that are unset (None, False, empty)."""
    keep = {"name", "type", "doc"}
    return {k: v for k, v in d.items() if k in keep or not _unset(v)}


def _unset(value: Any) -> bool:
    if value is None or value is False:
        return True
    return isinstance(value, list | dict | str) and not value


def _binary_field(f: Any) -> dict[str, Any]:
    from daqwire.codegen.model import ArrayField, BlockField, PaddingField, ScalarField

    if isinstance(f, ScalarField):
        order = f.byte_order if f.size > 1 else None
        return _drop_empty(
            {
                "name": f.name,
                "type": f.type,
                "byte_order": order,
                "const": f.const,
                "enum": f.enum,
                "min": f.min,
                "max": f.max,
                "length_of": f.length_of,
                "doc": f.doc,
            }
        )
    if isinstance(f, PaddingField):
        return _drop_empty(
            {
                "name": f.name,
                "type": "padding",
                "size": f.size,
                "fill": f.fill,
                "check": f.check,
                "doc": f.doc,
            }
        )
    if isinstance(f, BlockField):
        keywords = [
            _drop_empty(
                {
                    "name": k.keyword,
                    "type": k.type,
                    "min": k.min,
                    "max": k.max,
                    "optional": not k.required,
                    "doc": k.doc,
                }
            )
            for k in f.keywords
        ]
        return _drop_empty(
            {
                "name": f.name,
                "type": f.kind,
                "encoding": f.encoding if f.kind == "text" else None,
                "length": f.length,
                "size": f.size,
                "format": "fits_header" if f.fits else None,
                "end_card": f.end_card if f.fits else None,
                "keywords": keywords,
                "doc": f.doc,
            }
        )
    assert isinstance(f, ArrayField)
    return _drop_empty(
        {
            "name": f.name,
            "type": "array",
            "dtype": f.dtype,
            "byte_order": f.byte_order if f.itemsize > 1 else None,
            "length": f.length,
            "shape": list(f.shape),
            "order": f.order,
            "order_param": f.order_param,
            "doc": f.doc,
        }
    )


def _fixed_size(m: Any) -> int | None:
    """Bytes of a binary message whose every field has a fixed size, else None."""
    from daqwire.codegen.model import BlockField, PaddingField, ScalarField

    total = 0
    for f in m.fields:
        if isinstance(f, ScalarField | PaddingField):
            total += f.size
        elif isinstance(f, BlockField) and f.size is not None and f.length is None:
            total += f.size
        else:
            return None
    return total


def _text_part(p: Any) -> dict[str, Any]:
    return _drop_empty(
        {
            "name": p.name,
            "type": p.type,
            "pattern": p.pattern,
            "separator": p.separator,
            "shape": p.shape if p.type == "json" else None,
            "keys": list(p.keys),
            "grammar": p.grammar,
            "examples_from": p.examples_from,
            "literal": p.literal,
            "of": [_text_part(alt) for alt in p.of],
            "doc": p.doc,
        }
    )


def _mp_object(o: Any) -> dict[str, Any]:
    items = None
    if o.items is not None:
        items = _drop_empty(
            {"type": o.items.type, "record": o.items.record, "max_bytes": o.items.max_bytes}
        )
    return _drop_empty(
        {
            "name": o.name,
            "type": o.type,
            "const": _value(o.const) if o.has_const else None,
            "enum": o.enum,
            "items": items,
            "count": o.count,
            "max_items": o.max_items,
            "max_bytes": o.max_bytes,
            "optional": o.optional,
            "nullable": o.nullable,
            "selector": o.selector,
            "doc": o.doc,
        }
    )


def _json_item(it: Any) -> dict[str, Any]:
    return _drop_empty(
        {
            "type": it.type,
            "nullable": it.nullable,
            "min": it.min,
            "max": it.max,
            "enum": it.enum_type or (_value(it.enum_values) if it.enum_values else None),
            "pattern": it.pattern,
            "max_bytes": it.max_bytes,
            "items": _json_item(it.items)
            if it.items is not None and it.items.type != "any"
            else None,
            "count": it.count,
            "min_items": it.min_items,
            "max_items": it.max_items,
        }
    )


def _json_key(k: Any) -> dict[str, Any]:
    item = _json_item(k.item)
    out: dict[str, Any] = {"name": k.name, "type": item.pop("type")}
    out.update(
        _drop_empty(
            {
                "field": k.field if k.field != k.name else None,
                "const": _value(k.const),
                "prefix": k.prefix,
                "optional": k.optional,
                "numbered": k.numbered,
                "timestamped": k.timestamped,
                "selector": k.selector,
            }
        )
    )
    out.update(item)
    out["doc"] = k.doc
    return out


def _messages(spec: Any) -> list[dict[str, Any]]:
    family = spec.family
    if family == "binary":
        out = []
        for m in spec.messages:
            out.append(
                {
                    "name": m.name,
                    "class": m.class_name,
                    "doc": m.doc,
                    "fixed_size": _fixed_size(m),
                    "prefix_size": m.prefix_size,
                    "fields": [_binary_field(f) for f in m.fields],
                }
            )
        return out
    if family == "text_commands":
        return [
            {
                "name": m.name,
                "direction": m.direction,
                "form": m.form,
                "part": _text_part(m.part) if m.part is not None else None,
                "replies": list(m.replies),
                "idempotent": m.idempotent,
                "cache": m.cache,
                "method": m.method,
                "doc": m.doc,
            }
            for m in spec.text.messages.values()
        ]
    if family == "msgpack_frames":
        return [
            {
                "name": m.name,
                "class": m.class_name,
                "select_value": m.select_value,
                "extra_frames": m.extra_frames,
                "doc": m.doc,
                "frames": [
                    _drop_empty(
                        {
                            "name": fr.name,
                            "type": "raw" if fr.raw else "objects",
                            "repeat": fr.repeat,
                            "optional": fr.optional,
                            "max_bytes": fr.max_bytes,
                            "objects": [_mp_object(o) for o in fr.objects],
                            "doc": fr.doc,
                        }
                    )
                    for fr in m.frames
                ],
            }
            for m in spec.msgpack.messages
        ]
    assert family == "json_lines"
    out = []
    for m in spec.json.messages:
        sel = m.selector
        selected_by: dict[str, Any] | None = None
        if sel is not None:
            kind = m.selector_kind
            value = sel.const if kind == "const" else sel.prefix if kind == "prefix" else None
            selected_by = {"key": sel.name, "kind": kind, "value": _value(value)}
        out.append(
            {
                "name": m.name,
                "class": m.class_name,
                "direction": m.direction,
                "wire_name": m.wire_name,
                "selected_by": selected_by,
                "extra_keys": m.extra_keys,
                "extra_field": m.extra_field,
                "doc": m.doc,
                "keys": [_json_key(k) for k in m.keys],
            }
        )
    return out


def _framing(spec: Any) -> dict[str, Any]:
    family = spec.family
    if family == "binary":
        return {"byte_order": spec.byte_order}
    if family == "text_commands":
        return {"encoding": spec.text.encoding}
    if family == "msgpack_frames":
        mp = spec.msgpack
        return {
            "byte_order": spec.byte_order,
            "select": mp.select,
            "select_enum": mp.select_enum,
            "timestamps": mp.timestamps,
            "error_prefix": mp.errors.get("prefix", ""),
        }
    js = spec.json
    fr = js.framing
    return {
        "terminator": fr.terminator,
        "encoding": fr.encoding,
        "max_line_bytes": fr.max_line_bytes,
        "dialect": fr.dialect,
        "framing_from": js.framing_ref,
        "select": js.select,
        "doc": fr.doc,
    }


def _generated(spec: Any, package: str | None) -> dict[str, Any]:
    """The modules ``daqwire generate`` writes for ``spec`` and the names to start from.

    ``package`` is None for a spec outside ``specs/``: its modules go wherever ``--out`` says.
    """
    p = spec.protocol
    pkg = f"{package}." if package else ""
    modules = [{"name": f"{pkg}{p}", "what": _module_what(spec)}]
    api: list[dict[str, Any]] = []
    family = spec.family
    if family == "binary":
        modules.append({"name": f"{pkg}{p}_construct", "what": "the same layouts in construct"})
        for m in spec.messages:
            c, n = m.class_name, m.name
            api.append({"names": [c], "what": f"the {n} message as a dataclass"})
            api.append({"names": [f"encode_{n}", f"decode_{n}"], "what": "bytes <-> message"})
            api.append(
                {"names": [f"{c}Decoder"], "what": "incremental decoder: feed() stream bytes"}
            )
        strategies = [f"{m.name}s" for m in spec.messages]
    elif family == "text_commands":
        messages = spec.text.messages
        # a service of datagrams only (no replies) gets no classes, as in the generator
        served = [
            s
            for s in spec.text.services.values()
            if any(messages[r].direction == "request" for r in s.requests)
        ]
        for s in served:
            c = s.class_name
            api.append({"names": [f"{c}Requests"], "what": f"builders of the {s.name} requests"})
            api.append(
                {
                    "names": [f"{c}ClientStub", f"Async{c}ClientStub"],
                    "what": "typed clients over a transport you give",
                }
            )
            api.append(
                {
                    "names": [f"{c}Handler", f"{c}Dispatcher"],
                    "what": "server side: implement the handler, dispatch datagrams",
                }
            )
            api.append(
                {
                    "names": [f"match_{s.name}_reply", f"identify_{s.name}_request"],
                    "what": "name what a datagram is, as the conformance kit does",
                }
            )
        api.append(
            {
                "names": ["encode_<message>", "decode_<message>"],
                "what": "one codec pair per message",
            }
        )
        strategies = [f"{s.name}_requests" for s in served]
        strategies += [f"{s.name}_calls" for s in served]
        strategies += ["datagrams"]
    elif family == "msgpack_frames":
        mp = spec.msgpack
        api.append(
            {
                "names": [m.class_name for m in mp.messages],
                "what": "one dataclass per message",
            }
        )
        api.append(
            {
                "names": ["encode_<message>", "decode_<message>"],
                "what": "message <-> list of frames",
            }
        )
        if mp.select:
            api.append(
                {"names": ["decode_frames"], "what": f"any message, told apart by {mp.select}"}
            )
        if mp.records:
            api.append({"names": list(mp.records), "what": "records (fixed-size arrays)"})
        strategies = [f"{m.name}_values" for m in mp.messages]
        strategies += ["message_values"] if mp.select else []
    else:
        js = spec.json
        api.append(
            {
                "names": ["LineFramer", "encode_line", "decode_line"],
                "what": "the line framing: bytes <-> JSON values",
            }
        )
        if js.messages:
            api.append(
                {
                    "names": [m.class_name for m in js.messages],
                    "what": "one dataclass per message",
                }
            )
            api.append(
                {
                    "names": ["decode", "encode"],
                    "what": "any message <-> one line"
                    + (f", told apart by {js.select}" if js.select else ""),
                }
            )
            api.append(
                {
                    "names": ["encode_<message>", "decode_<message>"],
                    "what": "one codec pair per message",
                }
            )
        strategies = ["json_values"]
        strategies += ["message_values"] if js.messages else []
    modules.append({"name": f"{pkg}{p}_strategies", "what": "hypothesis strategies"})
    api.append({"names": strategies, "what": f"hypothesis strategies, in {p}_strategies"})
    return {"package": package, "modules": modules, "api": api}


def _module_what(spec: Any) -> str:
    return {
        "binary": "dataclasses, encoders, decoders, incremental stream decoders",
        "text_commands": "codecs, request builders, dispatchers, client stubs",
        "msgpack_frames": "dataclasses, frame encoders and decoders",
        "json_lines": "line framing, dataclasses, encoders and decoders",
    }[spec.family]


def describe(spec: Any, *, name: str, package: str | None = "daqwire.generated") -> dict[str, Any]:
    """Everything ``spec`` (a loaded :class:`daqwire.codegen.Spec`) declares, as JSON values.

    ``package`` is where its generated modules live: None for a spec given by path.
    """
    out: dict[str, Any] = {
        "name": name,
        "protocol": spec.protocol,
        "title": spec.title,
        "family": spec.family,
        "file": spec.display_name,
        "sha256": spec.sha256,
        "doc": spec.doc,
        "framing": _framing(spec),
        "parameters": [
            {"name": p.name, "choices": dict(p.choices), "default": p.default, "doc": p.doc}
            for p in spec.params.values()
        ],
        "constants": [
            {"name": c.name, "value": _value(c.value), "doc": c.doc} for c in spec.constants
        ],
        "enums": [
            {"name": e.name, "flags": e.flags, "members": dict(e.values), "doc": e.doc}
            for e in spec.enums.values()
        ],
    }
    if spec.family == "text_commands":
        out["grammars"] = [
            _drop_empty(
                {
                    "name": g.name,
                    "kind": g.kind,
                    "separators": list(g.separators),
                    "types": list(g.types),
                    "reserved": g.reserved,
                    "stale": g.stale,
                    "point": g.point,
                    "doc": g.doc,
                }
            )
            for g in spec.text.grammars.values()
        ]
    if spec.family == "msgpack_frames":
        out["records"] = [
            {"name": r.name, "doc": r.doc, "fields": [_mp_object(f) for f in r.fields]}
            for r in spec.msgpack.records.values()
        ]
    out["messages"] = _messages(spec)
    if spec.family == "text_commands":
        out["services"] = [
            {"name": s.name, "doc": s.doc, "requests": list(s.requests), "errors": dict(s.errors)}
            for s in spec.text.services.values()
        ]
    out["generated"] = _generated(spec, package)
    return out


# -- text rendering --------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A value as it reads in a spec: strings quoted (control characters escaped)."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        if '"' in value and "'" not in value:  # 'RET#["a"]' reads better than "RET#[\"a\"]"
            text = "'" + text[1:-1].replace('\\"', '"') + "'"
        return text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return repr(value)


#: joins words that must stay on one line (textwrap only breaks at ASCII whitespace)
GLUE = "\u00a0"


def _glue(text: str) -> str:
    return text.replace(" ", GLUE)


class _Writer:
    """Lines of the text view, wrapped at :data:`WIDTH`."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str = "") -> None:
        self.lines.append(text.rstrip().replace(GLUE, " "))

    def wrap(self, text: str, indent: int) -> None:
        if not text:
            return
        pad = " " * indent
        width = max(WIDTH - indent, 30)
        for chunk in textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False):
            self.line(pad + chunk)

    def row(self, indent: int, cells: list[tuple[str, int]], rest: str = "", hang: int = 0) -> None:
        """Cells padded to their widths, then ``rest`` wrapped under its own column.

        A cell longer than its width pushes the rest along; ``hang`` indents the continuation
        lines of ``rest`` further (to align them after a leading ``= ``).
        """
        head = " " * indent
        for text, w in cells:
            head += text.ljust(w) + "  "
        if not rest:
            self.line(head)
            return
        col = len(head)
        if col + len(rest) <= WIDTH:
            self.line(head + rest)
            return
        if col > WIDTH - 30:
            self.line(head)
            self.wrap(rest, indent + 8)
            return
        chunks = textwrap.wrap(rest, WIDTH - col, break_on_hyphens=False) or [""]
        self.line(head + chunks[0])
        rest_lines = textwrap.wrap(" ".join(chunks[1:]), WIDTH - col - hang, break_on_hyphens=False)
        for chunk in rest_lines:
            self.line(" " * (col + hang) + chunk)

    def section(self, title: str) -> None:
        if self.lines and self.lines[-1]:
            self.line()
        self.line(title)


def _width(names: list[str], cap: int) -> int:
    return min(max((len(n) for n in names), default=0), cap)


def _constraints(d: dict[str, Any], skip: set[str]) -> str:
    """``const 0x..., enum Mode, min 1`` from the constraint keys of a field dict."""
    parts = []
    for key, value in d.items():
        if key in skip or key in ("name", "type", "doc", "byte_order", "dtype"):
            continue
        if value is True:
            parts.append(key.replace("_", " "))
        elif key == "const" and isinstance(value, int) and not isinstance(value, bool):
            parts.append(f"const 0x{value:X}" if value > 255 else f"const {value}")
        elif key == "items" and isinstance(value, dict) and "record" in value:
            parts.append(f"items {value['record']}")
        elif key == "items" and isinstance(value, dict):
            inner = _constraints(value, {"type"})
            parts.append(f"items {value['type']}" + (f" ({inner})" if inner else ""))
        elif key == "keywords":
            kws = [
                k["name"] + " " + k["type"] + (f" ({c})" if (c := _constraints(k, set())) else "")
                for k in value
            ]
            parts.append("keywords " + ", ".join(kws))
        elif key == "shape" and isinstance(value, list):
            parts.append("shape [" + ", ".join(str(s) for s in value) + "]")
        elif isinstance(value, str) and key not in QUOTED:
            parts.append(f"{key.replace('_', ' ')} {value}")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            parts.append(f"{key.replace('_', ' ')} {value}")
        else:
            parts.append(f"{key.replace('_', ' ')} {_show(value)}")
    return ", ".join(parts)


def _type_text(d: dict[str, Any]) -> str:
    t = str(d["type"])
    if t == "array" and "dtype" in d:
        t = f"{d['dtype']}[]"
    order = d.get("byte_order")
    if order:
        t += " le" if order == "little" else " be"
    return t


def _fields(w: _Writer, fields: list[dict[str, Any]], indent: int, skip: set[str]) -> None:
    width = _width([f["name"] for f in fields], 60)
    twidth = _width([_type_text(f) for f in fields], 14)
    for f in fields:
        w.row(indent, [(f["name"], width), (_type_text(f), twidth)], _constraints(f, skip))
        if f.get("doc"):
            w.wrap(f["doc"], indent + 4)


def render_text(d: dict[str, Any]) -> str:
    """The ``specs show`` view of a :func:`describe` dict."""
    w = _Writer()
    w.line(f"{d['name']}: {d['title']}")
    facts = [
        ("protocol", d["protocol"]),
        ("family", f"{d['family']} ({FAMILY_SHAPES.get(d['family'], '')})"),
        ("file", d["file"]),
    ]
    for key, value in d["framing"].items():
        if value in (None, "") or key == "doc":
            continue
        shown = _show(value) if key in ("terminator", "error_prefix") else str(value)
        facts.append((key.replace("_", " "), shown))
    for key, value in facts:
        w.row(2, [(key, 14)], value)
    if d["doc"]:
        w.line()
        w.wrap(d["doc"], 2)
    if d["framing"].get("doc"):
        w.wrap("framing: " + d["framing"]["doc"], 2)

    if d["parameters"]:
        w.section(f"parameters ({len(d['parameters'])})")
        for p in d["parameters"]:
            choices = ", ".join(_glue(f"{k} = {v}") for k, v in p["choices"].items())
            w.row(2, [(p["name"], 16)], f"{choices} (default {p['default']})")
            w.wrap(p["doc"], 6)

    if d["constants"]:
        w.section(f"constants ({len(d['constants'])})")
        width = _width([c["name"] for c in d["constants"]], 40)
        for c in d["constants"]:
            w.row(2, [(c["name"], width)], "= " + _show(c["value"]), hang=2)
            w.wrap(c["doc"], 6)

    if d["enums"]:
        w.section(f"enums ({len(d['enums'])})")
        for e in d["enums"]:
            kind = "flags" if e["flags"] else "enum"
            members = ", ".join(_glue(f"{k} = {v}") for k, v in e["members"].items())
            w.row(2, [(e["name"], 20), (kind, 5)], members)
            w.wrap(e["doc"], 6)

    for g_title, key in (("grammars", "grammars"),):
        if d.get(key):
            w.section(f"{g_title} ({len(d[key])})")
            for g in d[key]:
                w.row(2, [(g["name"], 18), (g["kind"], 11)], _constraints(g, {"kind"}))
                w.wrap(g.get("doc", ""), 6)

    if d.get("records"):
        w.section(f"records ({len(d['records'])})")
        for r in d["records"]:
            w.line(f"  {r['name']}")
            w.wrap(r["doc"], 6)
            _fields(w, r["fields"], 6, set())

    _render_messages(w, d)

    if d.get("services"):
        w.section(f"services ({len(d['services'])})")
        for s in d["services"]:
            w.line(f"  {s['name']}")
            w.wrap(s["doc"], 6)
            w.row(6, [("requests", 9)], ", ".join(s["requests"]))
            by_reply: dict[str, list[str]] = {}
            for kind, reply in s["errors"].items():
                by_reply.setdefault(reply, []).append(kind)
            errors = "; ".join(f"{', '.join(k)} -> {r}" for r, k in by_reply.items())
            if errors:
                w.row(6, [("errors", 9)], errors)

    gen = d["generated"]
    if gen.get("package"):
        w.section("generated modules (daqwire generate)")
    else:
        folder = str(Path(d["file"]).parent).replace("\\", "/")
        w.section(f"generated modules (daqwire generate --specs-dir {folder} --out PACKAGE_DIR)")
    width = _width([m["name"] for m in gen["modules"]], 40)
    for m in gen["modules"]:
        w.row(2, [(m["name"], width)], m["what"])
    w.section("main API")
    for entry in gen["api"]:
        w.wrap(", ".join(entry["names"]), 2)
        w.wrap(entry["what"], 6)
    return "\n".join(w.lines) + "\n"


def _render_messages(w: _Writer, d: dict[str, Any]) -> None:
    family = d["family"]
    messages = d["messages"]
    w.section(f"messages ({len(messages)})")
    width = _width([m["name"] for m in messages], 28)
    if not messages:
        w.line("  none")
    if family == "binary":
        for m in messages:
            size = (
                f"fixed size {m['fixed_size']} bytes"
                if m["fixed_size"] is not None
                else f"fixed part {m['prefix_size']} bytes, then variable-size blocks"
            )
            w.row(2, [(m["name"], width)], f"class {m['class']}; {size}")
            w.wrap(m["doc"], 6)
            _fields(w, m["fields"], 6, set())
    elif family == "text_commands":
        for m in messages:
            rest = _show(m["form"])
            if m["replies"]:
                rest += " -> " + " | ".join(m["replies"])
            flags = []
            if m["cache"]:
                flags.append("cached")
            if m["direction"] == "request" and not m["idempotent"]:
                flags.append("not idempotent")
            if m["method"] != m["name"]:
                flags.append(f"method {m['method']}")
            if flags:
                rest += f"  ({', '.join(flags)})"
            w.row(2, [(m["name"], width), (m["direction"], 8)], rest)
            if m["part"] is not None:
                w.wrap(f"{{{m['part']['name']}}}: " + _part_text(m["part"]), 6)
            w.wrap(m["doc"], 6)
    elif family == "msgpack_frames":
        for m in messages:
            sel = (
                f"; selected by value {m['select_value']}" if m["select_value"] is not None else ""
            )
            w.row(2, [(m["name"], width)], f"class {m['class']}{sel}")
            w.wrap(m["doc"], 6)
            fw = _width([fr["name"] for fr in m["frames"]], 20)
            for i, fr in enumerate(m["frames"]):
                what = "raw bytes" if fr["type"] == "raw" else "msgpack objects"
                more = _constraints(fr, {"objects"})
                w.row(
                    6, [(f"frame {i}", 7), (fr["name"], fw)], what + (f", {more}" if more else "")
                )
                _fields(w, fr.get("objects", []), 8, set())
    else:
        for m in messages:
            sel = m["selected_by"]
            rest = f"class {m['class']}"
            if m["direction"]:
                rest += f", {m['direction']}"
            if sel is not None:
                if sel["kind"] == "const":
                    rest += f"; {sel['key']} = {_show(sel['value'])}"
                elif sel["kind"] == "prefix":
                    rest += f"; {sel['key']} starts with {_show(sel['value'])}"
                else:
                    rest += f"; any other {sel['key']}"
            if m["extra_keys"] != "refuse":
                rest += f"; other keys: {m['extra_keys']}"
            if m["extra_field"]:
                rest += f" (into {m['extra_field']})"
            w.row(2, [(m["name"], width)], rest)
            w.wrap(m["doc"], 6)
            _fields(w, m["keys"], 6, {"selector"})


def _part_text(p: dict[str, Any]) -> str:
    if p["type"] == "choice":
        return "choice of " + " | ".join(_part_text(alt) for alt in p.get("of", []))
    if p["type"] == "none":
        return f"none, written {_show(p.get('literal', ''))}"
    if p["type"] == "grammar":
        c = _constraints(p, {"of", "grammar"})
        return f"grammar {p['grammar']}" + (f", {c}" if c else "")
    c = _constraints(p, {"of"})
    return str(p["type"]) + (f", {c}" if c else "")


# -- commands --------------------------------------------------------------------------------


def _emit(text: str, out: TextIO | None) -> None:
    out = out or sys.stdout
    out.write(text)
    out.flush()


def run_list(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``daqwire specs list``: one row per spec; exit 2 if a spec does not load."""
    specs_dir: Path = args.specs_dir or _default_specs_dir()
    if not specs_dir.is_dir():
        print(f"daqwire specs list: {specs_dir} is not a folder", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for path in _spec_files(specs_dir):
        try:
            spec = _load(path, str(path))
        except SpecError as exc:
            errors.append(str(exc))
            continue
        count = len(_message_names(spec))
        rows.append(
            {
                "name": path.stem,
                "family": spec.family,
                "title": spec.title,
                "messages": count,
                "file": path.name,
            }
        )
    if args.json:
        _emit(json.dumps({"specs_dir": str(specs_dir), "specs": rows}, indent=2) + "\n", out)
    else:
        w = _Writer()
        w.line(f"{len(rows)} specs in {specs_dir}")
        w.line()
        keys = ("name", "family", "messages", "file")
        widths = {k: _width([k] + [str(r[k]) for r in rows], 30) for k in keys}
        w.row(0, [(k, widths[k]) for k in keys], "title")
        for r in rows:
            cells = [(str(r[k]), widths[k]) for k in keys]
            cells[2] = (str(r["messages"]).rjust(widths["messages"]), widths["messages"])
            w.row(0, cells, r["title"])
        w.line()
        w.line("daqwire specs show NAME: what a spec declares (--json for a machine)")
        _emit("\n".join(w.lines) + "\n", out)
    for err in errors:
        print(f"daqwire specs list: {err}", file=sys.stderr)
    return 2 if errors else 0


def _message_names(spec: Any) -> list[str]:
    """The message names of a loaded spec, whatever its family."""
    if spec.family == "text_commands":
        return list(spec.text.messages)
    if spec.family == "msgpack_frames":
        return [m.name for m in spec.msgpack.messages]
    if spec.family == "json_lines":
        return [m.name for m in spec.json.messages]
    return [m.name for m in spec.messages]


def run_show(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """``daqwire specs show``: what one spec declares; exit 2 on an unknown or broken spec."""
    target: str = args.spec
    if _is_path(target):
        path = Path(target)
        name = path.stem
        shown = target
    else:
        specs_dir: Path = args.specs_dir or _default_specs_dir()
        path = specs_dir / f"{target}.yaml"
        name = target
        shown = f"specs/{path.name}" if args.specs_dir is None else str(path)
        if not path.is_file():
            known = [p.stem for p in _spec_files(specs_dir)]
            close = difflib.get_close_matches(target, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            print(
                f"daqwire specs show: no spec named {target!r}{hint}; known specs: "
                + (", ".join(known) or f"none in {specs_dir}"),
                file=sys.stderr,
            )
            return 2
    try:
        spec = _load(path, shown)
    except SpecError as exc:
        print(f"daqwire specs show: {exc}", file=sys.stderr)
        return 2
    shipped = not _is_path(target) and args.specs_dir is None
    d = describe(spec, name=name, package="daqwire.generated" if shipped else None)
    _emit(
        json.dumps(d, indent=2, ensure_ascii=False, default=str) + "\n"
        if args.json
        else render_text(d),
        out,
    )
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``daqwire specs`` (``list`` and ``show``) on the top-level subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "specs",
        help="list the specs; show what one declares (no YAML reading needed)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="specs_command", metavar="COMMAND", required=True)
    specs_dir_help = "folder of *.yaml specs (default: the specs shipped with daqwire)"

    lst = sub.add_parser(
        "list",
        help="one row per spec: name, family, messages, file, title",
        description=LIST_DESCRIPTION,
        epilog=LIST_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lst.add_argument("--specs-dir", type=Path, default=None, metavar="DIR", help=specs_dir_help)
    lst.add_argument("--json", action="store_true", help="print JSON instead of a table")
    lst.set_defaults(func=run_list)

    show = sub.add_parser(
        "show",
        help="what one spec declares: constants, enums, messages, fields, generated API",
        description=SHOW_DESCRIPTION,
        epilog=SHOW_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("spec", metavar="NAME|PATH", help="a spec name (pyexplabsys) or a file")
    show.add_argument("--specs-dir", type=Path, default=None, metavar="DIR", help=specs_dir_help)
    show.add_argument("--json", action="store_true", help="print the same as JSON")
    show.set_defaults(func=run_show)
    return parser
