"""What the emulator sends: the reference's 4-axis FITS header, synthetic images, DATE-OBS."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeAlias, get_args

import numpy as np
import numpy.typing as npt
from astropy.io import fits

from daqwire.generated.aartfaac import WINDOW_MAX_IMAGE_BYTES

__all__ = [
    "ImagePattern",
    "emulator_header",
    "emulator_image",
    "format_date_obs",
    "sky_peak_position",
]

ImagePattern: TypeAlias = Literal["sky", "index", "noise"]
_PATTERNS: Final = get_args(ImagePattern)

#: LOFAR's latitude: the declination of the zenith the all-sky image is centred on
_ZENITH_DEC_DEG: Final = 52.915
#: AARTFAAC subband width, used as the width of the FREQ axis
_SUBBAND_HZ: Final = 195312.5


def format_date_obs(t: datetime) -> str:
    """``t`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffff`` (always 6 digits, no zone suffix).

    Deviation from tkp's emulator, which sends naive *local* time and drops the fraction when
    it is zero: this is UTC (matching ``TIMESYS = 'UTC'``) with a fixed width. A naive ``t`` is
    taken to be UTC already.
    """
    return _utc_naive(t).isoformat(timespec="microseconds")


def _utc_naive(t: datetime) -> datetime:
    """``t`` as a naive UTC datetime (a naive ``t`` is taken as UTC)."""
    if t.tzinfo is not None and t.utcoffset() is not None:
        return t.astimezone(UTC).replace(tzinfo=None)
    return t.replace(tzinfo=None)


def _restfreq(freq_hz: float) -> str:
    """RESTFREQ as tkp's emulator sends it: the integer Hz as a string."""
    return str(round(freq_hz))


def emulator_header(naxis1: int, naxis2: int, *, freq_hz: float, date_obs: str) -> Any:
    """The emulator's CASA-like 4-axis FITS header (an ``astropy.io.fits.Header``).

    Same keywords, in the same order, as the reference emulator's header (golden vectors);
    the WCS is scaled so the image spans the whole sky. Deviation: ``CRVAL3`` (the FREQ axis,
    which TraP reads before RESTFREQ) is ``freq_hz``, so each port is a distinct band for TraP.
    """
    _check_size((naxis1, naxis2))
    _check_freq(freq_hz)
    # SIN projection: direction cosines -1..1 (horizon to horizon) over the image width
    cdelt1 = math.degrees(2.0 / naxis1)
    cdelt2 = math.degrees(2.0 / naxis2)
    return fits.Header(
        [
            ("SIMPLE", True, "conforms to FITS standard"),
            ("BITPIX", -32, "array data type"),
            ("NAXIS", 4, "number of array dimensions"),
            ("NAXIS1", naxis1),
            ("NAXIS2", naxis2),
            ("NAXIS3", 1),
            ("NAXIS4", 1),
            ("EXTEND", True),
            ("BSCALE", 1.0),
            ("BZERO", 0.0),
            ("BMAJ", 1.0, "deg (synthetic)"),
            ("BMIN", 1.0, "deg (synthetic)"),
            ("BPA", 0.0, "deg"),
            ("BTYPE", "Intensity"),
            ("OBJECT", "AARTFAAC all-sky"),
            ("BUNIT", "JY/BEAM"),
            ("EQUINOX", 2000.0),
            ("RADESYS", "FK5"),
            ("LONPOLE", 180.0),
            ("LATPOLE", _ZENITH_DEC_DEG),
            ("CTYPE1", "RA---SIN"),
            ("CRVAL1", 0.0),
            ("CDELT1", -cdelt1),
            ("CRPIX1", naxis1 / 2 + 1),
            ("CUNIT1", "deg"),
            ("CTYPE2", "DEC--SIN"),
            ("CRVAL2", _ZENITH_DEC_DEG),
            ("CDELT2", cdelt2),
            ("CRPIX2", naxis2 / 2 + 1),
            ("CUNIT2", "deg"),
            ("CTYPE3", "FREQ"),
            ("CRVAL3", float(freq_hz), "Hz, this port's band (= RESTFREQ)"),
            ("CDELT3", _SUBBAND_HZ),
            ("CRPIX3", 1.0),
            ("CUNIT3", "Hz"),
            ("CTYPE4", "STOKES"),
            ("CRVAL4", 1.0),
            ("CDELT4", 1.0),
            ("CRPIX4", 1.0),
            ("CUNIT4", ""),
            ("TELESCOP", "AARTFAAC"),
            ("INSTRUME", "AARTFAAC"),
            ("DATE-OBS", date_obs, "send time of the window (UTC)"),
            ("TIMESYS", "UTC"),
            ("ORIGIN", "daqwire AARTFAAC emulator"),
            ("RESTFREQ", _restfreq(freq_hz)),
            ("COMMENT", "Synthetic all-sky image from the daqwire AARTFAAC emulator"),
        ]
    )


def sky_peak_position(naxis1: int, naxis2: int) -> tuple[int, int]:
    """Pixel ``(x, y)`` of the brightest source of the ``sky`` pattern: off-centre, off-diagonal."""
    return naxis1 // 4, (2 * naxis2) // 3


#: peak of the brightest source, Jy/beam; the others are at most half of it; noise sigma is 1
_SKY_PEAK: Final = 100.0
_SKY_SOURCES: Final = 4
#: gaussian sigma of every source in pixels: narrow, so no noise pixel can outshine a peak
_SKY_SIGMA_PX: Final = 1.2


def emulator_image(
    naxis1: int, naxis2: int, *, pattern: ImagePattern = "sky", seed: int = 0
) -> npt.NDArray[np.float32]:
    """A ``[y, x]`` float32 test image of shape ``(naxis2, naxis1)``, deterministic from ``seed``.

    ``index``: pixel (x, y) = y*NAXIS1 + x, as in the golden vectors. ``noise``: gaussian noise.
    ``sky``: noise plus point sources; the brightest sits at :func:`sky_peak_position`.
    """
    _check_size((naxis1, naxis2))
    if pattern not in _PATTERNS:
        raise ValueError(f"pattern must be one of {', '.join(_PATTERNS)}, not {pattern!r}")
    if pattern == "index":
        return np.arange(naxis1 * naxis2, dtype=np.float32).reshape(naxis2, naxis1)
    rng = np.random.default_rng(seed)
    image = rng.standard_normal((naxis2, naxis1), dtype=np.float32)
    if pattern == "noise":
        return image
    peak_x, peak_y = sky_peak_position(naxis1, naxis2)
    sources = [(peak_x, peak_y, _SKY_PEAK)]
    keep_off = 6.0 * _SKY_SIGMA_PX  # other sources stay clear of the brightest one
    for _ in range(_SKY_SOURCES * 8):
        if len(sources) > _SKY_SOURCES:
            break
        x, y = int(rng.integers(naxis1)), int(rng.integers(naxis2))
        if math.hypot(x - peak_x, y - peak_y) >= keep_off:
            sources.append((x, y, float(rng.uniform(0.1, 0.5)) * _SKY_PEAK))
    yy = np.arange(naxis2, dtype=np.float32)[:, None]
    xx = np.arange(naxis1, dtype=np.float32)[None, :]
    for x, y, peak in sources:
        # separable gaussian: two 1-D profiles, so a 1024 x 1024 image costs one outer product
        gx = np.exp(-((xx - x) ** 2) / (2 * _SKY_SIGMA_PX**2))
        gy = np.exp(-((yy - y) ** 2) / (2 * _SKY_SIGMA_PX**2))
        image += np.float32(peak) * gy * gx
    return image


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    """``size`` as (NAXIS1, NAXIS2); ValueError unless it is at least 1x1 and fits a window."""
    if len(size) != 2 or not all(isinstance(n, int) and not isinstance(n, bool) for n in size):
        raise ValueError(f"size must be two ints (NAXIS1, NAXIS2), not {size!r}")
    naxis1, naxis2 = size
    if naxis1 < 1 or naxis2 < 1:
        raise ValueError(f"size must be at least 1x1, not {naxis1}x{naxis2}")
    if naxis1 * naxis2 * 4 > WINDOW_MAX_IMAGE_BYTES:
        raise ValueError(
            f"a {naxis1}x{naxis2} float32 image is over the window limit of "
            f"{WINDOW_MAX_IMAGE_BYTES} bytes"
        )
    return naxis1, naxis2


def _check_freq(freq_hz: float) -> None:
    """Raise ValueError unless ``freq_hz`` is a finite positive frequency."""
    try:
        ok = math.isfinite(freq_hz) and freq_hz > 0
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"frequencies must be finite and > 0 Hz, not {freq_hz!r}")
