"""Model of a ``text_commands`` spec: grammars, messages with one-placeholder forms, services.

Built from the schema-valid document by :func:`build_text`; every cross-reference is resolved
and checked here, so the templates only read the model.
"""

from __future__ import annotations

import keyword
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daqwire.codegen.loader import PathT

__all__ = [
    "Constant",
    "Grammar",
    "Service",
    "TextMessage",
    "TextModel",
    "TextPart",
    "build_constants",
    "build_text",
]

Fail = Callable[[PathT, str], Exception]

#: error texts a grammar may declare, per kind; missing ones get daqwire's wording
GRAMMAR_ERRORS: dict[str, dict[str, str]] = {
    "point": {},
    "point_list": {},
    "typed_map": {
        "parts": "The data part '{part}' does not have 3 parts divided by {sep!r}",
        "type": "The data type '{type}' is unknown; allowed are {types}",
        "convert": "Unable to convert values to '{type}': {error}",
        "bool": "Cannot translate the string '{value}' to a boolean",
        "mixed": "The values of a list must all have the same type",
        "item_type": "A value of type {type} cannot be written: {value}",
        "reserved": "The {what} {value!r} contains {char!r}, a separator of the format",
    },
    "typed_table": {
        "not_rows": "The rows of a table must be lists",
        "empty": "A table needs at least one value",
        "mixed": "The values of a table must all have the same type; types are {types}",
        "item_type": "A value of type {type} cannot be written: {value}",
        "empty_row": "Row {row} of the table is empty",
        "reserved": "The value {value!r} contains {char!r}, a separator of the format",
        "bool": "Cannot translate the string '{value}' to a boolean",
        "convert": "Unable to convert values to '{type}': {error}",
        "parts": "The table '{part}' does not start with a type and {sep!r}",
        "type": "The data type '{type}' is unknown; allowed are {types}",
    },
}
SEPARATOR_COUNT = {"point": 1, "point_list": (1, 2), "typed_map": 3, "typed_table": 3}
PART_ERRORS = {
    "json": {
        "syntax": "The text {text!r} is not JSON",
        "not_object": "The JSON value {value!r} is not an object",
    },
    "choice": {"type": "A value of type {type} cannot be written", "wrap": "{error}"},
}
SERVICE_ERROR_KINDS = ("unknown", "malformed", "refused", "failed")


@dataclass
class Constant:
    name: str
    value: Any
    doc: str


@dataclass
class Grammar:
    name: str
    kind: str
    doc: str
    separators: list[str]
    types: list[str]
    reserved: str
    stale: str | None
    point: str | None
    errors: dict[str, str]

    @property
    def named(self) -> bool:
        return self.kind == "point_list" and len(self.separators) == 2


@dataclass
class TextPart:
    name: str
    type: str
    doc: str = ""
    pattern: str | None = None
    #: a literal request whose reply lists values worth drawing for this part
    examples_from: str | None = None
    separator: str | None = None
    shape: str = "any"
    keys: list[str] = field(default_factory=list)
    grammar: str | None = None
    literal: str | None = None
    of: list[TextPart] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class TextMessage:
    name: str
    direction: str
    doc: str
    form: str
    prefix: str
    suffix: str
    part: TextPart | None
    replies: list[str]
    idempotent: bool
    method: str
    cache: bool = False

    @property
    def literal(self) -> bool:
        return self.part is None

    @property
    def class_name(self) -> str:
        return "".join(w.capitalize() for w in self.name.split("_"))


@dataclass
class Service:
    name: str
    doc: str
    requests: list[str]
    errors: dict[str, str]

    @property
    def class_name(self) -> str:
        return "".join(w.capitalize() for w in self.name.split("_"))


@dataclass
class TextModel:
    encoding: str
    grammars: dict[str, Grammar]
    messages: dict[str, TextMessage]
    services: dict[str, Service]

    def reply_groups(self, request: TextMessage) -> list[list[str]]:
        """The request's replies grouped by literal prefix (replies a client cannot tell apart)."""
        groups: dict[str, list[str]] = {}
        for r in request.replies:
            groups.setdefault(self.messages[r].prefix, []).append(r)
        return list(groups.values())


def build_constants(data: dict[str, Any]) -> list[Constant]:
    out = []
    for name, v in (data.get("constants") or {}).items():
        if isinstance(v, dict):
            out.append(Constant(name, v["value"], v.get("doc", "")))
        else:
            out.append(Constant(name, v, ""))
    return out


