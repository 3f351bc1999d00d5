"""What the ``json_lines`` templates need: per-message Python code, JSON Schemas, strategies."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from daqwire.codegen.json_model import JsonItem, JsonKey, JsonMessage, JsonModel, constant_name

__all__ = ["json_context", "json_exports", "json_strategy_exports"]


@dataclass
class _Field:
    name: str
    pytype: str
    default: str | None
    doc: str


class _Emit:
    """Builds the code strings of one spec; regexes and value sets become module constants."""

    def __init__(self, protocol: str, model: JsonModel, enums: dict[str, Any]) -> None:
        self.protocol = protocol
        self.model = model
        self.enums = enums
        self.regexes: dict[str, str] = {}
        self.value_sets: dict[str, str] = {}
        #: whether a check reads a flag enum (the module then needs ``_flag``)
        self.uses_flags = False

    # --- types -------------------------------------------------------------------------------
    def pytype(self, it: JsonItem) -> str:
        base = {
            "int": "int",
            "float": "float",
            "str": "str",
            "bool": "bool",
            "map": "dict[str, Any]",
            "any": "Any",
            "none": "None",
        }.get(it.type, "")
        if it.enum_type:
            base = it.enum_type
        if it.type == "array":
            assert it.items is not None
            base = f"tuple[{self.pytype(it.items)}, ...]"
        if it.nullable and base not in ("Any", "None"):
            base += " | None"
        return base

    def fields(self, m: JsonMessage) -> list[_Field]:
        out: list[_Field] = []
        for k in m.keys:
            if not k.in_dataclass:
                continue
            t = self.pytype(k.item)
            if k.optional:
                out.append(_Field(k.field, f"{t} | None", "None", k.doc))
            else:
                out.append(_Field(k.field, t, None, k.doc))
            if k.timestamped:
                ts = "tuple[float, ...]" if k.numbered else "float"
                out.append(
                    _Field(f"{k.field}Timestamp", ts, None, f"TAI unix seconds of {k.field}")
                )
        if m.extra_field:
            out.append(
                _Field(
                    m.extra_field, "dict[str, Any]", "dataclasses.field(default_factory=dict)", ""
                )
            )
        return out

    # --- checks ------------------------------------------------------------------------------
    def _regex(self, pattern: str) -> str:
        name = self.regexes.setdefault(pattern, f"_RE_{len(self.regexes)}")
        return name

    def _values(self, values: list[Any]) -> str:
        text = repr(tuple(values))
        return self.value_sets.setdefault(text, f"_VALUES_{len(self.value_sets)}")

    def check(self, it: JsonItem, v: str, p: str) -> str:
        """An expression that checks value ``v`` (a name) at path ``p`` and returns it."""
        t = it.type
        if it.enum_type and self.enums[it.enum_type].flags:
            # IntFlag keeps any int, a negative one as its bits (-1 is every flag): refused
            self.uses_flags = True
            e = f"_flag({it.enum_type}, {v}, {p})"
        elif it.enum_type:
            e = f"_enum({it.enum_type}, {v}, {p})"
        elif t == "int":
            e = f"_int({v}, {p}{self._bounds(it, int)})"
        elif t == "float":
            e = f"_float({v}, {p}{self._bounds(it, float)})"
        elif t == "str":
            extra = ""
            if it.pattern is not None or it.max_bytes is not None:
                rx = self._regex(it.pattern) if it.pattern is not None else "None"
                extra = f", {rx}, {it.max_bytes!r}"
            e = f"_str({v}, {p}{extra})"
        elif t == "bool":
            e = f"_bool({v}, {p})"
        elif t == "map":
            e = f"_map({v}, {p})"
        elif t == "none":
            e = f"_null({v}, {p})"
        elif t == "array":
            assert it.items is not None
            inner = self.check(it.items, "x", "q")
            lo, hi = (it.count, it.count) if it.count is not None else (it.min_items, it.max_items)
            e = f"_array({v}, {p}, lambda x, q: {inner}, {lo!r}, {hi!r})"
        else:
            e = v
        if it.enum_values is not None:
            e = f"_among({e}, {p}, {self._values(it.enum_values)})"
        if it.nullable and t not in ("any", "none"):
            e = f"(None if {v} is None else {e})"
        return e

    @staticmethod
    def _bounds(it: JsonItem, kind: type) -> str:
        if it.min is None and it.max is None:
            return ""
        conv = (lambda x: None if x is None else int(x)) if kind is int else (lambda x: x)
        lo, hi = conv(it.min), conv(it.max)
        if kind is int and it.min is not None:
            lo = math.ceil(it.min)
        if kind is int and it.max is not None:
            hi = math.floor(it.max)
        return f", {lo!r}, {hi!r}"

    def path(self, m: JsonMessage, key: str) -> str:
        return repr(f"{self.protocol}.{m.name}.{key}")

    # --- decode ------------------------------------------------------------------------------
    def decode_lines(self, m: JsonMessage) -> list[str]:
        """Keyword arguments of the class call in ``_decode_<m>``."""
        out: list[str] = []
        for k in m.keys:
            if not k.in_dataclass:
                continue
            p = self.path(m, k.name)
            if k.selector:
                rest = f"obj[{k.name!r}]"
                if k.prefix is not None:
                    rest = f"obj[{k.name!r}][{len(k.prefix)}:]"
                out.append(f"{k.field}={self.check(k.item, rest, p)},")
            elif k.numbered:
                assert k.item.items is not None and k.item.count is not None
                inner = self.check(k.item.items, "x", "q")
                out.append(
                    f"{k.field}=_numbered(obj, {k.name!r}, {k.item.count}, '', {p}, "
                    f"lambda x, q: {inner}),"
                )
                if k.timestamped:
                    out.append(
                        f"{k.field}Timestamp=_numbered(obj, {k.name!r}, {k.item.count}, "
                        f"'Timestamp', {p}, _float),"
                    )
            elif k.optional:
                out.append(
                    f"{k.field}=({self.check(k.item, 'obj[' + repr(k.name) + ']', p)} "
                    f"if {k.name!r} in obj else None),"
                )
            else:
                got = f"_get(obj, {k.name!r}, {p})"
                if k.item.nullable:
                    out.append(f"{k.field}={self.check(k.item, f'(v := {got})', p)},")
                    out[-1] = (
                        out[-1]
                        .replace(f"(v := {got})", "v")
                        .replace("(None if v is None", f"(None if (v := {got}) is None", 1)
                    )
                else:
                    out.append(f"{k.field}={self.check(k.item, got, p)},")
                if k.timestamped:
                    tp = self.path(m, k.name + "Timestamp")
                    got = f"_get(obj, {k.name + 'Timestamp'!r}, {tp})"
                    out.append(f"{k.field}Timestamp=_float({got}, {tp}),")
        if m.extra_field:
            out.append(f"{m.extra_field}=_extra(obj, _KEYS_{m.name.upper()}),")
        return out

    # --- wire --------------------------------------------------------------------------------
    def _plain(self, it: JsonItem, v: str) -> str:
        if it.type == "array":
            assert it.items is not None
            e = f"_listify({v})" if it.items.type in ("array", "map") else f"list({v})"
        elif it.enum_type:
            e = f"int({v})"
        else:
            return v
        return f"(None if {v} is None else {e})" if it.nullable else e

    def wire_lines(self, m: JsonMessage) -> list[str]:
        """The body of ``_wire_<m>(msg)`` after ``d`` was created."""
        out: list[str] = []
        for k in m.keys:
            key = repr(k.name)
            if not k.in_dataclass:
                out.append(f"d[{key}] = {k.const!r}")
            elif k.selector and k.prefix is not None:
                out.append(f"d[{key}] = {k.prefix!r} + msg.{k.field}")
            elif k.numbered:
                n = k.item.count
                item = k.item.items or JsonItem("any")
                for f in [k.field, k.field + "Timestamp"] if k.timestamped else [k.field]:
                    path = self.path(m, f)
                    out.append(f"if len(msg.{f}) != {n}:")
                    out.append(
                        f'    raise _local(f"{f} holds {{len(msg.{f})}} values, not {n}", {path})'
                    )
                out.append(f"for i, x in enumerate(msg.{k.field}, 1):")
                out.append(f"    d[{k.name!r} + str(i)] = {self._plain(item, 'x')}")
                if k.timestamped:
                    out.append(f"for i, x in enumerate(msg.{k.field}Timestamp, 1):")
                    out.append(f"    d[{k.name!r} + str(i) + 'Timestamp'] = x")
            elif k.optional:
                out.append(f"if msg.{k.field} is not None:")
                out.append(f"    d[{key}] = {self._plain(k.item, 'msg.' + k.field)}")
            else:
                out.append(f"d[{key}] = {self._plain(k.item, 'msg.' + k.field)}")
                if k.timestamped:
                    out.append(f"d[{k.name + 'Timestamp'!r}] = msg.{k.field}Timestamp")
        return out

    # --- schema ------------------------------------------------------------------------------
    def item_schema(self, it: JsonItem, enums: dict[str, Any]) -> dict[str, Any]:
        t = it.type
        s: dict[str, Any] = {}
        if it.enum_type and enums[it.enum_type].flags:
            s = {"type": "integer", "minimum": 0}
        elif it.enum_type:
            s = {"enum": sorted(enums[it.enum_type].values.values())}
        elif t == "int":
            s = {"type": "integer"}
        elif t == "float":
            s = {"type": "number"}
        elif t == "str":
            s = {"type": "string"}
            if it.pattern is not None:
                s["pattern"] = schema_pattern(it.pattern)
        elif t == "bool":
            s = {"type": "boolean"}
        elif t == "map":
            s = {"type": "object"}
        elif t == "none":
            s = {"type": "null"}
        elif t == "array":
            assert it.items is not None
            s = {"type": "array", "items": self.item_schema(it.items, enums)}
            lo, hi = (it.count, it.count) if it.count is not None else (it.min_items, it.max_items)
            if lo is not None:
                s["minItems"] = lo
            if hi is not None:
                s["maxItems"] = hi
        if it.min is not None:
            s["minimum"] = it.min
        if it.max is not None:
            s["maximum"] = it.max
        if it.enum_values is not None:
            s["enum"] = list(it.enum_values)
        if it.nullable and t not in ("any", "none"):
            s = {"anyOf": [s, {"type": "null"}]}
        return s

    def schema(self, m: JsonMessage, enums: dict[str, Any]) -> dict[str, Any]:
        props: dict[str, Any] = {}
        required: list[str] = []
        for k in m.keys:
            if k.const is not None:
                props[k.name] = {"const": k.const}
            elif k.prefix is not None:
                props[k.name] = {
                    "type": "string",
                    "pattern": schema_pattern(k.item.pattern, k.prefix),
                }
            elif k.numbered:
                assert k.item.items is not None
                for w in k.wire_keys():
                    ts = (
                        w.endswith("Timestamp") and k.timestamped and not w[len(k.name) :].isdigit()
                    )
                    props[w] = {"type": "number"} if ts else self.item_schema(k.item.items, enums)
            else:
                props[k.name] = self.item_schema(k.item, enums)
                if k.timestamped:
                    props[k.name + "Timestamp"] = {"type": "number"}
            if not k.optional:
                required += k.wire_keys()
        s: dict[str, Any] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"{self.protocol}.{m.name}",
            "type": "object",
            "properties": props,
            "required": required,
        }
        if m.extra_keys == "refuse":
            s["additionalProperties"] = False
        elif m.extra_field:
            s["additionalProperties"] = True
        return s

    # --- strategies --------------------------------------------------------------------------
    def strategy(self, it: JsonItem, spec_enums: dict[str, Any]) -> str:
        t = it.type
        if it.enum_values is not None:
            e = f"st.sampled_from({tuple(it.enum_values)!r})"
        elif it.enum_type:
            e = f"st.sampled_from(list({it.enum_type}))"
        elif t == "int":
            lo = None if it.min is None else math.ceil(it.min)
            hi = None if it.max is None else math.floor(it.max)
            e = f"st.integers(min_value={lo!r}, max_value={hi!r})"
        elif t == "float":
            e = (
                f"st.floats(min_value={it.min!r}, max_value={it.max!r}, "
                "allow_nan=False, allow_infinity=False)"
            )
        elif t == "str":
            if it.pattern is not None:
                e = f"st.from_regex({it.pattern!r}, fullmatch=True)"
            else:
                e = "st.text(max_size=12)"
            if it.max_bytes is not None:
                e += f".filter(lambda s: len(s.encode('utf-8')) <= {it.max_bytes})"
        elif t == "bool":
            e = "st.booleans()"
        elif t == "map":
            e = "st.dictionaries(st.text(max_size=8), json_scalars(), max_size=4)"
        elif t == "none":
            e = "st.none()"
        elif t == "array":
            assert it.items is not None
            inner = self.strategy(it.items, spec_enums)
            if it.count is not None:
                lo, hi = it.count, it.count
            else:
                lo = it.min_items or 0
                hi = min(it.max_items, lo + 6) if it.max_items is not None else lo + 6
            e = f"st.lists({inner}, min_size={lo}, max_size={hi}).map(tuple)"
        else:
            e = "json_scalars()"
        if it.nullable and t not in ("any", "none"):
            e = f"st.none() | {e}"
        return e

    def strategy_kwargs(self, m: JsonMessage, spec_enums: dict[str, Any]) -> list[str]:
        out: list[str] = []
        for k in m.keys:
            if not k.in_dataclass:
                continue
            e = self.strategy(k.item, spec_enums)
            cond = self._selectable(m, k) if k.selector else None
            if cond is not None:
                e += f".filter(lambda s: {cond})"
            if k.optional:
                e = f"st.none() | {e}"
            out.append(f"{k.field}={e},")
            if k.timestamped:
                ts = "st.floats(min_value=0, max_value=4e9)"
                if k.numbered:
                    n = k.item.count
                    ts = f"st.lists({ts}, min_size={n}, max_size={n}).map(tuple)"
                out.append(f"{k.field}Timestamp={ts},")
        if m.extra_field:
            listed = tuple(m.listed_wire_keys())
            out.append(
                f"{m.extra_field}=st.dictionaries(st.text(max_size=8).filter(lambda s: s not in "
                f"{listed!r}), json_scalars(), max_size=3),"
            )
        return out

    def _selectable(self, m: JsonMessage, k: JsonKey) -> str | None:
        """A condition on ``s`` (the field value) under which ``m`` is the message selected;
        None when every value selects it."""
        consts = [
            x.selector.const
            for x in self.model.messages
            if x.selector_kind == "const" and x.selector
        ]
        prefixes = [
            x.selector.prefix
            for x in self.model.messages
            if x.selector_kind == "prefix" and x.selector
        ]
        wire = "s" if k.prefix is None else f"{k.prefix!r} + s"
        conds = [f"{wire} not in {tuple(consts)!r}"] if consts else []
        if m.selector_kind == "any" and prefixes:
            conds.append(f"not str(s).startswith({tuple(prefixes)!r})")
        return " and ".join(conds) or None


def schema_pattern(pattern: str | None, prefix: str = "") -> str:
    """The JSON Schema ``pattern`` of a string that is ``prefix`` and then a text ``pattern``
    matches in full, as the checker's ``re.fullmatch`` reads it.

    ``jsonschema`` searches a pattern, so it is anchored: ``^`` before, and after it ``$(?!\\n)``,
    the very end (a bare ``$`` also matches before a final newline). After a prefix, a start
    anchor of ``pattern`` (``^`` or ``\\A``) means where the prefix ends: a leading one goes
    (when no top-level ``|`` follows), any other becomes ``(?<=^prefix)``. So ``^a$|^b$`` after
    ``x_`` is ``^x_(?:(?<=^x_)a$|(?<=^x_)b$)$(?!\\n)``. Without a pattern, anything may follow.
    """
    head = "^" + re.escape(prefix)
    if pattern is None:
        return head
    if prefix:
        tokens = _regex_tokens(pattern)
        depth, alternation = 0, False
        for t in tokens:
            depth += (t == "(") - (t == ")")
            alternation = alternation or (t == "|" and depth == 0)
        if not alternation and tokens and tokens[0] in ("^", "\\A"):
            tokens.pop(0)
        if not alternation and tokens and tokens[-1] == "$":
            tokens.pop()  # the end is anchored after the group
        after = f"(?<={head})"
        pattern = "".join(after if t in ("^", "\\A") else t for t in tokens)
    return f"{head}(?:{pattern})$(?!\\n)"


def _regex_tokens(pattern: str) -> list[str]:
    """``pattern`` cut so that anchors, parentheses and ``|`` are tokens of their own: an
    escape, a character class and a ``(?#...)`` comment are one token each."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] == "\\":
            j = i + 2
        elif pattern.startswith("(?#", i):  # a comment, up to the first )
            j = pattern.find(")", i)
            j = n if j < 0 else j + 1
        elif pattern[i] == "[":
            j = i + 1
            if pattern.startswith("^", j):
                j += 1
            if pattern.startswith("]", j):  # a ] first in a class is a literal
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            j += 1
        else:
            j = i + 1
        out.append(pattern[i:j])
        i = j
    return out


def _sort_all(names: set[str]) -> list[str]:
    from daqwire.codegen.render import _sort_all as sort_all

    return sort_all(names)


def json_context(spec: Any) -> dict[str, Any]:
    model: JsonModel = spec.json
    assert model is not None
    e = _Emit(spec.protocol, model, spec.enums)
    messages: list[dict[str, Any]] = []
    for m in model.messages:
        messages.append(
            {
                "m": m,
                "snake": m.name,
                "fields": e.fields(m),
                "decode": e.decode_lines(m),
                "const_checks": [
                    (k.name, k.const, e.path(m, k.name))
                    for k in m.keys
                    if k.const is not None and not k.selector
                ],
                "wire": e.wire_lines(m),
                "schema": e.schema(m, spec.enums),
                "strategy": e.strategy_kwargs(m, spec.enums),
                "keys": tuple(m.listed_wire_keys()),
            }
        )
    sel = model.select
    consts = [
        (m.selector.const, m.class_name, m.name, type(m.selector.const).__name__)
        for m in model.messages
        if m.selector_kind == "const" and m.selector is not None
    ]
    return {
        "js": model,
        "framing": model.framing,
        "messages": messages,
        "schemas": {m.name: e.schema(m, spec.enums) for m in model.messages},
        "regexes": e.regexes,
        "value_sets": e.value_sets,
        "flag_enums": {n for n, x in spec.enums.items() if x.flags},
        "selector_const": constant_name(sel or ""),
        "consts": consts,
        # the key type of BY_<select>: bool and int, str, or a union of them
        "const_type": " | ".join(sorted({t for _v, _c, _n, t in consts})) or "str",
        # True == 1 and False == 0 are one dict key: BY_<select> then matches type and value
        "exact_keys": any(
            a == b and type(a) is not type(b) for a, *_ in consts for b, *_ in consts
        ),
        "uses_flags": e.uses_flags,
        "prefixes": [
            (m.selector.prefix, m.class_name, m.name)
            for m in model.messages
            if m.selector_kind == "prefix" and m.selector is not None
        ],
        "catch_all": model.catch_all,
    }


def json_exports(spec: Any) -> list[str]:
    model: JsonModel = spec.json
    names = ["GENERATOR_VERSION", "PROTOCOL", "SPEC_SHA256"]
    names += ["DIALECT", "ENCODING", "MAX_LINE_BYTES", "TERMINATOR"]
    names += ["LineFramer", "decode_line", "decode_text", "dumps", "encode_line", "loads"]
    names += [c.name for c in spec.constants]
    names += list(spec.enums)
    if model.messages:
        names += ["MESSAGES", "SCHEMAS", "Message", "decode", "decode_message", "encode"]
        names += ["to_dict", "to_wire", "validate"]
        if model.select:
            names.append("BY_" + json_context(spec)["selector_const"])
        for m in model.messages:
            names += [m.class_name, f"encode_{m.name}", f"decode_{m.name}"]
    return _sort_all(set(names))


def json_strategy_exports(spec: Any) -> list[str]:
    model: JsonModel = spec.json
    names = ["json_scalars", "json_values"]
    if model.messages:
        names.append("message_values")
        names += [f"{m.name}_values" for m in model.messages]
    return _sort_all(set(names))
