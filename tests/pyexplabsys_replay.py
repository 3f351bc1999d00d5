"""Helpers for replaying the PyExpLabSys golden transcripts against daqwire's drop-in sockets.

Used by ``tests/test_pyexplabsys_vectors.py``. The transcripts live in
``<vectors root>/pyexplabsys`` (``$DAQWIRE_VECTORS`` or ``tests/vectors``, see
``tests/conftest.py``); their README describes the entry fields. Everything here is plumbing:
loading entries, a settable clock, a restricted evaluator for ``set_point_raw_python``
expressions, the README's test callback, a loopback UDP client and the ``status`` shape check.
"""

from __future__ import annotations

import ast
import base64
import json
import socket
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from tests.conftest import vectors_root

#: the datagram size the client receives with (larger than any UDP payload)
RECV_BUFFER = 65536
#: how long a reply may take before the test gives up on it (never asserted as timing)
REPLY_TIMEOUT = 5.0


def vectors_dir() -> Path:
    """``<vectors root>/pyexplabsys``; fails (never skips) when the vectors are missing."""
    folder = vectors_root() / "pyexplabsys"
    assert folder.is_dir(), f"no pyexplabsys vectors in {folder} (see $DAQWIRE_VECTORS)"
    return folder


@cache
def load_vector_file(stem: str) -> Any:
    """The parsed JSON of ``pyexplabsys/<stem>.json``."""
    return json.loads((vectors_dir() / f"{stem}.json").read_text(encoding="utf-8"))


def load_entries(stem: str) -> list[dict[str, Any]]:
    """The entry list of a vector file (``py2_vs_py3.json`` keeps its list under ``entries``)."""
    data = load_vector_file(stem)
    entries: list[dict[str, Any]] = data["entries"] if isinstance(data, dict) else data
    return entries


def request_bytes(entry: dict[str, Any]) -> bytes:
    """The exact request datagram (``request`` is the bytes decoded as latin-1)."""
    data = str(entry["request"]).encode("latin-1")
    assert base64.b64decode(entry["request_b64"]) == data, "request and request_b64 disagree"
    return data


def recorded_reply(entry: dict[str, Any]) -> bytes | None:
    """The exact recorded reply datagram, or None when the reference did not reply."""
    reply = entry["reply"]
    return None if reply is None else str(reply).encode("latin-1")


def recorded_socket_name(stem: str) -> str:
    """The socket name as recorded on the wire: the reply to the first ``name`` request."""
    for entry in load_entries(stem):
        if entry.get("request") == "name" and entry.get("reply") is not None:
            reply = str(entry["reply"])
            return reply.removeprefix("RET#")
    raise AssertionError(f"{stem}.json has no reply to 'name'")


class FakeClock:
    """A wall clock the test sets explicitly (``clock=`` of the daqwire sockets)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def set(self, now: float) -> None:
        self.now = now


_ALLOWED_NODES = (
    ast.Expression,
    ast.Constant,
    ast.Tuple,
    ast.List,
    ast.Dict,
    ast.Load,
    ast.BinOp,
    ast.UnaryOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.USub,
    ast.UAdd,
)


def safe_eval(expr: str) -> Any:
    """A recorded ``set_point_raw_python`` expression: literals, arithmetic, float('...')."""
    tree = ast.parse(expr, mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, _ALLOWED_NODES):
            continue
        if isinstance(node, ast.Name) and node.id == "float":
            continue
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "float"
            and not node.keywords
            and len(node.args) == 1
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            continue
        raise ValueError(f"not allowed in a setup expression: {type(node).__name__} in {expr!r}")
    return eval(compile(tree, "<setup expr>", "eval"), {"__builtins__": {}, "float": float})


def _special_values() -> dict[str, Any]:
    return {
        "complex": 1 + 3j,
        "tuple": (1, 2),
        "set": {1},
        "bytes": b"x",
        "none": None,
        "nested_mixed": [[1, 2.0]],
        "list_of_str": [["a", "b"], ["c"]],
        "dict_with_tuple": {"a": (1, 2)},
        "dict_empty_list": {"a": []},
        "dict_nested_list": {"a": [[1], [2]]},
        "dict_none": {"a": None},
        "empty_list": [],
        "float_repr": {"third": 1 / 3, "big": 1e22, "small": 3e-18, "nan": float("nan")},
    }


def vector_callback(data: dict[str, Any]) -> Any:
    """The callback of the recording's callback_direct sockets (vectors README)."""
    if "raise" in data:
        raise ValueError(str(data["raise"]))
    if "return" in data:
        return data["return"]
    if "special" in data:
        return _special_values()[data["special"]]
    return data


def logging_callback(log: list[str]) -> Callable[[dict[str, Any]], Any]:
    """``vector_callback`` that first appends ``repr(data)`` to ``log`` (callback_async)."""

    def callback(data: dict[str, Any]) -> Any:
        log.append(repr(data))
        return vector_callback(data)

    return callback


