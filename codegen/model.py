"""The validated, resolved model of a spec: what the templates render from."""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daqwire.codegen.json_model import JsonModel, build_json
from daqwire.codegen.loader import PathT, RawSpec, read_spec
from daqwire.codegen.msgpack_model import MpModel, build_msgpack
from daqwire.codegen.text_model import Constant, TextModel, build_constants, build_text

__all__ = [
    "ArrayField",
    "BinaryMessage",
    "BlockField",
    "EnumDef",
    "FitsKeyword",
    "PaddingField",
    "Param",
    "ScalarField",
    "Spec",
    "StructRun",
    "load_spec",
]

#: scalar type -> (struct code, size in bytes, numpy kind, Python type)
SCALARS: dict[str, tuple[str, int, str, str]] = {
    "uint8": ("B", 1, "u1", "int"),
    "uint16": ("H", 2, "u2", "int"),
    "uint32": ("I", 4, "u4", "int"),
    "uint64": ("Q", 8, "u8", "int"),
    "int8": ("b", 1, "i1", "int"),
    "int16": ("h", 2, "i2", "int"),
    "int32": ("i", 4, "i4", "int"),
    "int64": ("q", 8, "i8", "int"),
    "float32": ("f", 4, "f4", "float"),
    "float64": ("d", 8, "f8", "float"),
}
#: names the generated classes and modules use themselves
RESERVED = {"encode", "decode", "size", "spec", "protocol", "buf", "pos", "end", "base", "msg"}


def int_range(type_name: str) -> tuple[int, int]:
    """Inclusive range of an integer scalar type."""
    bits = SCALARS[type_name][1] * 8
    if type_name.startswith("u"):
        return 0, (1 << bits) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def camel(name: str) -> str:
    """``window_header`` -> ``WindowHeader``."""
    return "".join(part.capitalize() for part in name.split("_"))


@dataclass
class Param:
    name: str
    doc: str
    choices: dict[str, Any]
    default: str


@dataclass
class EnumDef:
    name: str
    doc: str
    values: dict[str, int]
    flags: bool = False


@dataclass
class FitsKeyword:
    keyword: str
    type: str
    doc: str
    min: float | None
    max: float | None
    required: bool

    @property
    def key8(self) -> str:
        """The keyword as it stands in columns 1-8 of its card."""
        return self.keyword.ljust(8)

    @property
    def ident(self) -> str:
        return self.keyword.lower().replace("-", "_")


@dataclass
class ScalarField:
    name: str
    type: str
    doc: str
    byte_order: str
    const: int | float | None = None
    enum: str | None = None
    min: float | None = None
    max: float | None = None
    length_of: str | None = None
    kind: str = "scalar"

    @property
    def code(self) -> str:
        return SCALARS[self.type][0]

    @property
    def size(self) -> int:
        return SCALARS[self.type][1]

    @property
    def pytype(self) -> str:
        return self.enum if self.enum else SCALARS[self.type][3]

    @property
    def in_dataclass(self) -> bool:
        return self.const is None and self.length_of is None

    @property
    def limit_param(self) -> str | None:
        """Keyword argument name that lowers this length field's limit at run time."""
        return f"max_{self.length_of}_bytes" if self.length_of and self.max is not None else None


@dataclass
class PaddingField:
    name: str
    doc: str
    size: int
    fill: int
    check: str
    kind: str = "padding"

    @property
    def in_dataclass(self) -> bool:
        return False

    @property
    def is_struct_pad(self) -> bool:
        """Zero bytes that are not checked: a struct ``x`` pad (packs zeros, reads nothing)."""
        return self.check == "ignore" and self.fill == 0


@dataclass
class BlockField:
    """A text or raw bytes block, sized by a length field or a fixed size."""

    name: str
    kind: str  # "text" | "bytes"
    doc: str
    length: str | None
    size: int | None
    encoding: str = "ascii"
    fits: bool = False
    end_card: str = "required"
    keywords: list[FitsKeyword] = field(default_factory=list)

    @property
    def pytype(self) -> str:
        return "str" if self.kind == "text" else "bytes"

    @property
    def in_dataclass(self) -> bool:
        return True


