"""``daqwire lsst``: mock TMA and M2 controllers, the MTMount telemetry client, M2 commands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

__all__ = ["DESCRIPTION", "EPILOG", "add_arguments", "add_parser"]

DESCRIPTION = """\
Rubin Observatory (LSST) TCP/JSON links: one JSON object per CRLF-terminated line over
TCP, as ts_tcpip, ts_m2com and ts_mtmount speak it. The TMA (telescope mount) streams
telemetry for 26 topics on port 50035; the M2 cell controller takes commands on port 50000
(answered ack, then success or fail) and streams telemetry on port 50001. The mocks serve
the real message shapes, so the clients can be tried without a telescope.
"""

EPILOG = """\
Try it on one machine: the mock in one terminal, the client in another.

examples:
  daqwire lsst mock-tma --port 50035
  daqwire lsst telemetry --host 127.0.0.1 --port 50035 --seconds 5
and for M2:
  daqwire lsst mock-m2 --command-port 50010 --telemetry-port 50011
  daqwire lsst m2 127.0.0.1 --command-port 50010 --telemetry-port 50011 \\
      --command power --details '{"powerType": 2, "status": true}'

Run `daqwire lsst COMMAND --help` for the options of a command.
"""

MOCK_TMA_DESCRIPTION = """\
Serve a mock TMA telemetry port: every topic of the mtmount_telemetry spec (see `daqwire
specs show mtmount_telemetry`) with its real field names, numbered array keys and TAI
timestamps, at --rate-hz per topic, to one client at a time, until Ctrl-C. Exit status 2
if the port cannot be bound.
"""

MOCK_TMA_EPILOG = """\
examples:
  daqwire lsst mock-tma
  daqwire lsst mock-tma --port 0 --rate-hz 50
  daqwire lsst mock-tma --host 0.0.0.0 --port 50035
"""

MOCK_M2_DESCRIPTION = """\
Serve a mock M2 cell controller until Ctrl-C. On the command port it answers a known
command ack then success (or fail for bad details) and an unknown one noack, and sends
the welcome burst of events on every connect; on the telemetry port it streams telemetry
(20 Hz by default). Exit status 2 if a port cannot be bound.
"""

MOCK_M2_EPILOG = """\
examples:
  daqwire lsst mock-m2
  daqwire lsst mock-m2 --command-port 50010 --telemetry-port 50011
  daqwire lsst mock-m2 --command-port 0 --telemetry-port 0 --telemetry-hz 5
"""

TELEMETRY_DESCRIPTION = """\
Connect the MTMount TelemetryClient to a TMA telemetry port and show the SAL topics it
publishes (tel_<topic>, evt_clockOffset, evt_telemetryConnected,
tel_telemetryClientHeartbeat): each new topic once, a live status line on a terminal,
and a table of samples and rates at the end. Malformed lines are counted and skipped.
Ends after --seconds, on Ctrl-C, or when the client gives up (no telemetry for 1 s, or
the connection is lost). Exit status 2 if it could not connect, 1 if it gave up or
published nothing.
"""

TELEMETRY_EPILOG = """\
examples:
  daqwire lsst telemetry --host 127.0.0.1 --port 50035 --seconds 5
  daqwire lsst telemetry --host tma.example.org
  daqwire lsst telemetry --host 127.0.0.1 --zmq-pub tcp://*:5600
"""

M2_DESCRIPTION = """\
Connect to an M2 cell controller's command and telemetry ports, send one command
cmd_<NAME> with the --details JSON object, and wait for its final status, matched by
sequence_id (ack is intermediate; a status for another command is logged and ignored).
Exit status 0 on success, 1 on fail, noack or timeout, 2 if it could not connect.
"""

M2_EPILOG = """\
examples:
  daqwire lsst m2 127.0.0.1 --command power --details '{"powerType": 2, "status": true}'
  daqwire lsst m2 127.0.0.1 --command-port 50010 --telemetry-port 50011 --command clearErrors
  daqwire lsst m2 m2-controller.example.org --command power --timeout-s 30 \\
      --details '{"powerType": 1, "status": false}'
"""


class _Status:
    """One live status line on a terminal; nothing otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._shown = False

    def show(self, line: str) -> None:
        if self.tty:
            self.out.write("\r\x1b[2K" + line)
            self.out.flush()
            self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.out.write("\r\x1b[2K")
            self.out.flush()
            self._shown = False


