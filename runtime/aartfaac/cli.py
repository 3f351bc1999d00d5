"""``daqwire aartfaac``: run an emulator, read and merge live streams, take a PNG snapshot."""

from __future__ import annotations

import argparse
import hashlib
import json
import queue
import socket
import sys
import time
from typing import Any, TextIO

import numpy as np

from daqwire.aartfaac.merging import BACK_LOG, MergedGroup
from daqwire.aartfaac.reader import DEFAULT_TIMEOUT_S, StreamImage, WindowReader, stream_name
from daqwire.aartfaac.streams import MergedStreams, parse_address
from daqwire.errors import RemoteProtocolError
from daqwire.generated.aartfaac import WINDOW_MAX_FITS_BYTES, WINDOW_MAX_IMAGE_BYTES

__all__ = ["DESCRIPTION", "EPILOG", "add_arguments", "image_sha256"]

DESCRIPTION = """\
AARTFAAC all-sky image streams (the protocol tkp.stream reads): an imager emulator, a
reader that merges several streams by DATE-OBS, and a PNG snapshot of one image.
"""

EPILOG = """\
Try it on one machine: the emulator in one terminal, the reader in another.

examples:
  daqwire aartfaac emulate --ports 6666-6668 --size 256x256 --rate-hz 1
  daqwire aartfaac read 127.0.0.1:6666 127.0.0.1:6667 127.0.0.1:6668 --count 5
  daqwire aartfaac snapshot 127.0.0.1:6666 --png sky.png

Run `daqwire aartfaac COMMAND --help` for the options of a command.
"""

EMULATE_DESCRIPTION = """\
Serve synthetic all-sky images as AARTFAAC windows on one or more TCP ports, like tkp's
stream_emu.py: one image stream (band) per port. Every port sends the same DATE-OBS on
each tick, so a reader can merge them. A client that reads too slowly loses its oldest
windows; the other clients do not wait for it. Runs until Ctrl-C or --duration-s.
"""

EMULATE_EPILOG = """\
examples:
  daqwire aartfaac emulate
  daqwire aartfaac emulate --ports 6666-6668 --size 256x256 --rate-hz 1
  daqwire aartfaac emulate --ports 0 --pattern index --duration-s 10
  daqwire aartfaac emulate --host 0.0.0.0 --ports 6666,6670 --freqs-hz 6e6,8e6
"""

READ_DESCRIPTION = """\
Connect to one or more AARTFAAC streams and print one line per window (one stream) or
per group of images with the same DATE-OBS (several streams). A stream that goes silent
is reconnected; bad windows are skipped and counted. --json prints the timestamp, the
streams, the shape and the sha256 of the C-order float32 [y, x] pixels. Ends after
--count lines, after --duration-s or on Ctrl-C, then prints a summary per stream on
stderr (with a live status line there while it runs on a terminal).
"""

READ_EPILOG = """\
examples:
  daqwire aartfaac read 127.0.0.1:6666 --count 3
  daqwire aartfaac read 127.0.0.1:6666 127.0.0.1:6667 127.0.0.1:6668 --count 5
  daqwire aartfaac read 127.0.0.1:6666 --json --duration-s 10
  daqwire aartfaac read imager.example.org:6666 --pixel-order naxis1_fastest
"""

SNAPSHOT_DESCRIPTION = """\
Connect to one AARTFAAC stream and write its next image as a PNG, NAXIS2 (north) up as
in FITS, with black and white at two percentiles of the pixels. Bad windows are skipped.
Needs matplotlib: pip install 'daqwire[png]'.
"""

SNAPSHOT_EPILOG = """\
examples:
  daqwire aartfaac snapshot 127.0.0.1:6666 --png sky.png
  daqwire aartfaac snapshot 127.0.0.1:6666 --png sky.png --cmap viridis --low 5 --high 99
"""


def image_sha256(image: Any) -> str:
    """sha256 of the pixels as C-order little-endian float32 [y, x] (what ``read`` prints)."""
    return hashlib.sha256(np.ascontiguousarray(image, dtype="<f4").data).hexdigest()


def _address(text: str) -> tuple[str, int]:
    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _image_record(item: StreamImage) -> dict[str, Any]:
    image = item.window.image
    return {"stream": item.stream, "shape": list(image.shape), "sha256": image_sha256(image)}


def _group_record(group: MergedGroup[StreamImage], *, single: bool) -> dict[str, Any]:
    images = [_image_record(item) for item in group.images]
    timestamp = group.timestamp.isoformat()
    if single and len(images) == 1:
        return {"timestamp": timestamp, **images[0]}
    return {
        "timestamp": timestamp,
        "complete": group.complete,
        "streams": [i["stream"] for i in images],
        "images": images,
    }