@dataclass
class ArrayField:
    name: str
    doc: str
    dtype: str
    byte_order: str
    length: str | None
    shape: list[int | str]
    order: str | None  # "C" / "F" or None when a parameter chooses
    order_param: str | None
    kind: str = "array"

    @property
    def itemsize(self) -> int:
        return SCALARS[self.dtype][1]

    @property
    def numpy_dtype(self) -> str:
        prefix = "|" if self.itemsize == 1 else ("<" if self.byte_order == "little" else ">")
        return prefix + SCALARS[self.dtype][2]

    @property
    def numpy_scalar(self) -> str:
        names = {
            "u1": "uint8",
            "u2": "uint16",
            "u4": "uint32",
            "u8": "uint64",
            "i1": "int8",
            "i2": "int16",
            "i4": "int32",
            "i8": "int64",
            "f4": "float32",
            "f8": "float64",
        }
        return "np." + names[SCALARS[self.dtype][2]]

    @property
    def in_dataclass(self) -> bool:
        return True


Field = ScalarField | PaddingField | BlockField | ArrayField


@dataclass
class StructRun:
    """Consecutive fixed-size fields packed by one precompiled ``struct.Struct``."""

    index: int
    fmt: str
    fields: list[ScalarField | PaddingField]
    size: int

    @property
    def unpacked(self) -> list[ScalarField | PaddingField]:
        """The fields that produce a value when unpacked (ignored padding does not)."""
        return [f for f in self.fields if not (isinstance(f, PaddingField) and f.is_struct_pad)]


@dataclass
class BinaryMessage:
    name: str
    doc: str
    fields: list[Field]
    segments: list[StructRun | BlockField | ArrayField]
    prefix_size: int  # bytes of the leading fixed part, where every length field sits
    param_defaults: dict[str, str] = field(default_factory=dict)  # spec parameter -> default

    @property
    def class_name(self) -> str:
        return camel(self.name)

    @property
    def data_fields(self) -> list[Field]:
        return [f for f in self.fields if f.in_dataclass]

    @property
    def length_fields(self) -> list[ScalarField]:
        return [f for f in self.fields if isinstance(f, ScalarField) and f.length_of]

    @property
    def arrays(self) -> list[ArrayField]:
        return [f for f in self.fields if isinstance(f, ArrayField)]

    @property
    def fits_blocks(self) -> list[BlockField]:
        return [f for f in self.fields if isinstance(f, BlockField) and f.fits]

    @property
    def order_params(self) -> list[str]:
        return sorted({a.order_param for a in self.arrays if a.order_param})

    @property
    def is_fixed(self) -> bool:
        return all(isinstance(s, StructRun) for s in self.segments)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


@dataclass
class Spec:
    path: Path
    display_name: str
    sha256: str
    protocol: str
    title: str
    doc: str
    family: str
    byte_order: str | None
    params: dict[str, Param]
    enums: dict[str, EnumDef]
    messages: list[BinaryMessage]
    raw: dict[str, Any]
    constants: list[Constant] = field(default_factory=list)
    text: TextModel | None = None
    msgpack: MpModel | None = None
    json: JsonModel | None = None


