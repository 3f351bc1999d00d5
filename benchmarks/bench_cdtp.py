"""CDTP2 run throughput: daqwire's sender and receiver against constellationdaq 1.0.2 and raw pyzmq.

Usage::

    python benchmarks/bench_cdtp.py [--quick] [--rounds N] [--sizes 1KiB,64KiB,1MiB]
        [--seconds S]

Each case is one run, BOR, N data records, EOR, from a sender process to a receiver
process over ZeroMQ on loopback (the sender binds a PUSH socket, the receiver connects a
PULL socket, as Constellation does). The receiver times the run from the BOR's arrival to
the EOR's arrival and counts the records and bytes it got; a run that lost records is
reported as an error. Implementations, all in the same round:

* **daqwire**: ``CdtpTransmitter(protocol=2)`` (default batching: 128 KiB or 0.5 s per
  message) into ``DataReceiver(protocol=2)`` (blocks are views of the ZeroMQ frames);
* **constellationdaq**: 1.0.2's ``DataTransmitter`` (same defaults) into its
  ``DataReceiver`` (its pull thread and callbacks);
* **raw pyzmq**: one PUSH ``send(copy=False)`` per payload into ``recv(copy=False)`` on
  PULL, with a start and an end marker: the ceiling for moving the same bytes, with no
  protocol at all.

Payload per record: ``--sizes`` (default 1 KiB, 64 KiB, 1 MiB) of random bytes. The
record count is chosen so each run lasts about ``--seconds``. Reported per size: records/s
and MB/s (10^6 payload bytes) as medians over rounds, and the ratios daqwire /
constellationdaq and daqwire / raw pyzmq as paired medians (the median over rounds of the
ratio within a round; the order of the implementations rotates between rounds). Targets:
>= 1.0x constellationdaq at every size, >= 1.5x at 1 KiB, >= 0.8x raw pyzmq at 1 MiB.
Targets are informational: the script exits 0 whether they are met or not. ``--quick``
(CI smoke test) runs one short round.
"""

from __future__ import annotations

import argparse
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

SIZES = {"1KiB": 1024, "64KiB": 64 * 1024, "1MiB": 1024 * 1024}
IMPLS = ("daqwire", "constellationdaq", "raw pyzmq")
#: rough records/s of the slowest implementation, to size a run of ``--seconds``
RATE_GUESS = {1024: 40_000, 64 * 1024: 8_000, 1024 * 1024: 700}
SENDER = "BenchSender.bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- senders (child processes) --------------------------------------------------------------


def _payload(size: int) -> bytes:
    return os.urandom(size)


def _send_daqwire(port: int, count: int, size: int) -> None:
    from daqwire.constellation.transmitter import CdtpTransmitter

    payload = _payload(size)
    tx = CdtpTransmitter(SENDER, protocol=2, port=port, host="127.0.0.1", bor_timeout_s=60)
    try:
        tx.send_bor({}, {"bench": True})
        for _ in range(count):
            tx.send_data(payload)
        tx.send_eor({}, tx.run_metadata())
    finally:
        tx.close()


def _send_constellationdaq(port: int, count: int, size: int) -> None:
    import zmq
    from constellation.core.cdtp import DataTransmitter
    from constellation.core.logging import ConstellationLogger

    payload = _payload(size)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.bind(f"tcp://127.0.0.1:{port}")
    log = ConstellationLogger("bench.constellationdaq")
    dtm = DataTransmitter(SENDER, sock, log, lambda reason: log.error("failure: %s", reason))
    dtm.bor_timeout = 60
    dtm.data_timeout = 60
    dtm.eor_timeout = 60
    try:
        dtm.send_bor({}, {"bench": True})
        dtm.start_sending()
        for _ in range(count):
            while not dtm.can_send_record():
                time.sleep(0.0005)
            record = dtm.new_data_record()
            record.add_block(payload)
            dtm.send_data_record(record)
        dtm.stop_sending()
        dtm.check_exception()
        dtm.send_eor({}, {"data_records": dtm.sequence_number})
    finally:
        sock.close(linger=-1)
        ctx.term()


def _send_raw(port: int, count: int, size: int) -> None:
    import zmq

    payload = _payload(size)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.bind(f"tcp://127.0.0.1:{port}")
    try:
        sock.send(b"BOR")
        copy = size < 64 * 1024
        for _ in range(count):
            sock.send(payload, copy=copy)
        sock.send(b"EOR")
    finally:
        sock.close(linger=-1)
        ctx.term()


# --- receivers (child processes) ------------------------------------------------------------


def _recv_daqwire(port: int, count: int) -> tuple[int, int, float]:
    from daqwire.constellation.receiver import DataReceived, DataReceiver, RunEnded, RunStarted

    records = nbytes = 0
    t0 = 0.0
    with DataReceiver(f"tcp://127.0.0.1:{port}", protocol=2) as rx:
        while True:
            ev = rx.recv(timeout_s=60)
            if ev is None:
                raise RuntimeError(
                    f"daqwire receiver: no EOR within 60 s ({records} records, {rx.stats})"
                )
            if isinstance(ev, DataReceived):
                records += 1
                for b in ev.blocks:
                    nbytes += b.nbytes
            elif isinstance(ev, RunStarted):
                t0 = time.perf_counter()
            elif isinstance(ev, RunEnded):
                return records, nbytes, time.perf_counter() - t0
            else:
                raise RuntimeError(f"daqwire receiver: {ev}")


