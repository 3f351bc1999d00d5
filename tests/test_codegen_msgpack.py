"""The spec language's msgpack_frames family: what the loader refuses (with file, line and
path), and what the generator makes of a small valid spec (modules that import, lint,
type-check, round-trip and turn bad frames into typed errors with the spec's texts)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings

from daqwire.codegen import load_spec, render_spec
from daqwire.errors import (
    FieldValueError,
    LengthLimitError,
    LengthMismatchError,
    LocalProtocolError,
    RemoteProtocolError,
    SpecError,
    TrailingDataError,
    TruncatedError,
)
from tests.generated_pkg import REPO, import_generated

#: a small msgpack_frames spec: two messages told apart by a select object, a record, an
#: optional object, an optional frame, a nullable map, raw repeated frames and custom texts
MINI = """\
daqwire: 1
protocol: mini_mp
title: A tiny msgpack protocol
family: msgpack_frames
doc: A toy multipart protocol for the generator tests.
select: kind
decode_errors:
  prefix: "mini: "
  type: "wanted {expected}, got {actual}"
enums:
  Kind:
    doc: What a message is.
    values: {PING: 0, DATA: 1}
constants:
  MAGIC: MINI
records:
  Item:
    doc: One item - an index and a blob.
    size_error: "an item has {expected} fields, not {count}"
    fields:
      - {name: index, type: int}
      - {name: blob, type: bytes, max_bytes: 64}
messages:
  ping:
    doc: Are you there?
    frames:
      - name: header
        objects:
          - name: magic
            type: str
            const: MINI
            errors: {const: "bad magic {value}"}
          - {name: sender, type: str, max_bytes: 32}
          - {name: stamp, type: timestamp, optional: true}
          - {name: kind, type: int, enum: Kind, const: 0, errors: {enum: "kind {value}?"}}
          - {name: note, type: str}
      - name: extra
        optional: true
        objects:
          - {name: extra, type: any}
  data:
    doc: Items and raw blobs.
    frames:
      - name: header
        objects:
          - {name: magic, type: str, const: MINI, errors: {const: "bad magic {value}"}}
          - {name: sender, type: str, max_bytes: 32}
          - {name: stamp, type: timestamp, optional: true}
          - {name: kind, type: int, enum: Kind, const: 1, errors: {enum: "kind {value}?"}}
          - {name: tags, type: map, nullable: true}
          - {name: items, type: array, items: {record: Item}, max_items: 3}
          - {name: flag, type: bool}
          - {name: ratio, type: float}
      - {name: blobs, raw: true, repeat: true}
"""

PKG = "msgpackgen_mini"


def _replace(old: str, new: str, text: str = MINI) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def _line_of(text: str, needle: str, after: str = "") -> int:
    """The 1-based line of the first ``needle`` at or after the first line holding ``after``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i, line in enumerate(lines[start:], start + 1) if needle in line)


def _load_error(tmp_path: Path, text: str) -> SpecError:
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path, display_name="specs/x.yaml")
    return info.value


# ---- the loader refuses ----------------------------------------------------------------------

PING_KIND = '{name: kind, type: int, enum: Kind, const: 0, errors: {enum: "kind {value}?"}}'
DATA_KIND = '{name: kind, type: int, enum: Kind, const: 1, errors: {enum: "kind {value}?"}}'

