"""numpy arrays to and from CDTP data blocks, by the ``dtype``/``shape`` tag convention.

Constellation sends arrays as raw bytes and names the element type in the record tags
(``{"dtype": "float64"}``, as its RandomDataSender does); daqwire adds an optional
``"shape"`` (a list of ints). Both directions are zero copy: :func:`record_array` returns a
view of the received block (writable when the block is, as received ZeroMQ frames are; it
keeps the frame alive), :func:`array_block` a view of the array's memory.

A ``dtype`` without an explicit byte order (``"float64"``) means native order, as in numpy
and the reference; :func:`array_block` writes ``">f8"``-style names for big-endian data so a
receiver of either order reads the values right. Blocks inside a CDTP2 frame start at any
byte offset, so views may be unaligned (``arr.flags.aligned`` is False); numpy handles that,
and ``arr.copy()`` gives an aligned, writable array when speed or mutation matters.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from daqwire.errors import (
    FieldValueError,
    LengthMismatchError,
    LocalProtocolError,
    ShapeMismatchError,
)

__all__ = ["Block", "array_block", "dtype_tag", "record_array", "record_arrays"]

Block: TypeAlias = bytes | bytearray | memoryview
_PROTOCOL = "cdtp"
_MAX_DIMS = 32


def _dtype_from_tags(tags: Mapping[str, Any] | None, default_dtype: npt.DTypeLike) -> np.dtype[Any]:
    text = tags.get("dtype") if tags else None
    if text is None:
        return np.dtype(default_dtype)
    if not isinstance(text, str):
        raise FieldValueError(
            f"dtype tag must be a numpy dtype string, got {type(text).__name__} {text!r}",
            protocol=_PROTOCOL,
            field_path="tags.dtype",
        )
    try:
        dtype = np.dtype(text)
    except (TypeError, ValueError, SyntaxError) as exc:
        raise FieldValueError(
            f"dtype tag {text!r} is not a numpy dtype: {exc}",
            protocol=_PROTOCOL,
            field_path="tags.dtype",
        ) from None
    if dtype.hasobject or dtype.itemsize == 0 or dtype.subdtype is not None:
        raise FieldValueError(
            f"dtype tag {text!r} cannot be read from raw bytes "
            "(object, zero-size and sub-array dtypes are refused)",
            protocol=_PROTOCOL,
            field_path="tags.dtype",
        )
    return dtype


def _shape_from_tags(tags: Mapping[str, Any] | None) -> tuple[int, ...] | None:
    shape = tags.get("shape") if tags else None
    if shape is None:
        return None
    if (
        not isinstance(shape, list | tuple)
        or len(shape) > _MAX_DIMS
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise FieldValueError(
            f"shape tag must be a list of at most {_MAX_DIMS} non-negative ints, got {shape!r}",
            protocol=_PROTOCOL,
            field_path="tags.shape",
        )
    return tuple(shape)


def _byte_view(block: Block) -> memoryview:
    view = block if isinstance(block, memoryview) else memoryview(block)
    if not view.c_contiguous:
        raise LocalProtocolError(
            "block is not a C-contiguous buffer", protocol=_PROTOCOL, field_path="blocks"
        )
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _one_array(
    block: Block, dtype: np.dtype[Any], shape: tuple[int, ...] | None, index: int
) -> np.ndarray[Any, Any]:
    view = _byte_view(block)
    nbytes = view.nbytes
    path = f"blocks[{index}]"
    if shape is not None:
        expected = math.prod(shape) * dtype.itemsize
        if expected != nbytes:
            raise ShapeMismatchError(
                f"block of {nbytes} bytes does not hold shape {list(shape)} of {dtype} "
                f"({expected} bytes)",
                protocol=_PROTOCOL,
                field_path=path,
            )
        return np.frombuffer(view, dtype=dtype).reshape(shape)
    if nbytes % dtype.itemsize:
        raise LengthMismatchError(
            f"block of {nbytes} bytes is not a whole number of {dtype} elements "
            f"({dtype.itemsize} bytes each)",
            protocol=_PROTOCOL,
            field_path=path,
        )
    return np.frombuffer(view, dtype=dtype)


def record_arrays(
    blocks: Sequence[Block],
    tags: Mapping[str, Any] | None = None,
    *,
    default_dtype: npt.DTypeLike = "uint8",
) -> tuple[np.ndarray[Any, Any], ...]:
    """One array per block, each a zero-copy view with the tags' dtype and shape."""
    dtype = _dtype_from_tags(tags, default_dtype)
    shape = _shape_from_tags(tags)
    return tuple(_one_array(b, dtype, shape, i) for i, b in enumerate(blocks))


def record_array(
    blocks: Block | Sequence[Block],
    tags: Mapping[str, Any] | None = None,
    *,
    default_dtype: npt.DTypeLike = "uint8",
) -> np.ndarray[Any, Any]:
    """The array of a one-block record (or of one block): a zero-copy view of the block.

    ``tags["dtype"]`` names the element type (``default_dtype`` when absent) and the
    optional ``tags["shape"]`` the shape (1-D otherwise). A record with several blocks is
    refused (joining them would copy); use :func:`record_arrays` for one array per block.
    Bad tags raise :class:`~daqwire.errors.FieldValueError`, a block whose size does not
    fit :class:`~daqwire.errors.LengthMismatchError` (``ShapeMismatchError`` with a shape).
    """
    if isinstance(blocks, bytes | bytearray | memoryview):
        block: Block = blocks
    elif len(blocks) == 1:
        block = blocks[0]
    else:
        raise LengthMismatchError(
            f"record has {len(blocks)} blocks, record_array() takes exactly one; "
            "use record_arrays() for one array per block",
            protocol=_PROTOCOL,
            field_path="blocks",
        )
    return _one_array(block, _dtype_from_tags(tags, default_dtype), _shape_from_tags(tags), 0)


def dtype_tag(dtype: npt.DTypeLike) -> str:
    """The ``dtype`` tag text: ``"float64"`` for little-endian data, ``">f8"`` for big-endian."""
    dt = np.dtype(dtype)
    big = dt.byteorder == ">" or (dt.byteorder == "=" and sys.byteorder == "big")
    if big or (dt.byteorder == "<" and sys.byteorder == "big"):
        return dt.str
    return str(dt)


def array_block(arr: np.ndarray[Any, Any]) -> tuple[memoryview, dict[str, Any]]:
    """A zero-copy byte view of a C-contiguous array and its ``dtype``/``shape`` tags.

    Non-contiguous arrays are refused rather than copied behind the caller's back; pass
    ``numpy.ascontiguousarray(arr)``. Object, structured and sub-array dtypes are refused
    because raw bytes and a dtype string cannot carry them. The array must stay unchanged
    until the block was sent.
    """
    if not isinstance(arr, np.ndarray):
        raise LocalProtocolError(
            f"expected a numpy.ndarray, got {type(arr).__name__}", protocol=_PROTOCOL
        )
    dt = arr.dtype
    if dt.hasobject or dt.fields is not None or dt.subdtype is not None or dt.itemsize == 0:
        raise LocalProtocolError(
            f"dtype {dt} cannot be sent as raw bytes with a dtype tag "
            "(object, structured, sub-array and zero-size dtypes are refused)",
            protocol=_PROTOCOL,
        )
    if not arr.flags.c_contiguous:
        raise LocalProtocolError(
            "array is not C-contiguous; pass numpy.ascontiguousarray(arr) (a copy) instead",
            protocol=_PROTOCOL,
        )
    view = arr.reshape(-1).view(np.uint8).data
    return view, {"dtype": dtype_tag(dt), "shape": list(arr.shape)}
