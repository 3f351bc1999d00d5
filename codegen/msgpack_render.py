"""Code lines for the ``msgpack_frames`` templates: one reader and one writer per object kind.

The templates own the module layout; this module turns each object of the model into the
few lines that read or write it, so the Jinja stays readable.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack

from daqwire.codegen.model import Spec
from daqwire.codegen.msgpack_model import PY_CLASS, MpFrame, MpItem, MpMessage, MpModel, MpObject

__all__ = ["msgpack_context"]

#: generated reader function per object type
READER = {
    "int": "_r_int",
    "float": "_r_float",
    "str": "_r_str",
    "bool": "_r_bool",
    "bytes": "_r_bin",
    "map": "_r_map",
    "array": "_r_list",
    "timestamp": "_r_timestamp",
    "any": "_r_any",
}

#: generated writer function per object type
WRITER = {
    "int": "_p_int",
    "float": "_p_float",
    "str": "_p_str",
    "bool": "_p_bool",
    "map": "_p_map",
    "array": "_p_list",
    "timestamp": "_p_timestamp",
    "any": "_p_any",
}

PYTYPE = {
    "int": "int",
    "float": "float",
    "str": "str",
    "bool": "bool",
    "bytes": "Block",
    "map": "dict[str, Any]",
    "array": "list[Any]",
    "timestamp": "datetime",
    "any": "Any",
}

#: first bytes of each msgpack type (for optional objects)
FIRST = {
    "timestamp": "_FIRST_TIMESTAMP",
    "str": "_FIRST_STR",
    "int": "_FIRST_INT",
    "map": "_FIRST_MAP",
    "array": "_FIRST_ARRAY",
    "bytes": "_FIRST_BIN",
    "float": "_FIRST_FLOAT",
    "bool": "_FIRST_BOOL",
}


def _lit(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def _packed(value: Any) -> str:
    return repr(msgpack.packb(value))


class _Emit:
    def __init__(self, spec: Spec, model: MpModel) -> None:
        self.spec = spec
        self.m = model

    # --- types -----------------------------------------------------------------------------

    def py(self, kind: str) -> str:
        if kind == "timestamp" and self.m.timestamps == "msgpack":
            return "msgpack.Timestamp"
        return PYTYPE[kind]

    def item_type(self, it: MpItem) -> str:
        if it.record:
            return it.record
        return self.py(it.type)

    def pytype(self, o: MpObject) -> str:
        if o.type == "array" and o.items is not None:
            t = f"tuple[{self.item_type(o.items)}, ...]"
        elif o.enum:
            t = o.enum
        else:
            t = self.py(o.type)
        if o.nullable or o.optional:
            t += " | None"
        return t

    # --- field descriptors -----------------------------------------------------------------

    def fields(self) -> list[tuple[str, str]]:
        """(constant name, constructor source) of every field descriptor."""
        out = []
        for rec in self.m.records.values():
            out.append(
                (
                    "_F_" + rec.name.upper(),
                    self.field_src(rec.name, "list", "", "", "", rec.size_error, {}, None),
                )
            )
        for o in self.m.all_objects():
            out.append((o.ident, self.obj_field(o)))
            if o.items is not None:
                it = o.items
                out.append(
                    (
                        o.ident + "_ITEM",
                        self.field_src(
                            o.path + "[]",
                            PY_CLASS[it.type] if not it.record else "list",
                            it.type_error,
                            "",
                            "",
                            "",
                            {},
                            it.max_bytes,
                        ),
                    )
                )
        for msg in self.m.messages:
            for fr in msg.frames:
                if fr.raw:
                    out.append(
                        (
                            f"_F_{msg.name.upper()}_{fr.name.upper()}",
                            self.field_src(
                                f"{msg.name}.{fr.name}", "bytes", "", "", "", "", {}, fr.max_bytes
                            ),
                        )
                    )
            out.append(
                (
                    f"_F_{msg.name.upper()}",
                    self.field_src(msg.name, "", "", "", "", "", {}, None),
                )
            )
        return out

    def obj_field(self, o: MpObject) -> str:
        return self.field_src(
            o.path,
            PY_CLASS[o.type],
            o.type_error,
            o.const_error,
            o.enum_error,
            o.count_error,
            o.known,
            o.max_bytes,
        )

    @staticmethod
    def field_src(
        path: str,
        expected: str,
        type_text: str,
        const_text: str,
        enum_text: str,
        count_text: str,
        known: dict[str, str],
        max_bytes: int | None,
    ) -> str:
        known_src = "{" + ", ".join(f"{_lit(k)}: {_lit(v)}" for k, v in known.items()) + "}"
        return (
            f"_Field({_lit(path)}, {_lit(expected)}, {_lit(type_text)}, {_lit(const_text)}, "
            f"{_lit(enum_text)}, {_lit(count_text)}, {known_src}, {max_bytes!r})"
        )

    # --- readers -------------------------------------------------------------------------------

    def read(self, o: MpObject, var: str) -> list[str]:
        """Lines that read object ``o`` at ``pos`` into ``var`` and advance ``pos``."""
        f = o.ident
        if o.has_const and not o.selector:
            fn = "_str_const" if o.type == "str" else "_int_const"
            return [f"pos = {fn}(buf, pos, end, {f}, {_packed(o.const)}, {_lit(o.const)})"]
        lines = self.read_value(o, var)
        if o.selector:
            lines.insert(0, f"at_{o.name} = pos")
        if o.enum and not o.selector:
            lines.append(f"{var} = _enum({o.enum}, {var}, {f}, buf, at_{o.name})")
            lines.insert(0, f"at_{o.name} = pos")
        if o.nullable:
            body = ["    " + ln for ln in lines]
            return [
                "if pos < end and buf[pos] == 0xC0:",
                f"    {var} = None",
                "    pos += 1",
                "else:",
                *body,
            ]
        if o.optional:
            body = ["    " + ln for ln in lines]
            return [
                f"{var} = None",
                f"if pos < end and buf[pos] in {FIRST[o.type]}:",
                *body,
            ]
        return lines

    def read_value(self, o: MpObject, var: str) -> list[str]:
        f = o.ident
        if o.type != "array" or o.items is None:
            return [f"{var}, pos = {READER[o.type]}(buf, pos, end, {f})"]
        it = o.items
        lines = [f"n_{o.name}, pos = _r_array(buf, pos, end, {f})"]
        if o.count is not None or o.max_items is not None:
            lines.insert(0, f"at_{o.name} = pos")
        if o.count is not None:
            lines += [
                f"if n_{o.name} != {o.count}:",
                f"    raise _count_error({f}, at_{o.name}, {o.count}, n_{o.name})",
            ]
        if o.max_items is not None:
            lines += [
                f"if n_{o.name} > {o.max_items}:",
                f"    raise _too_many({f}, at_{o.name}, {o.max_items}, n_{o.name})",
            ]
        if it.record:
            item = f"_r_rec_{it.record}(buf, pos, end)"
        else:
            item = f"{READER[it.type]}(buf, pos, end, {f}_ITEM)"
        lines += [
            f"items_{o.name}: list[{self.item_type(it)}] = []",
            f"for _ in range(n_{o.name}):",
            f"    item_{o.name}, pos = {item}",
            f"    items_{o.name}.append(item_{o.name})",
            f"{var} = tuple(items_{o.name})",
        ]
        return lines

    # --- writers -------------------------------------------------------------------------------

    def write(self, o: MpObject, value: str) -> list[str]:
        """Lines that append the encoding of ``value`` (object ``o``) to ``parts``."""
        f = o.ident
        if o.has_const:
            return [f"parts.append({_packed(o.const)})"]
        lines = self.write_value(o, value)
        if o.nullable:
            return [
                f"if {value} is None:",
                '    parts.append(b"\\xc0")',
                "else:",
                *["    " + ln for ln in lines],
            ]
        if o.optional:
            return [f"if {value} is not None:", *["    " + ln for ln in lines]]
        del f
        return lines

    def write_value(self, o: MpObject, value: str, prepacked: bool = False) -> list[str]:
        f = o.ident
        if prepacked:
            return [
                f"parts.append(_p_array_header({value}, {f}, {o.count!r}, {o.max_items!r}))",
                f"for item in {value}:",
                "    parts += item",
            ]
        if o.type == "bytes":
            return [f"parts += _p_bin({value}, {f})"]
        if o.enum:
            return [f"parts.append(_p_enum({value}, {o.enum}, {f}))"]
        if o.type != "array" or o.items is None:
            return [f"parts.append({WRITER[o.type]}({value}, {f}))"]
        it = o.items
        lines = [f"parts.append(_p_array_header({value}, {f}, {o.count!r}, {o.max_items!r}))"]
        if it.record:
            lines += [f"for item in {value}:", f"    _p_rec_{it.record}(item, parts)"]
        elif it.type == "bytes":
            lines += [f"for item in {value}:", f"    parts += _p_bin(item, {f}_ITEM)"]
        else:
            lines += [
                f"for item in {value}:",
                f"    parts.append({WRITER[it.type]}(item, {f}_ITEM))",
            ]
        return lines

    # --- messages ------------------------------------------------------------------------------

    def dataclass_fields(self, msg: MpMessage) -> list[tuple[str, str, str]]:
        """(name, annotation, default source or '') in dataclass order."""
        required, optional = [], []
        for fr in msg.frames:
            if fr.raw:
                t = "tuple[Block, ...]" if fr.repeat else "Block"
                required.append((fr.name, t, ""))
                continue
            for o in fr.objects:
                if not o.in_dataclass or o.selector:
                    continue
                if fr.optional:
                    optional.append((o.name, self.pytype(o) + " | Absent", "ABSENT"))
                elif o.optional:
                    optional.append((o.name, self.pytype(o), "None"))
                else:
                    required.append((o.name, self.pytype(o), ""))
        return required + optional

    def frame_read(self, msg: MpMessage, index: int, fr: MpFrame, skip: int = 0) -> list[str]:
        """Lines that decode frame ``index`` (objects from ``skip`` on) of ``msg``."""
        fpath = f"_F_{msg.name.upper()}"
        if fr.raw:
            ff = f"_F_{msg.name.upper()}_{fr.name.upper()}"
            if fr.repeat:
                return [f"v_{fr.name} = _raw_frames(frames, {index}, {ff})"]
            return [f"v_{fr.name} = _raw_frame(frames[{index}], {ff})"]
        lines = []
        if index > 0 or skip == 0:
            lines += [f"buf = _view(frames[{index}])", "end = len(buf)", "pos = 0"]
        for o in fr.objects[skip:]:
            lines += self.read(o, f"v_{o.name}")
        if fr.trailing == "error":
            lines += [
                "if pos != end:",
                f"    raise _trailing({fpath}, pos, end - pos, {_lit(fr.name)})",
            ]
        if fr.optional:
            body = ["    " + ln for ln in lines]
            names = [o.name for o in fr.objects if o.in_dataclass]
            return [
                *[f"v_{n}: Any = ABSENT" for n in names],
                f"if len(frames) > {index}:",
                *body,
            ]
        return lines

    def frame_count_check(self, msg: MpMessage) -> list[str]:
        f = f"_F_{msg.name.upper()}"
        lo, hi = msg.min_frames, msg.max_frames
        lines = [
            f"if count < {lo}:",
            f"    raise _frame_count({f}, {lo}, count)",
        ]
        if hi is not None and msg.extra_frames == "error":
            lines += [f"if count > {hi}:", f"    raise _extra_frames({f}, {hi}, count)"]
        return lines

    def construct(self, msg: MpMessage) -> str:
        args = ", ".join(f"{n}=v_{n}" for n, _t, _d in self.dataclass_fields(msg))
        return f"{msg.class_name}({args})"

    def prepacked(self, msg: MpMessage) -> MpObject | None:
        """The one array-of-records object of a one-frame message, if it has exactly one."""
        if len(msg.frames) != 1:
            return None
        found = [
            o
            for o in msg.frames[0].objects
            if o.type == "array" and o.items is not None and o.items.record and o.count is None
        ]
        return found[0] if len(found) == 1 and not found[0].nullable else None

    def frame_write(
        self, msg: MpMessage, fr: MpFrame, prefix: str = "msg.", prepacked: str = ""
    ) -> list[str]:
        f = f"_F_{msg.name.upper()}_{fr.name.upper()}"
        if fr.raw:
            if fr.repeat:
                return [f"frames += _p_raw_frames({prefix}{fr.name}, {f})"]
            return [f"frames.append(_p_raw({prefix}{fr.name}, {f}))"]
        lines = ["parts = []"]
        for o in fr.objects:
            if o.name == prepacked:
                lines += self.write_value(o, f"{prefix}{o.name}", prepacked=True)
            else:
                lines += self.write(o, f"{prefix}{o.name}")
        lines.append('frames.append(b"".join(parts))')
        if fr.optional:
            first = next(o for o in fr.objects if o.in_dataclass)
            return [f"if {prefix}{first.name} is not ABSENT:", *["    " + ln for ln in lines]]
        return lines


def msgpack_context(spec: Spec) -> dict[str, Any]:
    """Template context for one msgpack_frames spec."""
    assert spec.msgpack is not None
    m = spec.msgpack
    e = _Emit(spec, m)
    select_prefix: list[MpObject] = []
    if m.select:
        objs = m.messages[0].frames[0].objects
        idx = next(i for i, o in enumerate(objs) if o.name == m.select)
        select_prefix = objs[: idx + 1]
    same_count = len({(x.min_frames, x.max_frames, x.extra_frames) for x in m.messages}) == 1
    needs_absent = any(fr.optional for x in m.messages for fr in x.frames)
    return dict(
        mp=m,
        emit=e,
        field_defs=e.fields(),
        select_prefix=select_prefix,
        same_count=same_count,
        needs_absent=needs_absent,
        lit=_lit,
        mp_errors=m.errors,
    )
