"""The loader: schema and semantic errors become SpecError with file, line, column and path."""

from __future__ import annotations

from pathlib import Path

import pytest

from daqwire.codegen import load_spec
from daqwire.codegen.render import render_spec
from daqwire.errors import SpecError
from tests.generated_pkg import REPO

AARTFAAC = (REPO / "specs" / "aartfaac.yaml").read_text()


def _load(tmp_path: Path, text: str) -> SpecError:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path, display_name="specs/x.yaml")
    return info.value


def _replace(old: str, new: str) -> str:
    assert AARTFAAC.count(old) == 1, old
    return AARTFAAC.replace(old, new)


def _line_of(text: str, needle: str) -> int:
    return text.splitlines().index(next(ln for ln in text.splitlines() if needle in ln)) + 1


def test_aartfaac_spec_loads() -> None:
    spec = load_spec(REPO / "specs" / "aartfaac.yaml")
    (window,) = spec.messages
    assert window.prefix_size == 512
    assert [f.name for f in window.data_fields] == ["fits", "image"]
    assert spec.params["pixel_order"].choices == {"naxis2_fastest": "F", "naxis1_fastest": "C"}


def test_bad_type_names_file_line_column_and_path(tmp_path: Path) -> None:
    text = _replace(
        "        type: uint32\n        length_of: fits",
        "        type: uint33\n        length_of: fits",
    )
    err = _load(tmp_path, text)
    line = _line_of(text, "uint33")
    assert str(err).startswith(f"specs/x.yaml:{line}:9: messages.window.fields[1].type: 'uint33'")
    assert "is not one of" in str(err)
    assert (err.file, err.line, err.column) == ("specs/x.yaml", line, 9)
    assert err.path == "messages.window.fields[1].type"


def test_unknown_key_is_rejected_at_the_key(tmp_path: Path) -> None:
    text = _replace("        check: ignore\n", "        check: ignore\n        colour: blue\n")
    err = _load(tmp_path, text)
    assert err.line == _line_of(text, "colour")
    assert err.path == "messages.window.fields[3].colour"
    assert "unknown key 'colour'" in str(err)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    err = _load(tmp_path, AARTFAAC + "extra: 1\n")
    assert err.path == "extra" and "unknown key" in err.message


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    text = _replace("        max: 1048576\n", "        max: 1048576\n        max: 2\n")
    err = _load(tmp_path, text)
    assert "duplicate key 'max'" in str(err)
    assert err.line == _line_of(text, "max: 2")


def test_dangling_length_reference(tmp_path: Path) -> None:
    text = _replace("        length: fits_length\n", "        length: fits_len\n")
    err = _load(tmp_path, text)
    assert err.path == "messages.window.fields[4].length"
    assert "no field named 'fits_len'" in err.message


def test_dangling_shape_keyword(tmp_path: Path) -> None:
    text = _replace("shape: [fits.NAXIS2, fits.NAXIS1]", "shape: [fits.NAXIS2, fits.NAXIS3]")
    err = _load(tmp_path, text)
    assert err.path == "messages.window.fields[5].shape[1]"
    assert "NAXIS3" in err.message


def test_length_that_cannot_be_computed(tmp_path: Path) -> None:
    text = _replace("        length: array_length\n", "").replace("        length_of: image\n", "")
    err = _load(tmp_path, text)
    assert "cannot be computed" in err.message
    assert err.path == "messages.window.fields[5].shape[0]"


def test_length_field_after_a_variable_block(tmp_path: Path) -> None:
    text = AARTFAAC.replace(
        "      - name: image\n",
        "      - name: late_length\n        type: uint32\n        length_of: extra\n"
        "      - name: extra\n        type: bytes\n"
        "      - name: image\n",
    )
    err = _load(tmp_path, text)
    assert "fixed part" in err.message


def test_padding_to_offset_behind_the_fields(tmp_path: Path) -> None:
    err = _load(tmp_path, _replace("to_offset: 512", "to_offset: 8"))
    assert "cannot pad to 8" in err.message


def test_multi_byte_field_needs_a_byte_order(tmp_path: Path) -> None:
    err = _load(tmp_path, _replace("byte_order: little\n", ""))
    assert "byte order" in err.message and err.path == "messages.window.fields[0].type"


def test_const_must_fit_its_type(tmp_path: Path) -> None:
    err = _load(tmp_path, _replace("const: 0x47494A53484F4D4F", "const: 0x147494A53484F4D4F"))
    assert "does not fit uint64" in err.message


def test_parameter_default_must_be_a_choice(tmp_path: Path) -> None:
    err = _load(tmp_path, _replace("default: naxis2_fastest", "default: sideways"))
    assert err.path == "parameters.pixel_order.default"


def test_invalid_yaml_has_a_position(tmp_path: Path) -> None:
    err = _load(tmp_path, "daqwire: 1\nprotocol: [unclosed\n")
    assert err.line is not None and "invalid YAML" in err.message


def test_reserved_and_duplicate_field_names(tmp_path: Path) -> None:
    err = _load(tmp_path, _replace("      - name: padding\n", "      - name: class\n"))
    assert "reserved" in err.message
    err = _load(tmp_path, _replace("      - name: padding\n", "      - name: fits\n"))
    assert "declared twice" in err.message


def test_json_lines_spec_generates_and_its_keys_stay_in_their_family(tmp_path: Path) -> None:
    path = tmp_path / "lines.yaml"
    path.write_text(
        "daqwire: 1\nprotocol: lines\nfamily: json_lines\n"
        'framing: {terminator: "\\r\\n", encoding: utf-8, max_line_bytes: 65536}\n'
        "messages:\n  ack:\n    keys:\n      - {name: id, type: str, const: ack}\n"
        "      - {name: sequence_id, type: int}\n"
    )
    spec = load_spec(path)
    assert spec.family == "json_lines"
    names = [f.name for f in render_spec(spec)]
    assert names == ["lines.py", "lines_strategies.py"]
    path.write_text(path.read_text().replace("family: json_lines", "family: binary"))
    with pytest.raises(SpecError, match=r"not allowed|unknown key"):
        load_spec(path)