def _recv_constellationdaq(port: int, count: int) -> tuple[int, int, float]:
    import threading
    import uuid

    import zmq
    from constellation.core.cdtp import DataReceiver
    from constellation.core.logging import ConstellationLogger

    done = threading.Event()
    state = {"records": 0, "bytes": 0, "t0": 0.0, "t1": 0.0}

    def on_bor(sender: str, tags: Any, config: Any) -> None:
        state["t0"] = time.perf_counter()

    def on_data(sender: str, record: Any) -> None:
        state["records"] += 1
        state["bytes"] += record.count_payload_bytes()

    def on_eor(sender: str, tags: Any, meta: Any) -> None:
        state["t1"] = time.perf_counter()
        done.set()

    ctx = zmq.Context()
    rx = DataReceiver(
        ctx, ConstellationLogger("bench.constellationdaq.rx"), on_bor, on_data, on_eor, None
    )
    rx.start_receiving()
    rx._add_socket(uuid.uuid4(), "127.0.0.1", port)
    try:
        if not done.wait(120):
            raise RuntimeError("constellationdaq receiver: no EOR within 60 s")
        rx.check_exception()
    finally:
        rx.stop_receiving()
        ctx.term()
    return int(state["records"]), int(state["bytes"]), state["t1"] - state["t0"]


def _recv_raw(port: int, count: int) -> tuple[int, int, float]:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.connect(f"tcp://127.0.0.1:{port}")
    records = nbytes = 0
    try:
        first = sock.recv()
        assert first == b"BOR"
        t0 = time.perf_counter()
        while True:
            frame = sock.recv(copy=False)
            n = len(frame.buffer)
            if n == 3 and frame.bytes == b"EOR":
                return records, nbytes, time.perf_counter() - t0
            records += 1
            nbytes += n
    finally:
        sock.close(linger=0)
        ctx.term()


SEND = {
    "daqwire": _send_daqwire,
    "constellationdaq": _send_constellationdaq,
    "raw pyzmq": _send_raw,
}
RECV = {
    "daqwire": _recv_daqwire,
    "constellationdaq": _recv_constellationdaq,
    "raw pyzmq": _recv_raw,
}


def _sender_main(impl: str, port: int, count: int, size: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    SEND[impl](port, count, size)


def _receiver_main(impl: str, port: int, count: int, out: Any) -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        out.put(("ok", RECV[impl](port, count)))
    except BaseException as exc:  # reported to the parent, which prints it
        out.put(("error", f"{type(exc).__name__}: {exc}"))


def run_case(impl: str, size: int, count: int) -> tuple[float, float]:
    """Records/s and MB/s of one run of ``count`` records of ``size`` bytes."""
    ctx = mp.get_context("spawn")
    port = _free_port()
    out = ctx.Queue()
    sender = ctx.Process(target=_sender_main, args=(impl, port, count, size), daemon=True)
    receiver = ctx.Process(target=_receiver_main, args=(impl, port, count, out), daemon=True)
    sender.start()
    receiver.start()
    try:
        status, value = out.get(timeout=300)
    finally:
        sender.join(60)
        receiver.join(60)
        for p in (sender, receiver):
            if p.is_alive():
                p.kill()
                p.join()
    if status != "ok":
        raise RuntimeError(f"{impl}, {size} B: {value}")
    records, nbytes, seconds = value
    if records != count or nbytes != count * size:
        raise RuntimeError(f"{impl}, {size} B: got {records} records / {nbytes} B of {count}")
    return records / seconds, nbytes / seconds / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round (CI smoke test)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per case (default 3)")
    parser.add_argument("--seconds", type=float, default=1.5, help="target length of a run")
    parser.add_argument(
        "--sizes", default=",".join(SIZES), help="payload sizes, from " + ", ".join(SIZES)
    )
    args = parser.parse_args(argv)
    sizes = [SIZES[s.strip()] for s in args.sizes.split(",") if s.strip()]
    rounds = 1 if args.quick else args.rounds
    seconds = 0.15 if args.quick else args.seconds
    print("command: " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]))
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {rounds} round(s)")
    for size in sizes:
        count = max(20, int(RATE_GUESS[size] * seconds))
        label = next(k for k, v in SIZES.items() if v == size)
        rates: dict[str, list[float]] = {i: [] for i in IMPLS}
        mbs: dict[str, list[float]] = {i: [] for i in IMPLS}
        for r in range(rounds):
            order = IMPLS[r % 3 :] + IMPLS[: r % 3]
            for impl in order:
                rate, mb = run_case(impl, size, count)
                rates[impl].append(rate)
                mbs[impl].append(mb)
        print(f"\n{label} payloads, {count} records per run:")
        for impl in IMPLS:
            print(
                f"  {impl:<17} {statistics.median(rates[impl]):>10.0f} records/s "
                f"{statistics.median(mbs[impl]):>8.1f} MB/s"
            )
        vs_cdaq = statistics.median(
            a / b for a, b in zip(rates["daqwire"], rates["constellationdaq"], strict=True)
        )
        vs_raw = statistics.median(
            a / b for a, b in zip(rates["daqwire"], rates["raw pyzmq"], strict=True)
        )
        target = 1.5 if size == 1024 else 1.0
        print(f"  daqwire / constellationdaq: {vs_cdaq:.2f} (target >= {target})")
        raw_target = " (target >= 0.8)" if size == 1024 * 1024 else ""
        print(f"  daqwire / raw pyzmq: {vs_raw:.2f}{raw_target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
