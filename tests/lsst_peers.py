"""Loopback peers for the ``daqwire.lsst`` base-layer tests: a scripted raw server, an echo server.

Vectors are read from ``<vectors root>/lsst`` (see ``tests.conftest.vectors_root``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from functools import cache
from typing import Any

from daqwire.errors import RemoteProtocolError
from daqwire.generated.lsst_tcpip import decode_line
from daqwire.lsst import OneClientReadLoopServer
from tests.conftest import vectors_root

#: generous bound for every wait; nothing asserts on timing
WAIT_S = 10.0

#: a scripted server step: bytes to send, ("sleep", s), "eof", "rst" or "await_line"
Action = bytes | tuple[str, float] | str


@cache
def lsst_vector(name: str) -> dict[str, Any]:
    """The parsed ``lsst/<name>.json`` golden vector file."""
    path = vectors_root() / "lsst" / f"{name}.json"
    assert path.is_file(), f"no lsst vector {path}"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def frame_bytes(frame: dict[str, Any]) -> bytes:
    """The bytes of a recorded frame: its hex, or ``head`` + fill + ``tail`` for big frames."""
    if "hex" in frame:
        return bytes.fromhex(frame["hex"])
    if "head" in frame:
        head: bytes = frame["head"].encode()
        tail: bytes = frame["tail"].encode()
        fill = head[-1:]
        return head + fill * (int(frame["len"]) - len(head) - len(tail)) + tail
    data: bytes = frame["text"].encode()
    return data


def script_from_vector(items: Sequence[dict[str, Any]]) -> list[Action]:
    """A ``ScriptServer`` script from a vector's ``server_bytes`` list."""
    script: list[Action] = []
    for item in items:
        action = item.get("action")
        if action is None:
            script.append(frame_bytes(item))
        elif isinstance(action, list):
            script.append((str(action[0]), float(action[1])))
        else:
            script.append(str(action))
    return script


class ScriptServer:
    """A raw asyncio server that plays one script to each client and records what it got."""

    def __init__(self, script: Sequence[Action]) -> None:
        self.script = list(script)
        self.received = bytearray()
        self.connections = 0
        self.done = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            for action in self.script:
                if isinstance(action, bytes):
                    writer.write(action)
                    await writer.drain()
                elif isinstance(action, tuple):
                    await asyncio.sleep(action[1])
                elif action == "await_line":
                    self.received += await reader.readuntil(b"\r\n")
                elif action == "eof":
                    writer.close()
                    return
                elif action == "rst":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                else:  # pragma: no cover - test bug
                    raise ValueError(action)
            self.received += await reader.read()  # hold the connection until the client leaves
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.done.set()

    async def close(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await asyncio.wait_for(self._server.wait_closed(), WAIT_S)


@asynccontextmanager
async def script_server(script: Sequence[Action]) -> AsyncIterator[ScriptServer]:
    """A started ``ScriptServer``; closed on exit."""
    server = ScriptServer(script)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


class EchoServer(OneClientReadLoopServer):
    """Echo JSON lines via ``write_json``, other lines byte for byte, binary blocks as they came.

    Records every line it read (terminator included) in ``lines``; a whole line equal to
    ``heartbeat`` is a heartbeat (never echoed). ``binary_size`` > 0 switches to blocks.
    """

    def __init__(self, *, binary_size: int = 0, **kwargs: Any) -> None:
        kwargs.setdefault("port", 0)
        super().__init__(**kwargs)
        self.lines: list[bytes] = []
        self.blocks: list[bytes] = []
        self.binary_size = binary_size
        self.got_line = asyncio.Event()

    async def read_and_dispatch(self) -> None:
        if self.binary_size:
            block = await self.readexactly(self.binary_size)
            self.blocks.append(block)
            await self.write(block)
            return
        line = await self.read_line()
        self.lines.append(line + self.terminator)
        self.got_line.set()
        if self.is_heartbeat(line):
            self.handle_received_heartbeat()
            return
        try:
            value = decode_line(line)
        except RemoteProtocolError:
            await self.write(line + self.terminator)
            return
        await self.write_json(value)


@asynccontextmanager
async def echo_server(**kwargs: Any) -> AsyncIterator[EchoServer]:
    """A started ``EchoServer`` on a free loopback port; closed on exit."""
    server = EchoServer(**kwargs)
    await asyncio.wait_for(server.start_task, WAIT_S)
    try:
        yield server
    finally:
        await server.close()


def free_port() -> int:
    """A loopback port nobody listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def full_backlog_listener() -> Iterator[int]:
    """A port whose accept queue is full, so a new connect hangs until its timeout."""
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            try:
                filler.connect(("127.0.0.1", port))
            except (BlockingIOError, OSError):
                pass
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def wait_for_value(probe: Any, expected: Any = True, timeout: float = WAIT_S) -> None:
    """Poll ``probe()`` until it returns ``expected`` (bounded; fails the test on timeout)."""
    async with asyncio.timeout(timeout):
        while probe() != expected:
            await asyncio.sleep(0.005)


def stray_tasks() -> set[asyncio.Task[Any]]:
    """Tasks of the running loop other than the current one that have not finished."""
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


async def assert_no_stray_tasks() -> None:
    """Every background task has ended (give cancelled ones a few loop turns)."""
    for _ in range(50):
        if not stray_tasks():
            return
        await asyncio.sleep(0.01)
    assert not stray_tasks(), stray_tasks()
