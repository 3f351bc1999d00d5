"""``examples_from`` in text_commands specs: the loader's checks and the generated strategy."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daqwire.codegen import load_spec
from daqwire.errors import FieldValueError, SpecError
from daqwire.generated import pyexplabsys as codec
from daqwire.generated import pyexplabsys_strategies as strategies

SPEC = """\
daqwire: 1
protocol: tiny
title: Tiny
doc: A tiny text protocol.
family: text_commands
encoding: utf-8
messages:
  names:
    direction: request
    form: names
    reply: name_list
  name_list:
    direction: reply
    form: "{names}"
    parts:
      names: {type: list, separator: ","}
  who:
    direction: request
    form: who
    reply: err
  read:
    direction: request
    form: "read:{name}"
    parts:
      name: {type: str, pattern: "[a-z]*", examples_from: SOURCE}
    reply: value
  value:
    direction: reply
    form: "{value}"
    parts:
      value: {type: json}
  err:
    direction: reply
    form: "ERR#{message}"
    parts:
      message: {type: str}
services:
  main:
    requests: [names, who, read]
    errors: {unknown: err, malformed: err, refused: err, failed: err}
"""


def _write(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC.replace("SOURCE", source), encoding="utf-8")
    return path


def test_examples_from_a_listing_request_loads(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, "names"))
    assert spec.text is not None
    part = spec.text.messages["read"].part
    assert part is not None and part.examples_from == "names"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("nosuch", "'nosuch' is not a request without parts"),
        ("read", "'read' is not a request without parts"),
        ("value", "'value' is not a request without parts"),
        ("who", "the reply of 'who' is not a list of texts"),
    ],
)
def test_examples_from_must_name_a_listing_request(
    tmp_path: Path, source: str, message: str
) -> None:
    with pytest.raises(SpecError, match=message) as err:
        load_spec(_write(tmp_path, source))
    assert "examples_from" in str(err.value)


@settings(max_examples=200, deadline=None)
@given(strategies.pull_calls({"codenames_json": ["moon_laser_power"]}))
def test_calls_are_identified_and_draw_listed_values(call: tuple[str, bytes]) -> None:
    name, data = call
    assert codec.identify_pull_request(data) == name


def test_listed_values_are_drawn() -> None:
    seen: set[bytes] = set()

    @settings(max_examples=300, deadline=None, database=None)
    @given(strategies.pull_calls({"codenames_json": ["moon_laser_power"]}))
    def collect(call: tuple[str, bytes]) -> None:
        seen.add(call[1])

    collect()
    assert b"moon_laser_power#raw" in seen or b"moon_laser_power#json" in seen


def test_match_reply_names_the_reply_or_refuses() -> None:
    assert codec.match_pull_reply("name", b"moon") == "socket_name"
    assert codec.match_pull_reply("point_raw", b"UNKNOWN_COMMMAND") == "unknown_command"
    assert codec.match_push_reply("push_json_wn", b"ACK#{}") == "ack"
    assert codec.match_push_reply(None, b"ERROR#UNKNOWN_COMMMAND") == "push_unknown"
    with pytest.raises(FieldValueError, match="none of push_unknown") as err:
        codec.match_push_reply("push_json_wn", b"ACK:{}")
    assert err.value.field_path == "push.push_json_wn"


@given(st.binary(max_size=64))
def test_identify_never_raises(data: bytes) -> None:
    assert codec.identify_pull_request(data) in (None, *codec.PULL_REPLIES)
    assert codec.identify_push_request(data) in (None, *codec.PUSH_REPLIES)
