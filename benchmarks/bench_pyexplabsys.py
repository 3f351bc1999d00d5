"""Request/reply throughput of daqwire's PyExpLabSys UDP sockets against a bare UDP echo server.

Usage::

    python benchmarks/bench_pyexplabsys.py [--quick] [--codenames 2,10] [--rounds N]
        [--seconds S] [--pin same|split|none] [--profile] [--profile-seconds S]

What runs where:

* **servers**, each in its own child process, on 127.0.0.1 with an ephemeral port: a
  ``DateDataPullSocket`` per codename count N (codenames ``c0`` .. ``cN-1``, every point set
  once before the start, no timeouts), one ``DataPushSocket`` (action ``store_last``), and a
  **bare echo server**: a plain ``recvfrom`` + ``sendto`` loop that answers every request with
  a fixed reply, set before each of its runs to the exact bytes daqwire answered to the same
  request (so both send replies of the same size). The echo server is the ceiling: no Python
  socket server can answer faster than that loop.
* **client**: this process, one plain UDP socket, strictly sequential: ``sendto`` the
  request, ``recv(65536)`` the reply, repeat (1 s timeout; a lost reply is counted).

Cases: pull ``json_wn`` and ``raw`` for each N, and pushes ``json_wn#{N keys}`` (floats).
Each round runs every case against daqwire and then against the echo server with the same
client loop for ``--seconds`` each (the order alternates between rounds: A/B, B/A, ...).
Reported per case: requests/s (median over rounds), **daqwire / echo** as the median over
rounds of the ratio within a round ("paired median"; target >= 0.6) and the server process's
CPU time per request (utime + stime of all its threads, from ``/proc/<pid>/stat``; target
<= 15 us at 10 codenames), for the echo server too.

CPU placement (``--pin``): by default the client and every server are pinned to one CPU,
so a request costs the client's CPU time plus the server's and nothing else. On the 2-core
VM this was written on, a wake-up across CPUs is so expensive that an unpinned echo loop
swings between ~2 k and ~70 k requests/s depending on where the scheduler puts the two
processes; pinned to one CPU it is steady. Pinned together, ratio = (client + echo CPU per
request) / (client + daqwire CPU per request), so it falls as daqwire's own CPU time grows;
with ``--pin split`` the cross-CPU wake-up dominates both sides and the ratio says little about
daqwire. The machine is shared and noisy anyway, so the ratios matter more than the absolute
figures. Targets are informational: the script
exits 0 whether they are met or not. ``--quick`` (CI smoke test) runs one short round.
``--profile`` adds a phase after the measurement: the daqwire servers run under cProfile
(server threads only, thread CPU time as the timer) while the client repeats every case, and
the top functions by own CPU time are printed (profiling slows the server down; that phase
is not part of the figures).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import multiprocessing as mp
import os
import platform
import pstats
import shlex
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

#: targets (informational)
TARGET_RATIO = 0.6  # daqwire / bare echo requests/s, every case
TARGET_CPU_US = 15.0  # server CPU per request at TARGET_CPU_CODENAMES codenames
TARGET_CPU_CODENAMES = 10

#: the reference server (unmodified PyExpLabSys sockets.py), protocol reference §13: run 1
#: (least contention) requests/s and run 2 server CPU us/request; recorded, not measured here
REFERENCE_RECORDED: dict[tuple[str, int], tuple[int, int]] = {
    ("json_wn", 2): (16_980, 40),
    ("raw", 2): (22_487, 33),
    ("json_wn", 10): (16_129, 45),
    ("raw", 10): (15_534, 83),
    ("push", 2): (15_848, 44),
    ("push", 10): (14_577, 59),
}

HOST = "127.0.0.1"
RECV_SIZE = 65536
CLIENT_TIMEOUT_S = 1.0
BATCH = 100  # requests between two looks at the clock
CONTROL = b"\x00"  # first byte of a control datagram to the echo server (never a request)
STOP = b"stop"
LOGGER = "daqwire"
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def quiet_logs() -> None:
    """Keep daqwire's log records (none are expected here) off stderr."""
    logging.getLogger(LOGGER).setLevel(logging.ERROR)


def codenames(n: int) -> list[str]:
    return [f"c{i}" for i in range(n)]