def _group_text(record: dict[str, Any], nstreams: int) -> str:
    if "images" not in record:
        ny, nx = record["shape"]
        return f"{record['timestamp']}  {record['stream']}  {nx}x{ny}  {record['sha256'][:16]}"
    parts = [f"{i['stream']}={i['sha256'][:8]}" for i in record["images"]]
    flag = "" if record["complete"] else "  (partial)"
    return f"{record['timestamp']}  {len(parts)}/{nstreams} streams{flag}  " + " ".join(parts)


class _Status:
    """A one-line live status on a TTY: throughput and counters, refreshed about once a second."""

    def __init__(self, out: TextIO, streams: MergedStreams) -> None:
        self.out = out
        self.streams = streams
        self.enabled = out.isatty()
        self.start = self.last = time.monotonic()
        self.last_bytes = 0
        self.last_windows = 0

    def update(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 1.0 and not force):
            return
        stats = self.streams.stream_stats
        nbytes = sum(s.bytes for s in stats)
        nwin = sum(s.windows for s in stats)
        span = max(now - self.last, 1e-9)
        m = self.streams.merger_stats
        line = (
            f"{(nwin - self.last_windows) / span:6.1f} windows/s "
            f"{(nbytes - self.last_bytes) / span / 1e6:8.1f} MB/s | "
            f"connected {sum(s.connected for s in stats)}/{len(stats)} "
            f"resyncs {sum(s.resyncs for s in stats)} "
            f"reconnects {sum(s.reconnects for s in stats)} "
            f"errors {sum(s.errors for s in stats)} | groups {m.groups} late {m.late} "
            f"dropped {m.dropped_groups}"
        )
        self.out.write("\r" + line[:160].ljust(160))
        self.out.flush()
        self.last, self.last_bytes, self.last_windows = now, nbytes, nwin

    def clear(self) -> None:
        if self.enabled:
            self.out.write("\r" + " " * 160 + "\r")
            self.out.flush()


def _summary(streams: MergedStreams, out: TextIO) -> None:
    for s in streams.stream_stats:
        out.write(
            f"{s.stream}: windows {s.windows}, bytes {s.bytes}, resyncs {s.resyncs} "
            f"(skipped {s.skipped_bytes} bytes), errors {s.errors}, timeouts {s.timeouts}, "
            f"reconnects {s.reconnects}, connect failures {s.connect_failures}\n"
        )
    m = streams.merger_stats
    out.write(
        f"merger: groups {m.groups} (complete {m.complete_groups}, partial {m.partial_groups}), "
        f"late {m.late}, duplicates {m.duplicates}, bad timestamps {m.bad_timestamps}, "
        f"dropped groups {m.dropped_groups}\n"
    )


def run_read(args: argparse.Namespace) -> int:
    """Print one line per window or merged group until --count, --duration-s or Ctrl-C."""
    addresses: list[tuple[str, int]] = args.addresses
    single = len(addresses) == 1
    streams = MergedStreams(
        addresses,
        pixel_order=args.pixel_order,
        max_wait_s=args.max_wait_s,
        back_log=args.back_log,
        timeout_s=args.timeout_s,
        max_fits_bytes=args.max_fits_bytes,
        max_image_bytes=args.max_image_bytes,
    )
    status = _Status(sys.stderr, streams)
    deadline = None if args.duration_s is None else time.monotonic() + args.duration_s
    printed = 0
    streams.start()
    try:
        while args.count is None or printed < args.count:
            if deadline is not None and time.monotonic() >= deadline:
                break
            try:
                group = streams.get(timeout_s=0.25)
            except queue.Empty:
                status.update()
                continue
            if group is None:
                break
            record = _group_record(group, single=single)
            del group
            status.clear()
            if args.json:
                print(json.dumps(record), flush=True)
            else:
                print(_group_text(record, len(addresses)), flush=True)
            printed += 1
            status.update(force=True)
    except KeyboardInterrupt:
        pass
    finally:
        status.clear()
        streams.close()
    if args.count is None or printed < args.count:
        # flushed groups after close (the last, possibly partial, ones)
        for group in streams.merger:
            if args.count is not None and printed >= args.count:
                break
            record = _group_record(group, single=single)
            print(json.dumps(record) if args.json else _group_text(record, len(addresses)))
            printed += 1
    _summary(streams, sys.stderr)
    return 0