#: (old, new) edits of MINI, the SpecError path and message, and where it points:
#: the first line holding the needle at or after the first line holding ``after``
BAD_SPECS: dict[str, tuple[str, str, str, str, tuple[str, str]]] = {
    "const_on_a_map": (
        "{name: tags, type: map, nullable: true}",
        "{name: tags, type: map, const: x}",
        "messages.data.frames[0].objects[4].const",
        "a const needs type int or str, matching map",
        ("", "type: map, const: x"),
    ),
    "const_of_the_wrong_type": (
        "{name: note, type: str}",
        "{name: note, type: str, const: 5}",
        "messages.ping.frames[0].objects[4].const",
        "a const needs type int or str, matching str",
        ("", "type: str, const: 5"),
    ),
    "enum_on_a_str": (
        "{name: note, type: str}",
        "{name: note, type: str, enum: Kind}",
        "messages.ping.frames[0].objects[4].enum",
        "only int objects take an enum",
        ("", "type: str, enum: Kind"),
    ),
    "unknown_enum": (
        DATA_KIND,
        DATA_KIND.replace("enum: Kind,", "enum: Kindd,"),
        "messages.data.frames[0].objects[3].enum",
        "no enum named 'Kindd'",
        ("", "enum: Kindd"),
    ),
    "const_not_in_the_enum": (
        DATA_KIND,
        DATA_KIND.replace("const: 1", "const: 7"),
        "messages.data.frames[0].objects[3].const",
        "7 is not a value of Kind",
        ("", "const: 7"),
    ),
    "unknown_record": (
        "items: {record: Item}",
        "items: {record: Itemm}",
        "messages.data.frames[0].objects[5].items.record",
        "no record named 'Itemm'",
        ("", "record: Itemm"),
    ),
    "optional_frame_not_last": (
        "      - name: header\n        objects:\n          - name: magic",
        "      - name: header\n        optional: true\n        objects:\n          - name: magic",
        "messages.ping.frames[0].optional",
        "only the last frame may be optional",
        ("  ping:", "optional: true"),
    ),
    "repeat_on_a_frame_of_objects": (
        "      - name: extra\n        optional: true\n",
        "      - name: extra\n        repeat: true\n",
        "messages.ping.frames[1].repeat",
        "only raw frames repeat",
        ("", "repeat: true"),
    ),
    "two_messages_without_select": (
        "select: kind\n",
        "",
        "messages",
        "several messages need select: the object telling them apart",
        ("", "messages:"),
    ),
    "select_object_without_const": (
        DATA_KIND,
        DATA_KIND.replace(" const: 1,", ""),
        "messages.data.frames[0].objects[3]",
        "the select object is an int with an enum and a const",
        ("  data:", "name: kind"),
    ),
    "select_values_collide": (
        DATA_KIND,
        DATA_KIND.replace("const: 1", "const: 0"),
        "messages.data.frames[0].objects[3].const",
        "ping has this value too",
        ("  data:", "name: kind"),
    ),
    "messages_not_sharing_the_prefix": (
        "{name: sender, type: str, max_bytes: 32}\n"
        "          - {name: stamp, type: timestamp, optional: true}\n"
        f"          - {DATA_KIND}",
        "{name: sender, type: str, max_bytes: 16}\n"
        "          - {name: stamp, type: timestamp, optional: true}\n"
        f"          - {DATA_KIND}",
        "messages.data.frames[0].objects",
        "messages must share the objects up to the select object",
        ("  data:", "objects:"),
    ),
    "unknown_placeholder_in_a_decode_error": (
        '  type: "wanted {expected}, got {actual}"',
        '  type: "wanted {expected}, got {nope}"',
        "decode_errors.type",
        "placeholder {nope} is not known here (allowed: {actual}, {expected})",
        ("", "got {nope}"),
    ),
    "unknown_placeholder_in_an_object_error": (
        PING_KIND,
        PING_KIND.replace("kind {value}?", "kind {count}?"),
        "messages.ping.frames[0].objects[3].errors.enum",
        "placeholder {count} is not known here (allowed: {frame_repr}, {value})",
        ("", "kind {count}?"),
    ),
    "placeholder_in_a_text_that_takes_none": (
        'decode_errors:\n  prefix: "mini: "\n',
        'decode_errors:\n  prefix: "mini: "\n  truncated: "short by {count}"\n',
        "decode_errors.truncated",
        "placeholder {count} is not known here (allowed: none)",
        ("", "short by {count}"),
    ),
    "optional_object_followed_by_the_same_type": (
        "          - {name: extra, type: any}",
        "          - {name: maybe, type: int, optional: true}\n"
        "          - {name: extra, type: int}",
        "messages.ping.frames[1].objects[0].optional",
        "an optional object must differ in msgpack type from the object after it",
        ("", "name: maybe"),
    ),
    "optional_object_followed_by_any": (
        "          - {name: extra, type: any}",
        "          - {name: maybe, type: int, optional: true}\n"
        "          - {name: extra, type: any}",
        "messages.ping.frames[1].objects[0].optional",
        "an optional object must differ in msgpack type from the object after it",
        ("", "name: maybe"),
    ),
    "frame_with_objects_and_raw": (
        "      - name: extra\n        optional: true\n",
        "      - name: extra\n        raw: true\n        optional: true\n",
        "messages.ping.frames[1]",
        "a frame has either objects or raw: true",
        ("  ping:", "name: extra"),
    ),
    "known_texts_on_a_non_const": (
        "{name: note, type: str}",
        '{name: note, type: str, errors: {known: {x: "y"}}}',
        "messages.ping.frames[0].objects[4].errors.known",
        "known texts are only allowed on str consts",
        ("", "known: {x:"),
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_loader_refuses_with_file_line_and_path(tmp_path: Path, case: str) -> None:
    old, new, path, message, (after, needle) = BAD_SPECS[case]
    text = _replace(old, new)
    err = _load_error(tmp_path, text)
    assert err.path == path
    assert err.message == message
    assert err.file == "specs/x.yaml"
    assert err.line == _line_of(text, needle, after)
    assert str(err).startswith(f"specs/x.yaml:{err.line}:")
    assert str(err).endswith(f"{path}: {message}")


def test_mini_spec_loads(tmp_path: Path) -> None:
    path = tmp_path / "mini_mp.yaml"
    path.write_text(MINI)
    spec = load_spec(path)
    assert spec.family == "msgpack_frames"
    assert spec.msgpack is not None
    assert spec.msgpack.select == "kind" and spec.msgpack.select_enum == "Kind"
    assert [m.name for m in spec.msgpack.messages] == ["ping", "data"]


# ---- the generator's output for the small spec -----------------------------------------------


@pytest.fixture(scope="module")
def gen_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("msgpackgen")
    spec_dir = root / "specs"
    spec_dir.mkdir()
    (spec_dir / "mini_mp.yaml").write_text(MINI)
    files = render_spec(load_spec(spec_dir / "mini_mp.yaml"), "specs/mini_mp.yaml")
    assert sorted(f.name for f in files) == ["mini_mp.py", "mini_mp_strategies.py"]
    out = root / PKG
    out.mkdir()
    (out / "__init__.py").write_text('"""Generated for a test."""\n')
    for f in files:
        (out / f.name).write_text(f.text, "utf-8")
    return root


@pytest.fixture(scope="module")
def modules(gen_root: Path) -> list[ModuleType]:
    return import_generated(gen_root, PKG, "mini_mp", "mini_mp_strategies")


@pytest.fixture(scope="module")
def mp(modules: list[ModuleType]) -> ModuleType:
    return modules[0]


@pytest.fixture(scope="module")
def mps(modules: list[ModuleType]) -> ModuleType:
    return modules[1]


def test_output_is_stamped_and_exports_what_the_spec_declares(mp: ModuleType) -> None:
    assert mp.PROTOCOL == "mini_mp"
    assert mp.MAGIC == "MINI"
    assert [(k.name, k.value) for k in mp.Kind] == [("PING", 0), ("DATA", 1)]
    for name in (
        "Ping Data Item Kind Message Block ABSENT Absent decode_frames decode_ping "
        "decode_data encode_ping encode_data"
    ).split():
        assert name in mp.__all__, name
    # const objects are not fields; optional objects and frames have defaults
    ping = mp.Ping(sender="me", note="hi")
    assert (ping.stamp, ping.extra) == (None, mp.ABSENT)
    assert [f for f in mp.Data.__dataclass_fields__] == [
        "sender",
        "tags",
        "items",
        "flag",
        "ratio",
        "blobs",
        "stamp",
    ]


def test_exact_bytes(mp: ModuleType) -> None:
    assert [bytes(f) for f in mp.encode_ping(mp.Ping(sender="me", note="hi"))] == [
        b"\xa4MINI\xa2me\x00\xa2hi"
    ]
    stamp = datetime(2025, 1, 1, tzinfo=UTC)
    data = mp.Data(
        sender="x",
        tags=None,
        items=(mp.Item(1, b"ab"),),
        flag=True,
        ratio=0.5,
        blobs=(b"", b"xyz"),
        stamp=stamp,
    )
    frames = [bytes(f) for f in mp.encode_data(data)]
    header = [
        "MINI",
        "x",
        msgpack.Timestamp.from_datetime(stamp),
        1,
        None,
        [[1, b"ab"]],
        True,
        0.5,
    ]
    unpacker = msgpack.Unpacker()
    unpacker.feed(frames[0])
    assert list(unpacker) == header
    assert frames[1:] == [b"", b"xyz"]
    assert mp.decode_frames(frames) == data
    assert mp.decode_data(frames) == data
    ping = mp.Ping(sender="me", note="hi", extra={"a": [1]})
    assert mp.decode_ping(mp.encode_ping(ping)) == ping


def test_property_round_trip(mp: ModuleType, mps: ModuleType) -> None:
    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mps.message_values())
    def check(msg: Any) -> None:
        encode = mp.encode_ping if isinstance(msg, mp.Ping) else mp.encode_data
        frames = [bytes(f) for f in encode(msg)]
        assert mp.decode_frames(frames) == msg
        for block in getattr(mp.decode_frames(frames), "blobs", ()):
            assert type(block) is memoryview

    check()


def _error(mp: ModuleType, frames: list[bytes]) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        mp.decode_frames(frames)
    return info.value


#: hostile frames -> (error class, message with the spec's prefix and texts, field path)
BAD_FRAMES: dict[str, tuple[list[bytes], type[RemoteProtocolError], str, str]] = {
    "const": ([b"\xa4MINX\xa1x\x00\xa1n"], FieldValueError, "mini: bad magic MINX", "ping.magic"),
    "enum": ([b"\xa4MINI\xa1x\x05\xa1n"], FieldValueError, "mini: kind 5?", "ping.kind"),
    "type": (
        [b"\xa4MINI\x01\x00\xa1n"],
        FieldValueError,
        "mini: wanted str, got int",
        "ping.sender",
    ),
    "too_long": (
        [b"\xa4MINI\xd9\x21" + b"s" * 33 + b"\x00\xa1n"],
        LengthLimitError,
        "mini: 33 bytes, more than the limit of 32",
        "ping.sender",
    ),
    "truncated": (
        [b"\xa4MINI\xa1x\x00\xa5no"],
        TruncatedError,
        "mini: the frame ends inside a msgpack object",
        "ping.note",
    ),
    "record_size": (
        [b"\xa4MINI\xa1x\x01\x80\x91\x91\x01\xc3\xcb" + bytes(8)],
        LengthMismatchError,
        "mini: an item has 2 fields, not 1",
        "Item",
    ),
    "max_items": (
        [b"\xa4MINI\xa1x\x01\x80\x94" + b"\x92\x01\xc4\x00" * 4 + b"\xc3\xcb" + bytes(8)],
        LengthLimitError,
        "mini: 4 items, more than the limit of 3",
        "data.items",
    ),
    "trailing": (
        [b"\xa4MINI\xa1x\x00\xa1n\x01"],
        TrailingDataError,
        "mini: 1 bytes after the last object of the header frame",
        "ping",
    ),
    "extra_frames": (
        [b"\xa4MINI\xa1x\x00\xa1n", b"\xc0", b""],
        TrailingDataError,
        "mini: expected at most 2 frame(s), got 3",
        "ping",
    ),
    "no_frames": ([], LengthMismatchError, "mini: expected 1 frame(s), got 0", "ping"),
    "unpack": (
        [b"\xa4MINI\xa1x\x00\xa1n", b"\xc1"],
        FieldValueError,
        "mini: not valid msgpack",
        "ping.extra",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
def test_decode_errors_use_the_spec_texts(mp: ModuleType, case: str) -> None:
    frames, cls, message, path = BAD_FRAMES[case]
    err = _error(mp, frames)
    assert type(err) is cls
    assert (err.message, err.field_path, err.protocol) == (message, path, "mini_mp")


def test_optional_frame_and_object(mp: ModuleType) -> None:
    plain = mp.decode_frames([b"\xa4MINI\xa1x\x00\xa1n"])
    assert plain == mp.Ping(sender="x", note="n")
    assert plain.extra is mp.ABSENT
    nil = mp.decode_frames([b"\xa4MINI\xa1x\x00\xa1n", b"\xc0"])
    assert nil.extra is None
    stamped = mp.decode_frames([b"\xa4MINI\xa1x\xd6\xff\x00\x00\x00\x01\x00\xa1n"])
    assert stamped.stamp == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_encoders_refuse_before_making_a_frame(mp: ModuleType) -> None:
    good = mp.Data(sender="x", tags={}, items=(), flag=False, ratio=1.0, blobs=())
    for change in (
        {"sender": "s" * 33},
        {"tags": {1: 2}},
        {"items": (mp.Item(1, b"a"),) * 4},
        {"items": (mp.Item(1, "str"),)},
        {"items": (mp.Item(1, b"x" * 65),)},
        {"flag": 1},
        {"ratio": 1},
        {"blobs": (b"a", "b")},
        {"stamp": datetime(2025, 1, 1)},
    ):
        with pytest.raises(LocalProtocolError):
            mp.encode_data(mp.Data(**{**_fields(good), **change}))
    with pytest.raises(LocalProtocolError):
        mp.encode_ping(good)


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


MYPY = [sys.executable, "-m", "mypy", "--strict"]


def _stage_for_mypy(gen_root: Path, stage: Path) -> None:
    (stage / "daqwire").mkdir(parents=True)
    for entry in (REPO / "runtime").iterdir():
        if entry.name != "__pycache__":
            os.symlink(entry, stage / "daqwire" / entry.name)
    for name in ("generated", "codegen", "specs"):
        os.symlink(REPO / name, stage / "daqwire" / name)
    os.symlink(gen_root / PKG, stage / PKG)


def test_output_passes_ruff_and_mypy_strict(gen_root: Path, tmp_path: Path) -> None:
    out = str(gen_root / PKG)
    config = ["--config", str(REPO / "pyproject.toml")]
    ruff = [sys.executable, "-m", "ruff"]
    check = subprocess.run(
        [*ruff, "check", *config, "--extend-ignore", "E501,RUF059", out],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = subprocess.run([*ruff, "format", *config, "--check", out], capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    _stage_for_mypy(gen_root, tmp_path)
    mypy = subprocess.run(
        [*MYPY, "--config-file", str(REPO / "pyproject.toml"), "-p", PKG],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert mypy.returncode == 0, mypy.stdout


@pytest.mark.parametrize("name", ["cdtp1", "cdtp2", "cscp1"])
def test_committed_modules_are_what_the_specs_render(name: str) -> None:
    spec = load_spec(REPO / "specs" / f"{name}.yaml", display_name=f"specs/{name}.yaml")
    files = {f.name: f.text for f in render_spec(spec, f"specs/{name}.yaml")}
    assert sorted(files) == [f"{name}.py", f"{name}_strategies.py"]
    for fname, text in files.items():
        assert (REPO / "generated" / fname).read_text("utf-8") == text, fname