def push_request(n: int) -> bytes:
    """``json_wn#{"c0": 0.5, ...}`` with ``n`` float values."""
    data = {name: i + 0.5 + i / 7 for i, name in enumerate(codenames(n))}
    return b"json_wn#" + json.dumps(data).encode()


def stop_process(proc: SpawnProcess, timeout_s: float = 15.0) -> None:
    """Join ``proc``; terminate it if it does not end in time."""
    proc.join(timeout_s)
    if proc.is_alive():
        print(f"warning: {proc.name} did not stop in {timeout_s} s; terminating", file=sys.stderr)
        proc.terminate()
        proc.join(5.0)


def pin(cpus: set[int] | None) -> None:
    """Run this process (and the threads it starts later) on ``cpus`` only (None: anywhere)."""
    if cpus is not None:
        os.sched_setaffinity(0, cpus)


def placement(mode: str) -> tuple[set[int] | None, set[int] | None, str]:
    """(client CPUs, server CPUs, description) for ``--pin mode``."""
    if mode == "none" or not hasattr(os, "sched_setaffinity"):
        return None, None, "not pinned (the scheduler places client and servers)"
    allowed = sorted(os.sched_getaffinity(0))
    if mode == "same" or len(allowed) < 2:
        cpu = allowed[-1]
        return {cpu}, {cpu}, f"client and servers pinned to CPU {cpu} (one core, turn by turn)"
    return (
        {allowed[-2]},
        {allowed[-1]},
        f"client pinned to CPU {allowed[-2]}, servers to CPU {allowed[-1]}",
    )


def process_cpu_s(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads), seconds, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        fields = stat.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


# --- servers (child processes) ---------------------------------------------------------------


def profile_threads() -> list[cProfile.Profile]:
    """From now on, every thread started in this process runs under its own cProfile
    (timer: the thread's CPU time, so blocking waits do not top the list)."""
    profiles: list[cProfile.Profile] = []
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)  # CPU time: waiting in recv costs nothing
        profiles.append(profile)
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    threading.Thread.run = run  # type: ignore[method-assign]
    return profiles


def daqwire_server(
    kind: str, n: int, cpus: set[int] | None, ready: Any, stop: Any, profile_path: str | None
) -> None:
    """Child process: a daqwire socket (``pull`` with ``n`` codenames, or ``push``) until
    ``stop`` is set; with ``profile_path``, its threads' cProfile stats are dumped there."""
    from daqwire.pyexplabsys import DataPushSocket, DateDataPullSocket

    pin(cpus)
    quiet_logs()
    profiles = profile_threads() if profile_path else []
    server: Any
    if kind == "pull":
        server = DateDataPullSocket(f"bench pull {n}", codenames(n), port=0, host=HOST)
        now = time.time()
        for i, name in enumerate(codenames(n)):
            server.set_point(name, (now, 20.0 + i / 3))
    else:
        server = DataPushSocket("bench push", port=0, host=HOST, action="store_last")
    server.start()
    try:
        ready.put((server.port, os.getpid()))
        stop.wait()
    finally:
        server.stop()
    if profile_path and profiles:
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            stats.add(profile)
        stats.dump_stats(profile_path)


def echo_server(cpus: set[int] | None, ready: Any) -> None:
    """Child process: answer every datagram with one fixed reply, as fast as Python can.

    A datagram that starts with ``CONTROL`` sets the reply to the rest of it (and is
    answered ``ok``), or ends the loop (``CONTROL + STOP``).
    """
    pin(cpus)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    ready.put((sock.getsockname()[1], os.getpid()))
    recvfrom, sendto = sock.recvfrom, sock.sendto
    reply = b"?"
    with sock:
        while True:
            data, address = recvfrom(RECV_SIZE)
            if data[:1] == CONTROL:
                if data[1:] == STOP:
                    sendto(b"bye", address)
                    return
                reply = data[1:]
                sendto(b"ok", address)
                continue
            sendto(reply, address)


@dataclass
class Server:
    """A running server process: its address, pid and how to stop it."""

    name: str
    proc: SpawnProcess
    address: tuple[str, int]
    pid: int
    stop: Callable[[], None]


def start_daqwire(
    ctx: SpawnContext, kind: str, n: int, cpus: set[int] | None, profile_path: str | None = None
) -> Server:
    ready = ctx.Queue()
    stop = ctx.Event()
    name = f"daqwire-{kind}-{n}"
    proc = ctx.Process(
        target=daqwire_server,
        args=(kind, n, cpus, ready, stop, profile_path),
        name=name,
        daemon=True,
    )
    proc.start()
    port, pid = ready.get(timeout=60)

    def close() -> None:
        stop.set()
        stop_process(proc)

    return Server(name, proc, (HOST, port), pid, close)


def start_echo(ctx: SpawnContext, cpus: set[int] | None) -> Server:
    ready = ctx.Queue()
    proc = ctx.Process(target=echo_server, args=(cpus, ready), name="echo", daemon=True)
    proc.start()
    port, pid = ready.get(timeout=60)
    address = (HOST, port)

    def close() -> None:
        try:
            control(address, CONTROL + STOP)
        except OSError:
            pass
        stop_process(proc)

    return Server("echo", proc, address, pid, close)


# --- client ------------------------------------------------------------------------------------


def control(address: tuple[str, int], message: bytes) -> bytes:
    """One request, one reply (used for set-up, never timed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5.0)
        sock.sendto(message, address)
        return sock.recv(RECV_SIZE)


@dataclass
class Run:
    requests: int
    wall_s: float
    server_cpu_s: float
    lost: int

    @property
    def rate(self) -> float:
        return self.requests / self.wall_s

    @property
    def cpu_us(self) -> float:
        return self.server_cpu_s / self.requests * 1e6


def client_run(server: Server, request: bytes, seconds: float, warmup: int) -> Run:
    """Sequential request/reply against ``server`` for about ``seconds`` (after ``warmup``
    untimed requests); the server's CPU time is read just before and after the timed part."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(CLIENT_TIMEOUT_S)
        sendto, recv, address = sock.sendto, sock.recv, server.address
        lost = 0
        for _ in range(warmup):
            sendto(request, address)
            try:
                recv(RECV_SIZE)
            except TimeoutError:
                lost += 1
        if lost:
            raise SystemExit(f"{server.name}: {lost} of {warmup} warm-up requests got no reply")
        count = 0
        clock = time.perf_counter
        cpu = process_cpu_s(server.pid)
        start = clock()
        while True:
            for _ in range(BATCH):
                sendto(request, address)
                try:
                    recv(RECV_SIZE)
                except TimeoutError:
                    lost += 1
            count += BATCH
            elapsed = clock() - start
            if elapsed >= seconds:
                break
        cpu = process_cpu_s(server.pid) - cpu
    return Run(count, elapsed, cpu, lost)


@dataclass
class Case:
    """One request against one daqwire server, and its echo twin."""

    label: str
    key: tuple[str, int]  # (command or "push", codename count)
    server: Server
    request: bytes
    reply: bytes = b""
    ours: list[Run] = field(default_factory=list)
    echo: list[Run] = field(default_factory=list)

    def ratios(self) -> list[float]:
        return [a.rate / b.rate for a, b in zip(self.ours, self.echo, strict=True)]


def check_reply(case: Case, n: int) -> None:
    """The first reply must be what the request asks for, else nothing is worth timing."""
    text = case.reply.decode("utf-8", "replace")
    command = case.key[0]
    ok = False
    try:
        if command == "json_wn":
            ok = list(json.loads(text)) == codenames(n)
        elif command == "raw":
            ok = len(text.split(";")) == n and "OLD_DATA" not in text
        else:
            ok = text.startswith("ACK#")
    except ValueError:
        pass
    if not ok:
        raise SystemExit(f"{case.label}: unexpected reply {text[:200]!r}; nothing timed")


def make_cases(servers: dict[tuple[str, int], Server], counts: Sequence[int]) -> list[Case]:
    cases = []
    for n in counts:
        pull = servers[("pull", n)]
        for command in ("json_wn", "raw"):
            cases.append(Case(f"pull {command} N={n}", (command, n), pull, command.encode()))
    for n in counts:
        cases.append(
            Case(f"push json_wn#{{{n} keys}}", ("push", n), servers[("push", 0)], push_request(n))
        )
    for case in cases:
        try:
            case.reply = control(case.server.address, case.request)
        except TimeoutError:
            raise SystemExit(f"{case.label}: no reply within 5 s; nothing timed") from None
        check_reply(case, case.key[1])
    return cases


def measure(cases: list[Case], echo: Server, rounds: int, seconds: float, warmup: int) -> None:
    for rnd in range(rounds):
        shift = rnd % len(cases)  # rotate the case order too, so drift hits every case alike
        for case in cases[shift:] + cases[:shift]:
            control(echo.address, CONTROL + case.reply)
            pair = [("ours", case.server), ("echo", echo)]
            if rnd % 2:
                pair.reverse()  # A/B, then B/A
            for name, server in pair:
                run = client_run(server, case.request, seconds, warmup)
                getattr(case, name).append(run)


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(min(values))}-{fmt.format(max(values))}"


def report(cases: list[Case], rounds: int, seconds: float) -> None:
    print()
    print(
        f"results: median over {rounds} round(s) of ~{seconds:g} s per run; ratio = paired "
        "median of daqwire / echo requests/s; CPU = server process utime+stime per request"
    )
    for case in cases:
        ours = statistics.median(r.rate for r in case.ours)
        echo = statistics.median(r.rate for r in case.echo)
        ratio = statistics.median(case.ratios())
        cpu_ours = statistics.median(r.cpu_us for r in case.ours)
        cpu_echo = statistics.median(r.cpu_us for r in case.echo)
        verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
        line = (
            f"{case.label}: daqwire {ours:,.0f} req/s, echo {echo:,.0f} req/s, ratio {ratio:.2f} "
            f"(target >= {TARGET_RATIO}: {verdict}); server CPU/request: daqwire "
            f"{cpu_ours:.1f} us, echo {cpu_echo:.1f} us (difference {cpu_ours - cpu_echo:.1f} us)"
        )
        if case.key[0] != "push" and case.key[1] == TARGET_CPU_CODENAMES:
            met = "met" if cpu_ours <= TARGET_CPU_US else "MISSED"
            line += f" (target <= {TARGET_CPU_US:g} us: {met})"
        print(line)
        lost = sum(r.lost for r in case.ours), sum(r.lost for r in case.echo)
        print(
            f"  request {len(case.request)} B, reply {len(case.reply)} B; per round: daqwire "
            f"{spread([r.rate for r in case.ours], '{:,.0f}')}, echo "
            f"{spread([r.rate for r in case.echo], '{:,.0f}')} req/s, ratio "
            f"{spread(case.ratios())}, daqwire CPU "
            f"{spread([r.cpu_us for r in case.ours], '{:.1f}')} us; lost replies {lost[0]}/"
            f"{lost[1]}; requests per run ~{statistics.median(r.requests for r in case.ours):,.0f}"
        )
    recorded = [
        f"{case.label} {REFERENCE_RECORDED[case.key][0]:,} req/s "
        f"({REFERENCE_RECORDED[case.key][1]} us)"
        for case in cases
        if case.key in REFERENCE_RECORDED
    ]
    if recorded:
        print(
            "context, recorded in the protocol reference §13 (unmodified PyExpLabSys sockets.py, "
            "least-loaded run; server CPU from another run), not measured here: "
            + "; ".join(recorded)
        )


# --- profile -----------------------------------------------------------------------------------


def run_profile(
    ctx: SpawnContext,
    counts: Sequence[int],
    cpus: set[int] | None,
    seconds: float,
    warmup: int,
    top: int,
) -> None:
    print()
    print(
        f"profile: daqwire servers under cProfile (server threads, thread CPU time as timer), "
        f"~{seconds:g} s per request kind; top {top} functions by own CPU time"
    )
    with tempfile.TemporaryDirectory(prefix="bench-pyx-") as tmp:
        for kind, n in [("pull", n) for n in counts] + [("push", 0)]:
            path = os.path.join(tmp, f"{kind}-{n}.prof")
            server = start_daqwire(ctx, kind, n, cpus, path)
            try:
                if kind == "pull":
                    requests = [b"json_wn", b"raw"]
                else:
                    requests = [push_request(k) for k in counts]
                total = 0
                for request in requests:
                    total += client_run(server, request, seconds, warmup).requests
            finally:
                server.stop()
            label = f"{kind} N={n}" if kind == "pull" else f"push N={','.join(map(str, counts))}"
            if not os.path.exists(path):
                print(f"  {label}: no profile (did the server run in a threading.Thread?)")
                continue
            out = io.StringIO()
            stats = pstats.Stats(path, stream=out)
            stats.sort_stats("tottime").print_stats(top)
            lines = [line for line in out.getvalue().splitlines() if line.strip()]
            start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
            print(f"  {label}: {total:,} requests (json_wn and raw, or each push size)")
            for line in lines[start : start + top + 1]:
                print("    " + line)


# --- main --------------------------------------------------------------------------------------


def parse_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad codename counts {text!r}: use e.g. 2,10") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("codename counts must be >= 1")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: python benchmarks/bench_pyexplabsys.py --rounds 7 --seconds 2 "
        "(about 3 minutes). See the module docstring for what is measured.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="one short round (CI smoke test, a few seconds)"
    )
    parser.add_argument(
        "--codenames",
        type=parse_counts,
        default=[2, 10],
        help="codename counts N, comma-separated: a DateDataPullSocket with codenames c0..cN-1 "
        "each, and pushes of N keys (default 2,10)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds; each runs every case once against daqwire and once against the echo "
        "server (default 5; --quick 1)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="length of one timed run (default 2.0; --quick 0.1)",
    )
    parser.add_argument(
        "--pin",
        choices=("same", "split", "none"),
        default="same",
        help="CPU placement. same (default): client and all servers on one CPU, so each request "
        "costs the client's plus the server's CPU time and no cross-CPU wake-up; the steadiest "
        "figures on a VM. split: client on one CPU, servers on another (cross-CPU wake-ups, "
        "very slow on some VMs). none: let the scheduler decide (as the reference figures in "
        "the protocol reference §13 were taken; noisiest)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, profile the daqwire servers with cProfile and print the top functions",
    )
    parser.add_argument(
        "--profile-seconds", type=float, default=3.0, help="per case in --profile (default 3)"
    )
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    seconds = args.seconds if args.seconds is not None else (0.1 if args.quick else 2.0)
    warmup = 50 if args.quick else 500
    if rounds < 1 or not seconds > 0 or not args.profile_seconds > 0:
        parser.error("--rounds must be >= 1, --seconds and --profile-seconds > 0")
    command = sys.orig_argv if argv is None else [sys.executable, sys.argv[0], *argv]
    print(f"command: {shlex.join(command)}")
    print("PyExpLabSys UDP sockets benchmark (loopback, one sequential client)")
    load = os.getloadavg()
    print(
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load[0]:.2f} "
        f"{load[1]:.2f} {load[2]:.2f}" + (", --quick" if args.quick else "")
    )
    print(
        "servers: one child process each (DateDataPullSocket per N, DataPushSocket store_last, "
        "bare echo = recvfrom + sendto of daqwire's reply bytes); client: this process, "
        f"sendto + recv({RECV_SIZE}), timeout {CLIENT_TIMEOUT_S:g} s, {warmup} untimed "
        "requests before each run"
    )
    quiet_logs()
    client_cpus, server_cpus, where = placement(args.pin)
    print(f"placement: {where}")
    pin(client_cpus)
    ctx = mp.get_context("spawn")
    started = time.monotonic()
    servers: dict[tuple[str, int], Server] = {}
    try:
        servers[("echo", 0)] = start_echo(ctx, server_cpus)
        for n in args.codenames:
            servers[("pull", n)] = start_daqwire(ctx, "pull", n, server_cpus)
        servers[("push", 0)] = start_daqwire(ctx, "push", 0, server_cpus)
        cases = make_cases(servers, args.codenames)
        measure(cases, servers[("echo", 0)], rounds, seconds, warmup)
    finally:
        for server in servers.values():
            server.stop()
    report(cases, rounds, seconds)
    if args.profile:
        run_profile(ctx, args.codenames, server_cpus, args.profile_seconds, warmup, 15)
    load = os.getloadavg()
    print()
    print(
        f"done in {time.monotonic() - started:.0f} s, load average now {load[0]:.2f} "
        f"{load[1]:.2f} {load[2]:.2f} (targets are informational; ratios are paired medians)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