class _Builder:
    def __init__(self, raw: RawSpec) -> None:
        self.raw = raw
        self.data = raw.data

    def fail(self, path: PathT, message: str) -> Exception:
        return self.raw.marks.error(path, message)

    def build(self) -> Spec:
        d = self.data
        params = {}
        for name, p in (d.get("parameters") or {}).items():
            if p["default"] not in p["choices"]:
                raise self.fail(
                    ("parameters", name, "default"),
                    f"{p['default']!r} is not one of the choices {', '.join(p['choices'])}",
                )
            params[name] = Param(name, p.get("doc", ""), dict(p["choices"]), p["default"])
        enums = {}
        for name, e in (d.get("enums") or {}).items():
            values = dict(e["values"])
            if len(set(values.values())) != len(values):
                raise self.fail(("enums", name, "values"), "two names share one value")
            enums[name] = EnumDef(name, e.get("doc", ""), values, bool(e.get("flags")))
        self.params, self.enums = params, enums
        messages: list[BinaryMessage] = []
        text = None
        mp = None
        js = None
        if d["family"] == "binary":
            for mname, m in d["messages"].items():
                messages.append(self.binary_message(mname, m))
        elif d["family"] == "text_commands":
            text = build_text(d, self.fail)
        elif d["family"] == "msgpack_frames":
            mp = build_msgpack(d, self.fail)
        elif d["family"] == "json_lines":
            js = build_json(d, self.raw.path, self.fail)
        return Spec(
            self.raw.path,
            self.raw.display_name,
            self.raw.sha256,
            d["protocol"],
            d.get("title", d["protocol"]),
            d.get("doc", ""),
            d["family"],
            d.get("byte_order"),
            params,
            enums,
            messages,
            d,
            build_constants(d),
            text,
            mp,
            js,
        )

    def byte_order(self, f: dict[str, Any], size: int, path: PathT) -> str:
        order = f.get("byte_order") or self.data.get("byte_order")
        if order is None:
            if size == 1:
                return "little"
            raise self.fail(
                (*path, "type"),
                "multi-byte field without a byte order: set "
                "byte_order on the field or at the top of the spec",
            )
        return str(order)

    def binary_message(self, mname: str, m: dict[str, Any]) -> BinaryMessage:
        base: PathT = ("messages", mname, "fields")
        fields: list[Field] = []
        names: dict[str, int] = {}
        for i, f in enumerate(m["fields"]):
            path = (*base, i)
            name = f["name"]
            if name in names:
                raise self.fail(
                    (*path, "name"),
                    f"field {name!r} is declared twice (first as field [{names[name]}])",
                )
            if keyword.iskeyword(name) or name in RESERVED:
                raise self.fail((*path, "name"), f"{name!r} is reserved; choose another name")
            names[name] = i
            fields.append(self.binary_field(f, path))
        # resolve length fields, shape references, offsets
        by_name = {f.name: f for f in fields}
        sized_by: dict[str, str] = {}
        for i, f in enumerate(fields):
            path = (*base, i)
            if isinstance(f, BlockField | ArrayField) and f.length is not None:
                src = by_name.get(f.length)
                if src is None:
                    raise self.fail((*path, "length"), f"no field named {f.length!r}")
                if not (isinstance(src, ScalarField) and src.type.startswith("uint")):
                    raise self.fail(
                        (*path, "length"), f"{f.length!r} is not an unsigned integer field"
                    )
                if src.const is not None or src.enum is not None:
                    raise self.fail((*path, "length"), f"{f.length!r} is a constant or enum")
                if names[src.name] > i:
                    raise self.fail(
                        (*path, "length"),
                        f"{f.length!r} comes after {f.name!r}; "
                        "a length field must precede the block it sizes",
                    )
                if src.length_of not in (None, f.name):
                    raise self.fail(
                        (*path, "length"), f"{f.length!r} already sizes {src.length_of!r}"
                    )
                if src.name in sized_by:
                    raise self.fail(
                        (*path, "length"), f"{f.length!r} already sizes {sized_by[src.name]!r}"
                    )
                sized_by[src.name] = f.name
                src.length_of = f.name
        for i, f in enumerate(fields):
            if isinstance(f, ScalarField) and f.length_of is not None:
                target = by_name.get(f.length_of)
                path = (*base, i, "length_of")
                if target is None:
                    raise self.fail(path, f"no field named {f.length_of!r}")
                if not isinstance(target, BlockField | ArrayField):
                    raise self.fail(path, f"{f.length_of!r} is not a text, bytes or array field")
                if target.length is None:
                    # length_of alone is enough: it sizes the target
                    if names[f.length_of] < i:
                        raise self.fail(path, f"{f.length_of!r} comes before its length field")
                    if isinstance(target, BlockField) and target.size is not None:
                        raise self.fail(path, f"{f.length_of!r} has a fixed size already")
                    target.length = f.name
                elif target.length != f.name:
                    raise self.fail(path, f"{f.length_of!r} is sized by {target.length!r}")
                if not f.type.startswith("uint"):
                    raise self.fail((*base, i, "type"), "a length field is an unsigned integer")
        # segments, static offsets, prefix
        segments: list[StructRun | BlockField | ArrayField] = []
        run: list[ScalarField | PaddingField] = []
        offset: int | None = 0
        prefix_size: int | None = None
        prefix_names: set[str] = set()
        for i, f in enumerate(fields):
            path = (*base, i)
            if isinstance(f, PaddingField) and f.size < 0:  # to_offset
                target_offset = -f.size
                if offset is None:
                    raise self.fail(
                        (*path, "to_offset"),
                        "to_offset after a variable-size block cannot be computed; use size",
                    )
                if target_offset <= offset:
                    raise self.fail(
                        (*path, "to_offset"),
                        f"the field already starts at offset "
                        f"{offset}, so it cannot pad to {target_offset}",
                    )
                f.size = target_offset - offset
            if isinstance(f, ScalarField | PaddingField):
                if (
                    run
                    and isinstance(f, ScalarField)
                    and isinstance(run[0], ScalarField)
                    and f.size > 1
                    and f.byte_order != self._run_order(run)
                ):
                    segments.append(self._run(run, len(segments)))
                    run = []
                if (
                    isinstance(f, ScalarField)
                    and f.length_of is not None
                    and prefix_size is not None
                ):
                    raise self.fail(
                        path,
                        "a length field must sit in the fixed part before the "
                        "first variable-size block",
                    )
                run.append(f)
                if prefix_size is None:
                    prefix_names.add(f.name)
                if offset is not None:
                    offset += f.size
            else:
                if run:
                    segments.append(self._run(run, len(segments)))
                    run = []
                if prefix_size is None:
                    prefix_size = offset
                self.check_block(f, by_name, names, (*base, i), prefix_names)
                segments.append(f)
                offset = None
        if run:
            segments.append(self._run(run, len(segments)))
        if prefix_size is None:
            prefix_size = offset or 0
        defaults = {name: p.default for name, p in self.params.items()}
        return BinaryMessage(mname, m.get("doc", ""), fields, segments, prefix_size, defaults)

    @staticmethod
    def _run_order(run: list[ScalarField | PaddingField]) -> str:
        for f in run:
            if isinstance(f, ScalarField) and f.size > 1:
                return f.byte_order
        return "little"

    def _run(self, run: list[ScalarField | PaddingField], index: int) -> StructRun:
        order = "<" if self._run_order(run) == "little" else ">"
        fmt = order
        for f in run:
            if isinstance(f, PaddingField):
                fmt += f"{f.size}x" if f.is_struct_pad else f"{f.size}s"
            else:
                fmt += f.code
        return StructRun(index, fmt, list(run), sum(f.size for f in run))

    def check_block(
        self,
        f: BlockField | ArrayField,
        by_name: dict[str, Field],
        names: dict[str, int],
        path: PathT,
        prefix: set[str],
    ) -> None:
        if isinstance(f, BlockField):
            if f.length is None and f.size is None:
                raise self.fail(
                    path,
                    f"the length of {f.name!r} cannot be computed: give it "
                    "`length: <field>` or `size: N`",
                )
            if f.length is not None and f.size is not None:
                raise self.fail((*path, "size"), "give either length or size, not both")
            return
        # array
        if f.order_param is not None:
            p = self.params.get(f.order_param)
            if p is None:
                raise self.fail((*path, "order", "param"), f"no parameter {f.order_param!r}")
            bad = [k for k, v in p.choices.items() if v not in ("C", "F")]
            if bad:
                raise self.fail(
                    (*path, "order", "param"),
                    f"parameter {f.order_param!r} maps "
                    f"{bad[0]!r} to {p.choices[bad[0]]!r}; an order is C or F",
                )
        computable = f.length is not None
        if not f.shape and f.length is None:
            raise self.fail(
                path,
                f"the length of {f.name!r} cannot be computed: give it "
                "`length: <field>` or a `shape`",
            )
        for j, ref in enumerate(f.shape):
            if isinstance(ref, int):
                continue
            spath = (*path, "shape", j)
            if "." in ref:
                block_name, key = ref.split(".", 1)
                block = by_name.get(block_name)
                if not isinstance(block, BlockField) or not block.fits:
                    raise self.fail(spath, f"{block_name!r} is not a FITS header text field")
                if names[block_name] > names[f.name]:
                    raise self.fail(spath, f"{block_name!r} comes after {f.name!r}")
                kw = next((k for k in block.keywords if k.keyword == key), None)
                if kw is None:
                    raise self.fail(
                        spath, f"keyword {key!r} is not declared in {block_name}.format.keywords"
                    )
                if kw.type != "int" or not kw.required:
                    raise self.fail(spath, f"keyword {key!r} must be a required int")
                if not computable:
                    raise self.fail(
                        spath,
                        f"the length of {f.name!r} cannot be computed from "
                        "the fixed part; give it `length: <field>`",
                    )
            else:
                src = by_name.get(ref)
                if src is None:
                    raise self.fail(spath, f"no field named {ref!r}")
                if not (
                    isinstance(src, ScalarField)
                    and src.pytype == "int"
                    and src.const is None
                    and src.length_of is None
                ):
                    raise self.fail(spath, f"{ref!r} is not an integer data field")
                if not computable and ref not in prefix:
                    raise self.fail(
                        spath,
                        f"the length of {f.name!r} cannot be computed from "
                        f"the fixed part: {ref!r} follows a variable-size block",
                    )
                if names[ref] > names[f.name]:
                    raise self.fail(spath, f"{ref!r} comes after {f.name!r}")

    def binary_field(self, f: dict[str, Any], path: PathT) -> Field:
        t = f["type"]
        name, doc = f["name"], f.get("doc", "")
        if t in SCALARS:
            size = SCALARS[t][1]
            sf = ScalarField(
                name,
                t,
                doc,
                self.byte_order(f, size, path),
                f.get("const"),
                f.get("enum"),
                f.get("min"),
                f.get("max"),
                f.get("length_of"),
            )
            is_int = SCALARS[t][3] == "int"
            if sf.enum is not None:
                if not is_int:
                    raise self.fail((*path, "enum"), "only integer fields can be enums")
                if sf.enum not in self.enums:
                    raise self.fail((*path, "enum"), f"no enum named {sf.enum!r}")
            if is_int:
                lo, hi = int_range(t)
                for key in ("const", "min", "max"):
                    v = f.get(key)
                    if v is not None and (not isinstance(v, int) or not lo <= v <= hi):
                        raise self.fail((*path, key), f"{v!r} does not fit {t} [{lo}, {hi}]")
                if sf.enum is not None:
                    for vname, v in self.enums[sf.enum].values.items():
                        if not lo <= v <= hi:
                            raise self.fail(
                                (*path, "enum"), f"{sf.enum}.{vname} = {v} does not fit {t}"
                            )
            if sf.min is not None and sf.max is not None and sf.min > sf.max:
                raise self.fail((*path, "min"), "min is greater than max")
            if sf.length_of is not None and (sf.enum is not None or sf.min is not None):
                raise self.fail(
                    (*path, "length_of"), "a length field takes max (its limit), not enum or min"
                )
            if sf.const is not None and (
                sf.enum or sf.length_of or sf.min is not None or sf.max is not None
            ):
                raise self.fail(
                    (*path, "const"), "a constant field takes no enum, length_of, min or max"
                )
            return sf
        if t == "padding":
            pad_size: int = f["size"] if "size" in f else -f["to_offset"]
            return PaddingField(
                name,
                doc,
                pad_size,
                f.get("fill", 0),
                f.get("check", "ignore"),
            )
        if t in ("text", "bytes"):
            fmt = f.get("format")
            block = BlockField(
                name, t, doc, f.get("length"), f.get("size"), f.get("encoding", "ascii")
            )
            if fmt is not None:
                if t != "text":
                    raise self.fail((*path, "format"), "format applies to text fields only")
                if block.encoding != "ascii":
                    raise self.fail((*path, "encoding"), "a FITS header is ASCII text")
                block.fits = True
                block.end_card = fmt.get("end_card", "required")
                for key, kw in (fmt.get("keywords") or {}).items():
                    if kw["type"] not in ("int", "float") and ("min" in kw or "max" in kw):
                        raise self.fail(
                            (*path, "format", "keywords", key, "min" if "min" in kw else "max"),
                            f"min and max apply to int and float keywords, not {kw['type']}",
                        )
                    block.keywords.append(
                        FitsKeyword(
                            key,
                            kw["type"],
                            kw.get("doc", ""),
                            kw.get("min"),
                            kw.get("max"),
                            kw.get("required", True),
                        )
                    )
            return block
        if t == "array":
            order = f.get("order", "C")
            dtype = f["dtype"]
            return ArrayField(
                name,
                doc,
                dtype,
                self.byte_order(f, SCALARS[dtype][1], path),
                f.get("length"),
                list(f.get("shape", [])),
                order if isinstance(order, str) else None,
                order.get("param") if isinstance(order, dict) else None,
            )
        raise self.fail((*path, "type"), f"unknown type {t!r}")  # pragma: no cover (schema)


def load_spec(path: str | Path, *, display_name: str | None = None) -> Spec:
    """Load, validate and resolve one spec file; raise :class:`SpecError` on any problem."""
    raw = read_spec(path, display_name=display_name)
    return _Builder(raw).build()
