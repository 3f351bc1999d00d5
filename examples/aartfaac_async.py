"""Read two AARTFAAC streams at once with asyncio (AsyncWindowReader).

Starts an in-process Emulator with two free loopback ports (32 x 32 images, 10 windows/s)
and reads three windows from each port concurrently in one event loop.
Run it from the repository root: python examples/aartfaac_async.py
"""

import asyncio

from astropy.io import fits

from daqwire.aartfaac import AsyncWindowReader, Emulator


async def read_some(label: str, host: str, port: int, count: int) -> list[str]:
    """DATE-OBS of the first ``count`` windows of one stream."""
    stamps = []
    async with await AsyncWindowReader.connect(host, port, timeout_s=5) as reader:
        async for window in reader:
            header = fits.Header.fromstring(window.fits)
            print(f"{label}: {window.image.shape} RESTFREQ {header['RESTFREQ']}")
            stamps.append(header["DATE-OBS"])
            if len(stamps) == count:
                break
    return stamps


async def main() -> None:
    with Emulator([0, 0], size=(32, 32), rate_hz=10) as emulator:
        (h1, p1), (h2, p2) = emulator.addresses
        a, b = await asyncio.gather(read_some("A", h1, p1, 3), read_some("B", h2, p2, 3))
    print("same DATE-OBS on both streams:", a == b)


asyncio.run(main())
