"""numpy arrays to and from CDTP blocks: dtype/shape tags, zero copy, and typed errors."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from daqwire.constellation.arrays import array_block, dtype_tag, record_array, record_arrays
from daqwire.errors import (
    FieldValueError,
    LengthMismatchError,
    LocalProtocolError,
    RemoteProtocolError,
    ShapeMismatchError,
)


def test_default_is_uint8_and_views_the_block() -> None:
    raw = bytearray(b"\x01\x02\x03")
    arr = record_array(raw)
    assert arr.dtype == np.uint8 and arr.tolist() == [1, 2, 3]
    raw[0] = 9
    assert arr[0] == 9  # a view, not a copy
    assert record_array([b"\x05"], {}).tolist() == [5]
    assert record_array(b"\x00\x01", None, default_dtype="<u2").tolist() == [256]


def test_reference_style_dtype_tag() -> None:
    # what Constellation's RandomDataSender sends: arr.tobytes() with {"dtype": "float64"}
    values = np.sin(np.linspace(0, 3, 1024))
    arr = record_array(values.tobytes(), {"dtype": "float64"})
    np.testing.assert_array_equal(arr, values)
    assert not arr.flags.writeable  # a view of an immutable bytes object


def test_shape_tag_and_explicit_byte_order() -> None:
    data = np.arange(24, dtype=">i4").reshape(2, 3, 4)
    arr = record_array(memoryview(data.tobytes()), {"dtype": ">i4", "shape": [2, 3, 4]})
    assert arr.shape == (2, 3, 4) and arr.dtype == np.dtype(">i4")
    np.testing.assert_array_equal(arr, data)
    assert record_array(b"\x00" * 8, {"dtype": "<f8", "shape": []}).shape == ()
    assert record_array(b"", {"dtype": "f4", "shape": [0, 5]}).shape == (0, 5)


def test_record_arrays_one_per_block() -> None:
    blocks = [np.float32(1.5).tobytes() * 2, b"", np.float32(-1).tobytes()]
    out = record_arrays(blocks, {"dtype": "float32"})
    assert [a.tolist() for a in out] == [[1.5, 1.5], [], [-1.0]]
    assert record_arrays([], {"dtype": "float32"}) == ()


def test_several_blocks_need_record_arrays() -> None:
    with pytest.raises(LengthMismatchError, match="use record_arrays"):
        record_array([b"a", b"b"])
    with pytest.raises(LengthMismatchError, match="2 blocks"):
        record_array((b"a", b"b"), {"dtype": "u1"})
    with pytest.raises(LengthMismatchError):
        record_array([])


@pytest.mark.parametrize(
    ("tags", "match"),
    [
        ({"dtype": 8}, "must be a numpy dtype string"),
        ({"dtype": "nonsense"}, "not a numpy dtype"),
        ({"dtype": "O"}, "object"),
        ({"dtype": "S0"}, "zero-size"),
        ({"dtype": "(2,)f8"}, "sub-array"),
        ({"shape": [-1]}, "non-negative ints"),
        ({"shape": [True]}, "non-negative ints"),
        ({"shape": "3"}, "list of at most"),
        ({"shape": [1] * 33}, "list of at most 32"),
    ],
)
def test_bad_tags_are_field_value_errors(tags: dict[str, Any], match: str) -> None:
    with pytest.raises(FieldValueError, match=match) as info:
        record_array(b"\x00" * 16, tags)
    assert isinstance(info.value, RemoteProtocolError)
    assert info.value.field_path.startswith("tags.")


def test_size_that_does_not_fit() -> None:
    with pytest.raises(LengthMismatchError, match="not a whole number of float64") as info:
        record_array(b"\x00" * 12, {"dtype": "float64"})
    assert not isinstance(info.value, ShapeMismatchError)
    with pytest.raises(ShapeMismatchError, match=r"shape \[2, 2\] of int16 \(8 bytes\)"):
        record_array(b"\x00" * 6, {"dtype": "int16", "shape": [2, 2]})
    with pytest.raises(ShapeMismatchError, match=r"blocks\[1\]") as shape_info:
        record_arrays([b"\x00\x00", b"\x00"], {"dtype": "u2", "shape": [1]})
    assert shape_info.value.field_path == "blocks[1]"


def test_array_block_round_trip_zero_copy() -> None:
    arr = np.arange(12, dtype=np.float64).reshape(3, 4)
    block, tags = array_block(arr)
    assert tags == {"dtype": "float64" if sys.byteorder == "little" else ">f8", "shape": [3, 4]}
    assert block.nbytes == arr.nbytes and block.format == "B"
    back = record_array(block, tags)
    assert np.shares_memory(back, arr)
    np.testing.assert_array_equal(back, arr)


@pytest.mark.parametrize(
    "arr",
    [
        np.array(3.25),
        np.zeros((0, 3), dtype="<i8"),
        np.array([True, False]),
        np.array([1, 2], dtype=">u4"),
        np.array([1 + 2j], dtype="<c16"),
        np.array(["2026-01-01"], dtype="datetime64[ns]"),
        np.array([b"ab", b"c"], dtype="S2"),
    ],
)
def test_array_block_dtypes_round_trip(arr: np.ndarray[Any, Any]) -> None:
    block, tags = array_block(arr)
    back = record_array(bytes(block), tags)
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_array_block_refusals() -> None:
    with pytest.raises(LocalProtocolError, match="ascontiguousarray"):
        array_block(np.arange(10)[::2])
    with pytest.raises(LocalProtocolError, match="ascontiguousarray"):
        array_block(np.zeros((3, 4)).T)
    with pytest.raises(LocalProtocolError, match="object"):
        array_block(np.array([object()]))
    with pytest.raises(LocalProtocolError, match="structured"):
        array_block(np.zeros(2, dtype="i4,f8"))
    with pytest.raises(LocalProtocolError, match=r"numpy\.ndarray"):
        array_block([1, 2, 3])  # type: ignore[arg-type]
    assert isinstance(LocalProtocolError("x"), ValueError)


def test_dtype_tag_names() -> None:
    little, big = ("<", ">") if sys.byteorder == "little" else (">", "<")
    assert dtype_tag("u1") == "uint8"
    assert dtype_tag(np.dtype(f"{little}f4")) == "float32"
    assert dtype_tag(np.dtype(f"{big}f4")) == f"{big}f4"
    assert np.dtype(dtype_tag(">i2")) == np.dtype(">i2")


@given(
    hnp.arrays(
        dtype=st.one_of(hnp.integer_dtypes(), hnp.floating_dtypes(), hnp.complex_number_dtypes()),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
    )
)
def test_round_trip_property(arr: np.ndarray[Any, Any]) -> None:
    block, tags = array_block(arr)
    back = record_array(bytes(block), tags)
    assert back.dtype == arr.dtype and back.shape == arr.shape
    assert back.tobytes() == arr.tobytes()
