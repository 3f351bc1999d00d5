"""The main job of ``daqwire demo``: prove the generated code is current, round-trip a
synthetic all-sky image through the AARTFAAC window codec, then merge three live streams."""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

import numpy as np
import numpy.typing as npt

__all__ = ["run_demo", "synthetic_sky", "synthetic_sky_header"]

#: (x, y, peak Jy/beam) of the point sources in the synthetic sky
SOURCES = ((40, 30, 90.0), (200, 150, 55.0), (128, 96, 30.0))


def synthetic_sky(width: int, height: int, *, seed: int = 2026) -> npt.NDArray[np.float32]:
    """A [y, x] float32 all-sky image: Gaussian noise plus point sources (one NaN pixel)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0.0, 1.0, size=(height, width)).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width]
    for x, y, peak in SOURCES:
        if x < width and y < height:
            image += (peak * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0)).astype(np.float32)
    image[height - 1, width - 1] = np.nan  # a flagged pixel, as real imagers produce
    return image


def synthetic_sky_header(width: int, height: int, date_obs: dt.datetime) -> str:
    """FITS header text for the synthetic image, as an AARTFAAC imager would send it."""
    from astropy.io import fits

    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = -32
    header["NAXIS"] = 2
    header["NAXIS1"] = width
    header["NAXIS2"] = height
    header["CTYPE1"] = "RA---SIN"
    header["CRVAL1"] = 0.0
    header["CDELT1"] = -180.0 / width
    header["CRPIX1"] = width / 2 + 1
    header["CUNIT1"] = "deg"
    header["CTYPE2"] = "DEC--SIN"
    header["CRVAL2"] = 52.915
    header["CDELT2"] = 180.0 / height
    header["CRPIX2"] = height / 2 + 1
    header["CUNIT2"] = "deg"
    header["BUNIT"] = "JY/BEAM"
    header["TELESCOP"] = "AARTFAAC"
    header["DATE-OBS"] = date_obs.isoformat()
    header["TIMESYS"] = "UTC"
    header["ORIGIN"] = "daqwire demo (synthetic sky)"
    return str(header.tostring())


def _check_generated(out: TextIO) -> bool:
    from daqwire.codegen.render import check, default_out_dir, default_specs_dir, render_all

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="daqwire-demo-") as tmp:
        files = render_all(default_specs_dir())
        from daqwire.codegen.render import write

        write(files, Path(tmp))
        fresh = sorted(p.name for p in Path(tmp).iterdir())
    diff = check(files, default_out_dir())
    elapsed = time.perf_counter() - started
    if diff:
        out.write(diff)
        print(
            "generated code is STALE: it differs from what the specs produce (diff above); "
            "run `daqwire generate`",
            file=out,
        )
        return False
    print(
        f"generated code matches the specs: {len(fresh)} modules regenerated into a temporary "
        f"folder in {elapsed:.2f} s ({', '.join(fresh)})",
        file=out,
    )
    return True


def run_demo(
    *,
    size: tuple[int, int] = (256, 192),
    seed: int = 2026,
    live_s: float = 4.0,
    pyexplabsys: bool = True,
    constellation: bool = True,
    lsst: bool = True,
    out: TextIO | None = None,
) -> int:
    """Run the demo, printing to ``out`` (stdout); return the exit code."""
    from astropy.io import fits

    from daqwire.generated import aartfaac

    out = out or sys.stdout
    print("daqwire demo", file=out)
    print("== 1. generated code against the specs", file=out)
    if not _check_generated(out):
        return 1

    width, height = size
    print(f"\n== 2. AARTFAAC window: synthetic {width}x{height} sky image", file=out)
    sky = synthetic_sky(width, height, seed=seed)
    date_obs = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    window = aartfaac.Window(fits=synthetic_sky_header(width, height, date_obs), image=sky)
    wire = aartfaac.encode_window(window)
    print(f"encoded {len(wire)} bytes (pixel order naxis2_fastest, as tkp's emulator)", file=out)
    decoded = aartfaac.decode_window(wire)
    if decoded != window:
        print("ROUND TRIP FAILED: the decoded window differs from the encoded one", file=out)
        return 1

    print("\nheader (512 bytes)", file=out)
    print(f"  magic         {decoded.magic:#018x}  (wire bytes {wire[:8]!r})", file=out)
    print(f"  fits_length   {decoded.fits_length}", file=out)
    print(f"  array_length  {decoded.array_length}", file=out)

    header = fits.Header.fromstring(decoded.fits)
    print(f"\nFITS keywords ({len(header)} cards)", file=out)
    for card in header.cards:
        print(f"  {card.keyword:<8} = {card.value!r}", file=out)

    image = decoded.image
    finite = image[np.isfinite(image)]
    peak_y, peak_x = np.unravel_index(int(np.nanargmax(image)), image.shape)
    print("\nimage", file=out)
    zero_copy = np.shares_memory(image, np.frombuffer(wire, np.uint8))
    print(
        f"  shape (NAXIS2, NAXIS1) {image.shape}, dtype {image.dtype}, "
        f"zero-copy view of the wire bytes: {zero_copy}",
        file=out,
    )
    print(
        f"  min {finite.min():.3f}  max {finite.max():.3f}  mean {finite.mean():.4f}  "
        f"std {finite.std():.4f}  NaN pixels {int(np.isnan(image).sum())}",
        file=out,
    )
    print(
        f"  brightest pixel at x={peak_x}, y={peak_y} (the synthetic source was put at "
        f"x={SOURCES[0][0]}, y={SOURCES[0][1]})",
        file=out,
    )
    print("\nround trip exact: the decoded window equals the encoded one", file=out)
    if live_s > 0 and _live_merge(out, streams=3, duration_s=live_s, size=size) != 0:
        return 1
    section = 4 if live_s > 0 else 3
    if pyexplabsys:
        from daqwire.pyexplabsys.demo import run_pyexplabsys_demo

        if run_pyexplabsys_demo(out, section=section) != 0:
            return 1
        section += 1
    if constellation:
        from daqwire.constellation.demo import run_constellation_demo

        if run_constellation_demo(out, section=section) != 0:
            return 1
        section += 1
    if lsst:
        from daqwire.lsst.demo import run_lsst_demo

        return run_lsst_demo(out, section=section)
    return 0


def _live_merge(out: TextIO, *, streams: int, duration_s: float, size: tuple[int, int]) -> int:
    """Serve ``streams`` emulated streams on free loopback ports, read and merge them live."""
    from daqwire.aartfaac import Emulator, MergedStreams
    from daqwire.aartfaac.emulator import sky_peak_position

    width, height = size
    rate_hz = 2.0
    print(
        f"\n== 3. live: emulator with {streams} streams of {width}x{height} at {rate_hz:g} Hz "
        f"on loopback; reading and merging for {duration_s:g} s",
        file=out,
    )
    with Emulator([0] * streams, size=size, rate_hz=rate_hz, pattern="sky") as emulator:
        addresses = emulator.addresses
        print("emulator listening on " + ", ".join(f"{h}:{p}" for h, p in addresses), file=out)
        merged = MergedStreams(addresses, max_wait_s=1.0, timeout_s=5.0)
        groups = []
        with merged:
            deadline = time.monotonic() + duration_s
            while time.monotonic() < deadline:
                try:
                    group = merged.get(timeout_s=max(0.0, deadline - time.monotonic()))
                except Exception:  # queue.Empty at the deadline
                    break
                if group is None:
                    break
                groups.append(group)
        groups.extend(merged.merger)  # what close() flushed
        px, py = sky_peak_position(width, height)
        print(
            f"\nmerged groups ({len(groups)}); the emulator's brightest source is at "
            f"x={px}, y={py}",
            file=out,
        )
        for group in groups:
            peaks = []
            for item in sorted(group.images, key=lambda i: i.stream):
                image = item.window.image
                y, x = np.unravel_index(int(np.nanargmax(image)), image.shape)
                peaks.append(f"{item.stream.rsplit(':', 1)[1]}:peak(x={x},y={y})")
            state = "complete" if group.complete else f"partial ({group.reason})"
            print(
                f"  {group.timestamp.isoformat()}  {len(group.images)}/{streams} {state}  "
                + " ".join(peaks),
                file=out,
            )
        print("\nstream statistics", file=out)
        for st in merged.stream_stats:
            print(
                f"  {st.stream}: windows {st.windows}, bytes {st.bytes}, resyncs {st.resyncs}, "
                f"errors {st.errors}, reconnects {st.reconnects}",
                file=out,
            )
        m = merged.merger_stats
        print(
            f"merger: images {m.images}, groups {m.groups} (complete {m.complete_groups}, "
            f"partial {m.partial_groups}), late {m.late}, duplicates {m.duplicates}, "
            f"bad timestamps {m.bad_timestamps}, dropped groups {m.dropped_groups}",
            file=out,
        )
        complete = sum(g.complete for g in groups)
    if complete == 0:
        print("LIVE MERGE FAILED: no complete group", file=out)
        return 1
    print(f"\nlive merge ok: {complete} complete groups of {streams} streams", file=out)
    return 0
