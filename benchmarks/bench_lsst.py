"""LSST TCP/JSON read throughput: daqwire's ``Client.read_json`` against bare asyncio streams.

Usage::

    python benchmarks/bench_lsst.py [--quick] [--rounds N] [--sizes 200B,20kB] [--count N]

A server in a separate process streams, on every connection it accepts, a start line, N
pre-encoded JSON lines ``{"id": "blob", "seq": i, "data": "xxx..."}`` + CRLF of about 200 B or
20 kB each (as in the reference measurements, lsst_tcpip.md section 9), then an end marker,
all written with ``sendall`` in 1 MiB pieces. The client (this process, one fresh connection
per run) times from the start line to the end marker. Implementations, in the same round:

* **daqwire**: ``daqwire.lsst.Client`` (default options) and a ``read_json()`` loop;
* **bare asyncio**: ``asyncio.open_connection`` + ``readuntil(b"\\r\\n")`` + ``json.loads``,
  the ceiling for a Python asyncio consumer with no protocol layer at all.

Reported per size: messages/s and MB/s as medians over rounds, and the ratio daqwire / bare
as the paired median (the median over rounds of the ratio within a round; the order of the
two alternates between rounds). Target: >= 0.8. Targets are informational: the script exits
0 whether they are met or not. ``--quick`` (CI smoke test) runs one short round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing as mp
import os
import platform
import shlex
import socket
import statistics
import sys
import time
from typing import Any

SIZES = {"200B": 200, "20kB": 20_000}
COUNTS = {200: 40_000, 20_000: 5_000}
IMPLS = ("daqwire", "bare asyncio")
PIECE = 1 << 20


def _line(seq: int, size: int) -> bytes:
    """One message of ``size`` bytes including its CRLF."""
    head = json.dumps({"id": "blob", "seq": seq, "data": ""})[:-2]
    fill = max(0, size - len(head) - 4)
    return (head + "x" * fill + '"}').encode() + b"\r\n"


def _stream(size: int, count: int) -> list[bytes]:
    """The whole stream of one run, cut into pieces of about 1 MiB."""
    lines = [json.dumps({"id": "start", "count": count}).encode() + b"\r\n"]
    lines += [_line(seq, size) for seq in range(count)]
    lines.append(json.dumps({"id": "end", "count": count}).encode() + b"\r\n")
    pieces: list[bytes] = []
    buf = bytearray()
    for line in lines:
        buf += line
        if len(buf) >= PIECE:
            pieces.append(bytes(buf))
            buf.clear()
    if buf:
        pieces.append(bytes(buf))
    return pieces


def _server_main(sock: socket.socket, size: int, count: int) -> None:
    """Serve the stream to each client in turn until killed (child process)."""
    pieces = _stream(size, count)
    while True:
        conn, _ = sock.accept()
        with conn:
            try:
                for piece in pieces:
                    conn.sendall(piece)
                conn.recv(1)  # until the client closes
            except OSError:
                pass


async def _run_daqwire(port: int, count: int) -> float:
    from daqwire.lsst import Client

    client = Client("127.0.0.1", port)
    await client.start_task
    try:
        read_json = client.read_json
        start = await read_json()
        t0 = time.perf_counter()
        msg: Any = None
        for _ in range(count):
            msg = await read_json()
        end = await read_json()
        t1 = time.perf_counter()
    finally:
        await client.close()
    _check(start, msg, end, count)
    return t1 - t0


async def _run_bare(port: int, count: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        readuntil = reader.readuntil
        loads = json.loads
        start = loads(await readuntil(b"\r\n"))
        t0 = time.perf_counter()
        msg: Any = None
        for _ in range(count):
            msg = loads(await readuntil(b"\r\n"))
        end = loads(await readuntil(b"\r\n"))
        t1 = time.perf_counter()
    finally:
        writer.close()
        await writer.wait_closed()
    _check(start, msg, end, count)
    return t1 - t0


def _check(start: Any, last: Any, end: Any, count: int) -> None:
    if start["id"] != "start" or end["id"] != "end" or last["seq"] != count - 1:
        raise RuntimeError(f"stream out of order: {start!r} ... {end!r}")


RUN = {"daqwire": _run_daqwire, "bare asyncio": _run_bare}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round (CI smoke test)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per size (default 5)")
    parser.add_argument(
        "--sizes", default=",".join(SIZES), help="message sizes, from " + ", ".join(SIZES)
    )
    parser.add_argument("--count", type=int, default=0, help="messages per run (default: per size)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sizes = [SIZES[s.strip()] for s in args.sizes.split(",") if s.strip()]
    rounds = 1 if args.quick else args.rounds
    print("command: " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]))
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {rounds} round(s)")
    ctx = mp.get_context("spawn")
    for size in sizes:
        count = args.count or COUNTS[size]
        if args.quick:
            count = max(100, count // 20)
        label = next(k for k, v in SIZES.items() if v == size)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = int(listener.getsockname()[1])
        server = ctx.Process(target=_server_main, args=(listener, size, count), daemon=True)
        server.start()
        seconds: dict[str, list[float]] = {i: [] for i in IMPLS}
        try:
            for r in range(rounds):
                order = IMPLS if r % 2 == 0 else IMPLS[::-1]
                for impl in order:
                    seconds[impl].append(asyncio.run(RUN[impl](port, count)))
        finally:
            server.kill()
            server.join()
            listener.close()
        rates = {i: [count / s for s in seconds[i]] for i in IMPLS}
        print(f"\n{label} messages, {count} per run:")
        for impl in IMPLS:
            rate = statistics.median(rates[impl])
            print(f"  {impl:<13} {rate:>10.0f} msgs/s {rate * size / 1e6:>8.1f} MB/s")
        ratio = statistics.median(
            a / b for a, b in zip(rates["daqwire"], rates["bare asyncio"], strict=True)
        )
        print(f"  daqwire / bare asyncio: {ratio:.2f} (target >= 0.8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
