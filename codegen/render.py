"""Render spec models into Python modules with Jinja2, and compare them with what is on disk."""

from __future__ import annotations

import difflib
import json
import re
import struct
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from daqwire._generated_api import GENERATED_API
from daqwire.codegen.model import (
    SCALARS,
    ArrayField,
    BinaryMessage,
    BlockField,
    FitsKeyword,
    PaddingField,
    ScalarField,
    Spec,
    StructRun,
    camel,
    int_range,
    load_spec,
)
from daqwire.codegen.version import GENERATOR_VERSION
from daqwire.errors import SpecError

__all__ = ["GeneratedFile", "check", "default_out_dir", "default_specs_dir", "render_spec", "write"]


@dataclass(frozen=True)
class GeneratedFile:
    """One rendered module: its file name under the output folder and its text."""

    name: str
    text: str


def default_specs_dir() -> Path:
    """The specs shipped with (or, in an editable install, next to) the package."""
    return Path(str(resources.files("daqwire.specs")))


def default_out_dir() -> Path:
    """The ``daqwire.generated`` package folder."""
    return Path(str(resources.files("daqwire.generated")))


# --- filters and helpers used by the templates ----------------------------------------------


def _pyrepr(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def _choice_type(values: Iterable[Any]) -> str:
    values = list(values)
    if all(v in ("C", "F") for v in values):
        return 'Literal["C", "F"]'
    return " | ".join(sorted({type(v).__name__ for v in values}))


def _hexint(value: int | float, f: ScalarField) -> str:
    if isinstance(value, int) and f.size >= 4 and value >= 0:
        return f"0x{value:0{f.size * 2}X}"
    return repr(value)


def _annotation(f: Any) -> str:
    if isinstance(f, ArrayField):
        return f"npt.NDArray[{f.numpy_scalar}]"
    if isinstance(f, ScalarField):
        return f.pytype
    return str(f.pytype)


def _bytes_literal(data: bytes) -> str:
    return 'b"' + "".join(f"\\x{b:02x}" for b in data) + '"'


def _fill_bytes(f: PaddingField) -> str:
    return f"{_bytes_literal(bytes([f.fill]))} * {f.size}"


def _range_text(f: Any) -> str:
    lo, hi = f.min, f.max
    if lo is not None and hi is not None:
        return f"allowed {lo} to {hi}"
    return f"must be >= {lo}" if lo is not None else f"must be <= {hi}"


def _int_lo(f: ScalarField) -> str:
    lo = int_range(f.type)[0]
    return str(max(lo, int(f.min)) if f.min is not None else lo)


def _int_hi(f: ScalarField) -> str:
    hi = int_range(f.type)[1]
    return str(min(hi, int(f.max)) if f.max is not None else hi)


def _prefix_runs(m: BinaryMessage) -> list[tuple[StructRun, int]]:
    runs: list[tuple[StructRun, int]] = []
    off = 0
    for seg in m.segments:
        if not isinstance(seg, StructRun):
            break
        runs.append((seg, off))
        off += seg.size
    return runs


def _prefix_items(m: BinaryMessage) -> list[tuple[ScalarField | PaddingField, int, int]]:
    items: list[tuple[ScalarField | PaddingField, int, int]] = []
    index = 0
    for run, run_off in _prefix_runs(m):
        for f in run.fields:
            if not (isinstance(f, PaddingField) and f.is_struct_pad):
                items.append((f, index, run_off + _offset_in_run(run, f)))
                index += 1
    return items


def _offset_in_run(run: StructRun, f: ScalarField | PaddingField) -> int:
    off = 0
    for g in run.fields:
        if g is f:
            return off
        off += g.size
    raise KeyError(f.name)


def _prefix_var(f: ScalarField | PaddingField) -> str:
    """Local variable that holds a fixed-part value in generated code."""
    if isinstance(f, PaddingField):
        return f"p_{f.name}"
    return f"c_{f.name}" if f.const is not None else f"v_{f.name}"


def _value_ref(m: BinaryMessage, name: str, source: str) -> str:
    if source == "vars":
        return f"v_{name}"
    for f, i, _off in _prefix_items(m):
        if f.name == name:
            return f"{source}[{i}]"
    raise SpecError(f"{name!r} is not in the fixed part of {m.name!r}")


def _block_size(m: BinaryMessage, f: Any, source: str) -> str:
    if isinstance(f, StructRun):
        return str(f.size)
    if isinstance(f, BlockField):
        return str(f.size) if f.size is not None else _value_ref(m, str(f.length), source)
    if isinstance(f, ArrayField):
        if f.length is not None:
            return _value_ref(m, f.length, source)
        dims = [str(d) if isinstance(d, int) else _value_ref(m, d, source) for d in f.shape]
        return " * ".join([*dims, str(f.itemsize)])
    return str(f.size)


def _size_expr(m: BinaryMessage, source: str) -> str:
    parts = [f"{m.name.upper()}_PREFIX_SIZE"]
    for seg in m.segments[len(_prefix_runs(m)) :]:
        parts.append(_block_size(m, seg, source))
    return " + ".join(parts)


def _encoded_size_expr(m: BinaryMessage, seg: Any) -> str:
    if isinstance(seg, StructRun):
        return str(seg.size)
    if isinstance(seg, BlockField):
        if seg.size is not None:
            return str(seg.size)
        if seg.kind == "text" and seg.encoding != "ascii":
            return f'len(msg.{seg.name}.encode("{seg.encoding}"))'
        return f"len(msg.{seg.name})"
    assert isinstance(seg, ArrayField)
    return f"int(msg.{seg.name}.size) * {seg.itemsize}"


def _shape_exprs(m: BinaryMessage, a: ArrayField, encode: bool = False) -> list[str]:
    out = []
    for d in a.shape:
        if isinstance(d, int):
            out.append(str(d))
        elif "." in d:
            block, key = d.split(".", 1)
            ident = key.lower().replace("-", "_")
            out.append(f"kw_{block}_{ident}")
        else:
            out.append(f"msg.{d}" if encode else f"v_{d}")
    return out


def _strides(m: BinaryMessage, a: ArrayField, order: str) -> str:
    """The strides tuple (an expression) of a view over ``a`` in memory order ``order``."""
    dims = _shape_exprs(m, a) if a.shape else ["count"]
    if len(dims) == 1:
        return f"({a.itemsize},)"
    out = []
    for i in range(len(dims)):
        rest = dims[:i] if order == "F" else dims[i + 1 :]
        out.append(" * ".join([str(a.itemsize), *rest]))
    return "(" + ", ".join(out) + ")"


def _shape_fmt(m: BinaryMessage, a: ArrayField) -> str:
    return "(" + ", ".join("{" + e + "}" for e in _shape_exprs(m, a)) + ")"


def _length_value_expr(m: BinaryMessage, f: ScalarField) -> str:
    target = m.field(str(f.length_of))
    if isinstance(target, ArrayField):
        return f"int(msg.{target.name}.size) * {target.itemsize}"
    return f"len(raw_{target.name})"


def _pack_value(m: BinaryMessage, f: ScalarField | PaddingField) -> str:
    if isinstance(f, PaddingField):
        return _fill_bytes(f)
    if f.const is not None:
        return f"{m.name.upper()}_{f.name.upper()}"
    if f.length_of is not None:
        return f"v_{f.name}"
    return f"msg.{f.name}"


def _sync_literal(m: BinaryMessage) -> str | None:
    """Wire bytes of a message's leading constant, which a reader scans for to resynchronise."""
    first = m.fields[0] if m.fields else None
    if not isinstance(first, ScalarField) or first.const is None:
        return None
    fmt = ("<" if first.byte_order == "little" else ">") + first.code
    return _bytes_literal(struct.pack(fmt, first.const))


def _parts_fields(m: BinaryMessage) -> list[BlockField | ArrayField]:
    """The blocks of a message that ``decode_<msg>_parts`` takes, or [] if it has none.

    Only a message made of one fixed run of constants, padding and length fields, then
    blocks that those length fields measure, can be rebuilt from its blocks alone.
    """
    runs = _prefix_runs(m)
    if len(runs) != 1:
        return []
    for f in runs[0][0].fields:
        if isinstance(f, ScalarField) and f.const is None and f.length_of is None:
            return []
    rest = m.segments[1:]
    measured = {f.length_of for f in m.length_fields}
    blocks: list[BlockField | ArrayField] = []
    for seg in rest:
        if not isinstance(seg, BlockField | ArrayField) or seg.name not in measured:
            return []
        blocks.append(seg)
    return blocks


def _parts_pack_args(m: BinaryMessage) -> str:
    """Arguments of the fixed run's ``pack_into`` when the blocks are given as buffers."""
    args = []
    for f in _prefix_runs(m)[0][0].fields:
        if isinstance(f, PaddingField):
            if not f.is_struct_pad:
                args.append(_fill_bytes(f))
        elif f.const is not None:
            args.append(f"{m.name.upper()}_{f.name.upper()}")
        else:
            args.append(f"len({f.length_of})")
    return ", ".join(args)


_FITS_PYTYPES = {"int": "int", "float": "float", "bool": "bool", "str": "str", "isotime": "str"}


def _fits_pytype(k: FitsKeyword) -> str:
    return _FITS_PYTYPES[k.type]


def _fits_convert(k: FitsKeyword, raw: str) -> str:
    """Expression that turns the raw value bytes ``raw`` of keyword ``k`` into its Python value."""
    if k.type == "int":
        return f"int({raw})"
    if k.type == "float":
        return f'float({raw}.replace(b"D", b"E"))'
    if k.type == "bool":
        return f'{raw} == b"T"'
    if k.type == "str":
        return f"""{raw}.decode("ascii").replace("''", "'").rstrip()"""
    return f'{raw}.decode("ascii")'


def _fits_returned(b: BlockField) -> list[FitsKeyword]:
    return [k for k in b.keywords if k.type in ("int", "float") and k.required]


def _fits_return_types(b: BlockField) -> str:
    types = [k.type for k in _fits_returned(b)]
    return ", ".join(types) if types else "()"


def _param_names(m: BinaryMessage) -> list[str]:
    return m.order_params


def _param_defaults(m: BinaryMessage, indent: int = 4) -> str:
    pad = " " * indent
    return "\n".join(f'{pad}{p}: {camel(p)} = "{m.param_defaults[p]}",' for p in _param_names(m))


def _param_kw_defaults(m: BinaryMessage, indent: int = 4) -> str:
    pad = " " * indent
    lines = [_param_defaults(m, indent)] if _param_names(m) else []
    for f in m.length_fields:
        if f.limit_param:
            limit = f"{m.name.upper()}_MAX_{str(f.length_of).upper()}_BYTES"
            lines.append(f"{pad}{f.limit_param}: int = {limit},")
    return "\n".join(lines)


def _param_lines(m: BinaryMessage, indent: int, limits: bool = False, self_: bool = False) -> str:
    names = list(_param_names(m))
    if limits:
        names += [str(f.limit_param) for f in m.length_fields if f.limit_param]
    prefix = "self." if self_ else ""
    return "\n".join(f"{' ' * indent}{n}={prefix}{n}," for n in names)


def _construct_scalar(f: ScalarField) -> str:
    kind, size = SCALARS[f.type][3], SCALARS[f.type][1]
    end = "l" if f.byte_order == "little" else "b"
    if kind == "float":
        return f"Float{size * 8}{end}"
    sign = "u" if f.type.startswith("u") else "s"
    return f"Int{size * 8}{sign}{end if size > 1 else 'b'}"


def _construct_size(m: BinaryMessage, f: Any) -> str:
    if isinstance(f, BlockField) and f.size is not None:
        return str(f.size)
    if f.length is not None:
        return f"cs.this.{f.length}"
    dims = [str(d) if isinstance(d, int) else f"cs.this.{d}" for d in f.shape]
    return " * ".join([*dims, str(f.itemsize)])


def _alphabet(encoding: str) -> str:
    return {"ascii": "_ASCII", "latin-1": "_LATIN1"}.get(encoding, "_UNICODE")


def _strategy_lines(m: BinaryMessage) -> list[str]:
    lines: list[str] = []
    shape_refs = {d for a in m.arrays for d in a.shape if isinstance(d, str)}
    for f in m.data_fields:
        if not isinstance(f, ScalarField):
            continue
        if f.enum:
            lines.append(f"v_{f.name} = draw(st.sampled_from(list({f.enum})))")
        elif f.pytype == "int":
            hi = _int_hi(f)
            if f.name in shape_refs:
                hi = f"min({hi}, max_side)"
            lines.append(f"v_{f.name} = draw(st.integers({_int_lo(f)}, {hi}))")
        else:
            width = SCALARS[f.type][1] * 8
            lines.append(f"v_{f.name} = draw(st.floats(width={width}, allow_nan=False))")
    for b in m.fits_blocks:
        for k in b.keywords:
            ref = f"{b.name}.{k.keyword}"
            if ref in shape_refs:
                lo = max(int(k.min) if k.min is not None else 0, 0)
                lines.append(f"kw_{b.name}_{k.ident} = draw(st.integers({lo}, max_side))")
    for f in m.fields:
        if isinstance(f, BlockField) and f.fits:
            lines.append("cards: list[str] = []")
            for k in f.keywords:
                ref = f"{f.name}.{k.keyword}"
                ind = ""
                if not k.required:
                    lines.append("if draw(st.booleans()):")
                    ind = "    "
                if ref in shape_refs:
                    value = f'_card("{k.keyword}", str(kw_{f.name}_{k.ident}))'
                elif k.type == "int":
                    klo = int(k.min) if k.min is not None else -(2**31)
                    khi = int(k.max) if k.max is not None else 2**31 - 1
                    value = f'_card("{k.keyword}", str(draw(st.integers({klo}, {khi}))))'
                elif k.type == "float":
                    bounds = f"{k.min!r}, {k.max!r}"
                    value = (
                        f'_card("{k.keyword}", repr(draw(st.floats({bounds}, '
                        "allow_nan=False, allow_infinity=False))))"
                    )
                elif k.type == "isotime":
                    value = f'_string_card("{k.keyword}", draw(_isotime()))'
                elif k.type == "bool":
                    value = f'_card("{k.keyword}", draw(st.sampled_from(["T", "F"])))'
                else:
                    value = (
                        f'_string_card("{k.keyword}", draw(st.text(alphabet=st.characters('
                        'min_codepoint=32, max_codepoint=126, exclude_characters="\'"), '
                        "max_size=60)))"
                    )
                lines.append(f"{ind}cards.append({value})")
            lines.append(f"v_{f.name} = _fits_text(draw, cards)")
        elif isinstance(f, BlockField) and f.kind == "text":
            size = f"min_size={f.size}, max_size={f.size}" if f.size is not None else "max_size=64"
            alphabet = _alphabet("ascii" if f.size is not None else f.encoding)
            lines.append(f"v_{f.name} = draw(st.text(alphabet={alphabet}, {size}))")
        elif isinstance(f, BlockField):
            size = f"min_size={f.size}, max_size={f.size}" if f.size is not None else "max_size=64"
            lines.append(f"v_{f.name} = draw(st.binary({size}))")
        elif isinstance(f, ArrayField):
            if f.shape:
                dims = [
                    str(d)
                    if isinstance(d, int)
                    else (
                        f"kw_{d.split('.')[0]}_{d.split('.')[1].lower().replace('-', '_')}"
                        if "." in d
                        else f"v_{d}"
                    )
                    for d in f.shape
                ]
                shape = "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"
            else:
                shape = "draw(st.integers(0, max_side))"
            lines.append(f'v_{f.name} = draw(hnp.arrays(np.dtype("{f.numpy_dtype}"), {shape}))')
    return lines


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("daqwire.codegen", "templates"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    env.filters.update(
        camel=camel,
        pyrepr=_pyrepr,
        choice_type=_choice_type,
        hexint=_hexint,
        annotation=_annotation,
        fill_bytes=_fill_bytes,
        bytes_literal=_bytes_literal,
        int_lo=_int_lo,
        range_text=_range_text,
        int_hi=_int_hi,
        add_s=lambda name: f"{name}s",
        sq=repr,
        constant=_constant,
        excluded_char=_excluded_char,
        docstring=_docstring_text,
        comment=_comment_text,
        docstring_block=_docstring_block,
    )
    env.globals.update(
        prefix_runs=_prefix_runs,
        prefix_items=_prefix_items,
        prefix_var=_prefix_var,
        offset_in_run=_offset_in_run,
        block_size=_block_size,
        size_expr=_size_expr,
        encoded_size_expr=_encoded_size_expr,
        shape_exprs=_shape_exprs,
        shape_fmt=_shape_fmt,
        strides=_strides,
        length_value_expr=_length_value_expr,
        pack_value=_pack_value,
        sync_literal=_sync_literal,
        fits_pytype=_fits_pytype,
        fits_convert=_fits_convert,
        parts_fields=_parts_fields,
        parts_pack_args=_parts_pack_args,
        fits_returned=_fits_returned,
        fits_return_types=_fits_return_types,
        param_kw_defaults=_param_kw_defaults,
        param_defaults=_param_defaults,
        param_lines=_param_lines,
        construct_scalar=_construct_scalar,
        construct_size=_construct_size,
        strategy_lines=_strategy_lines,
        sort_all=_sort_all,
    )
    return env


def _stamp(spec: Spec, spec_name: str) -> str:
    return (
        f"# DO NOT EDIT: generated by daqwire.codegen {GENERATOR_VERSION} "
        f"(generated API {GENERATED_API}) from {spec_name}\n"
        f"# spec-sha256: {spec.sha256}"
    )


def _exports(spec: Spec) -> list[str]:
    names = ["GENERATOR_VERSION", "PROTOCOL", "SPEC_SHA256", "NEED_DATA", "STREAM_END"]
    names += [c.name for c in spec.constants]
    names += [camel(p) for p in spec.params]
    names += list(spec.enums)
    for m in spec.messages:
        up = m.name.upper()
        names += [m.class_name, f"{m.class_name}Decoder", f"{up}_PREFIX_SIZE"]
        names += [
            f"{up}_{f.name.upper()}"
            for f in m.fields
            if isinstance(f, ScalarField) and f.const is not None
        ]
        names += [
            f"{up}_MAX_{str(f.length_of).upper()}_BYTES"
            for f in m.length_fields
            if f.max is not None
        ]
        if _sync_literal(m) is not None:
            names.append(f"{up}_SYNC_BYTES")
        if _parts_fields(m):
            names.append(f"decode_{m.name}_parts")
        for b in m.fits_blocks:
            names += [f"{m.class_name}{camel(b.name)}Keywords", f"{m.name}_{b.name}_keywords"]
        names += [
            f"decode_{m.name}",
            f"decode_{m.name}_from",
            f"encode_{m.name}",
            f"encode_{m.name}_into",
            f"encoded_{m.name}_size",
            f"{m.name}_frame_size",
        ]
    return _sort_all(set(names))


def _sort_all(names: Iterable[str]) -> list[str]:
    """``__all__`` in ruff's isort-style order: CONSTANTS, then Classes, then functions."""

    def key(name: str) -> tuple[int, str]:
        group = 0 if name.isupper() else 1 if name[0].isupper() else 2
        return group, name

    return sorted(names, key=key)


def _render(env: jinja2.Environment, template: str, spec: Spec, spec_name: str) -> str:
    has_arrays = any(m.arrays for m in spec.messages)
    fits_used = any(m.fits_blocks for m in spec.messages)
    errors = {
        "BadMagicError",
        "FieldValueError",
        "LengthLimitError",
        "LengthMismatchError",
        "LocalProtocolError",
        "RemoteProtocolError",
        "ShapeMismatchError",
        "TrailingDataError",
        "TruncatedError",
    }
    typing = ["Any", "Final", "TypeAlias", "cast"]
    if spec.params:
        typing.append("Literal")
    context = dict(
        spec=spec,
        spec_name=spec_name,
        stamp=_stamp(spec, spec_name),
        generator_version=GENERATOR_VERSION,
        generated_api=GENERATED_API,
        needs_re=fits_used,
        fits_used=fits_used,
        has_arrays=has_arrays,
        typing_imports=", ".join(sorted(typing)),
        error_imports=sorted(errors),
        exports=_exports(spec),
    )
    text = env.get_template(template).render(**context)
    # import only the error classes the rendered code uses
    used = sorted(e for e in errors if len(re.findall(rf"\b{e}\b", text)) > 1)
    if used != context["error_imports"]:
        context["error_imports"] = used
        text = env.get_template(template).render(**context)
    return text


#: Formatter settings are fixed here (not read from any project config), so that output
#: depends only on the spec, the templates and the pinned ruff minor version.
RUFF_FORMAT = ("format", "--isolated", "--line-length", "100", "--target-version", "py311")


def format_source(text: str, name: str) -> str:
    """``text`` as ``ruff format`` writes it, with daqwire's fixed settings."""
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", *RUFF_FORMAT, "--stdin-filename", name, "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ruff format failed on generated {name}: {proc.stderr.strip()}")
    return proc.stdout


def render_spec(spec: Spec, spec_name: str | None = None) -> list[GeneratedFile]:
    """The modules generated from one spec: codecs, construct oracle, hypothesis strategies."""
    if spec.family == "text_commands":
        return _render_text(spec, spec_name or f"specs/{spec.path.name}")
    if spec.family == "msgpack_frames":
        return _render_msgpack(spec, spec_name or f"specs/{spec.path.name}")
    if spec.family == "json_lines":
        return _render_json(spec, spec_name or f"specs/{spec.path.name}")
    name = spec_name or f"specs/{spec.path.name}"
    env = _environment()
    templates = {
        f"{spec.protocol}.py": "binary.py.j2",
        f"{spec.protocol}_construct.py": "binary_construct.py.j2",
        f"{spec.protocol}_strategies.py": "binary_strategies.py.j2",
    }
    return [
        GeneratedFile(out, format_source(_render(env, template, spec, name), out))
        for out, template in templates.items()
    ]


def _excluded_char(pattern: str) -> str:
    """``X`` when ``pattern`` is ``[^X]*`` (any text without X), else ''."""
    m = re.fullmatch(r"\[\^(\\?.)\]\*", pattern)
    return m.group(1)[-1] if m else ""


def _constant(value: Any) -> str:
    return repr(tuple(value)) if isinstance(value, list) else repr(value)


def _text_exports(spec: Spec) -> list[str]:
    from daqwire.codegen.text_render import TextRender

    r = TextRender(spec)
    names = ["GENERATOR_VERSION", "PROTOCOL", "SPEC_SHA256", "ENCODING", "ErrorCallback", "Request"]
    names += [c.name for c in spec.constants]
    if r.has("point"):
        names += ["Scalar", "Point"]
    if r.has("typed"):
        names += ["RawScalar", "RawValue"]
    if r.stale_class:
        names.append(r.stale_class)
    names += [_text_camel(p.name) for _m, p in r.keyed_parts()]
    names += [m.class_name for m in r.reply_classes()]
    for g in r.grammars():
        names += [f"format_{g.name}", f"parse_{g.name}"]
    for m in r.messages():
        names.append(f"encode_{m.name}")
        if m.literal:
            names.append(f"{m.name.upper()}_BYTES")
        if m.direction != "request":
            names.append(f"decode_{m.name}")
        elif not m.literal:
            names.append(f"decode_{m.name}")
    for s in r.services():
        c = s.class_name
        names += [f"{c}Handler", f"{c}Dispatcher", f"{c}Requests", f"{c}ClientStub"]
        names.append(f"Async{c}ClientStub")
        names += [f"{s.name.upper()}_REPLIES", f"{s.name.upper()}_ERROR_REPLIES"]
        names += [f"match_{s.name}_reply", f"identify_{s.name}_request"]
    return _sort_all(set(names))


def _text_camel(name: str) -> str:
    return "".join(w.capitalize() for w in name.split("_"))


def _text_strategy_exports(spec: Spec) -> list[str]:
    from daqwire.codegen.text_render import TextRender

    r = TextRender(spec)
    names = ["datagrams", "raw_texts", "scalars"]
    names += [f"{g.name}_values" for g in r.grammars()]
    names += [f"{s.name}_requests" for s in r.services()]
    names += [f"{s.name}_calls" for s in r.services()]
    return _sort_all(set(names))


def _render_text(spec: Spec, name: str) -> list[GeneratedFile]:
    from daqwire.codegen.text_render import text_context

    return _render_codec_and_strategies(
        spec,
        name,
        "text",
        exports=_text_exports(spec),
        strategy_exports=_text_strategy_exports(spec),
        extra=text_context(spec),
    )


def _render_codec_and_strategies(
    spec: Spec,
    name: str,
    template: str,
    *,
    exports: list[str],
    strategy_exports: list[str],
    extra: dict[str, Any],
) -> list[GeneratedFile]:
    """The codec module and the strategies module of a family without a construct oracle."""
    env = _environment()
    env.filters["snake"] = _snake
    context: dict[str, Any] = dict(
        spec=spec,
        spec_name=name,
        stamp=_stamp(spec, name),
        generator_version=GENERATOR_VERSION,
        generated_api=GENERATED_API,
        exports=exports,
        strategy_exports=strategy_exports,
        **extra,
    )
    out = []
    for target, source in (
        (f"{spec.protocol}.py", f"{template}.py.j2"),
        (f"{spec.protocol}_strategies.py", f"{template}_strategies.py.j2"),
    ):
        text = env.get_template(source).render(**context)
        text = _drop_unused_imports(text, target)
        out.append(GeneratedFile(target, format_source(text, target)))
    return out


def _msgpack_exports(spec: Spec) -> list[str]:
    assert spec.msgpack is not None
    m = spec.msgpack
    names = ["GENERATOR_VERSION", "PROTOCOL", "SPEC_SHA256", "Block"]
    names += [c.name for c in spec.constants]
    names += list(spec.enums)
    names += list(m.records)
    names += [f"encode_{_snake(r)}" for r in m.records]
    if any(fr.optional for x in m.messages for fr in x.frames):
        names += ["ABSENT", "Absent"]
    from daqwire.codegen.msgpack_render import _Emit

    emit = _Emit(spec, m)
    for x in m.messages:
        names += [x.class_name, f"encode_{x.name}", f"decode_{x.name}"]
        if emit.prepacked(x) is not None:
            names.append(f"encode_{x.name}_prepacked")
    if m.select:
        names += ["Message", "decode_frames"]
    return _sort_all(set(names))


def _msgpack_strategy_exports(spec: Spec) -> list[str]:
    assert spec.msgpack is not None
    m = spec.msgpack
    names = ["msgpack_values"]
    names += [f"{_snake(r)}_values" for r in m.records]
    names += [f"{x.name}_values" for x in m.messages]
    if m.select:
        names.append("message_values")
    return _sort_all(set(names))


def _docstring_text(text: str) -> str:
    """One line that stays inside a docstring: whitespace runs become one space; backslashes,
    a quote after a quote and a final quote are escaped, so no run of quotes ends it."""
    text = _docstring_block(" ".join(text.split()))
    body = text[:-1]
    escaped = (len(body) - len(body.rstrip("\\"))) % 2 == 1
    return body + '\\"' if text.endswith('"') and not escaped else text


def _docstring_block(text: str) -> str:
    """Text that keeps its lines inside a docstring: backslashes escaped, and a quote after a
    quote too, so that no run of quotes ends the docstring."""
    return re.sub(r'(?<=")"', r'\\"', text.replace("\\", "\\\\"))


def _comment_text(text: str) -> str:
    """Text on one comment line."""
    return " ".join(text.split())


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _render_json(spec: Spec, name: str) -> list[GeneratedFile]:
    from daqwire.codegen.json_render import json_context, json_exports, json_strategy_exports

    return _render_codec_and_strategies(
        spec,
        name,
        "json",
        exports=json_exports(spec),
        strategy_exports=json_strategy_exports(spec),
        extra=json_context(spec),
    )


def _render_msgpack(spec: Spec, name: str) -> list[GeneratedFile]:
    from daqwire.codegen.msgpack_render import msgpack_context

    return _render_codec_and_strategies(
        spec,
        name,
        "msgpack",
        exports=_msgpack_exports(spec),
        strategy_exports=_msgpack_strategy_exports(spec),
        extra=msgpack_context(spec),
    )


def _drop_unused_imports(text: str, name: str) -> str:
    """``text`` without unused imports, imports sorted (ruff's F401 and I001 fixes)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--isolated",
            "--select",
            "F401,I001",
            "--config",
            "lint.isort.known-first-party = ['daqwire']",
            "--fix-only",
            "--target-version",
            "py311",
            "--stdin-filename",
            name,
            "-",
        ],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ruff check failed on generated {name}: {proc.stderr.strip()}")
    return proc.stdout


def spec_paths(specs_dir: Path, only: Iterable[str] = ()) -> list[Path]:
    """Spec files in ``specs_dir`` (every ``*.yaml``), or just the named protocols."""
    paths = sorted(specs_dir.glob("*.yaml"))
    wanted = set(only)
    if wanted:
        found = {p.stem for p in paths}
        missing = sorted(wanted - found)
        if missing:
            raise SpecError(f"no spec named {missing[0]!r} in {specs_dir.name}/", file=missing[0])
        paths = [p for p in paths if p.stem in wanted]
    return paths


def _shown_path(path: Path) -> str:
    """How messages and stamps name a spec file: ``specs/x.yaml`` for daqwire's own specs,
    else the path relative to the working folder (never an absolute path of this machine)."""
    if path.parent.resolve() == default_specs_dir().resolve():
        return f"specs/{path.name}"
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return f"{path.parent.name}/{path.name}"


def render_all(specs_dir: Path, only: Iterable[str] = ()) -> list[GeneratedFile]:
    """Every generated file for the specs in ``specs_dir``."""
    files: list[GeneratedFile] = []
    for path in spec_paths(specs_dir, only):
        shown = _shown_path(path)
        spec = load_spec(path, display_name=shown)
        files += render_spec(spec, shown)
    return files


def write(files: list[GeneratedFile], out_dir: Path) -> list[Path]:
    """Write the files that changed; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for f in files:
        target = out_dir / f.name
        if not target.exists() or target.read_text("utf-8") != f.text:
            target.write_text(f.text, "utf-8")
            written.append(target)
    return written


def check(files: list[GeneratedFile], out_dir: Path, *, orphans: bool = True) -> str:
    """A unified diff between what is on disk and what the specs produce ('' when in step).

    With ``orphans``, a module in ``out_dir`` that no spec produces (its spec was deleted or
    renamed) is reported as a file to delete.
    """
    chunks = []
    if orphans and out_dir.is_dir():
        produced = {f.name for f in files} | {"__init__.py"}
        for path in sorted(out_dir.glob("*.py")):
            if path.name not in produced and path.read_text("utf-8").startswith("# DO NOT EDIT"):
                chunks.append(f"generated/{path.name}: no spec produces this file; delete it\n")
    for f in files:
        target = out_dir / f.name
        current = target.read_text("utf-8") if target.exists() else ""
        if current != f.text:
            chunks.append(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        f.text.splitlines(keepends=True),
                        f"generated/{f.name} (on disk)",
                        f"generated/{f.name} (from specs)",
                    )
                )
            )
    return "".join(chunks)