def wait_until(predicate: Callable[[], bool], timeout: float = REPLY_TIMEOUT) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; the result of the last poll."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        time.sleep(0.005)
    return True


class UdpClient:
    """One loopback UDP client socket: send a datagram, wait for the one reply."""

    def __init__(self) -> None:
        self._sock = self._new_socket()

    @staticmethod
    def _new_socket() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(REPLY_TIMEOUT)
        return sock

    def ask(self, port: int, data: bytes) -> bytes:
        """Send ``data`` to 127.0.0.1:``port`` and return the reply (AssertionError on silence)."""
        self._sock.sendto(data, ("127.0.0.1", port))
        try:
            reply, source = self._sock.recvfrom(RECV_BUFFER)
        except TimeoutError:
            # a late reply must not be taken for the answer to the next request
            self._sock.close()
            self._sock = self._new_socket()
            raise AssertionError(f"no reply within {REPLY_TIMEOUT} s to {data[:80]!r}") from None
        assert source == ("127.0.0.1", port), f"reply from {source}, expected port {port}"
        return reply

    def close(self) -> None:
        self._sock.close()


def short(data: bytes | str | None, limit: int = 300) -> str:
    """A repr cut to ``limit`` characters for failure messages."""
    text = repr(data)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"


def _loose_same_kind(recorded: Any, ours: Any) -> bool:
    if isinstance(recorded, dict):
        return isinstance(ours, dict) and set(ours) == set(recorded)
    if ours is None:
        return True
    if recorded is None:
        return isinstance(ours, (str, int, float)) and not isinstance(ours, bool)
    if isinstance(recorded, bool):
        return isinstance(ours, bool)
    if isinstance(recorded, (int, float)):
        return isinstance(ours, (int, float)) and not isinstance(ours, bool)
    return isinstance(ours, type(recorded))


def _walk_loose(recorded: Any, ours: Any, path: str, problems: list[str]) -> None:
    if not _loose_same_kind(recorded, ours):
        problems.append(
            f"system_status{path}: {short(ours, 120)} is not like {short(recorded, 120)}"
        )
        return
    if isinstance(recorded, dict):
        for key in recorded:
            _walk_loose(recorded[key], ours[key], f"{path}.{key}", problems)


def check_status_reply(
    reply: bytes,
    recorded: str,
    expected_sockets: dict[str, str],
    status_now: dict[str, Any],
) -> list[str]:
    """Problems with a ``status`` reply (empty list = fine).

    ``expected_sockets`` maps each of our ports (as str) to the recorded port (as str) whose
    entry gives its name/type/status; ``status_now`` is ``socket_server_status()`` taken right
    after the request (every socket started in the process, ours and any others).
    """
    problems: list[str] = []
    try:
        ours = json.loads(reply.decode("utf-8"))
    except ValueError as exc:
        return [f"status reply is not JSON ({exc}): {short(reply)}"]
    want = json.loads(recorded)
    if not isinstance(ours, dict) or list(ours) != list(want):
        keys = list(ours) if isinstance(ours, dict) else type(ours).__name__
        return [f"status top-level keys {keys}, expected {list(want)}"]
    servers = ours["socket_server_status"]
    if not isinstance(servers, dict):
        return [f"socket_server_status is {type(servers).__name__}"]
    if set(servers) != set(status_now):
        problems.append(
            f"socket_server_status ports {sorted(servers)} != socket_server_status() "
            f"{sorted(status_now)}"
        )
    missing = sorted(set(expected_sockets) - set(servers))
    if missing:
        problems.append(f"socket_server_status lacks our sockets {missing}")
    for port, entry in servers.items():
        if not isinstance(entry, dict) or set(entry) != {
            "name",
            "type",
            "status",
            "since_last_activity",
        }:
            problems.append(f"socket_server_status[{port}] has keys {short(entry, 200)}")
            continue
        if entry["status"] == "DISABLED":
            if entry["since_last_activity"] is not None:
                problems.append(f"socket_server_status[{port}]: DISABLED but a last activity")
        elif not isinstance(entry["since_last_activity"], (int, float)):
            problems.append(f"socket_server_status[{port}].since_last_activity not a number")
    for port, recorded_port in expected_sockets.items():
        if port not in servers or not isinstance(servers[port], dict):
            continue
        expected = want["socket_server_status"][recorded_port]
        for key in ("name", "type", "status"):
            if servers[port].get(key) != expected[key]:
                problems.append(
                    f"socket_server_status[{port}].{key} = {servers[port].get(key)!r}, "
                    f"recorded {expected[key]!r} (port {recorded_port})"
                )
    system = ours["system_status"]
    if not isinstance(system, dict) or set(system) != set(want["system_status"]):
        keys = sorted(system) if isinstance(system, dict) else type(system).__name__
        problems.append(f"system_status keys {keys}, expected {sorted(want['system_status'])}")
    else:
        _walk_loose(want["system_status"], system, "", problems)
    return problems
