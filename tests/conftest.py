"""Shared fixtures for the daqwire tests: where the golden vectors live, and small builders.

Golden vectors are looked up in ``$DAQWIRE_VECTORS`` when that variable is set (a folder that
holds ``aartfaac/valid``, ``aartfaac/malformed``, ...), else in the copies committed next to
this file under ``tests/vectors``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits as astropy_fits

VECTORS_ENV = "DAQWIRE_VECTORS"
#: the date every hand-made test window carries unless told otherwise
DEFAULT_DATE_OBS = "2026-11-21T12:52:08.477364"

VectorLoader = Callable[[str, str], tuple[bytes, dict[str, Any]]]


def vectors_root() -> Path:
    """The folder that holds one sub-folder of golden vectors per protocol."""
    env = os.environ.get(VECTORS_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent / "vectors"


@cache
def _read_vector(root: Path, protocol: str, kind: str, name: str) -> tuple[bytes, str]:
    folder = root / protocol / kind
    bin_path = folder / f"{name}.bin"
    json_path = folder / f"{name}.json"
    if not bin_path.is_file() or not json_path.is_file():
        raise FileNotFoundError(
            f"golden vector {protocol}/{kind}/{name} not found under {root} "
            f"(set {VECTORS_ENV} to the folder that holds {protocol}/)"
        )
    return bin_path.read_bytes(), json_path.read_text(encoding="utf-8")


def load_aartfaac_vector(kind: str, name: str) -> tuple[bytes, dict[str, Any]]:
    """The bytes of ``aartfaac/<kind>/<name>.bin`` and its parsed ``.json`` description."""
    data, meta = _read_vector(vectors_root(), "aartfaac", kind, name)
    return data, json.loads(meta)


def make_fits(
    naxis1: int,
    naxis2: int,
    *,
    date_obs: str = DEFAULT_DATE_OBS,
    extra: Iterable[tuple[str, Any]] = (),
) -> str:
    """FITS header text as astropy writes it (``str(header)``: cards, END, 2880 padding)."""
    header = astropy_fits.Header(
        [
            ("SIMPLE", True),
            ("BITPIX", -32),
            ("NAXIS", 2),
            ("NAXIS1", naxis1),
            ("NAXIS2", naxis2),
            ("DATE-OBS", date_obs),
            *extra,
        ]
    )
    text: str = header.tostring()
    return text


def window_header(fits_length: int, array_length: int, magic: int = 0x47494A53484F4D4F) -> bytes:
    """A 512-byte AARTFAAC window header announcing the given lengths (zero padding)."""
    return (
        magic.to_bytes(8, "little")
        + fits_length.to_bytes(4, "little")
        + array_length.to_bytes(4, "little")
        + bytes(496)
    )


def index_image(naxis1: int, naxis2: int) -> np.ndarray:
    """The vectors' ``index`` pattern as a [y, x] float32 array: pixel (x, y) = y*NAXIS1 + x."""
    return np.arange(naxis1 * naxis2, dtype="<f4").reshape(naxis2, naxis1)


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """``<vectors root>/aartfaac``; fails (never skips) when the vectors are missing."""
    folder = vectors_root() / "aartfaac"
    assert folder.is_dir(), f"no aartfaac vectors in {folder} (see {VECTORS_ENV})"
    return folder


@pytest.fixture(scope="session")
def load_vector(vectors_dir: Path) -> VectorLoader:
    """``load_vector(kind, name) -> (bytes, json dict)`` for ``aartfaac/<kind>/<name>``."""
    return load_aartfaac_vector


@pytest.fixture(scope="session")
def fits_text() -> Callable[..., str]:
    """``fits_text(naxis1, naxis2, date_obs=..., extra=...)``: astropy-written FITS header text."""
    return make_fits


@pytest.fixture(scope="session")
def index_pattern() -> Callable[[int, int], np.ndarray]:
    """``index_pattern(naxis1, naxis2)``: the vectors' index image as a [y, x] float32 array."""
    return index_image
