"""``daqwire cdtp``: send a test run over CDTP1/CDTP2, receive runs and write them to files."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any, TextIO

import zmq

from daqwire.errors import DaqwireError
from daqwire.zmq_context import TERM_GRACE_S, term_bounded

__all__ = ["DESCRIPTION", "EPILOG", "add_arguments", "add_parser", "parse_endpoint", "parse_size"]

DESCRIPTION = """\
Constellation data transmission (CDTP). A sender binds a ZeroMQ PUSH port and sends one
run: a begin-of-run (BOR) with its configuration, data records, and an end-of-run (EOR)
with run metadata. A receiver connects a PULL socket to one or more senders, checks the
order and the sequence numbers of every sender's run, and reports each run when it ends.
CDTP2 (--proto 2, the default) is Constellation 1.0's wire format; CDTP1 (--proto 1) is
the older Python DataSender's. Both ends must use the same one.
"""

EPILOG = """\
Try it on one machine: the receiver in one terminal, the sender in another.

examples:
  daqwire cdtp receive tcp://127.0.0.1:23999 --runs 1
  daqwire cdtp send --port 23999 --size 64KiB --count 1000
and with files:
  daqwire cdtp receive 127.0.0.1:23999 --runs 1 --out runs --format hdf5

Run `daqwire cdtp COMMAND --help` for the options of a command.
"""

SEND_DESCRIPTION = """\
Bind a ZeroMQ PUSH socket and send one run: a BOR (tags {run_id}, configuration
{size_bytes, count, rate_hz}), --count data records of --size random bytes each (tag
dtype=uint8), and an EOR. The BOR waits up to --timeout-s for a receiver to connect; a
live progress line is shown on a terminal. CDTP2 packs records into messages of up to
--batch-bytes, as Constellation does. Exit status 1 if the run could not be sent, 2 if
the port could not be bound, 130 on Ctrl-C (no EOR is sent then).
"""

SEND_EPILOG = """\
examples:
  daqwire cdtp send --port 23999
  daqwire cdtp send --port 23999 --size 64KiB --count 1000
  daqwire cdtp send --port 23999 --proto 1 --size 1000 --count 50 --rate-hz 10
  daqwire cdtp send --port 23999 --run-id run_0042 --name RandomDataSender.sat1
"""

RECEIVE_DESCRIPTION = """\
Connect a ZeroMQ PULL socket to one or more senders (or bind with --bind and let senders
connect) and print one line per run when its EOR arrives: records, bytes, missed sequence
numbers and the run condition (INCOMPLETE is added when records were missed). Bad
messages are reported and skipped. Ends after --runs runs, after --timeout-s without
messages, or on Ctrl-C; then it waits up to --eor-timeout-s for the EOR of open runs and
ends them as ABORTED. Exit status 1 when data was lost, an EOR was missing, or fewer than
--runs runs ended.
"""

RECEIVE_EPILOG = """\
examples:
  daqwire cdtp receive tcp://127.0.0.1:23999 --runs 1
  daqwire cdtp receive 127.0.0.1:23999 --runs 1 --out runs --format hdf5
  daqwire cdtp receive host1:23999 host2:23999 --json --timeout-s 60
  daqwire cdtp receive tcp://*:24000 --bind --allow RandomDataSender.sat1
  daqwire cdtp receive 127.0.0.1:23999 --proto 1 --out runs --format npy
"""

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_UNITS = {
    "": 1,
    "b": 1,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
}


def parse_size(text: str) -> int:
    """Bytes from ``"1000"``, ``"64KiB"``, ``"1MiB"``, ``"1.5MB"`` (KiB = 1024, kB = 1000)."""
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise argparse.ArgumentTypeError(
            f"expected a size like 1000, 1KiB, 64KiB, 1MiB or 1MB, got {text!r}"
        )
    value = float(match.group(1)) * _UNITS[unit]
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of bytes")
    return int(value)


def parse_endpoint(text: str) -> str:
    """A ZeroMQ endpoint: ``tcp://HOST:PORT`` as given, ``HOST:PORT`` becomes ``tcp://HOST:PORT``."""
    if "://" in text:
        return text
    host, sep, port = text.rpartition(":")
    if not sep or not host or not (port.isdigit() or port == "*"):
        raise argparse.ArgumentTypeError(f"expected tcp://HOST:PORT or HOST:PORT, got {text!r}")
    return f"tcp://{text}"


