"""``daqwire specs list`` and ``daqwire specs show``: what the specs declare, without YAML."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from daqwire.cli import main
from daqwire.codegen import load_spec
from daqwire.errors import SpecError

KITCHEN = Path(__file__).parent / "specs" / "kitchen.yaml"

SHIPPED = {
    "aartfaac": "binary",
    "cdtp1": "msgpack_frames",
    "cdtp2": "msgpack_frames",
    "chirp": "binary",
    "cscp1": "msgpack_frames",
    "lsst_tcpip": "json_lines",
    "m2": "json_lines",
    "mtmount_telemetry": "json_lines",
    "pyexplabsys": "text_commands",
}

SHOW_KEYS = {
    "name",
    "protocol",
    "title",
    "family",
    "file",
    "sha256",
    "doc",
    "framing",
    "parameters",
    "constants",
    "enums",
    "messages",
    "generated",
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def show_json(capsys: pytest.CaptureFixture[str], name: str) -> dict[str, Any]:
    code, out, err = run(capsys, "specs", "show", name, "--json")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def test_list_shows_every_shipped_spec_with_its_family(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "specs", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("9 specs in ")
    rows = {line.split()[0]: line.split() for line in lines if line.split()[:1] != []}
    for name, family in SHIPPED.items():
        assert rows[name][1] == family
        assert rows[name][3] == f"{name}.yaml"
    assert rows["aartfaac"][2] == "1" and rows["mtmount_telemetry"][2] == "26"
    assert "aartfaac           binary                 1  aartfaac.yaml" in out
    assert max(len(line) for line in lines) <= 100


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "specs", "list", "--json")
    assert code == 0
    data = json.loads(out)
    assert {s["name"]: s["family"] for s in data["specs"]} == SHIPPED
    m2 = next(s for s in data["specs"] if s["name"] == "m2")
    assert m2["title"] == "LSST M2 cell controller messages (ts_m2com)"
    assert m2["file"] == "m2.yaml" and m2["messages"] > 40


def test_show_text_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "specs", "show", "pyexplabsys")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "pyexplabsys: PyExpLabSys UDP data sockets"
    assert (
        "  family          text_commands (text request and reply datagrams with separator "
        "grammars)" in lines
    )
    assert "  encoding        utf-8" in lines
    # the reference spells it with three M's, and so does the wire
    assert '  UNKNOWN_COMMAND     = "UNKNOWN_COMMMAND"' in lines
    assert "      The reply to an unknown pull command (spelt with three M's on the wire)." in lines
    assert '  BAD_CHARS           = ["#", ",", ";", ":", "&"]' in lines
    assert '  point_raw            request   "{codename}#raw" -> point_raw_reply  (cached)' in lines
    assert '      {codename}: str, pattern "[^#]*", examples from codenames_json' in lines
    assert '  unknown_command      reply     "UNKNOWN_COMMMAND"' in lines
    assert (
        '  raw_wn              typed_map    separators [";", ":", ","], types ["int", '
        '"float", "str",' in lines
    )
    # services: the requests and the error replies
    pull = lines.index("  pull")
    assert lines[pull + 2].startswith("      requests   name, codenames_raw, codenames_json, raw")
    assert "      errors     unknown, malformed, refused, failed -> unknown_command" in lines
    # the generated modules and where to start
    assert "  daqwire.generated.pyexplabsys_strategies  hypothesis strategies" in lines
    assert "  PullClientStub, AsyncPullClientStub" in lines
    assert max(len(line) for line in lines) <= 100


def test_show_binary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "specs", "show", "aartfaac")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "aartfaac: AARTFAAC image window"
    assert "  byte order      little" in lines
    choices = "naxis2_fastest = F, naxis1_fastest = C (default naxis2_fastest)"
    assert f"  pixel_order       {choices}" in lines
    assert "  window  class Window; fixed part 512 bytes, then variable-size blocks" in lines
    assert "      magic         uint64 le     const 0x47494A53484F4D4F" in lines
    assert "      fits_length   uint32 le     max 1048576, length of fits" in lines
    assert "      padding       padding       size 496, fill 0, check ignore" in lines
    assert any("keywords NAXIS1 int (min 1), NAXIS2 int (min 1)," in line for line in lines)
    assert "  daqwire.generated.aartfaac_construct   the same layouts in construct" in lines
    assert "  WindowDecoder" in lines
    data = show_json(capsys, "aartfaac")
    magic = data["messages"][0]["fields"][0]
    assert magic == {
        "name": "magic",
        "type": "uint64",
        "byte_order": "little",
        "const": 0x47494A53484F4D4F,
        "doc": magic["doc"],
    }


def test_show_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "specs", "show", "m2")
    assert code == 0
    lines = out.splitlines()
    assert "  MsgType               enum   Command = 1, Event = 2, Telemetry = 3" in lines
    assert '  terminator      "\\r\\n"' in lines
    assert "  framing from    lsst_tcpip" in lines
    assert "      sequence_id  int   min 1, max 2147483647" in lines
    assert '      id           str   const "cmd_power"' in lines
    data = show_json(capsys, "m2")
    enums = {e["name"]: e for e in data["enums"]}
    assert enums["MsgType"]["members"] == {"Command": 1, "Event": 2, "Telemetry": 3}
    assert data["framing"] == {
        "terminator": "\r\n",
        "encoding": "utf-8",
        "max_line_bytes": 65536,
        "dialect": "python",
        "framing_from": "lsst_tcpip",
        "select": "id",
        "doc": "",
    }
    power = next(m for m in data["messages"] if m["name"] == "power")
    assert power["selected_by"] == {"key": "id", "kind": "const", "value": "cmd_power"}
    assert power["keys"][0] == {"name": "powerType", "type": "int", "enum": "PowerType", "doc": ""}


def test_show_msgpack_frames(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "specs", "show", "cdtp2")
    assert code == 0
    lines = out.splitlines()
    assert (
        "  RunCondition          flags  GOOD = 0, TAINTED = 1, INCOMPLETE = 2, INTERRUPTED = 4, "
        "ABORTED = 8," in lines
    )
    assert "  data_message  class DataMessage; selected by value 0" in lines
    assert "      frame 0  frame  msgpack objects" in lines
    assert '        protocol  str    const "CDTP\\u0002"' in lines
    assert "        type      int    const 0, enum MessageType, selector" in lines
    assert "        records   array  items DataRecord, count 2" in lines
    assert "      blocks           array  items bytes" in lines
    data = show_json(capsys, "cdtp2")
    assert data["records"][0]["name"] == "DataRecord"
    bor = data["messages"][1]
    assert bor["name"] == "bor_message" and bor["select_value"] == 1
    assert bor["frames"][0]["objects"][0]["const"] == "CDTP\x02"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_show_json_of_every_spec(capsys: pytest.CaptureFixture[str], name: str) -> None:
    data = show_json(capsys, name)
    assert SHOW_KEYS <= set(data)
    assert data["name"] == data["protocol"] == name
    assert data["family"] == SHIPPED[name]
    assert data["file"] == f"specs/{name}.yaml"
    spec = load_spec(_shipped(name))
    assert data["sha256"] == spec.sha256
    family_keys = {"text_commands": "services", "msgpack_frames": "records"}
    if SHIPPED[name] in family_keys:
        assert family_keys[SHIPPED[name]] in data
    # every name the view points at is in the generated modules
    generated = data["generated"]
    modules = [importlib.import_module(m["name"]) for m in generated["modules"]]
    for entry in generated["api"]:
        for api_name in entry["names"]:
            if "<" not in api_name:
                assert any(hasattr(m, api_name) for m in modules), api_name
    code, out, _ = run(capsys, "specs", "show", name)
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 100


def _shipped(name: str) -> Path:
    from daqwire.codegen.render import default_specs_dir

    return default_specs_dir() / f"{name}.yaml"


def test_show_a_path(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "specs", "show", str(KITCHEN))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "kitchen: Every binary construct"
    assert f"  file            {KITCHEN}" in lines
    assert "  KITCHEN_PORT  = 4711" in lines
    assert "  Mode                  enum   IDLE = 0, RUN = 1, CALIBRATE = 7" in lines
    assert "  ping   class Ping; fixed size 16 bytes" in lines
    assert "      matrix          int16[] be    shape [rows, cols], order param layout" in lines
    assert "      reserved        padding       size 3, fill 0, check fill" in lines
    # its modules go where --out says, not into daqwire.generated
    folder = KITCHEN.parent.as_posix()
    at = lines.index(f"generated modules (daqwire generate --specs-dir {folder} --out PACKAGE_DIR)")
    assert lines[at + 1 : at + 4] == [
        "  kitchen             dataclasses, encoders, decoders, incremental stream decoders",
        "  kitchen_construct   the same layouts in construct",
        "  kitchen_strategies  hypothesis strategies",
    ]
    code, out, _ = run(capsys, "specs", "show", str(KITCHEN), "--json")
    assert code == 0 and json.loads(out)["generated"]["package"] is None


def test_show_a_name_in_another_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    shutil.copy(KITCHEN, tmp_path / "kitchen.yaml")
    code, out, _ = run(capsys, "specs", "show", "kitchen", "--specs-dir", str(tmp_path))
    assert code == 0 and out.startswith("kitchen: Every binary construct\n")
    code, out, _ = run(capsys, "specs", "list", "--specs-dir", str(tmp_path))
    assert code == 0 and out.startswith("1 specs in ")
    assert "kitchen  binary" in out


def test_unknown_name_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "specs", "show", "pyexplabsis")
    assert code == 2 and out == ""
    assert "no spec named 'pyexplabsis' (did you mean pyexplabsys?)" in err
    assert "known specs: " + ", ".join(sorted(SHIPPED)) in err


BROKEN = """\
daqwire: 1
protocol: broken
family: binary
byte_order: little
messages:
  frame:
    fields:
      - {name: size, type: uint16, length_of: payload}
      - {name: payload, type: bytes, length: nothing}
"""


@pytest.mark.parametrize(
    "text",
    [BROKEN, "daqwire: 1\nprotocol: broken\nfamily: binary\nmessages: {}\n", "a: [1,\n"],
    ids=["model", "schema", "yaml"],
)
def test_a_broken_spec_fails_with_the_loaders_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path, display_name=str(path))
    code, out, err = run(capsys, "specs", "show", str(path))
    assert code == 2 and out == ""
    assert err == f"daqwire specs show: {info.value}\n"
    assert f"{path}:" in err
    # in a folder, list shows the good specs and reports the broken one
    shutil.copy(KITCHEN, tmp_path / "kitchen.yaml")
    code, out, err = run(capsys, "specs", "list", "--specs-dir", str(tmp_path))
    assert code == 2
    names = [line.split()[0] for line in out.splitlines()[3:] if line.strip()]
    assert names == ["kitchen", "daqwire"]  # the kitchen row, then the closing hint
    assert str(info.value) in err


def test_a_missing_file_is_a_spec_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "specs", "show", str(tmp_path / "nowhere.yaml"))
    assert code == 2 and "cannot read spec" in err
