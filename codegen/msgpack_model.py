"""Model of a ``msgpack_frames`` spec: frames of msgpack objects or raw bytes, records, selection.

Built from the schema-valid document by :func:`build_msgpack`; every cross-reference is
resolved and checked here, so the renderer only reads the model.
"""

from __future__ import annotations

import keyword
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daqwire.codegen.loader import PathT

__all__ = ["MpFrame", "MpItem", "MpMessage", "MpModel", "MpObject", "MpRecord", "build_msgpack"]

Fail = Callable[[PathT, str], Exception]

#: Python class names the reference decoders print in their type errors
PY_CLASS = {
    "int": "int",
    "float": "float",
    "str": "str",
    "bool": "bool",
    "bytes": "bytes",
    "map": "dict",
    "array": "list",
    "timestamp": "datetime.datetime",
    "any": "object",
}

#: placeholders an error text may use, per error kind
PLACEHOLDERS = {
    "prefix": set(),
    "frame_count": {"expected", "count"},
    "extra_frames": {"expected", "count"},
    "truncated": set(),
    "type": {"expected", "actual"},
    "trailing": {"count", "frame"},
    "unpack": set(),
    "utf8": set(),
    "map_key": {"error"},
    "too_big": {"limit", "actual"},
    "const": {"value", "frame_repr"},
    "known": {"value", "frame_repr"},
    "enum": {"value", "frame_repr"},
    "count": {"expected", "count"},
    "object_type": {"expected", "actual", "frame_repr"},
    "size": {"expected", "count"},
}

DEFAULT_ERRORS = {
    "prefix": "",
    "frame_count": "expected {expected} frame(s), got {count}",
    "extra_frames": "expected at most {expected} frame(s), got {count}",
    "truncated": "the frame ends inside a msgpack object",
    "unpack": "not valid msgpack",
    "type": "expected {expected}, got {actual}",
    "trailing": "{count} bytes after the last object of the {frame} frame",
    "utf8": "text is not valid UTF-8",
    "map_key": "map keys must be strings: {error}",
    "too_big": "{actual} bytes, more than the limit of {limit}",
}


@dataclass
class MpItem:
    """The element type of an array object."""

    type: str
    record: str | None
    max_bytes: int | None
    type_error: str


@dataclass
class MpObject:
    """One msgpack object in a frame or one field of a record."""

    name: str
    doc: str
    type: str
    path: str
    const: Any = None
    has_const: bool = False
    enum: str | None = None
    record: str | None = None
    items: MpItem | None = None
    count: int | None = None
    max_items: int | None = None
    max_bytes: int | None = None
    nullable: bool = False
    optional: bool = False
    type_error: str = ""
    const_error: str = ""
    enum_error: str = ""
    count_error: str = ""
    known: dict[str, str] = field(default_factory=dict)
    selector: bool = False

    @property
    def ident(self) -> str:
        """Name of the module-level field descriptor constant."""
        return "_F_" + self.path.replace(".", "_").upper()

    @property
    def in_dataclass(self) -> bool:
        return not self.has_const


@dataclass
class MpRecord:
    """A fixed-size msgpack array whose elements are named fields."""

    name: str
    doc: str
    size_error: str
    fields: list[MpObject]


@dataclass
class MpFrame:
    """One ZeroMQ frame: msgpack objects back to back, or raw bytes."""

    name: str
    doc: str
    raw: bool
    repeat: bool
    optional: bool
    max_bytes: int | None
    trailing: str
    objects: list[MpObject]


@dataclass
class MpMessage:
    """One message: its frames, in order."""

    name: str
    doc: str
    frames: list[MpFrame]
    extra_frames: str
    class_name: str
    select_value: int | None = None

    @property
    def min_frames(self) -> int:
        return sum(1 for f in self.frames if not (f.repeat or f.optional))

    @property
    def max_frames(self) -> int | None:
        return None if any(f.repeat for f in self.frames) else len(self.frames)


@dataclass
class MpModel:
    """Everything the renderer needs for a msgpack_frames spec."""

    errors: dict[str, str]
    records: dict[str, MpRecord]
    messages: list[MpMessage]
    select: str | None
    select_enum: str | None
    timestamps: str = "datetime"

    def all_objects(self) -> list[MpObject]:
        out = [f for r in self.records.values() for f in r.fields]
        for m in self.messages:
            out += [o for fr in m.frames for o in fr.objects]
        return out


def _camel(name: str) -> str:
    return "".join(w.capitalize() for w in name.split("_"))


