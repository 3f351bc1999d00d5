"""``daqwire pyexplabsys``: serve-pull and serve-push as a newcomer runs them, query and push."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from daqwire.cli import main
from daqwire.pyexplabsys import DataPushSocket, DateDataPullSocket


def test_query_every_form(capsys: pytest.CaptureFixture[str]) -> None:
    with DateDataPullSocket("cli", ["a", "b"], port=0, host="127.0.0.1") as sock:
        sock.set_point("a", (1700000000.0, 1.5))
        addr = f"127.0.0.1:{sock.port}"
        assert main(["pyexplabsys", "query", addr, "raw"]) == 0
        assert main(["pyexplabsys", "query", addr, "a#json"]) == 0
        assert main(["pyexplabsys", "query", addr, "raw_wn", "--wire"]) == 0
        assert main(["pyexplabsys", "query", addr, "ghost#raw"]) == 1
        assert main(["pyexplabsys", "query", addr, "bogus"]) == 2
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "[[1700000000.0, 1.5], [0.0, 0.0]]",
        "[1700000000.0, 1.5]",
        "a:1700000000.0,1.5;b:0.0,0.0",
    ]
    assert "UNKNOWN_COMMMAND" in err and "unknown command 'bogus'" in err


def test_push_json_and_raw(capsys: pytest.CaptureFixture[str]) -> None:
    with DataPushSocket("cli push", port=0, host="127.0.0.1") as sock:
        addr = f"127.0.0.1:{sock.port}"
        assert main(["pyexplabsys", "push", addr, "--json", '{"setpoint": 21.5}']) == 0
        assert main(["pyexplabsys", "push", addr, "--raw", "mode:str:auto;n:int:1,2"]) == 0
        assert main(["pyexplabsys", "push", addr, "--json", "not json"]) == 2
        assert sock.updated == {"setpoint": 21.5, "mode": "auto", "n": [1, 2]}
    out, _ = capsys.readouterr()
    assert out.splitlines() == [
        'Ack: {"data": "{\'setpoint\': 21.5}"}',
        "Ack: {\"data\": \"{'mode': 'auto', 'n': [1, 2]}\"}",
    ]


def test_serve_pull_subprocess_answers_queries() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daqwire.cli",
            "pyexplabsys",
            "serve-pull",
            "--codenames",
            "t,p",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--simulate",
            "--interval-s",
            "0.05",
            "--duration-s",
            "8",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"on 127\.0\.0\.1:(\d+) with codenames \['t', 'p'\]", line)
        assert match, line
        query = subprocess.run(
            [
                sys.executable,
                "-m",
                "daqwire.cli",
                "pyexplabsys",
                "query",
                f"127.0.0.1:{match.group(1)}",
                "codenames_json",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert query.returncode == 0, query.stderr
        assert json.loads(query.stdout) == ["t", "p"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_help_texts() -> None:
    for args in (["pyexplabsys", "--help"], ["pyexplabsys", "serve-push", "--help"]):
        run = subprocess.run(
            [sys.executable, "-m", "daqwire.cli", *args], capture_output=True, text=True
        )
        assert run.returncode == 0 and "usage:" in run.stdout
