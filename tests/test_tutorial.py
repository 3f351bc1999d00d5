"""docs/tutorial.md runs as written: generate, serve, call, conform, break, replay, test.

Every step runs as a user runs it, as a subprocess from the repository root, with the
generated package in a temporary folder instead of ``build/tutorial``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "tutorial.md"
TUTORIAL = ROOT / "docs" / "tutorial"
#: the output folder the page generates into, replaced by a temporary one here
PAGE_OUT = "build/tutorial/kettle_api"
#: the port the page's commands use, replaced by the free port the server got
PAGE_PORT = "9750"
TIMEOUT_S = 120.0
FILES = ("kettle.yaml", "kettle_server.py", "kettle_client.py", "test_kettle_codec.py")


def _page() -> str:
    return PAGE.read_text(encoding="utf-8")


def _block(marker: str) -> str:
    """The fenced block right after ``<!-- marker -->`` in the page."""
    found = re.search(rf"<!-- {re.escape(marker)} -->\n```\w*\n(.*?)\n```", _page(), re.S)
    assert found is not None, f"no block marked {marker!r} in docs/tutorial.md"
    return found.group(1)


def _daqwire(*args: str) -> list[str]:
    """The ``daqwire`` command of this interpreter's installation."""
    return [sys.executable, "-m", "daqwire.cli", *args]


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The page's generate commands, into a temporary package; the environment that finds it."""
    base = tmp_path_factory.mktemp("tutorial")
    out = base / "kettle_api"
    commands = _block("commands: generate").splitlines()
    assert commands == [
        f"daqwire generate --specs-dir docs/tutorial --out {PAGE_OUT}",
        f"touch {PAGE_OUT}/__init__.py",
        "export PYTHONPATH=build/tutorial",
    ]
    argv = shlex.split(commands[0].replace(PAGE_OUT, str(out)))
    done = _run(_daqwire(*argv[1:]), dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == ["wrote kettle.py", "wrote kettle_strategies.py"]
    (out / "__init__.py").touch()
    return {**os.environ, "PYTHONPATH": str(base), "PYTHONUNBUFFERED": "1"}


class Server:
    """``python docs/tutorial/kettle_server.py 0 [--bug]`` and the port it printed."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(TUTORIAL / "kettle_server.py"), "0", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.result: tuple[int, str, str] | None = None
        stdout = self.proc.stdout
        assert stdout is not None
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(TIMEOUT_S)  # only a guard against a server that hangs before printing
        line = first[0] if first else ""
        found = re.fullmatch(r"kettle listening on 127\.0\.0\.1:(\d+)\n", line)
        if found is None:
            _code, _out, err = self.stop()
            raise AssertionError(f"the server did not start: {line!r} {err!r}")
        self.port = int(found.group(1))
        self.target = f"127.0.0.1:{self.port}"

    def stop(self) -> tuple[int, str, str]:
        """Stop it as ``kill`` does (SIGTERM); its exit code and the rest of its output."""
        if self.result is None:
            if self.proc.poll() is None:
                self.proc.terminate()
            try:
                out, err = self.proc.communicate(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, err = self.proc.communicate()
            self.result = (self.proc.returncode, out, err)
        return self.result


@contextmanager
def serving(env: dict[str, str], *args: str) -> Iterator[Server]:
    server = Server(env, *args)
    try:
        yield server
    finally:
        server.stop()


def _shown(marker: str, port: int) -> list[str]:
    """The lines of an output block of the page, with the page's port replaced by ``port``."""
    return [line.replace(f":{PAGE_PORT}", f":{port}") for line in _block(marker).splitlines()]


def test_the_page_shows_the_files_as_they_are() -> None:
    shown = dict(re.findall(r"<!-- file: (\S+) -->\n```\w+\n(.*?)\n```", _page(), re.S))
    assert sorted(shown) == sorted(f"docs/tutorial/{name}" for name in FILES)
    for rel, text in shown.items():
        assert text == (ROOT / rel).read_text(encoding="utf-8").rstrip("\n"), rel


def test_the_page_shows_the_commands_run_here() -> None:
    """Every shell command of the page, in order: the ones the tests below run (or stand for)."""
    blocks = re.findall(r"```sh\n(.*?)\n```", _page(), re.S)
    commands = [line for block in blocks for line in block.splitlines()]
    replay = "daqwire conform docs/tutorial/kettle.yaml 127.0.0.1:9750 --replay"
    assert commands == [
        "daqwire specs show docs/tutorial/kettle.yaml",
        *_block("commands: generate").splitlines(),
        "python docs/tutorial/kettle_server.py 9750 &",
        "python docs/tutorial/kettle_client.py 9750",
        "daqwire conform docs/tutorial/kettle.yaml 127.0.0.1:9750 --seed 1",
        "kill %1",
        "python docs/tutorial/kettle_server.py 9750 --bug &",
        "daqwire conform docs/tutorial/kettle.yaml 127.0.0.1:9750 --seed 1",
        f"{replay} 'set:{{}}'",
        "kill %1",
        "python docs/tutorial/kettle_server.py 9750 &",
        f"{replay} 'set:{{}}'",
        "kill %1",
        "python -m pytest docs/tutorial/test_kettle_codec.py",
    ]


def test_the_tutorial_spec_stays_out_of_the_shipped_specs() -> None:
    assert not (ROOT / "specs" / "kettle.yaml").exists()
    assert not list((ROOT / "generated").glob("kettle*"))


def test_specs_show(env: dict[str, str]) -> None:
    done = _run(_daqwire("specs", "show", "docs/tutorial/kettle.yaml"), env)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    for line in _block("output: daqwire specs show docs/tutorial/kettle.yaml").splitlines():
        if line != "...":
            assert line in printed


def test_the_generated_names(env: dict[str, str]) -> None:
    code = _block("run: python")
    expected = [line.split("  # ", 1)[1] for line in code.splitlines() if "  # " in line]
    done = _run([sys.executable, "-c", code], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == expected


def test_client_against_the_server_and_conform_passes(env: dict[str, str]) -> None:
    with serving(env) as server:
        client = _run([sys.executable, str(TUTORIAL / "kettle_client.py"), str(server.port)], env)
        assert client.returncode == 0, client.stderr
        assert client.stdout.splitlines() == _block("output: kettle_client.py").splitlines()

        argv = shlex.split(
            "daqwire conform docs/tutorial/kettle.yaml 127.0.0.1:9750 --seed 1".replace(
                PAGE_PORT, str(server.port)
            )
        )
        done = _run(_daqwire(*argv[1:]), env)
        assert done.returncode == 0, done.stdout + done.stderr
        shown = _shown("output: conform pass", server.port)
        assert done.stdout.splitlines()[0] == shown[0]
        assert "PASS: every reply and item conforms to the spec" in done.stdout.splitlines()
        assert "reply sensor_list 1" in done.stdout and "reply settings" in done.stdout

        code, out, err = server.stop()
        assert (code, out) == (0, "kettle stopped\n"), err


def test_conform_finds_the_bug_and_the_replay_shows_it(env: dict[str, str]) -> None:
    with serving(env, "--bug") as server:
        argv = _daqwire("conform", "docs/tutorial/kettle.yaml", server.target, "--seed", "1")
        done = _run(argv, env)
        assert done.returncode == 1, done.stdout + done.stderr
        printed = done.stdout.splitlines()
        for line in _shown("output: conform bug", server.port):
            if not line.startswith("checked "):  # the counts and the time vary
                assert line in printed
        reproduce = next(x for x in printed if x.strip().startswith("reproduce: "))
        command = reproduce.split("reproduce: ", 1)[1]
        assert command == (
            f"daqwire conform docs/tutorial/kettle.yaml {server.target} --replay 'set:{{}}'"
        )
        replay = _run(_daqwire(*shlex.split(command)[1:]), env)
        assert replay.returncode == 1, replay.stdout + replay.stderr
        assert "   case: set:{}" in replay.stdout.splitlines()

    with serving(env) as fixed:
        fixed_command = command.replace(server.target, fixed.target)
        replay = _run(_daqwire(*shlex.split(fixed_command)[1:]), env)
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert "PASS: every reply and item conforms to the spec" in replay.stdout


def test_the_property_tests_pass(env: dict[str, str]) -> None:
    done = _run(
        [
            sys.executable,
            "-m",
            "pytest",
            "docs/tutorial/test_kettle_codec.py",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