def _check_text(text: str, kind: str, path: PathT, fail: Fail) -> str:
    allowed = PLACEHOLDERS[kind]
    try:
        names = [f for _lit, f, _spec, _conv in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise fail(path, f"bad error text {text!r}: {exc}") from None
    for n in names:
        if n not in allowed:
            shown = ", ".join("{" + a + "}" for a in sorted(allowed)) or "none"
            raise fail(path, f"placeholder {{{n}}} is not known here (allowed: {shown})")
    return text


class _Builder:
    def __init__(self, data: dict[str, Any], fail: Fail) -> None:
        self.data = data
        self.fail = fail
        self.enums = {n: dict(e["values"]) for n, e in (data.get("enums") or {}).items()}
        self.records: dict[str, MpRecord] = {}

    def errors(self) -> dict[str, str]:
        out = dict(DEFAULT_ERRORS)
        given = self.data.get("decode_errors") or {}
        for kind, text in given.items():
            out[kind] = _check_text(text, kind, ("decode_errors", kind), self.fail)
        if "frame_count" in given and "extra_frames" not in given:
            out["extra_frames"] = out["frame_count"]
        if "truncated" in given and "unpack" not in given:
            out["unpack"] = out["truncated"]
        return out

    def item(self, d: dict[str, Any], path: PathT) -> MpItem:
        record = d.get("record")
        kind = d.get("type", "array" if record else None)
        if kind is None:
            raise self.fail(path, "an item needs a type or a record")
        if record is not None:
            if kind != "array":
                raise self.fail(path, "an item with a record is an array")
            if record not in self.records:
                raise self.fail((*path, "record"), f"no record named {record!r}")
        errors = d.get("errors") or {}
        for k in errors:
            if k != "type":
                raise self.fail((*path, "errors", k), "an item only has a type error")
        te = _check_text(
            errors.get("type", ""), "object_type", (*path, "errors", "type"), self.fail
        )
        return MpItem(kind, record, d.get("max_bytes"), te)

    def obj(self, d: dict[str, Any], path: PathT, dotted: str) -> MpObject:
        name = d["name"]
        if keyword.iskeyword(name) or name in {"frames", "buf", "pos", "end"}:
            raise self.fail((*path, "name"), f"{name!r} is reserved in generated code")
        kind = d["type"]
        o = MpObject(name, d.get("doc", ""), kind, dotted)
        if "const" in d:
            o.const, o.has_const = d["const"], True
            want = {"int": int, "str": str}.get(kind)
            if want is None or type(o.const) is not want:
                raise self.fail((*path, "const"), f"a const needs type int or str, matching {kind}")
        if "enum" in d:
            if kind != "int":
                raise self.fail((*path, "enum"), "only int objects take an enum")
            if d["enum"] not in self.enums:
                raise self.fail((*path, "enum"), f"no enum named {d['enum']!r}")
            o.enum = d["enum"]
            if o.has_const and o.const not in self.enums[o.enum].values():
                raise self.fail((*path, "const"), f"{o.const} is not a value of {o.enum}")
        if "record" in d:
            raise self.fail((*path, "record"), "use items: {record: ...} on an array object")
        for key in ("items", "count", "max_items"):
            if key in d and kind != "array":
                raise self.fail((*path, key), f"{key} is only allowed on array objects")
        if "items" in d:
            o.items = self.item(d["items"], (*path, "items"))
        o.count, o.max_items = d.get("count"), d.get("max_items")
        if "max_bytes" in d and kind not in ("str", "bytes"):
            raise self.fail((*path, "max_bytes"), "max_bytes is only allowed on str and bytes")
        o.max_bytes = d.get("max_bytes")
        o.nullable, o.optional = bool(d.get("nullable")), bool(d.get("optional"))
        if o.nullable and o.has_const:
            raise self.fail((*path, "nullable"), "a const object cannot be nullable")
        errors = d.get("errors") or {}
        ep = (*path, "errors")
        o.type_error = _check_text(errors.get("type", ""), "object_type", (*ep, "type"), self.fail)
        o.const_error = _check_text(errors.get("const", ""), "const", (*ep, "const"), self.fail)
        o.enum_error = _check_text(errors.get("enum", ""), "enum", (*ep, "enum"), self.fail)
        o.count_error = _check_text(errors.get("count", ""), "count", (*ep, "count"), self.fail)
        for value, text in (errors.get("known") or {}).items():
            o.known[value] = _check_text(text, "known", (*ep, "known", value), self.fail)
        if o.known and not (o.has_const and kind == "str"):
            raise self.fail((*ep, "known"), "known texts are only allowed on str consts")
        if o.enum_error and not o.enum:
            raise self.fail((*ep, "enum"), "an enum error needs an enum")
        if o.count_error and o.count is None:
            raise self.fail((*ep, "count"), "a count error needs a count")
        return o

    def objects(self, items: list[dict[str, Any]], path: PathT, prefix: str) -> list[MpObject]:
        out: list[MpObject] = []
        for i, d in enumerate(items):
            o = self.obj(d, (*path, i), f"{prefix}.{d['name']}")
            if any(p.name == o.name for p in out):
                raise self.fail((*path, i, "name"), f"two objects named {o.name!r}")
            out.append(o)
        for i, o in enumerate(out):
            if o.optional:
                nxt = out[i + 1] if i + 1 < len(out) else None
                if o.type in ("any",) or (nxt is not None and nxt.type in (o.type, "any")):
                    raise self.fail(
                        (*path, i, "optional"),
                        "an optional object must differ in msgpack type from the object after it",
                    )
        return out

    def build(self) -> MpModel:
        d = self.data
        errors = self.errors()
        for rname, r in (d.get("records") or {}).items():
            path: PathT = ("records", rname)
            fields = self.objects(r["fields"], (*path, "fields"), rname)
            for i, f in enumerate(fields):
                if f.optional:
                    raise self.fail(
                        (*path, "fields", i, "optional"), "record fields are positional"
                    )
            size_error = _check_text(
                r.get("size_error", ""), "size", (*path, "size_error"), self.fail
            )
            self.records[rname] = MpRecord(rname, r.get("doc", ""), size_error, fields)
        # records may refer to records declared earlier only; check item references now
        messages = []
        for mname, m in d["messages"].items():
            mpath: PathT = ("messages", mname)
            frames = []
            names: set[str] = set()
            for i, fr in enumerate(m["frames"]):
                fpath = (*mpath, "frames", i)
                raw = bool(fr.get("raw"))
                if raw == ("objects" in fr):
                    raise self.fail(fpath, "a frame has either objects or raw: true")
                last = i == len(m["frames"]) - 1
                for key in ("repeat", "optional"):
                    if fr.get(key) and not last:
                        raise self.fail((*fpath, key), f"only the last frame may be {key}")
                if fr.get("repeat") and not raw:
                    raise self.fail((*fpath, "repeat"), "only raw frames repeat")
                objs = self.objects(fr.get("objects") or [], (*fpath, "objects"), mname)
                for o in objs:
                    if o.name in names:
                        raise self.fail(fpath, f"two objects named {o.name!r} in {mname}")
                    names.add(o.name)
                if raw:
                    if fr["name"] in names:
                        raise self.fail((*fpath, "name"), f"name {fr['name']!r} is taken")
                    names.add(fr["name"])
                frames.append(
                    MpFrame(
                        fr["name"],
                        fr.get("doc", ""),
                        raw,
                        bool(fr.get("repeat")),
                        bool(fr.get("optional")),
                        fr.get("max_bytes"),
                        fr.get("trailing", "error"),
                        objs,
                    )
                )
            if frames[0].raw:
                raise self.fail((*mpath, "frames", 0), "the first frame holds msgpack objects")
            messages.append(
                MpMessage(
                    mname, m.get("doc", ""), frames, m.get("extra_frames", "error"), _camel(mname)
                )
            )
        select = d.get("select")
        select_enum = None
        if select is not None:
            select_enum = self.check_select(select, messages)
        elif len(messages) > 1:
            raise self.fail(
                ("messages",), "several messages need select: the object telling them apart"
            )
        return MpModel(
            errors, self.records, messages, select, select_enum, d.get("timestamps", "datetime")
        )

    def check_select(self, select: str, messages: list[MpMessage]) -> str:
        first: list[MpObject] | None = None
        seen: dict[int, str] = {}
        enum = None
        for m in messages:
            objs = m.frames[0].objects
            idx = next((i for i, o in enumerate(objs) if o.name == select), None)
            path: PathT = ("messages", m.name, "frames", 0, "objects")
            if idx is None:
                raise self.fail(path, f"select names {select!r}, which the first frame lacks")
            sel = objs[idx]
            if sel.type != "int" or not sel.has_const or sel.enum is None:
                raise self.fail(
                    (*path, idx), "the select object is an int with an enum and a const"
                )
            if sel.const in seen:
                raise self.fail((*path, idx, "const"), f"{seen[sel.const]} has this value too")
            seen[sel.const] = m.name
            if enum is not None and sel.enum != enum:
                raise self.fail((*path, idx, "enum"), "every message selects with the same enum")
            enum = sel.enum
            sel.selector = True
            m.select_value = sel.const
            prefix = objs[: idx + 1]
            if first is None:
                first = prefix
            elif [_shape(o) for o in prefix[:-1]] != [_shape(o) for o in first[:-1]] or len(
                prefix
            ) != len(first):
                raise self.fail(path, "messages must share the objects up to the select object")
        assert enum is not None
        return enum


def _shape(o: MpObject) -> tuple[Any, ...]:
    return (o.name, o.type, o.const, o.enum, o.optional, o.nullable, o.max_bytes)


def build_msgpack(data: dict[str, Any], fail: Fail) -> MpModel:
    """The model of a schema-valid msgpack_frames spec document."""
    return _Builder(data, fail).build()