def _placeholder(form: str, path: PathT, fail: Fail) -> tuple[str, str | None, str]:
    fields = []
    try:
        parsed = list(string.Formatter().parse(form))
    except ValueError as exc:
        raise fail(path, f"bad form {form!r}: {exc}") from None
    for _literal, fname, spec, conv in parsed:
        if fname is not None:
            if spec or conv or not re.fullmatch(r"[a-z][a-z0-9_]*", fname):
                raise fail(path, f"placeholder {{{fname}}} must be a plain part name")
            fields.append(fname)
    if len(fields) > 1:
        raise fail(path, f"a form has at most one placeholder, {form!r} has {len(fields)}")
    if not fields:
        return form.replace("{{", "{").replace("}}", "}"), None, ""
    prefix, _, suffix = form.partition("{" + fields[0] + "}")
    return _unescape(prefix), fields[0], _unescape(suffix)


def _unescape(text: str) -> str:
    return text.replace("{{", "{").replace("}}", "}")


def _part(
    name: str, p: dict[str, Any], path: PathT, fail: Fail, grammars: dict[str, Any]
) -> TextPart:
    if keyword.iskeyword(name) or not name.isidentifier():
        raise fail(path, f"{name!r} is a Python keyword; choose another part name")
    t = p["type"]
    allowed = {
        "str": {"pattern", "examples_from"},
        "list": {"separator", "pattern"},
        "json": {"shape", "keys", "pattern", "errors"},
        "repr": set(),
        "grammar": {"grammar", "pattern"},
        "choice": {"of", "errors"},
        "none": {"literal"},
    }[t]
    for key in p:
        if key not in allowed | {"type", "doc"}:
            raise fail((*path, key), f"{key!r} does not apply to a {t} part")
    if t == "list" and "separator" not in p:
        raise fail(path, "a list part needs a separator")
    if t == "grammar":
        g = p.get("grammar")
        if g is None:
            raise fail(path, "a grammar part needs grammar:")
        if g not in grammars:
            raise fail((*path, "grammar"), f"no grammar named {g!r}")
    if t == "none" and "literal" not in p:
        raise fail(path, "a none part needs literal:")
    if "pattern" in p:
        try:
            re.compile(p["pattern"])
        except re.error as exc:
            raise fail((*path, "pattern"), f"bad regular expression: {exc}") from None
    if p.get("keys") and p.get("shape") != "object":
        raise fail((*path, "keys"), "keys apply to shape: object")
    of = []
    if t == "choice":
        for i, alt in enumerate(p["of"]):
            if alt["type"] not in ("none", "grammar"):
                raise fail((*path, "of", i, "type"), "a choice is made of none and grammar parts")
            of.append(_part(name, alt, (*path, "of", i), fail, grammars))
        kinds = [grammars[a.grammar]["kind"] for a in of if a.grammar]
        if len(set(kinds)) != len(kinds):
            raise fail((*path, "of"), "two alternatives of one choice have the same grammar kind")
    errors = dict(PART_ERRORS.get(t, {}))
    for key, text in (p.get("errors") or {}).items():
        if key not in errors:
            raise fail((*path, "errors", key), f"unknown error {key!r}; known: {sorted(errors)}")
        errors[key] = text
    return TextPart(
        name,
        t,
        p.get("doc", ""),
        p.get("pattern"),
        p.get("examples_from"),
        p.get("separator"),
        p.get("shape", "any"),
        list(p.get("keys") or []),
        p.get("grammar"),
        p.get("literal"),
        of,
        errors,
    )