async def _serve_until_signal(serve: Callable[[], Awaitable[None]]) -> None:
    """Run ``serve()`` until it returns or SIGINT/SIGTERM arrives."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(serve())
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def run_mock_tma_command(args: argparse.Namespace) -> int:
    """``daqwire lsst mock-tma``."""
    from daqwire.lsst.mtmount.mock_tma import run_mock_tma

    def ready(mock: Any) -> None:
        print(
            f"mock TMA: streaming 26 telemetry topics at {args.rate_hz:g} Hz on "
            f"{args.host}:{mock.port}; Ctrl-C stops",
            flush=True,
        )

    async def serve() -> None:
        await run_mock_tma(args.host, args.port, rate_hz=args.rate_hz, ready=ready)

    try:
        asyncio.run(_serve_until_signal(serve))
    except OSError as exc:
        print(f"daqwire lsst mock-tma: {exc}", file=sys.stderr)
        return 2
    print("mock TMA: stopped", flush=True)
    return 0


def run_mock_m2_command(args: argparse.Namespace) -> int:
    """``daqwire lsst mock-m2``."""
    from daqwire.lsst.m2.mock import run_mock_m2

    def ready(mock: Any) -> None:
        print(
            f"mock M2: commands on {args.host}:{mock.command_port}, telemetry on "
            f"{args.host}:{mock.telemetry_port} at {args.telemetry_hz:g} Hz; Ctrl-C stops",
            flush=True,
        )

    async def serve() -> None:
        await run_mock_m2(
            args.host,
            args.command_port,
            args.telemetry_port,
            telemetry_interval_s=1.0 / args.telemetry_hz,
            ready=ready,
        )

    try:
        asyncio.run(_serve_until_signal(serve))
    except OSError as exc:
        print(f"daqwire lsst mock-m2: {exc}", file=sys.stderr)
        return 2
    print("mock M2: stopped", flush=True)
    return 0


def run_telemetry_command(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """``daqwire lsst telemetry``."""
    return asyncio.run(_telemetry(args, out))


async def _telemetry(args: argparse.Namespace, out: TextIO) -> int:
    from daqwire.lsst.mtmount.publisher import InProcessPublisher, ZmqPublisher
    from daqwire.lsst.mtmount.telemetry_client import TelemetryClient

    local = InProcessPublisher(queue_size=0)
    zmq_pub = ZmqPublisher(args.zmq_pub) if args.zmq_pub else None
    status = _Status(out)
    seen: dict[str, int] = {}

    async def forward(topic: str, data: dict[str, Any]) -> None:
        if topic not in seen:
            seen[topic] = len(data)
            status.clear()
            print(f"  new topic {topic} ({len(data)} fields)", file=out, flush=True)
        if zmq_pub is not None:
            await zmq_pub.publish(topic, data)

    local.subscribe(forward)
    client = TelemetryClient(
        args.host, args.port, args.timeout_s, publisher=local, line_limit=args.line_limit
    )
    started = time.monotonic()
    print(f"MTMount telemetry client: host={args.host}; port={args.port}", file=out, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        await client.start_task
        while not stop.is_set() and not client.done_task.done():
            elapsed = time.monotonic() - started
            if args.seconds is not None and elapsed >= args.seconds:
                break
            stats = client.stats
            status.show(
                f"{len(seen)} topics, {stats.frames} samples, "
                f"{stats.frames / max(elapsed, 1e-9):.0f}/s, malformed {stats.malformed}"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
        if client.start_error is not None:
            status.clear()
            print(f"telemetry client failed: {client.start_error!r}", file=sys.stderr)
            code = 2
        elif client.done_task.done() and args.seconds is not None and not stop.is_set():
            elapsed = time.monotonic() - started
            if elapsed < args.seconds:
                status.clear()
                print("telemetry client gave up (see the log)", file=sys.stderr)
                code = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await client.close()
        if zmq_pub is not None:
            await zmq_pub.close()
        status.clear()
    elapsed = max(time.monotonic() - started, 1e-9)
    stats = client.stats
    print(
        f"{stats.frames} samples in {elapsed:.1f} s; malformed lines skipped {stats.malformed}, "
        f"unknown topics {stats.unknown}, clock offsets {stats.clock_offsets}, "
        f"heartbeats {stats.heartbeats}",
        file=out,
    )
    print(f"{'topic':<36}{'samples':>9}{'rate':>10}", file=out)
    for topic, count in sorted(local.counts.items()):
        print(f"{topic:<36}{count:>9}{count / elapsed:>8.1f}/s", file=out)
    if code == 0 and not local.counts:
        code = 1
    return code


def run_m2_command(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """``daqwire lsst m2``."""
    try:
        details = json.loads(args.details) if args.details else None
    except json.JSONDecodeError as exc:
        print(f"daqwire lsst m2: --details is not JSON: {exc}", file=sys.stderr)
        return 2
    if details is not None and not isinstance(details, dict):
        print("daqwire lsst m2: --details must be a JSON object", file=sys.stderr)
        return 2
    return asyncio.run(_m2(args, details, out))


async def _m2(args: argparse.Namespace, details: dict[str, Any] | None, out: TextIO) -> int:
    from daqwire.lsst.m2.controller import Controller

    events: list[str] = []
    telemetry = 0

    async def on_event(message: Any = None) -> None:
        if isinstance(message, dict):
            events.append(str(message.get("id")))

    async def on_telemetry(message: Any = None) -> None:
        nonlocal telemetry
        telemetry += 1

    async def on_lost() -> None:
        return None

    controller = Controller()
    controller.set_callback_process_event(on_event)
    controller.set_callback_process_telemetry(on_telemetry)
    controller.set_callback_process_lost_connection(on_lost)
    controller.start(args.host, args.command_port, args.telemetry_port, timeout=args.timeout_s)
    try:
        try:
            await controller.wait_connected(args.timeout_s)
        except TimeoutError:
            print(
                f"daqwire lsst m2: no connection to {args.host}:{args.command_port}/"
                f"{args.telemetry_port} within {args.timeout_s:g} s",
                file=sys.stderr,
            )
            return 2
        shown = json.dumps(details) if details else "{}"
        print(f"cmd_{args.m2_command} {shown} -> {args.host}:{args.command_port}", file=out)
        started = time.monotonic()
        try:
            await controller.write_command_to_server(args.m2_command, details, args.timeout_s)
        except RuntimeError as exc:
            status = getattr(exc, "status", None)
            word = status.name.lower() if status is not None else "failed"
            if isinstance(exc, TimeoutError):
                word = "timeout"
            print(f"{word}: {exc}", file=out)
            return 1
        print(f"success after {time.monotonic() - started:.3f} s", file=out)
        if events:
            print(f"events while it ran: {', '.join(sorted(set(events)))}", file=out)
        return 0
    finally:
        await controller.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The subcommands of ``daqwire lsst``."""
    sub = parser.add_subparsers(dest="lsst_command", metavar="COMMAND", required=True)

    tma = sub.add_parser(
        "mock-tma",
        help="serve all 26 TMA telemetry topics",
        description=MOCK_TMA_DESCRIPTION,
        epilog=MOCK_TMA_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tma.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    tma.add_argument(
        "--port", type=int, default=50035, metavar="N", help="TCP port (default 50035; 0: any)"
    )
    tma.add_argument(
        "--rate-hz",
        type=float,
        default=10.0,
        metavar="HZ",
        help="samples per topic per second (default 10)",
    )
    tma.set_defaults(func=run_mock_tma_command)

    m2 = sub.add_parser(
        "mock-m2",
        help="serve a mock M2 cell controller",
        description=MOCK_M2_DESCRIPTION,
        epilog=MOCK_M2_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m2.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    m2.add_argument(
        "--command-port", type=int, default=50000, metavar="N", help="default 50000; 0: any"
    )
    m2.add_argument(
        "--telemetry-port", type=int, default=50001, metavar="N", help="default 50001; 0: any"
    )
    m2.add_argument(
        "--telemetry-hz",
        type=float,
        default=20.0,
        metavar="HZ",
        help="telemetry cycles per second (default 20)",
    )
    m2.set_defaults(func=run_mock_m2_command)

    tel = sub.add_parser(
        "telemetry",
        help="run the MTMount telemetry client and show what it publishes",
        description=TELEMETRY_DESCRIPTION,
        epilog=TELEMETRY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tel.add_argument("--host", required=True, help="host of the TMA telemetry port")
    tel.add_argument(
        "--port", type=int, default=50035, metavar="N", help="TCP port (default 50035)"
    )
    tel.add_argument(
        "--seconds", type=float, default=None, metavar="S", help="stop after S seconds"
    )
    tel.add_argument(
        "--timeout-s", type=float, default=10.0, metavar="S", help="connect timeout (default 10)"
    )
    tel.add_argument(
        "--line-limit",
        type=int,
        default=65536,
        metavar="BYTES",
        help="longest line accepted (default 65536)",
    )
    tel.add_argument(
        "--zmq-pub",
        metavar="ENDPOINT",
        default=None,
        help="also publish every sample on a ZeroMQ PUB socket bound here (tcp://*:5600)",
    )
    tel.set_defaults(func=run_telemetry_command)

    cmd = sub.add_parser(
        "m2",
        help="send one command to an M2 controller and wait for its status",
        description=M2_DESCRIPTION,
        epilog=M2_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("host", metavar="HOST", help="host of the controller")
    cmd.add_argument(
        "--command",
        dest="m2_command",
        required=True,
        metavar="NAME",
        help="command name without cmd_ (power, clearErrors, ...)",
    )
    cmd.add_argument(
        "--details",
        default=None,
        metavar="OBJECT",
        help="JSON object of parameters: '{\"powerType\": 2}'",
    )
    cmd.add_argument("--command-port", type=int, default=50000, metavar="N", help="default 50000")
    cmd.add_argument("--telemetry-port", type=int, default=50001, metavar="N", help="default 50001")
    cmd.add_argument(
        "--timeout-s",
        type=float,
        default=10.0,
        metavar="S",
        help="connect and status timeout (default 10)",
    )
    cmd.set_defaults(func=run_m2_command)


def add_parser(sub: Any) -> None:
    """Add ``daqwire lsst`` to the top-level subcommands."""
    parser = sub.add_parser(
        "lsst",
        help="LSST TCP/JSON: mock TMA and M2, telemetry client, M2 commands",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
