"""Model of a ``json_lines`` spec: line framing, JSON objects with ordered keys, selection.

Built from the schema-valid document by :func:`build_json`; names, selectors and
constraints are checked here, so the renderer only reads the model.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from daqwire.codegen.loader import PathT

__all__ = ["JsonFraming", "JsonItem", "JsonKey", "JsonMessage", "JsonModel", "build_json"]

Fail = Callable[[PathT, str], Exception]

#: defaults of a framing mapping
FRAMING_DEFAULTS: dict[str, Any] = {
    "terminator": "\r\n",
    "encoding": "utf-8",
    "max_line_bytes": 65536,
    "dialect": "python",
}
#: class attributes every generated message class has; no field may take these names
RESERVED_FIELDS = {"WIRE_NAME", "MESSAGE_NAME", "PREFIX", "encode"}
#: message names whose generated functions would replace the modules' own, and what they replace
RESERVED_MESSAGES = {
    "line": "decode_line()",
    "text": "decode_text()",
    "message": "decode_message()",
    "json": "json_values() of the strategies module",
}
#: module-level names of a generated json_lines module
MODULE_NAMES = {
    "GENERATOR_VERSION",
    "PROTOCOL",
    "SPEC_SHA256",
    "TERMINATOR",
    "ENCODING",
    "MAX_LINE_BYTES",
    "DIALECT",
    "MESSAGES",
    "SCHEMAS",
    "Message",
    "LineFramer",
}


@dataclass
class JsonItem:
    """A JSON value's type and constraints (a key's value, or an array's elements)."""

    type: str
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    enum_values: list[Any] | None = None
    enum_type: str | None = None
    pattern: str | None = None
    max_bytes: int | None = None
    items: JsonItem | None = None
    count: int | None = None
    min_items: int | None = None
    max_items: int | None = None


@dataclass
class JsonKey:
    """One key of a JSON object, in wire order."""

    name: str
    field: str
    doc: str
    item: JsonItem
    const: Any = None
    prefix: str | None = None
    optional: bool = False
    numbered: bool = False
    timestamped: bool = False
    selector: bool = False

    @property
    def in_dataclass(self) -> bool:
        return self.const is None

    def wire_keys(self) -> list[str]:
        """The wire keys of the value, then those of its timestamps."""
        if self.numbered:
            assert self.item.count is not None
            n = range(1, self.item.count + 1)
            keys = [f"{self.name}{i}" for i in n]
            if self.timestamped:
                keys += [f"{self.name}{i}Timestamp" for i in n]
            return keys
        return [self.name, f"{self.name}Timestamp"] if self.timestamped else [self.name]


@dataclass
class JsonMessage:
    name: str
    class_name: str
    doc: str
    direction: str
    wire_name: str
    extra_keys: str
    extra_field: str | None
    keys: list[JsonKey]
    selector: JsonKey | None = None

    @property
    def selector_kind(self) -> str:
        """``const``, ``prefix`` or ``any`` (the catch-all) for the selected key."""
        if self.selector is None:
            return "any"
        if self.selector.const is not None:
            return "const"
        return "prefix" if self.selector.prefix is not None else "any"

    def listed_wire_keys(self) -> list[str]:
        return [w for k in self.keys for w in k.wire_keys()]


@dataclass
class JsonFraming:
    terminator: str
    encoding: str
    max_line_bytes: int
    dialect: str
    doc: str = ""


@dataclass
class JsonModel:
    #: the protocol whose generated module holds the framing, or None for this spec's own
    framing_ref: str | None
    framing: JsonFraming
    select: str | None
    messages: list[JsonMessage] = field(default_factory=list)

    @property
    def catch_all(self) -> JsonMessage | None:
        return next((m for m in self.messages if m.selector_kind == "any"), None)


