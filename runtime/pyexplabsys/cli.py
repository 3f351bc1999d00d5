"""``daqwire pyexplabsys``: serve pull and push sockets, query and push to them."""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from typing import Any

from daqwire.errors import DaqwireError
from daqwire.generated.pyexplabsys import (
    DATA_PULL_PORT,
    DATE_PULL_PORT,
    PUSH_PORT,
    OldData,
    PullRequests,
    Request,
)

__all__ = ["DESCRIPTION", "EPILOG", "add_arguments", "parse_host_port"]

DESCRIPTION = """\
PyExpLabSys UDP data sockets. A pull socket serves the latest (x, y) point of each
codename; a push socket takes data pushed to it. daqwire's sockets speak the wire of
PyExpLabSys.common.sockets, answer every request, and accept UTF-8.
"""

EPILOG = """\
Try it on one machine: a server in one terminal, the client commands in another.

examples:
  daqwire pyexplabsys serve-pull --codenames temperature,pressure --simulate
  daqwire pyexplabsys query localhost raw
  daqwire pyexplabsys query localhost:9000 temperature#json
  daqwire pyexplabsys serve-push --action callback_direct --return-format json
  daqwire pyexplabsys push localhost --json '{"setpoint": 21.5}'

Run `daqwire pyexplabsys COMMAND --help` for the options of a command.
"""

SERVE_PULL_DESCRIPTION = """\
Serve a pull socket (DateDataPullSocket, or DataPullSocket with --type data) that answers
the pull commands (name, codenames_raw, raw, json, CODENAME#raw, ...) with the latest
point of each codename, until Ctrl-C or --duration-s. Without --simulate every codename
keeps its default point (0.0, 0.0); with it, the values change slowly.
"""

SERVE_PULL_EPILOG = """\
examples:
  daqwire pyexplabsys serve-pull --codenames temperature,pressure --simulate
  daqwire pyexplabsys serve-pull --codenames a,b --type data --port 9010
  daqwire pyexplabsys serve-pull --codenames a,b --timeouts 5,none --simulate
  daqwire pyexplabsys serve-pull --codenames t --port 0 --duration-s 30
"""

SERVE_PUSH_DESCRIPTION = """\
Serve a push socket (DataPushSocket) until Ctrl-C or --duration-s, and print every push
it takes as one JSON line on stdout. --action decides what the socket does with the
data: store_last, enqueue, or call back (callback_direct answers with the callback's
value in --return-format).
"""

SERVE_PUSH_EPILOG = """\
examples:
  daqwire pyexplabsys serve-push
  daqwire pyexplabsys serve-push --action callback_direct --return-format json
  daqwire pyexplabsys serve-push --action enqueue --max-queue-size 100
  daqwire pyexplabsys serve-push --host 0.0.0.0 --allow 10.0.0.0/8 --allow 192.168.1.7
"""

QUERY_DESCRIPTION = """\
Send one pull command to a pull socket and print its typed reply as JSON, or with --wire
the reply datagram as it came. A lost reply is retried (--retries) after --timeout-s.
Exit status 1 if no reply came or the reply is an error (UNKNOWN_COMMMAND for a codename
the socket does not have), 2 if COMMAND is none of those listed below.
"""

QUERY_EPILOG = """\
examples:
  daqwire pyexplabsys query localhost name
  daqwire pyexplabsys query localhost raw
  daqwire pyexplabsys query localhost:9000 temperature#json
  daqwire pyexplabsys query localhost status
  daqwire pyexplabsys query 192.168.1.20:9010 json_wn --wire --timeout-s 2
"""

PUSH_DESCRIPTION = """\
Push data to a push socket as json_wn#... (--json) or raw_wn#... (--raw) and print its
reply: Ack, RetJson, RetRaw or RetString. Pushes are never retried, so a lost reply is
an error (exit status 1); data that is not JSON is exit status 2.
"""