def build_text(data: dict[str, Any], fail: Fail) -> TextModel:
    """Resolve and check a ``text_commands`` document."""
    raw_grammars = data.get("grammars") or {}
    grammars: dict[str, Grammar] = {}
    for gname, g in raw_grammars.items():
        path: PathT = ("grammars", gname)
        kind = g["kind"]
        seps = list(g["separators"])
        want = SEPARATOR_COUNT[kind]
        if len(seps) not in (want if isinstance(want, tuple) else (want,)):
            count = " or ".join(map(str, want)) if isinstance(want, tuple) else str(want)
            raise fail((*path, "separators"), f"a {kind} grammar has {count} separator(s)")
        if len(set(seps)) != len(seps):
            raise fail((*path, "separators"), "separators must differ")
        if kind in ("typed_map", "typed_table") and not g.get("types"):
            raise fail(path, f"a {kind} grammar needs types:")
        if kind == "point_list":
            target = g.get("point")
            if target is None or raw_grammars.get(target, {}).get("kind") != "point":
                raise fail((*path, "point"), "point: must name a grammar of kind point")
        elif "point" in g:
            raise fail((*path, "point"), "point: applies to point_list grammars")
        if "stale" in g and kind != "point":
            raise fail((*path, "stale"), "stale: applies to point grammars")
        errors = dict(GRAMMAR_ERRORS[kind])
        for key, text in (g.get("errors") or {}).items():
            if key not in errors:
                raise fail(
                    (*path, "errors", key), f"unknown error {key!r}; known: {sorted(errors)}"
                )
            errors[key] = text
        grammars[gname] = Grammar(
            gname,
            kind,
            g.get("doc", ""),
            seps,
            list(g.get("types") or []),
            g.get("reserved", ""),
            g.get("stale"),
            g.get("point"),
            errors,
        )
    # a grammar's separators (and those of the lists it is written in) are always reserved
    for g in grammars.values():
        g.reserved = "".join(dict.fromkeys(g.reserved + "".join(g.separators)))
    for g in grammars.values():
        if g.point is not None:
            p = grammars[g.point]
            p.reserved = "".join(dict.fromkeys(p.reserved + "".join(g.separators)))
    messages: dict[str, TextMessage] = {}
    for mname, m in data["messages"].items():
        path = ("messages", mname)
        if keyword.iskeyword(mname):
            raise fail(path, f"{mname!r} is a Python keyword")
        prefix, pname, suffix = _placeholder(m["form"], (*path, "form"), fail)
        parts = m.get("parts") or {}
        if pname is None and parts:
            raise fail((*path, "parts"), "the form has no placeholder for these parts")
        if pname is not None and set(parts) != {pname}:
            raise fail((*path, "parts"), f"parts must declare exactly {{{pname}}}")
        part = (
            _part(pname, parts[pname], (*path, "parts", pname), fail, raw_grammars)
            if pname
            else None
        )
        direction = m["direction"]
        reply = m.get("reply")
        replies = [reply] if isinstance(reply, str) else list(reply or [])
        if replies and direction != "request":
            raise fail((*path, "reply"), "only requests have replies")
        if direction == "request" and not replies:
            raise fail(path, "a request needs reply:")
        if m.get("cache") and (direction != "request" or len(replies) != 1):
            raise fail((*path, "cache"), "only requests with one reply can be cached")
        if "idempotent" in m and direction != "request":
            raise fail((*path, "idempotent"), "only requests are idempotent or not")
        messages[mname] = TextMessage(
            mname,
            direction,
            m.get("doc", ""),
            m["form"],
            prefix,
            suffix,
            part,
            replies,
            m.get("idempotent", True),
            m.get("method", mname),
            m.get("cache", False),
        )
    for m in messages.values():
        for i, r in enumerate(m.replies):
            target = messages.get(r)
            if target is None or target.direction != "reply":
                raise fail(("messages", m.name, "reply", i), f"{r!r} is not a reply message")
        if len(m.replies) > 1:
            for r in m.replies:
                if messages[r].part is None:
                    raise fail(("messages", m.name, "reply"), f"{r!r} has no part to carry a value")
        source = m.part.examples_from if m.part is not None else None
        if source is not None:
            where = ("messages", m.name, "parts", m.part.name if m.part else "", "examples_from")
            origin = messages.get(source)
            if origin is None or origin.direction != "request" or not origin.literal:
                raise fail(where, f"{source!r} is not a request without parts")
            if len(origin.replies) != 1 or (
                (reply_part := messages[origin.replies[0]].part) is None
                or not (
                    reply_part.type == "list"
                    or (reply_part.type == "json" and reply_part.shape == "str_list")
                )
            ):
                raise fail(where, f"the reply of {source!r} is not a list of texts")
    services: dict[str, Service] = {}
    for sname, s in (data.get("services") or {}).items():
        path = ("services", sname)
        literal_forms: dict[str, str] = {}
        methods: dict[str, str] = {}
        for i, r in enumerate(s["requests"]):
            target = messages.get(r)
            if target is None or target.direction not in ("request", "datagram"):
                raise fail((*path, "requests", i), f"{r!r} is not a request or datagram message")
            if target.literal:
                if target.prefix in literal_forms:
                    raise fail(
                        (*path, "requests", i),
                        f"{r!r} has the same form as {literal_forms[target.prefix]!r}",
                    )
                literal_forms[target.prefix] = r
            if target.method in methods:
                raise fail((*path, "requests", i), f"method {target.method!r} is used twice")
            methods[target.method] = r
        errors = dict(s.get("errors") or {})
        kinds = {messages[r].direction for r in s["requests"]}
        if "request" in kinds and not errors:
            raise fail(path, "a service with requests needs errors:")
        for kind, r in errors.items():
            target = messages.get(r)
            if target is None or target.direction != "reply":
                raise fail((*path, "errors", kind), f"{r!r} is not a reply message")
            if target.part is not None and target.part.type != "str":
                raise fail((*path, "errors", kind), f"{r!r} must carry its message as a str part")
        services[sname] = Service(sname, s.get("doc", ""), list(s["requests"]), errors)
    return TextModel(data.get("encoding", "ascii"), grammars, messages, services)
