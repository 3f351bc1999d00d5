"""Helpers the ``text_commands`` templates call: Python types and code fragments per part."""

from __future__ import annotations

import re
from typing import Any

from daqwire.codegen.model import Spec
from daqwire.codegen.text_model import Grammar, Service, TextMessage, TextModel, TextPart

__all__ = ["text_context"]

ERROR_CLASSES = {
    "unknown": "UnknownCommandError",
    "malformed": "RequestRefusedError",
    "refused": "RequestRefusedError",
    "failed": "RequestFailedError",
}


def _camel(name: str) -> str:
    return "".join(w.capitalize() for w in re.split(r"[_\W]+", name.lower()) if w)


def _char_class(chars: str) -> str:
    return "[" + "".join(re.escape(c) for c in chars) + "]"


class TextRender:
    """Per-spec view of a text model for the templates."""

    def __init__(self, spec: Spec) -> None:
        assert spec.text is not None
        self.spec = spec
        self.model: TextModel = spec.text
        stale = {g.stale for g in self.model.grammars.values() if g.stale}
        if len(stale) > 1:
            raise ValueError("one stale literal per spec")
        self.stale = stale.pop() if stale else None
        self.stale_class = _camel(self.stale) if self.stale else None

    # ---- types ---------------------------------------------------------------------------
    def point_type(self) -> str:
        return f"Point | {self.stale_class}" if self.stale_class else "Point"

    def grammar_type(self, g: Grammar, encode: bool) -> str:
        if g.kind == "point":
            return self.point_type() if (g.stale or encode) else "Point"
        if g.kind == "point_list":
            p = self.model.grammars[g.point or ""]
            inner = self.point_type() if p.stale else "Point"
            if g.named:
                return f"Mapping[str, {inner}]" if encode else f"dict[str, {inner}]"
            return f"Sequence[{inner}]" if encode else f"list[{inner}]"
        if g.kind == "typed_map":
            return "Mapping[str, Any]" if encode else "dict[str, RawValue]"
        return "Sequence[Any]" if encode else "list[list[RawScalar]]"

    def json_type(self, part: TextPart, encode: bool) -> str:
        point = self.point_type()
        return {
            "any": "Any",
            "object": "Mapping[str, Any]" if encode else "dict[str, Any]",
            "str_list": "Sequence[str]" if encode else "list[str]",
            "point": point,
            "point_list": f"Sequence[{point}]" if encode else f"list[{point}]",
            "point_map": f"Mapping[str, {point}]" if encode else f"dict[str, {point}]",
        }[part.shape]

    def part_type(self, part: TextPart | None, encode: bool) -> str:
        if part is None:
            return "None"
        t = part.type
        if t == "str":
            return "str"
        if t == "list":
            return "Sequence[str]" if encode else "list[str]"
        if t == "json":
            if part.keys:
                return _camel(part.name)
            return self.json_type(part, encode)
        if t == "repr":
            return "object" if encode else "str"
        if t == "grammar":
            return self.grammar_type(self.model.grammars[part.grammar or ""], encode)
        if t == "choice":
            if encode:
                return "Any"
            alts = [self.part_type(a, False) for a in part.of]
            return " | ".join(sorted(alts, key=lambda a: a == "None"))
        return "None"

    # ---- messages ------------------------------------------------------------------------
    def messages(self, direction: str | None = None) -> list[TextMessage]:
        return [
            m for m in self.model.messages.values() if direction is None or m.direction == direction
        ]

    def reply_classes(self) -> list[TextMessage]:
        """Reply messages that a handler returns as objects (members of multi-reply lists)."""
        names: list[str] = []
        for m in self.model.messages.values():
            if len(m.replies) > 1:
                names += [r for r in m.replies if r not in names]
        return [self.model.messages[n] for n in names]

    def encoder(self, name: str) -> str:
        """The function that encodes message ``name`` from one value of its part."""
        part = self.model.messages[name].part
        if part is not None and part.type == "json" and part.keys:
            return f"_encode_{name}_value"
        return f"encode_{name}"

    def keyed_parts(self) -> list[tuple[TextMessage, TextPart]]:
        return [
            (m, m.part)
            for m in self.model.messages.values()
            if m.part is not None and m.part.type == "json" and m.part.keys
        ]

    def services(self) -> list[Service]:
        return [
            s
            for s in self.model.services.values()
            if any(self.model.messages[r].direction == "request" for r in s.requests)
        ]

    def requests(self, s: Service) -> list[TextMessage]:
        return [self.model.messages[r] for r in s.requests]

    def literal_requests(self, s: Service) -> list[TextMessage]:
        return [m for m in self.requests(s) if m.literal]

    def param_requests(self, s: Service) -> list[TextMessage]:
        return [m for m in self.requests(s) if not m.literal]

    def handled(self, m: TextMessage) -> bool:
        """False for requests whose only reply is a constant: the dispatcher answers alone."""
        return not (len(m.replies) == 1 and self.model.messages[m.replies[0]].literal)

    def handler_return(self, m: TextMessage) -> str:
        if len(m.replies) == 1:
            return self.part_type(self.model.messages[m.replies[0]].part, True)
        return " | ".join(self.model.messages[r].class_name for r in m.replies)

    def client_return(self, m: TextMessage) -> str:
        if len(m.replies) == 1:
            return self.part_type(self.model.messages[m.replies[0]].part, False)
        return " | ".join(self.model.messages[r].class_name for r in m.replies)

    def error_checks(self, s: Service) -> list[tuple[TextMessage, str]]:
        """(error reply, exception class) in the order a client must test them."""
        seen: dict[str, str] = {}
        for kind in ("unknown", "malformed", "refused", "failed"):
            seen.setdefault(s.errors[kind], ERROR_CLASSES[kind])
        out = [(self.model.messages[r], cls) for r, cls in seen.items()]
        return sorted(out, key=lambda x: not x[0].literal)

    def service_replies(self, s: Service) -> list[str]:
        """Every reply message of ``s``: error replies first, then each request's replies."""
        names = [em.name for em, _exc in self.error_checks(s)]
        for m in self.requests(s):
            names += [r for r in m.replies if r not in names]
        return names

    def error_groups(self, s: Service) -> list[tuple[TextMessage, list[str]]]:
        """Each distinct error reply of ``s`` with the error kinds it answers."""
        groups: dict[str, list[str]] = {}
        for kind in ("unknown", "malformed", "refused", "failed"):
            groups.setdefault(s.errors[kind], []).append(kind)
        return [(self.model.messages[r], kinds) for r, kinds in groups.items()]

    def reply_sets(self) -> list[tuple[str, list[str]]]:
        """(name, replies) for each distinct list of replies a handler chooses among."""
        seen: dict[tuple[str, ...], str] = {}
        for m in self.model.messages.values():
            if len(m.replies) > 1:
                seen.setdefault(tuple(m.replies), f"reply_{'_or_'.join(m.replies)}")
        return [(name, list(replies)) for replies, name in seen.items()]

    def reply_set_name(self, m: TextMessage) -> str:
        return dict((tuple(r), n) for n, r in self.reply_sets())[tuple(m.replies)]

    def grammars(self, kind: str | None = None) -> list[Grammar]:
        return [g for g in self.model.grammars.values() if kind is None or g.kind == kind]

    def has(self, what: str) -> bool:
        if what == "point":
            return bool(self.grammars("point")) or self.has("point_json")
        if what in ("point_list", "typed_map", "typed_table"):
            return bool(self.grammars(what))
        if what == "typed":
            return bool(self.grammars("typed_map") or self.grammars("typed_table"))
        if what == "json":
            return any(m.part and m.part.type == "json" for m in self.model.messages.values())
        if what == "point_json":
            return any(
                m.part and m.part.type == "json" and m.part.shape.startswith("point")
                for m in self.model.messages.values()
            )
        if what == "pattern":
            return any(self.patterns())
        raise KeyError(what)

    def patterns(self) -> list[tuple[str, str]]:
        out = []
        for m in self.model.messages.values():
            if m.part is not None and m.part.pattern:
                out.append((f"_PATTERN_{m.name.upper()}", m.part.pattern))
        return out

    def reserved(self) -> list[tuple[str, str]]:
        out = []
        for g in self.model.grammars.values():
            if g.reserved:
                out.append((f"_RESERVED_{g.name.upper()}", _char_class(g.reserved)))
        return out


def text_context(spec: Spec) -> dict[str, Any]:
    r = TextRender(spec)
    return {"t": r, "model": r.model, "char_class": _char_class, "camel": _camel}