PUSH_EPILOG = """\
examples:
  daqwire pyexplabsys push localhost --json '{"setpoint": 21.5}'
  daqwire pyexplabsys push localhost:8500 --raw 'setpoint:float:21.5;mode:str:auto'
  daqwire pyexplabsys push localhost --json '{"x": 1}' --return-format raw
"""

PULL_COMMANDS = ("name", "codenames_raw", "codenames_json", "raw", "raw_wn", "json", "json_wn")


def parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    """``HOST`` or ``HOST:PORT`` as (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    if not port.isdigit() or not host:
        raise argparse.ArgumentTypeError(f"expected HOST or HOST:PORT, got {text!r}")
    return host, int(port)


def _pull_request(command: str) -> Request[Any]:
    """The generated request for a pull COMMAND (``raw``, ``name``, ``CODENAME#json``...)."""
    if command in PULL_COMMANDS or command == "status":
        builder: Any = getattr(PullRequests, command)
        request: Request[Any] = builder()
        return request
    codename, sep, fmt = command.rpartition("#")
    if sep and fmt == "raw":
        return PullRequests.point_raw(codename)
    if sep and fmt == "json":
        return PullRequests.point_json(codename)
    raise argparse.ArgumentTypeError(
        f"unknown command {command!r}; one of {', '.join(PULL_COMMANDS)}, status, "
        "CODENAME#raw, CODENAME#json"
    )


def _plain(value: Any) -> Any:
    """A typed reply as plain JSON values (OLD_DATA for stale points)."""
    if isinstance(value, OldData):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    return value


def _run_query(args: argparse.Namespace) -> int:
    from daqwire.pyexplabsys.client import PullClient

    host, port = args.address
    try:
        request = _pull_request(args.command_text)
    except argparse.ArgumentTypeError as exc:
        print(f"daqwire pyexplabsys query: {exc}", file=sys.stderr)
        return 2
    if args.wire:
        request = Request(request.name, request.data, bytes, request.idempotent)
    with PullClient(host, port, timeout_s=args.timeout_s, retries=args.retries) as client:
        try:
            reply = client.request(request)
        except (DaqwireError, OSError) as exc:
            print(f"daqwire pyexplabsys query: {exc}", file=sys.stderr)
            return 1
    if args.wire:
        sys.stdout.write(reply.decode("utf-8", "backslashreplace") + "\n")
    else:
        print(json.dumps(_plain(reply), indent=2 if args.command_text == "status" else None))
    return 0


def _run_push(args: argparse.Namespace) -> int:
    from daqwire.pyexplabsys.client import PushClient

    host, port = args.address
    with PushClient(
        host, port, timeout_s=args.timeout_s, retries=0, return_format=args.return_format
    ) as client:
        try:
            if args.json is not None:
                try:
                    data = json.loads(args.json)
                except ValueError as exc:
                    print(f"daqwire pyexplabsys push: --json is not JSON: {exc}", file=sys.stderr)
                    return 2
                reply = client.json_wn(data)
            else:
                from daqwire.generated.pyexplabsys import parse_raw_wn

                reply = client.raw_wn(parse_raw_wn(args.raw))
        except (DaqwireError, OSError) as exc:
            print(f"daqwire pyexplabsys push: {exc}", file=sys.stderr)
            return 1
    print(f"{type(reply).__name__}: {json.dumps(_plain(reply))}")
    return 0


def _simulate(sock: Any, codenames: list[str], interval_s: float, stop: threading.Event) -> None:
    start = time.time()
    while not stop.wait(interval_s):
        t = time.time() - start
        for i, c in enumerate(codenames):
            sock.set_point_now(c, round(20.0 + 5.0 * math.sin(t / 10.0 + i), 6))


def _serve_until_interrupted(duration_s: float | None, stop: threading.Event) -> None:
    try:
        if duration_s is None:
            while not stop.wait(3600):
                pass
        else:
            stop.wait(duration_s)
    except KeyboardInterrupt:
        pass


def _run_serve_pull(args: argparse.Namespace) -> int:
    from daqwire.pyexplabsys.pull import DataPullSocket, DateDataPullSocket

    codenames = [c for c in args.codenames.split(",")] if args.codenames else []
    timeouts: Any = None
    if args.timeouts:
        parts = [None if t.lower() == "none" else float(t) for t in args.timeouts.split(",")]
        timeouts = parts[0] if len(parts) == 1 else parts
    kind = DateDataPullSocket if args.type == "date" else DataPullSocket
    port = (
        args.port
        if args.port is not None
        else (DATE_PULL_PORT if args.type == "date" else DATA_PULL_PORT)
    )
    try:
        sock = kind(args.name, codenames, port=port, timeouts=timeouts, host=args.host)
    except (ValueError, TypeError, OSError) as exc:
        print(f"daqwire pyexplabsys serve-pull: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    sim = None
    with sock:
        print(
            f"serving {args.type} pull socket {args.name!r} on {args.host or '0.0.0.0'}:"
            f"{sock.port} with codenames {codenames}"
            + (" (simulated values)" if args.simulate else ""),
            file=sys.stderr,
            flush=True,
        )
        if args.simulate:
            sim = threading.Thread(
                target=_simulate, args=(sock, codenames, args.interval_s, stop), daemon=True
            )
            sim.start()
        _serve_until_interrupted(args.duration_s, stop)
        stop.set()
        if sim is not None:
            sim.join()
    return 0


def _run_serve_push(args: argparse.Namespace) -> int:
    from daqwire.pyexplabsys.push import DataPushSocket

    lock = threading.Lock()

    def show(data: dict[str, Any]) -> dict[str, Any]:
        with lock:
            print(json.dumps(data, default=str), flush=True)
        return data

    callback = show if args.action in ("callback_async", "callback_direct") else None
    try:
        sock = DataPushSocket(
            args.name,
            port=args.port,
            action=args.action,
            callback=callback,
            return_format=args.return_format,
            host=args.host,
            allowed_sources=args.allow or None,
            max_queue_size=args.max_queue_size,
        )
    except (ValueError, OSError) as exc:
        print(f"daqwire pyexplabsys serve-push: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def watch() -> None:  # store_last/enqueue: print what arrives
        seen = None
        while not stop.wait(0.1):
            if sock.queue is not None:
                while not sock.queue.empty():
                    show(sock.queue.get_nowait())
            elif sock.last_time != seen and sock.last is not None:
                seen = sock.last_time
                show(sock.last)

    watcher = None
    with sock:
        print(
            f"serving push socket {args.name!r} ({args.action}) on "
            f"{args.host or '0.0.0.0'}:{sock.port}",
            file=sys.stderr,
            flush=True,
        )
        if callback is None:
            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
        _serve_until_interrupted(args.duration_s, stop)
        stop.set()
        if watcher is not None:
            watcher.join()
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``pyexplabsys`` sub-commands."""
    sub = parser.add_subparsers(dest="pyexplabsys_command", metavar="COMMAND", required=True)

    pull = sub.add_parser(
        "serve-pull",
        help="serve a pull socket (DateDataPullSocket or DataPullSocket)",
        description=SERVE_PULL_DESCRIPTION,
        epilog=SERVE_PULL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pull.add_argument(
        "--codenames", required=True, metavar="A,B,...", help="comma-separated codenames"
    )
    pull.add_argument(
        "--name", default="daqwire pull socket", metavar="TEXT", help="the socket's name"
    )
    pull.add_argument(
        "--type", choices=("date", "data"), default="date", help="date (x is unix time) or data"
    )
    pull.add_argument("--host", default="", help="interface to bind (default: all)")
    pull.add_argument(
        "--port", type=int, metavar="N", help="UDP port (default 9000 date, 9010 data; 0: any)"
    )
    pull.add_argument(
        "--timeouts",
        metavar="S[,S...]",
        help="seconds after which a point is OLD_DATA: one value, or one per codename "
        "(comma-separated, 'none' for no timeout)",
    )
    pull.add_argument(
        "--simulate", action="store_true", help="set slowly changing values on every codename"
    )
    pull.add_argument(
        "--interval-s",
        type=float,
        default=0.5,
        metavar="S",
        help="--simulate update period (default 0.5)",
    )
    pull.add_argument(
        "--duration-s", type=float, metavar="S", help="stop after S seconds (default: Ctrl-C)"
    )
    pull.set_defaults(func=_run_serve_pull)

    push = sub.add_parser(
        "serve-push",
        help="serve a push socket and print the data pushed to it",
        description=SERVE_PUSH_DESCRIPTION,
        epilog=SERVE_PUSH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    push.add_argument(
        "--name", default="daqwire push socket", metavar="TEXT", help="the socket's name"
    )
    push.add_argument(
        "--action",
        choices=("store_last", "enqueue", "callback_async", "callback_direct"),
        default="store_last",
        help="what to do with pushed data (default store_last)",
    )
    push.add_argument(
        "--return-format",
        choices=("json", "raw", "string"),
        default="json",
        help="how callback_direct writes its RET# reply (default json)",
    )
    push.add_argument("--host", default="", help="interface to bind (default: all)")
    push.add_argument(
        "--port", type=int, default=PUSH_PORT, metavar="N", help="UDP port (default 8500; 0: any)"
    )
    push.add_argument(
        "--allow",
        action="append",
        metavar="IP_OR_NETWORK",
        help="accept pushes only from these sources (repeatable, e.g. 10.0.0.0/8)",
    )
    push.add_argument(
        "--max-queue-size",
        type=int,
        default=0,
        metavar="N",
        help="enqueue: refuse pushes beyond N queued (default 0: no bound)",
    )
    push.add_argument(
        "--duration-s", type=float, metavar="S", help="stop after S seconds (default: Ctrl-C)"
    )
    push.set_defaults(func=_run_serve_push)

    query = sub.add_parser(
        "query",
        help="send one pull command and print the reply",
        description=QUERY_DESCRIPTION,
        epilog=QUERY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    query.add_argument(
        "address",
        type=lambda t: parse_host_port(t, DATE_PULL_PORT),
        metavar="HOST[:PORT]",
        help="the socket (default port 9000)",
    )
    query.add_argument(
        "command_text",
        metavar="COMMAND",
        help="name, codenames_raw, codenames_json, raw, raw_wn, json, json_wn, status, "
        "CODENAME#raw or CODENAME#json",
    )
    query.add_argument("--wire", action="store_true", help="print the reply datagram as it came")
    query.add_argument(
        "--timeout-s", type=float, default=1.0, metavar="S", help="reply timeout (default 1)"
    )
    query.add_argument(
        "--retries", type=int, default=2, metavar="N", help="retries after a timeout (default 2)"
    )
    query.set_defaults(func=_run_query)

    send = sub.add_parser(
        "push",
        help="push data to a push socket and print the reply",
        description=PUSH_DESCRIPTION,
        epilog=PUSH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    send.add_argument(
        "address",
        type=lambda t: parse_host_port(t, PUSH_PORT),
        metavar="HOST[:PORT]",
        help="the socket (default port 8500)",
    )
    what = send.add_mutually_exclusive_group(required=True)
    what.add_argument("--json", metavar="OBJECT", help="a JSON object, e.g. '{\"setpoint\": 21.5}'")
    what.add_argument(
        "--raw", metavar="TEXT", help="raw_wn text, e.g. 'setpoint:float:21.5;mode:str:auto'"
    )
    send.add_argument(
        "--return-format",
        choices=("json", "raw", "string"),
        default="json",
        help="how to read a RET# reply of a callback_direct socket (default json)",
    )
    send.add_argument(
        "--timeout-s", type=float, default=1.0, metavar="S", help="reply timeout (default 1)"
    )
    send.set_defaults(func=_run_push)