def constant_name(name: str) -> str:
    """``topicID`` -> ``TOPIC_ID``, ``id`` -> ``ID``, ``sequence_id`` -> ``SEQUENCE_ID``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _item(d: dict[str, Any], path: PathT, fail: Fail, enums: dict[str, Any]) -> JsonItem:
    t = d["type"]
    enum = d.get("enum")
    it = JsonItem(
        t,
        bool(d.get("nullable")),
        d.get("min"),
        d.get("max"),
        enum if isinstance(enum, list) else None,
        enum if isinstance(enum, str) else None,
        d.get("pattern"),
        d.get("max_bytes"),
        None,
        d.get("count"),
        d.get("min_items"),
        d.get("max_items"),
    )
    if "items" in d:
        if t != "array":
            raise fail((*path, "items"), "items apply to arrays only")
        it.items = _item(d["items"], (*path, "items"), fail, enums)
    elif t == "array":
        it.items = JsonItem("any")
    if (it.min is not None or it.max is not None) and t not in ("int", "float"):
        raise fail(
            (*path, "min" if it.min is not None else "max"),
            f"min and max apply to int and float, not {t}",
        )
    if it.min is not None and it.max is not None and it.min > it.max:
        raise fail((*path, "min"), "min is greater than max")
    if (it.pattern is not None or it.max_bytes is not None) and t != "str":
        raise fail(
            (*path, "pattern" if it.pattern else "max_bytes"),
            f"pattern and max_bytes apply to str, not {t}",
        )
    if it.pattern is not None:
        try:
            re.compile(it.pattern)
        except re.error as exc:
            raise fail((*path, "pattern"), f"not a regular expression: {exc}") from None
    if (it.count, it.min_items, it.max_items) != (None, None, None) and t != "array":
        raise fail((*path, "count"), f"count, min_items and max_items apply to arrays, not {t}")
    if it.count is not None and (it.min_items is not None or it.max_items is not None):
        raise fail((*path, "count"), "an array has a count or min_items/max_items, not both")
    if it.enum_type is not None:
        if t != "int":
            raise fail((*path, "enum"), "an enum type applies to int values only")
        if it.enum_type not in enums:
            raise fail((*path, "enum"), f"no enum named {it.enum_type!r}")
    if it.enum_values is not None:
        kinds: dict[str, type | tuple[type, ...]] = {
            "int": int,
            "float": (int, float),
            "str": str,
            "bool": bool,
        }
        want = kinds.get(t)
        if want is None:
            raise fail(
                (*path, "enum"), f"a list of values applies to int, float, str and bool, not {t}"
            )
        for v in it.enum_values:
            if not isinstance(v, want) or (t != "bool" and isinstance(v, bool)):
                raise fail((*path, "enum"), f"{v!r} is not a {t}")
    return it


def _framing(d: dict[str, Any], spec_path: Path, fail: Fail) -> tuple[str | None, JsonFraming]:
    fr = d.get("framing", {})
    if isinstance(fr, str):
        other = spec_path.parent / f"{fr}.yaml"
        try:
            with other.open(encoding="utf-8") as fh:
                od = yaml.safe_load(fh)
        except OSError:
            raise fail(("framing",), f"no spec {fr!r} next to this one ({other.name})") from None
        ofr = od.get("framing", {}) if isinstance(od, dict) else None
        if (
            not isinstance(od, dict)
            or od.get("family") != "json_lines"
            or not isinstance(ofr, dict)
        ):
            raise fail(("framing",), f"{fr!r} is not a json_lines spec with a framing of its own")
        return fr, JsonFraming(**{k: ofr.get(k, v) for k, v in FRAMING_DEFAULTS.items()})
    f = JsonFraming(**{k: fr.get(k, v) for k, v in FRAMING_DEFAULTS.items()}, doc=fr.get("doc", ""))
    if f.encoding == "ascii" and any(ord(c) > 127 for c in f.terminator):
        raise fail(("framing", "terminator"), "the terminator is not ASCII")
    t = f.terminator
    if any(t[:i] == t[-i:] for i in range(1, len(t))):
        raise fail(
            ("framing", "terminator"),
            f"{t!r} overlaps itself (it begins with its own end), so lines would be ambiguous",
        )
    return None, f


def build_json(d: dict[str, Any], spec_path: Path, fail: Fail) -> JsonModel:
    """Resolve and check a ``json_lines`` document."""
    framing_ref, framing = _framing(d, spec_path, fail)
    enums = d.get("enums") or {}
    select = d.get("select")
    model = JsonModel(framing_ref, framing, select)
    raw_messages: dict[str, Any] = d.get("messages") or {}
    if not raw_messages and framing_ref is not None:
        raise fail(("messages",), "a spec that borrows its framing needs at least one message")
    if len(raw_messages) > 1 and select is None:
        raise fail(("select",), "more than one message: name the key that tells them apart")
    class_names: dict[str, str] = {}
    taken = set(MODULE_NAMES) | set(enums)
    if select is not None:
        taken.add("BY_" + constant_name(select))
    for cname in d.get("constants") or {}:
        if cname in taken:
            raise fail(("constants", cname), f"{cname} is a name the generated module defines")
        taken.add(cname)
    for mname, m in raw_messages.items():
        mpath: PathT = ("messages", mname)
        if not isinstance(mname, str):
            raise fail(("messages",), f"message name {mname!r} is not a string (quote it in YAML)")
        if mname in RESERVED_MESSAGES:
            raise fail(mpath, f"a message named {mname!r} would replace {RESERVED_MESSAGES[mname]}")
        cname = _camel(mname)
        if cname in taken:
            raise fail(mpath, f"its class name {cname} is a name the generated module defines")
        if cname in class_names:
            raise fail(mpath, f"its class name {cname} is also that of {class_names[cname]!r}")
        class_names[cname] = mname
        extra = m.get("extra_keys", "refuse")
        extra_field = m.get("extra_field", "details") if extra in ("first", "last") else None
        if "extra_field" in m and extra not in ("first", "last"):
            raise fail((*mpath, "extra_field"), "extra_field needs extra_keys: first or last")
        msg = JsonMessage(
            mname,
            cname,
            m.get("doc", ""),
            m.get("direction", ""),
            m.get("wire_name", mname),
            extra,
            extra_field,
            [],
        )
        wire: dict[str, str] = {}
        fields: dict[str, str] = {}
        if extra_field is not None:
            fields[extra_field] = "extra_field"
        for i, k in enumerate(m["keys"]):
            kpath: PathT = (*mpath, "keys", i)
            item = _item(k, kpath, fail, enums)
            key = JsonKey(
                k["name"],
                k.get("field", k["name"]),
                k.get("doc", ""),
                item,
                k.get("const"),
                k.get("prefix"),
                bool(k.get("optional")),
                bool(k.get("numbered")),
                bool(k.get("timestamped")),
            )
            _check_key(key, kpath, fail)
            for w in key.wire_keys():
                if w in wire:
                    raise fail(kpath, f"wire key {w!r} is also a key of {wire[w]!r}")
                wire[w] = key.name
            if key.in_dataclass:
                names = [key.field, f"{key.field}Timestamp"] if key.timestamped else [key.field]
                for fname in names:
                    if fname in fields:
                        raise fail(kpath, f"field {fname!r} is also that of {fields[fname]!r}")
                    fields[fname] = key.name
            if select is not None and key.name == select:
                key.selector = True
                msg.selector = key
            msg.keys.append(key)
        reserved = RESERVED_FIELDS | ({constant_name(select)} if select else set())
        for fname, owner in fields.items():
            if not fname.isidentifier() or keyword.iskeyword(fname) or fname in reserved:
                raise fail(
                    mpath, f"{owner!r} cannot be a Python field named {fname!r}; give it `field:`"
                )
            if fname == cname:
                raise fail(
                    mpath,
                    f"{owner!r} cannot be a field named like its class {cname} (the argument "
                    f"would hide the class in encode_{mname}()); give it `field:`",
                )
        if select is not None:
            sel = msg.selector
            if sel is None:
                raise fail((*mpath, "keys"), f"no key {select!r}, which tells the messages apart")
            if sel.optional or sel.numbered or sel.timestamped or sel.item.nullable:
                raise fail((*mpath, "keys"), f"the key {select!r} must be plain and required")
        model.messages.append(msg)
    _check_selection(model, fail)
    return model


def _check_key(key: JsonKey, path: PathT, fail: Fail) -> None:
    t = key.item.type
    if key.const is not None:
        ok = {"str": str, "int": int, "bool": bool}.get(t)
        if (
            ok is None
            or not isinstance(key.const, ok)
            or (t == "int" and isinstance(key.const, bool))
        ):
            raise fail((*path, "const"), f"{key.const!r} is not a constant {t}")
        if key.optional or key.prefix or key.numbered or key.timestamped:
            raise fail(
                (*path, "const"),
                "a constant key takes no optional, prefix, numbered or timestamped",
            )
    if key.prefix is not None and t != "str":
        raise fail((*path, "prefix"), "a prefix applies to str keys only")
    if key.numbered:
        if t != "array" or key.item.count is None:
            raise fail((*path, "numbered"), "numbered keys need type: array and a count")
        if key.item.nullable or key.optional:
            raise fail((*path, "numbered"), "numbered keys cannot be optional or nullable")
    if key.timestamped and (
        key.optional or key.item.nullable or (t == "array" and not key.numbered)
    ):
        raise fail(
            (*path, "timestamped"), "timestamped keys are required scalars or numbered arrays"
        )
    if key.optional and key.item.nullable:
        raise fail(
            (*path, "optional"), "a key is optional (absent means None) or nullable, not both"
        )


def _check_selection(model: JsonModel, fail: Fail) -> None:
    consts: dict[tuple[type, Any], str] = {}
    prefixes: dict[str, str] = {}
    catch_all: str | None = None
    if model.select is None:
        return
    for m in model.messages:
        sel = m.selector
        assert sel is not None
        path: PathT = ("messages", m.name)
        kind = m.selector_kind
        if kind == "const":
            k = (type(sel.const), sel.const)
            if k in consts:
                raise fail(path, f"{model.select} {sel.const!r} also selects {consts[k]!r}")
            consts[k] = m.name
        elif kind == "prefix":
            assert sel.prefix is not None
            for p, owner in prefixes.items():
                if p.startswith(sel.prefix) or sel.prefix.startswith(p):
                    raise fail(path, f"prefix {sel.prefix!r} overlaps {p!r} of {owner!r}")
            prefixes[sel.prefix] = m.name
        else:
            if catch_all is not None:
                raise fail(path, f"{catch_all!r} already takes every other {model.select}")
            if sel.item.type != "str" and sel.item.type != "int":
                raise fail(path, f"a catch-all {model.select} is a str or an int")
            catch_all = m.name