def run_snapshot(args: argparse.Namespace) -> int:
    """Write a PNG of the next good image of one stream."""
    try:
        from matplotlib import image as mpl_image
    except ImportError:
        print(
            "snapshot needs matplotlib: pip install 'daqwire[png]' (or pip install matplotlib)",
            file=sys.stderr,
        )
        return 2
    host, port = args.address
    name = stream_name(host, port)
    try:
        sock = socket.create_connection((host, port), timeout=args.timeout_s)
    except OSError as exc:
        print(f"{name}: cannot connect: {exc}", file=sys.stderr)
        return 1
    with sock:
        reader = WindowReader(
            sock, stream=name, timeout_s=args.timeout_s, pixel_order=args.pixel_order
        )
        while True:
            try:
                window = reader.read()
                break
            except RemoteProtocolError as exc:
                print(f"{name}: skipping a bad window: {exc}", file=sys.stderr)
            except OSError as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                return 1
    image = np.asarray(window.image, dtype=np.float64)
    finite = image[np.isfinite(image)]
    lo, hi = (
        (float(np.percentile(finite, args.low)), float(np.percentile(finite, args.high)))
        if finite.size
        else (0.0, 1.0)
    )
    # FITS convention: pixel (0, 0) at the bottom left, so origin="lower"
    mpl_image.imsave(args.png, image, cmap=args.cmap, vmin=lo, vmax=hi, origin="lower")
    ny, nx = image.shape
    print(f"wrote {args.png}: {nx}x{ny} image from {name}, colour range {lo:.4g} .. {hi:.4g}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``emulate``, ``read`` and ``snapshot`` subcommands of ``daqwire aartfaac``."""
    from daqwire.aartfaac.emulator import add_emulate_arguments, run_emulate

    sub = parser.add_subparsers(dest="aartfaac_command", metavar="COMMAND", required=True)
    emulate = sub.add_parser(
        "emulate",
        help="serve synthetic AARTFAAC windows (a tkp stream_emu.py replacement)",
        description=EMULATE_DESCRIPTION,
        epilog=EMULATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_emulate_arguments(emulate)
    emulate.set_defaults(func=run_emulate)

    read = sub.add_parser(
        "read",
        help="read streams; print a line per window or per merged group",
        description=READ_DESCRIPTION,
        epilog=READ_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    read.add_argument(
        "addresses",
        nargs="+",
        type=_address,
        metavar="HOST:PORT",
        help="the streams, one per port of the imager or emulator",
    )
    read.add_argument("--count", type=int, default=None, metavar="N", help="stop after N lines")
    read.add_argument(
        "--duration-s", type=float, default=None, metavar="S", help="stop after S seconds"
    )
    read.add_argument("--json", action="store_true", help="print JSON lines")
    read.add_argument(
        "--max-wait-s",
        type=float,
        default=2.0,
        metavar="S",
        help="emit an incomplete group after this long (default 2)",
    )
    read.add_argument(
        "--back-log",
        type=int,
        default=BACK_LOG,
        metavar="N",
        help=f"groups kept for a slow consumer; the oldest is dropped (default {BACK_LOG})",
    )
    read.add_argument(
        "--timeout-s",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"a stream silent for this long is reconnected (default {DEFAULT_TIMEOUT_S:g})",
    )
    read.add_argument(
        "--max-fits-bytes",
        type=int,
        default=WINDOW_MAX_FITS_BYTES,
        metavar="N",
        help=f"largest FITS header text accepted (default {WINDOW_MAX_FITS_BYTES})",
    )
    read.add_argument(
        "--max-image-bytes",
        type=int,
        default=WINDOW_MAX_IMAGE_BYTES,
        metavar="N",
        help=f"largest image accepted, in bytes (default {WINDOW_MAX_IMAGE_BYTES})",
    )
    read.add_argument(
        "--pixel-order",
        choices=("naxis2_fastest", "naxis1_fastest"),
        default="naxis2_fastest",
        help="pixel order on the wire: naxis2_fastest = tkp's emulator (default)",
    )
    read.set_defaults(func=run_read)

    snap = sub.add_parser(
        "snapshot",
        help="write a PNG of the next image of a stream",
        description=SNAPSHOT_DESCRIPTION,
        epilog=SNAPSHOT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    snap.add_argument("address", type=_address, metavar="HOST:PORT", help="the stream")
    snap.add_argument("--png", required=True, metavar="FILE", help="where to write the PNG")
    snap.add_argument(
        "--cmap", default="inferno", metavar="NAME", help="matplotlib colour map (inferno)"
    )
    snap.add_argument(
        "--low", type=float, default=1.0, metavar="PCT", help="percentile shown black (1)"
    )
    snap.add_argument(
        "--high", type=float, default=99.5, metavar="PCT", help="percentile shown white (99.5)"
    )
    snap.add_argument(
        "--timeout-s",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"connect and read timeout (default {DEFAULT_TIMEOUT_S:g})",
    )
    snap.add_argument(
        "--pixel-order",
        choices=("naxis2_fastest", "naxis1_fastest"),
        default="naxis2_fastest",
        help="pixel order on the wire (default naxis2_fastest, tkp's emulator)",
    )
    snap.set_defaults(func=run_snapshot)