def _human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(nbytes) < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} GiB"  # pragma: no cover


class _Progress:
    """A one-line status on a TTY, refreshed at most once a second."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.enabled = out.isatty()
        self.last = 0.0
        self.width = 0

    def show(self, line: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 1.0 and not force):
            return
        self.last = now
        self.width = max(self.width, len(line))
        self.out.write("\r" + line.ljust(self.width))
        self.out.flush()

    def clear(self) -> None:
        if self.enabled and self.width:
            self.out.write("\r" + " " * self.width + "\r")
            self.out.flush()


def _rate(nbytes: int, records: int, seconds: float) -> str:
    span = max(seconds, 1e-9)
    return f"{records / span:.0f} records/s, {nbytes / span / 1e6:.1f} MB/s"


# -- send ------------------------------------------------------------------------------


def run_send(args: argparse.Namespace) -> int:
    """Send one run: BOR, --count data records of --size bytes, EOR."""
    import numpy as np

    size: int = args.size
    payload = np.random.default_rng(args.seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    config = {"size_bytes": size, "count": args.count, "rate_hz": args.rate_hz or 0.0}
    # an own context, terminated below: zero-copy frames still queued in ZeroMQ are delivered
    # (or dropped) while the interpreter is alive, never during its shutdown
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        return _send_run(args, ctx, payload, config)
    finally:
        # the transmitter lingers up to its EOR timeout; libzmq gets that and a grace period
        term_bounded(ctx, (args.timeout_s or 0.0) + TERM_GRACE_S, owner="daqwire cdtp send")


def _send_run(
    args: argparse.Namespace, ctx: zmq.Context[Any], payload: bytes, config: dict[str, Any]
) -> int:
    from daqwire.constellation.transmitter import CdtpTransmitter

    size: int = args.size
    err = sys.stderr
    try:
        tx = CdtpTransmitter(
            args.name,
            context=ctx,
            protocol=args.proto,
            port=args.port,
            host=args.host,
            bor_timeout_s=args.timeout_s,
            data_timeout_s=args.timeout_s,
            eor_timeout_s=args.timeout_s,
            payload_threshold_bytes=args.batch_bytes,
        )
    except (DaqwireError, ValueError, OSError) as exc:
        print(f"daqwire cdtp send: {exc}", file=err)
        return 2
    progress = _Progress(err)
    sent = 0
    with tx:
        print(
            f"CDTP{args.proto} sender {args.name!r} bound to port {tx.port}; "
            f"waiting up to {args.timeout_s:g} s for a receiver "
            f"(daqwire cdtp receive {tx.endpoint} --proto {args.proto})",
            file=err,
            flush=True,
        )
        try:
            tx.send_bor({"run_id": args.run_id}, config, run_id=args.run_id)
            start = time.monotonic()
            for i in range(args.count):
                if args.rate_hz:
                    delay = start + i / args.rate_hz - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                tx.send_data(payload, {"dtype": "uint8"})
                sent += 1
                progress.show(
                    f"sent {sent}/{args.count} records "
                    f"({_rate(sent * size, sent, time.monotonic() - start)})"
                )
            tx.send_eor({"records_sent": sent})
            elapsed = time.monotonic() - start
        except KeyboardInterrupt:
            progress.clear()
            print(f"interrupted after {sent} records; no EOR sent", file=err)
            tx.discard("interrupted")
            return 130
        except (DaqwireError, TimeoutError, OSError) as exc:
            progress.clear()
            print(f"daqwire cdtp send: {exc}", file=err)
            tx.discard("send failed")
            return 1
        finally:
            progress.clear()
    print(
        f"sent run {args.run_id!r} as {args.name}: {sent} records, {sent * size} bytes "
        f"({_human(sent * size)}) in {elapsed:.3f} s ({_rate(sent * size, sent, elapsed)})",
        flush=True,
    )
    return 0


# -- receive ---------------------------------------------------------------------------


def _summary_text(record: dict[str, Any]) -> str:
    run = f"run {record['run_index']}"
    if record["run_id"]:
        run += f" ({record['run_id']})"
    text = (
        f"{record['sender']} {run}: {record['records']} records, {record['bytes']} bytes, "
        f"missed {record['missed']}, condition {record['condition']}"
    )
    if record["out_of_order"]:
        text += f", out of order {record['out_of_order']}"
    if record["eor_missing"]:
        text += ", EOR missing (substitute end)"
    if record["duration_s"] > 0 and not record["eor_missing"]:
        span = record["duration_s"]
        text += f", {span:.3f} s, {record['bytes'] / span / 1e6:.1f} MB/s"
    if "file" in record:
        text += f" -> {record['file']}"
    return text


def run_receive(args: argparse.Namespace) -> int:
    """Receive runs and print one summary per run; exit 1 if data was lost or runs missing."""
    from daqwire.constellation.files import RunFileWriter, summary_record
    from daqwire.constellation.receiver import (
        DataReceived,
        DataReceiver,
        MessageRejected,
        RunCondition,
        RunEnded,
        RunStarted,
    )

    err = sys.stderr
    writer = None
    try:
        if args.out is not None:
            writer = RunFileWriter(args.out, format=args.format, protocol=args.proto)
        rx = DataReceiver(
            args.endpoints,
            protocol=args.proto,
            bind=args.bind,
            allow_senders=args.allow,
            eor_timeout_s=args.eor_timeout_s,
            max_message_bytes=args.max_message_bytes,
        )
    except (ImportError, ValueError, OSError, DaqwireError) as exc:
        print(f"daqwire cdtp receive: {exc}", file=err)
        return 2
    progress = _Progress(err)
    ended: list[dict[str, Any]] = []
    lossy = False
    records = nbytes = 0
    last_activity = time.monotonic()
    print(
        f"CDTP{args.proto} receiver {'bound to' if args.bind else 'connected to'} "
        f"{', '.join(rx.endpoints)}",
        file=err,
        flush=True,
    )
    try:
        with rx:
            interrupted = False
            while True:
                try:
                    event = rx.recv(timeout_s=0.25)
                except KeyboardInterrupt:
                    if interrupted or rx.stopping:
                        raise
                    interrupted = True
                    progress.clear()
                    print(
                        f"interrupted; waiting up to {args.eor_timeout_s:g} s for the EOR of "
                        f"open runs {list(rx.open_runs)} (Ctrl-C again to quit)",
                        file=err,
                        flush=True,
                    )
                    rx.stop()
                    continue
                now = time.monotonic()
                if event is None:
                    if rx.finished:
                        break
                    idle = now - last_activity
                    if args.timeout_s is not None and idle >= args.timeout_s and not rx.stopping:
                        progress.clear()
                        print(
                            f"nothing received for {args.timeout_s:g} s; stopping",
                            file=err,
                            flush=True,
                        )
                        rx.stop()
                    progress.show(f"{records} records, {_human(nbytes)}; idle {idle:.0f} s")
                    continue
                last_activity = now
                path = writer.handle(event) if writer is not None else None
                if isinstance(event, DataReceived):
                    records += 1
                    nbytes += event.nbytes
                    progress.show(
                        f"{records} records, {_human(nbytes)}; open runs {len(rx.open_runs)}"
                    )
                elif isinstance(event, RunStarted):
                    progress.clear()
                    print(
                        f"{event.sender} run {event.run_index} started, tags "
                        f"{json.dumps(event.tags, default=str)}",
                        file=err,
                        flush=True,
                    )
                elif isinstance(event, MessageRejected):
                    progress.clear()
                    print(f"rejected a message: {event.error}", file=err, flush=True)
                elif isinstance(event, RunEnded):
                    progress.clear()
                    record = summary_record(event.summary)
                    if path is not None:
                        record["file"] = str(path)
                    s = event.summary
                    if s.eor_missing or s.missed or RunCondition.INCOMPLETE in s.condition:
                        lossy = True
                    ended.append(record)
                    print(json.dumps(record) if args.json else _summary_text(record), flush=True)
                    if args.runs is not None and len(ended) >= args.runs:
                        break
    except KeyboardInterrupt:
        progress.clear()
        print("interrupted", file=err)
    finally:
        progress.clear()
        if writer is not None:
            writer.close()
    stats = rx.stats
    print(
        f"received {stats.messages} messages, {stats.records} records, {stats.bytes} bytes in "
        f"{len(ended)} runs; decode errors {stats.decode_errors}, order errors "
        f"{stats.state_errors}, dropped {stats.dropped}",
        file=err,
        flush=True,
    )
    if not ended or lossy or (args.runs is not None and len(ended) < args.runs):
        return 1
    return 0


# -- parser ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``send`` and ``receive`` subcommands of ``daqwire cdtp``."""
    sub = parser.add_subparsers(dest="cdtp_command", metavar="COMMAND", required=True)

    send = sub.add_parser(
        "send",
        help="bind a port and send one run (BOR, data records, EOR)",
        description=SEND_DESCRIPTION,
        epilog=SEND_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    send.add_argument(
        "--proto", type=int, choices=(1, 2), default=2, help="CDTP version (default 2)"
    )
    send.add_argument(
        "--port", type=int, default=0, metavar="N", help="TCP port to bind (default 0: any)"
    )
    send.add_argument("--host", default="*", help="interface to bind (default *: all)")
    send.add_argument(
        "--size",
        type=parse_size,
        default=parse_size("1KiB"),
        metavar="BYTES",
        help="bytes per record: 1000, 1KiB, 64KiB, 1MiB, 1MB ... (default 1KiB)",
    )
    send.add_argument(
        "--count", type=int, default=100, metavar="N", help="data records (default 100)"
    )
    send.add_argument(
        "--rate-hz",
        type=float,
        default=None,
        metavar="HZ",
        help="records per second (default: flat out)",
    )
    send.add_argument(
        "--name",
        default="DaqwireSender.cli",
        metavar="CLASS.NAME",
        help="canonical sender name <Class>.<name> (default DaqwireSender.cli)",
    )
    send.add_argument(
        "--run-id", default="run_0001", metavar="ID", help="run identifier (default run_0001)"
    )
    send.add_argument(
        "--timeout-s",
        type=float,
        default=30.0,
        metavar="S",
        help="wait this long for a receiver to take the BOR, data and EOR (default 30)",
    )
    send.add_argument(
        "--batch-bytes",
        type=parse_size,
        default=parse_size("128KiB"),
        metavar="BYTES",
        help="CDTP2: pack records into one message up to this many bytes (0: one per "
        "message; default 128KiB, as Constellation)",
    )
    send.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed of the random payload (default 0)"
    )
    send.set_defaults(func=run_send)

    recv = sub.add_parser(
        "receive",
        help="receive runs; print a summary per run; optionally write files",
        description=RECEIVE_DESCRIPTION,
        epilog=RECEIVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    recv.add_argument(
        "endpoints",
        nargs="+",
        type=parse_endpoint,
        metavar="ENDPOINT",
        help="tcp://HOST:PORT (or HOST:PORT) of a sender",
    )
    recv.add_argument(
        "--proto", type=int, choices=(1, 2), default=2, help="CDTP version (default 2)"
    )
    recv.add_argument("--runs", type=int, default=None, metavar="N", help="stop after N runs ended")
    recv.add_argument(
        "--timeout-s",
        type=float,
        default=None,
        metavar="S",
        help="stop when nothing arrived for this long (default: wait for Ctrl-C or --runs)",
    )
    recv.add_argument(
        "--eor-timeout-s",
        type=float,
        default=10.0,
        metavar="S",
        help="when stopping, wait this long for missing EORs (default 10)",
    )
    recv.add_argument("--out", metavar="DIR", help="write every run into DIR")
    recv.add_argument(
        "--format",
        choices=("hdf5", "npy"),
        default="hdf5",
        help="hdf5: one .h5 file per run (needs h5py: pip install 'daqwire[hdf5]'); "
        "npy: one folder per run with a .npy file per block (default hdf5)",
    )
    recv.add_argument("--json", action="store_true", help="print run summaries as JSON lines")
    recv.add_argument("--bind", action="store_true", help="bind the endpoints instead")
    recv.add_argument(
        "--allow",
        action="append",
        metavar="SENDER",
        help="accept only this canonical sender name, e.g. RandomDataSender.sat1 (repeatable)",
    )
    recv.add_argument(
        "--max-message-bytes",
        type=parse_size,
        default=None,
        metavar="BYTES",
        help="disconnect a sender whose frame is larger than this (default: no limit)",
    )
    recv.set_defaults(func=run_receive)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``cdtp`` command to the ``daqwire`` subparsers; returns its parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "cdtp",
        help="Constellation CDTP: send a test run, receive runs (to HDF5/.npy)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser
