"""Benchmark of AARTFAAC streams over loopback TCP: reader throughput, merger cost, memory.

Usage::

    python benchmarks/bench_aartfaac_stream.py [--quick] [--sizes 256,1024,2300] [--windows N]
        [--trials N] [--sender replay|emulator] [--stamps N] [--memory-rate-hz HZ]
        [--skip-throughput] [--skip-merger] [--skip-memory]

Three parts, each measured against a baseline in the same run:

* **throughput**: a sender in a child process writes windows back to back on loopback. For
  each image size the parent reads them with daqwire's ``WindowReader.read()`` (touching one
  pixel of each window, then dropping it, as a consumer would), and in the same run, in
  alternating (paired) trials, with a bare ``recv_into`` loop that reads the same number of
  bytes from the same kind of connection into one preallocated window-sized bytearray (the
  limit for a reader that must hold a whole window). A second bare loop into a 64 KiB buffer,
  which stays in the CPU cache and keeps no window, shows the socket's own limit. Reported:
  windows/s, MB/s (10^6 bytes of whole windows) and daqwire / bare as the median over trials
  of the ratio within a trial ("paired median"). Target: >= 0.7 at 2300x2300.
* **merger**: in-process, 16 streams, pre-built ``StreamImage`` objects with emulator-style
  DATE-OBS strings through ``Merger.add`` + ``get``, in µs per image (DATE-OBS parse
  included), against a plain dict-of-lists grouping of the same inputs and a re-implemented
  tkp-style merger (dateutil parse, compare with the current group). Target: <= 1 ms per image.
* **memory**: an ``Emulator`` (child process) serves 16 streams of 2300x2300 at 0.5 Hz
  (``--memory-rate-hz``; at 1 Hz a 2-core machine can fall behind while the backlog fills); a
  fresh child process runs ``MergedStreams(..., back_log=10)`` and never takes a group, until
  the backlog has overflowed (drop-oldest) several times. Its peak RSS (``ru_maxrss``) is
  compared with the (back_log + 1) groups of windows it must hold. Target: <= 1.5x.

The machine is shared and noisy, so ratios matter more than absolute figures. Targets are
informational: the script exits 0 whether they are met or not. ``--quick`` (CI) uses small
sizes, few windows and a 4-stream 256x256 memory check, and takes a few seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import logging
import multiprocessing as mp
import os
import platform
import random
import resource
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.context import SpawnContext, SpawnProcess
from queue import Empty
from typing import Any

import numpy as np
from dateutil import parser as dateutil_parser

from daqwire.aartfaac import (
    DEFAULT_TIMEOUT_S,
    Emulator,
    MergedStreams,
    Merger,
    StreamImage,
    WindowReader,
    parse_date_obs,
)
from daqwire.aartfaac.emulator import emulator_header, emulator_image, format_date_obs
from daqwire.generated.aartfaac import (
    WINDOW_PREFIX_SIZE,
    Window,
    decode_window,
    encode_window,
    encode_window_into,
)

#: targets (informational)
TARGET_THROUGHPUT = 0.7  # daqwire / bare recv_into >= 0.7 at 2300x2300
TARGET_THROUGHPUT_SIZE = (2300, 2300)
TARGET_MERGER_US = 1000.0  # <= 1 ms per image with 16 streams
TARGET_MEMORY = 1.5  # peak RSS <= 1.5 x (back_log + 1) groups

#: tkp read_window + reconstruct_fits on loopback, protocol reference §14 (recorded, 2-core VM)
TKP_RECORDED = {(256, 256): 110.9, (1024, 1024): 8.98, (2300, 2300): 1.13}

FREQ_HZ = 6.0e6
EPOCH = dt.datetime(2024, 6, 1, 12, 0, 0, 123456)
REQUEST = struct.Struct("<II")  # what a client of the replay sender asks for: NAXIS1, NAXIS2
SMALL_BUFFER = 64 * 1024
#: bytes each throughput trial reads, per reader, unless --windows is given
TRIAL_BYTES = 1_000_000_000
QUICK_TRIAL_BYTES = 40_000_000
LOGGER = "daqwire"

Size = tuple[int, int]


def quiet_logs() -> None:
    """Keep daqwire's warnings (slow clients, dropped groups: expected here) off stderr."""
    logging.getLogger(LOGGER).setLevel(logging.ERROR)


def fmt_size(size: Size) -> str:
    return f"{size[0]}x{size[1]}"


def parse_sizes(text: str) -> list[Size]:
    """``256,1024x512`` -> [(256, 256), (1024, 512)]."""
    sizes: list[Size] = []
    for part in text.split(","):
        dims = part.strip().lower().split("x")
        try:
            values = [int(d) for d in dims]
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad size {part!r}: use N or NxM") from None
        if len(values) == 1:
            values *= 2
        if len(values) != 2 or min(values) < 1:
            raise argparse.ArgumentTypeError(f"bad size {part!r}: use N or NxM")
        sizes.append((values[0], values[1]))
    return sizes


def window_fits(size: Size, date_obs: str, freq_hz: float = FREQ_HZ) -> str:
    """The emulator's FITS text for ``size`` (its length does not depend on ``date_obs``)."""
    return str(emulator_header(size[0], size[1], freq_hz=freq_hz, date_obs=date_obs).tostring())


def window_bytes(size: Size) -> int:
    """Bytes of one whole window of ``size`` as the emulator (and the replay sender) sends it."""
    return (
        WINDOW_PREFIX_SIZE + len(window_fits(size, format_date_obs(EPOCH))) + 4 * size[0] * size[1]
    )


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(min(values))}-{fmt.format(max(values))}"


def stop_process(proc: SpawnProcess, timeout_s: float = 15.0) -> None:
    """Join ``proc``; terminate it if it does not end in time."""
    proc.join(timeout_s)
    if proc.is_alive():
        print(f"warning: {proc.name} did not stop in {timeout_s} s; terminating", file=sys.stderr)
        proc.terminate()
        proc.join(5.0)


# --- senders (child processes) -------------------------------------------------------------


def replay_sender(ready: Any, stop: Any) -> None:
    """Child process: serve pre-encoded windows back to back, one connection at a time.

    A client sends NAXIS1, NAXIS2 (``REQUEST``); it then gets windows of that size until it
    closes. Each window is encoded once; only its DATE-OBS value is rewritten (in place, same
    width) before every send, 1 s later each time, so the reader's DATE-OBS check runs.
    """
    quiet_logs()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)
    cache: dict[Size, tuple[bytearray, int]] = {}
    ready.put(listener.getsockname()[:2])
    try:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10.0)
                try:
                    request = b""
                    while len(request) < REQUEST.size:
                        chunk = conn.recv(REQUEST.size - len(request))
                        if not chunk:
                            break
                        request += chunk
                    if len(request) < REQUEST.size:
                        continue
                    size = REQUEST.unpack(request)
                    if size not in cache:
                        cache[size] = encode_replay_window(size)
                    data, date_pos = cache[size]
                    k = 0
                    while not stop.is_set():
                        stamp = format_date_obs(EPOCH + dt.timedelta(seconds=k)).encode()
                        data[date_pos : date_pos + len(stamp)] = stamp
                        conn.sendall(data)
                        k += 1
                except OSError:
                    pass  # the reader closed the connection (mid-window): next client
    finally:
        listener.close()


def encode_replay_window(size: Size) -> tuple[bytearray, int]:
    """One emulator-style window (noise image) and the offset of its DATE-OBS value."""
    fits = window_fits(size, format_date_obs(EPOCH))
    image = emulator_image(size[0], size[1], pattern="noise", seed=0)
    msg = Window(fits=fits, image=image)
    data = bytearray(WINDOW_PREFIX_SIZE + len(fits) + image.nbytes)
    encode_window_into(msg, data, 0, pixel_order="naxis2_fastest")
    date_pos = data.find(b"DATE-OBS= '", WINDOW_PREFIX_SIZE) + len(b"DATE-OBS= '")
    return data, date_pos


def emulator_sender(ready: Any, stop: Any, ports: int, size: Size, rate_hz: float) -> None:
    """Child process: a daqwire ``Emulator`` until ``stop`` is set; reports its port stats."""
    quiet_logs()
    emulator = Emulator([0] * ports, size=size, rate_hz=rate_hz, pattern="noise")
    emulator.start()
    try:
        ready.put(emulator.addresses)
        started = resource.getrusage(resource.RUSAGE_SELF)
        stop.wait()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        stats = emulator.stats
        ready.put(
            {
                "ticks": max(s.ticks for s in stats),
                "frames_dropped": sum(s.frames_dropped for s in stats),
                "ticks_skipped": emulator.ticks_skipped,
                "cpu_s": usage.ru_utime + usage.ru_stime - started.ru_utime - started.ru_stime,
                "faults": usage.ru_minflt - started.ru_minflt,
            }
        )
    finally:
        emulator.stop()


@dataclass
class Sender:
    """A running sender process and how to ask it for windows of one size."""

    kind: str
    proc: SpawnProcess
    stop: Any
    address: tuple[str, int]
    request: bytes = b""

    def connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=DEFAULT_TIMEOUT_S)
        if self.request:
            sock.sendall(self.request)
        return sock

    def close(self) -> None:
        self.stop.set()
        stop_process(self.proc)


def start_replay(ctx: SpawnContext) -> Sender:
    ready = ctx.Queue()
    stop = ctx.Event()
    proc = ctx.Process(target=replay_sender, args=(ready, stop), name="replay-sender")
    proc.start()
    address = ready.get(timeout=60)
    return Sender("replay", proc, stop, tuple(address))


def start_emulator(ctx: SpawnContext, ports: int, size: Size, rate_hz: float) -> tuple[Sender, Any]:
    ready = ctx.Queue()
    stop = ctx.Event()
    proc = ctx.Process(
        target=emulator_sender, args=(ready, stop, ports, size, rate_hz), name="emulator"
    )
    proc.start()
    addresses = ready.get(timeout=120)
    return Sender("emulator", proc, stop, tuple(addresses[0])), (ready, addresses)


# --- throughput ------------------------------------------------------------------------------


def read_daqwire(
    sender: Sender, size: Size, count: int, check: np.ndarray | None
) -> tuple[float, float]:
    """Wall and thread CPU seconds of ``WindowReader.read()`` for ``count`` windows (after one
    warm-up window)."""
    with sender.connect() as sock:
        reader = WindowReader(sock, timeout_s=DEFAULT_TIMEOUT_S)
        first = reader.read()  # connection set-up and the first buffer, not timed
        if first.image.shape != (size[1], size[0]):
            raise SystemExit(f"daqwire read a {first.image.shape} image, expected {size}")
        if check is not None and not np.array_equal(first.image, check):
            raise SystemExit("daqwire read other pixels than the sender sent; nothing timed")
        del first
        read = reader.read
        cpu = time.thread_time()
        start = time.perf_counter()
        for _ in range(count):
            read().image[0, 0]  # a consumer looks at the window, then drops it
        elapsed = time.perf_counter() - start
        cpu = time.thread_time() - cpu
        stats = reader.stats
        if stats.windows != count + 1 or stats.errors or stats.resyncs or stats.skipped_bytes:
            raise SystemExit(f"daqwire reader trouble: {stats}")
    return elapsed, cpu


def read_bare(sender: Sender, wbytes: int, count: int, buffer_size: int) -> tuple[float, float]:
    """Wall and thread CPU seconds of a bare ``recv_into`` loop for ``count`` windows' bytes.

    One preallocated bytearray of ``buffer_size``: the window size (filled window by window,
    what a reader that keeps whole windows must at least do) or a small buffer overwritten
    over and over (cache-resident; keeps nothing).
    """
    buffer = bytearray(buffer_size)
    view = memoryview(buffer)
    with sender.connect() as sock:
        sock.settimeout(DEFAULT_TIMEOUT_S)
        recv_into = sock.recv_into
        for timed in (False, True):  # one window untimed, as for daqwire
            remaining = count * wbytes if timed else wbytes
            pos = 0
            cpu = time.thread_time()
            start = time.perf_counter()
            while remaining:
                got = recv_into(view[pos : min(buffer_size, pos + remaining)])
                if not got:
                    raise SystemExit("sender closed the connection")
                remaining -= got
                pos += got
                if pos == buffer_size:
                    pos = 0
            elapsed = time.perf_counter() - start
            cpu = time.thread_time() - cpu
    view.release()
    return elapsed, cpu


@dataclass
class Throughput:
    size: Size
    wbytes: int
    count: int
    daq: list[float] = field(default_factory=list)  # wall seconds per trial
    bare: list[float] = field(default_factory=list)
    small: list[float] = field(default_factory=list)
    cpu: dict[str, list[float]] = field(default_factory=dict)  # reader thread CPU seconds

    def cpu_per_window(self, name: str) -> float:
        """Median reader CPU seconds per window."""
        return statistics.median(self.cpu[name]) / self.count

    def rate(self, times: list[float]) -> float:
        """Median windows/s over trials."""
        return statistics.median(self.count / t for t in times)

    def rates(self, times: list[float]) -> list[float]:
        return [self.count / t for t in times]

    def ratios(self, times: list[float]) -> list[float]:
        """daqwire / ``times`` rate ratio of each trial."""
        return [other / daq for daq, other in zip(self.daq, times, strict=True)]


def measure_throughput(
    sender: Sender, size: Size, count: int, trials: int, verify: bool
) -> Throughput:
    wbytes = window_bytes(size)
    result = Throughput(size, wbytes, count)
    check = None
    if verify and sender.kind == "replay":
        check = emulator_image(size[0], size[1], pattern="noise", seed=0)
    runs: list[tuple[str, Callable[[], tuple[float, float]]]] = [
        ("daq", lambda: read_daqwire(sender, size, count, check)),
        ("bare", lambda: read_bare(sender, wbytes, count, wbytes)),
        ("small", lambda: read_bare(sender, wbytes, count, SMALL_BUFFER)),
    ]
    for trial in range(trials):
        shift = trial % len(runs)  # rotate the order, so drift hits every reader alike
        for name, run in runs[shift:] + runs[:shift]:
            gc.collect()
            wall, cpu = run()
            getattr(result, name).append(wall)
            result.cpu.setdefault(name, []).append(cpu)
        check = None  # pixels checked once per size
    return result


def report_throughput(result: Throughput, trials: int) -> None:
    mb = result.wbytes / 1e6
    daq, bare, small = result.rate(result.daq), result.rate(result.bare), result.rate(result.small)
    ratio = statistics.median(result.ratios(result.bare))
    ratio_small = statistics.median(result.ratios(result.small))
    label = fmt_size(result.size)
    line = (
        f"throughput {label}: daqwire {daq:.1f} windows/s ({daq * mb:.0f} MB/s), "
        f"bare recv_into {bare:.1f} windows/s ({bare * mb:.0f} MB/s), ratio {ratio:.2f}"
    )
    if result.size == TARGET_THROUGHPUT_SIZE:
        met = "met" if ratio >= TARGET_THROUGHPUT else "MISSED"
        line += f" (target >= {TARGET_THROUGHPUT}: {met})"
    print(line)
    print(
        f"  bare recv_into into a 64 KiB buffer (cache-resident, keeps no window): "
        f"{small:.1f} windows/s ({small * mb:.0f} MB/s); daqwire / that: {ratio_small:.2f}"
    )
    print(
        f"  {trials} paired trials of {result.count} windows ({result.wbytes:,} bytes each): "
        f"daqwire {spread(result.rates(result.daq), '{:.1f}')}, "
        f"bare {spread(result.rates(result.bare), '{:.1f}')}, "
        f"64 KiB {spread(result.rates(result.small), '{:.1f}')} windows/s; "
        f"ratio {spread(result.ratios(result.bare))}, "
        f"vs 64 KiB {spread(result.ratios(result.small))}"
    )
    cpu = {name: result.cpu_per_window(name) * 1e6 for name in ("daq", "bare", "small")}
    cpu_ratio = statistics.median(
        d / b for d, b in zip(result.cpu["daq"], result.cpu["bare"], strict=True)
    )
    print(
        f"  reader thread CPU per window (kernel copy included): daqwire {cpu['daq']:,.1f} us, "
        f"bare {cpu['bare']:,.1f} us, 64 KiB {cpu['small']:,.1f} us; daqwire / bare {cpu_ratio:.2f}"
    )


def run_throughput(
    ctx: SpawnContext, sizes: list[Size], windows: int | None, trials: int, kind: str, quick: bool
) -> list[Throughput]:
    if kind == "replay":
        print(
            "sender: replay server in a child process (each size encoded once, DATE-OBS "
            "rewritten before each send, sendall back to back)"
        )
    else:
        print("sender: daqwire Emulator(rate_hz=0) in a child process (encodes every window)")
    print(
        "readers, in turn within each trial, each on a fresh connection, one untimed window "
        f"first; socket timeout {DEFAULT_TIMEOUT_S:g} s for all"
    )
    results = []
    replay = start_replay(ctx) if kind == "replay" else None
    try:
        for size in sizes:
            wbytes = window_bytes(size)
            budget = QUICK_TRIAL_BYTES if quick else TRIAL_BYTES
            count = windows if windows is not None else max(5, round(budget / wbytes))
            if replay is not None:
                sender = Sender(
                    "replay", replay.proc, replay.stop, replay.address, REQUEST.pack(*size)
                )
                result = measure_throughput(sender, size, count, trials, verify=True)
            else:
                sender, _ = start_emulator(ctx, 1, size, 0.0)
                try:
                    result = measure_throughput(sender, size, count, trials, verify=False)
                finally:
                    sender.close()
            report_throughput(result, trials)
            results.append(result)
    finally:
        if replay is not None:
            replay.close()
    tkp = [
        f"{fmt_size(r.size)}: daqwire here {r.rate(r.daq) / TKP_RECORDED[r.size]:,.0f}x tkp"
        for r in results
        if r.size in TKP_RECORDED
    ]
    print(
        "context, recorded in the protocol reference §14 on a 2-core VM, not measured here: "
        "tkp read_window + reconstruct_fits 110.9 / 8.98 / 1.13 windows/s at 256x256 / "
        "1024x1024 / 2300x2300" + (f" ({'; '.join(tkp)}; not a paired ratio)" if tkp else "")
    )
    return results


# --- merger overhead -------------------------------------------------------------------------


def merger_inputs(streams: int, stamps: int) -> list[tuple[StreamImage, str, str]]:
    """(image, DATE-OBS, stream) in arrival order: per timestamp, every stream once, shuffled.

    The images are real ``StreamImage`` objects of decoded 16x16 emulator windows.
    """
    names = [f"127.0.0.1:{6666 + i}" for i in range(streams)]
    image = emulator_image(16, 16, pattern="noise")
    first = format_date_obs(EPOCH)
    texts = [window_fits((16, 16), first, FREQ_HZ + 0.5e6 * i) for i in range(streams)]
    rng = random.Random(0)
    inputs = []
    for k in range(stamps):
        date_obs = format_date_obs(EPOCH + dt.timedelta(seconds=k))
        order = list(range(streams))
        rng.shuffle(order)
        for i in order:
            window = decode_window(
                encode_window(Window(fits=texts[i].replace(first, date_obs), image=image))
            )
            inputs.append((StreamImage(names[i], window, k + 1), date_obs, names[i]))
    return inputs


def merge_daqwire(inputs: list[tuple[StreamImage, str, str]], streams: int, stamps: int) -> float:
    merger: Merger[StreamImage] = Merger({name for _, _, name in inputs})
    add, get = merger.add, merger.get
    start = time.perf_counter()
    for n, (item, date_obs, name) in enumerate(inputs, 1):
        add(item, date_obs, stream=name)
        if n % streams == 0:
            get()
    elapsed = time.perf_counter() - start
    stats = merger.stats
    if stats.complete_groups != stamps or stats.images != len(inputs):
        raise SystemExit(f"merger grouped differently than expected: {stats}")
    return elapsed


def merge_daqwire_streams(
    inputs: list[tuple[StreamImage, str, str]], streams: int, stamps: int
) -> float:
    """As MergedStreams feeds the merger: DATE-OBS read from the window's FITS text."""
    merger: Merger[StreamImage] = Merger({name for _, _, name in inputs})
    add, get = merger.add, merger.get
    start = time.perf_counter()
    for n, (item, _, _) in enumerate(inputs, 1):
        add(item, item.date_obs, stream=item.stream)
        if n % streams == 0:
            get()
    elapsed = time.perf_counter() - start
    if merger.stats.complete_groups != stamps:
        raise SystemExit(f"merger grouped differently than expected: {merger.stats}")
    return elapsed


def merge_dict(inputs: list[tuple[StreamImage, str, str]], streams: int, stamps: int) -> float:
    """Baseline: a dict of lists keyed by the DATE-OBS string; a group leaves when full."""
    groups: dict[str, list[StreamImage]] = {}
    out: list[list[StreamImage]] = []
    start = time.perf_counter()
    for item, date_obs, _ in inputs:
        group = groups.setdefault(date_obs, [])
        group.append(item)
        if len(group) == streams:
            out.append(groups.pop(date_obs))
    elapsed = time.perf_counter() - start
    if len(out) != stamps:
        raise SystemExit("dict grouping went wrong")
    return elapsed


def merge_tkp_style(inputs: list[tuple[StreamImage, str, str]], streams: int, stamps: int) -> float:
    """tkp's merger algorithm (protocol reference §8) without its queues: dateutil-parse each
    DATE-OBS, append to the current group if equal, else emit it and start a new one."""
    out: list[list[StreamImage]] = []
    parse = dateutil_parser.parse
    start = time.perf_counter()
    current: list[StreamImage] = []
    current_stamp = None
    for item, date_obs, _ in inputs:
        stamp = parse(date_obs)
        if current_stamp is not None and stamp == current_stamp:
            current.append(item)
            continue
        if current:
            out.append(current)
        current = [item]
        current_stamp = stamp
    elapsed = time.perf_counter() - start
    if len(out) != stamps - 1:  # tkp never emits its newest group
        raise SystemExit("tkp-style grouping went wrong")
    return elapsed


def parse_only(inputs: list[tuple[StreamImage, str, str]], streams: int, stamps: int) -> float:
    start = time.perf_counter()
    for _, date_obs, _ in inputs:
        parse_date_obs(date_obs)
    return time.perf_counter() - start


def date_obs_only(inputs: list[tuple[StreamImage, str, str]], streams: int, stamps: int) -> float:
    start = time.perf_counter()
    for item, _, _ in inputs:
        item.date_obs  # noqa: B018 - the FITS keyword lookup MergedStreams does per image
    return time.perf_counter() - start


def run_merger(streams: int, stamps: int, rounds: int) -> None:
    inputs = merger_inputs(streams, stamps)
    benches: list[tuple[str, str, Callable[..., float]]] = [
        ("daq", "daqwire Merger.add + get (DATE-OBS string given)", merge_daqwire),
        (
            "streams",
            "daqwire as MergedStreams feeds it (+ StreamImage.date_obs)",
            merge_daqwire_streams,
        ),
        ("dict", "baseline: dict of lists keyed by the DATE-OBS string", merge_dict),
        ("tkp", "tkp-style merger (dateutil parse, compare; no queues)", merge_tkp_style),
        ("parse", "  part: parse_date_obs (dateutil) alone", parse_only),
        ("date_obs", "  part: StreamImage.date_obs (FITS keyword lookup) alone", date_obs_only),
    ]
    times: dict[str, list[float]] = {key: [] for key, _, _ in benches}
    for _ in range(rounds):
        for key, _, run in benches:
            gc.collect()
            times[key].append(run(inputs, streams, stamps) / len(inputs))

    def paired(num: str, den: str) -> float:
        return statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))

    print(
        f"merger: {streams} streams x {stamps} timestamps ({len(inputs)} images), "
        f"{rounds} rounds; median (range) per image"
    )
    for key, label, _ in benches:
        us = [t * 1e6 for t in times[key]]
        print(f"  {label:62s} {statistics.median(us):8.2f} us ({spread(us)})")
    per_image = statistics.median(times["streams"]) * 1e6
    met = "met" if per_image <= TARGET_MERGER_US else "MISSED"
    print(
        f"merger overhead, {streams} streams: {statistics.median(times['daq']) * 1e6:.1f} us per "
        f"image incl. DATE-OBS parse, {per_image:.1f} us as MergedStreams feeds it "
        f"(target <= {TARGET_MERGER_US:g} us: {met})"
    )
    print(
        f"merger ratios (paired medians): daqwire / dict baseline {paired('daq', 'dict'):.1f}x, "
        f"daqwire / tkp-style {paired('daq', 'tkp'):.2f}x, "
        f"parse_date_obs / daqwire {paired('parse', 'daq'):.2f}, "
        f"MergedStreams path / daqwire {paired('streams', 'daq'):.2f}x"
    )


# --- memory ------------------------------------------------------------------------------------


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory_consumer(
    addresses: list[tuple[str, int]], out: Any, back_log: int, groups: int, timeout_s: float
) -> None:
    """Child process: MergedStreams that never takes a group; report its peak RSS (KiB)."""
    quiet_logs()
    gc.collect()
    start_kib = rss_kib()  # now, after the imports (ru_maxrss may hold an import-time peak)
    streams = MergedStreams(addresses, back_log=back_log)
    arrivals: dict[str, list[float]] = {}

    def timed(sink: Callable[[StreamImage], object]) -> Callable[[StreamImage], object]:
        def record(item: StreamImage) -> object:
            arrivals.setdefault(item.date_obs, []).append(time.monotonic())
            return sink(item)

        return record

    for connector in streams.connectors:  # note when each window reaches the merger
        connector.sink = timed(connector.sink)
    samples: list[tuple[float, int, int, int, int, float, int]] = []
    t0 = time.monotonic()
    streams.start()
    try:
        while True:
            stats = streams.merger_stats
            elapsed = time.monotonic() - t0
            usage = resource.getrusage(resource.RUSAGE_SELF)
            samples.append(
                (
                    elapsed,
                    stats.groups,
                    stats.backlog,
                    stats.dropped_groups,
                    rss_kib(),
                    usage.ru_utime + usage.ru_stime,
                    usage.ru_minflt,
                )
            )
            if stats.groups >= groups or elapsed > timeout_s:
                break
            time.sleep(0.25)
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu_s = cpu_seconds()
        stream_stats = streams.stream_stats  # before stopping: a stop mid-window counts
        for connector in streams.connectors:
            connector.stop()
        # the windows still held once reading stopped: backlog, then the open groups
        held_images = 0
        for closing in (False, True):
            if closing:
                streams.merger.close()
            while True:
                try:
                    group = streams.merger.get_nowait()
                except Empty:
                    break
                if group is None:
                    break
                held_images += len(group.images)
    finally:
        streams.close()
    skews = [max(t) - min(t) for t in arrivals.values() if len(t) == len(addresses)]
    out.put(
        {
            "start_kib": start_kib,
            "peak_kib": peak_kib,
            "merger": stats,
            "samples": samples,
            "elapsed": time.monotonic() - t0,
            "windows": sum(s.windows for s in stream_stats),
            "errors": sum(s.errors + s.truncated + s.reconnects for s in stream_stats),
            "held_images": held_images,
            "skews": skews,
            "cpu_s": cpu_s,
        }
    )


def cpu_phases(samples: list[tuple[float, int, int, int, int, float, int]], back_log: int) -> str:
    """CPU time and page faults per group while the backlog fills, and once it is full."""
    full = next((i for i, sample in enumerate(samples) if sample[1] >= back_log + 1), None)
    parts = []
    for label, first, last in (("filling", 0, full), ("full", full, len(samples) - 1)):
        if first is None or last is None or last <= first:
            continue
        a, b = samples[first], samples[last]
        groups = b[1] - a[1]
        if groups <= 0:
            continue
        cpu = (b[5] - a[5]) / groups
        core = (b[5] - a[5]) / max(b[0] - a[0], 1e-9)
        faults = (b[6] - a[6]) / groups
        parts.append(f"{label} {cpu * 1e3:,.0f} ms ({core:.0%}), {faults:,.0f} faults")
    return "; ".join(parts)


def run_memory(
    ctx: SpawnContext, streams: int, size: Size, back_log: int, rate_hz: float, quick: bool
) -> None:
    wbytes = window_bytes(size)
    held = (back_log + 1) * streams * wbytes
    groups = back_log + 5  # the backlog fills, then drop-oldest runs 4 times
    timeout_s = groups / rate_hz * 3 + 20
    print(
        f"memory: Emulator (child process) {streams} streams of {fmt_size(size)} at "
        f"{rate_hz:g} Hz; a fresh child process runs MergedStreams(back_log={back_log}) and "
        f"takes no group until {groups} groups were emitted"
    )
    sender, (ready, addresses) = start_emulator(ctx, streams, size, rate_hz)
    emu_stats: dict[str, int] = {}
    try:
        out = ctx.Queue()
        proc = ctx.Process(
            target=memory_consumer,
            args=(addresses, out, back_log, groups, timeout_s),
            name="memory-consumer",
        )
        proc.start()
        try:
            result = out.get(timeout=timeout_s + 120)
        except Empty:
            print("memory: the consumer process gave no result; skipped")
            return
        finally:
            stop_process(proc, 30.0)
        sender.stop.set()
        try:
            emu_stats = ready.get(timeout=30)
        except Empty:
            pass
    finally:
        sender.close()
    stats = result["merger"]
    peak = result["peak_kib"] * 1024
    start = result["start_kib"] * 1024
    ratio = peak / held
    verdict = "met" if ratio <= TARGET_MEMORY else "MISSED"
    if quick:
        verdict = "not judged in --quick: the interpreter's own RSS dominates"
    print(
        f"  held: (back_log + 1) x {streams} x {wbytes:,} bytes = {held / 1e6:,.0f} MB; "
        f"consumer RSS before connecting {start / 1e6:,.0f} MB (after its imports)"
    )
    print(
        f"memory {streams} x {fmt_size(size)}, back_log {back_log}: peak RSS "
        f"{peak / 1e6:,.0f} MB, peak / held {ratio:.2f} (target <= {TARGET_MEMORY}: {verdict}); "
        f"(peak - start) / held {(peak - start) / held:.2f}"
    )
    print(
        f"  groups emitted {stats.groups} ({stats.complete_groups} complete, "
        f"{stats.partial_groups} partial) in {result['elapsed']:.1f} s; dropped (oldest) "
        f"{stats.dropped_groups} groups ({stats.dropped_images} images); backlog "
        f"{stats.backlog}; late {stats.late}, duplicates {stats.duplicates}; windows read "
        f"{result['windows']}, stream errors/reconnects {result['errors']}"
    )
    if result["skews"]:
        skews = result["skews"]
        print(
            f"  images still held when reading stopped: {result['held_images']} of "
            f"{(back_log + 1) * streams}; arrival spread of one timestamp's {streams} windows: "
            f"median {statistics.median(skews):.2f} s, max {max(skews):.2f} s "
            "(a group goes out partial after max_wait_s = 2 s)"
        )
    if emu_stats:
        print(
            f"  emulator: {emu_stats['ticks']} ticks, {emu_stats['ticks_skipped']} skipped, "
            f"{emu_stats['frames_dropped']} frames dropped for slow clients; emulator CPU "
            f"{emu_stats['cpu_s'] / max(emu_stats['ticks'], 1) * 1e3:,.0f} ms and "
            f"{emu_stats['faults'] / max(emu_stats['ticks'], 1):,.0f} minor page faults per "
            f"tick (after start-up); consumer CPU {result['cpu_s']:.1f} s in "
            f"{result['elapsed']:.1f} s"
        )
    if stats.groups < groups:
        print(f"  warning: only {stats.groups} of {groups} groups within {timeout_s:.0f} s")
    trace = ", ".join(
        f"{t:.0f}s:{g}/{b}/{d}/{kib * 1024 / 1e6:,.0f}"
        for t, g, b, d, kib, _, _ in result["samples"][:: max(1, len(result["samples"]) // 12)]
    )
    print(f"  trace (time: groups/backlog/dropped/RSS MB): {trace}")
    phases = cpu_phases(result["samples"], back_log)
    if phases:
        print(
            "  consumer CPU per group emitted (% of one core) and minor page faults per group: "
            + phases
        )


# --- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small and short (CI, a few seconds)")
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=None,
        help="image sizes for throughput, N or NxM, comma-separated "
        "(default 256,1024,2300; --quick 256,1024)",
    )
    parser.add_argument(
        "--windows",
        type=int,
        default=None,
        help="windows per trial and reader (default: about 1 GB worth; --quick 40 MB)",
    )
    parser.add_argument(
        "--trials", type=int, default=None, help="paired throughput trials (default 15; quick 3)"
    )
    parser.add_argument(
        "--sender",
        choices=("replay", "emulator"),
        default="replay",
        help="replay: pre-encoded windows, sender-light (default); emulator: daqwire Emulator "
        "free-running, which encodes every window and can be the bottleneck at large sizes",
    )
    parser.add_argument(
        "--stamps", type=int, default=None, help="merger timestamps (default 200; quick 40)"
    )
    parser.add_argument(
        "--memory-rate-hz",
        type=float,
        default=None,
        help="emulator rate in the memory check (default 0.5; quick 5). At 1 Hz this 2-core "
        "VM can fall behind, and late streams turn groups partial",
    )
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-merger", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    quick = args.quick
    sizes = args.sizes or (
        [(256, 256), (1024, 1024)] if quick else [(256, 256), (1024, 1024), (2300, 2300)]
    )
    trials = args.trials if args.trials is not None else (3 if quick else 15)
    stamps = args.stamps if args.stamps is not None else (40 if quick else 200)
    if args.memory_rate_hz is not None and not args.memory_rate_hz > 0:
        parser.error("--memory-rate-hz must be > 0")
    if trials < 1 or stamps < 2 or (args.windows is not None and args.windows < 1):
        parser.error("--trials and --windows must be >= 1, --stamps >= 2")
    quiet_logs()
    ctx = mp.get_context("spawn")

    print("AARTFAAC stream benchmark (loopback TCP)")
    print(
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"numpy {np.__version__}, {platform.machine()}, {os.cpu_count()} CPUs"
        + (", --quick" if quick else "")
    )
    started = time.monotonic()
    if not args.skip_throughput:
        print()
        run_throughput(ctx, sizes, args.windows, trials, args.sender, quick)
    if not args.skip_merger:
        print()
        run_merger(16, stamps, 3 if quick else 7)
    if not args.skip_memory:
        print()
        if quick:
            run_memory(ctx, 4, (256, 256), 3, args.memory_rate_hz or 5.0, quick=True)
        else:
            run_memory(ctx, 16, (2300, 2300), 10, args.memory_rate_hz or 0.5, quick=False)
    print()
    print(
        f"done in {time.monotonic() - started:.0f} s "
        "(targets are informational; ratios are paired medians)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
