"""Read one AARTFAAC stream with a blocking WindowReader.

Starts an in-process Emulator on a free loopback port (64 x 32 images, index pattern:
pixel (x, y) holds y*64 + x), reads three windows and prints what a window holds.
Run it from the repository root: python examples/aartfaac_read_one.py
"""

import socket

from astropy.io import fits

from daqwire.aartfaac import Emulator, WindowReader

with Emulator([0], size=(64, 32), rate_hz=10, pattern="index") as emulator:
    host, port = emulator.addresses[0]
    with socket.create_connection((host, port), timeout=5) as sock:
        reader = WindowReader(sock, timeout_s=5)
        kept = []
        for n in range(3):
            window = reader.read()  # blocks until a whole window is in
            image = window.image  # zero-copy float32 view of the receive buffer, [y, x]
            header = fits.Header.fromstring(window.fits)
            print(f"window {n}: DATE-OBS {header['DATE-OBS']}")
            kept.append(image[:2, :3].copy())  # an owned copy of a small cutout

print("shape", image.shape, image.dtype, "F-contiguous:", image.flags.f_contiguous)
print("row y=0:   ", image[0, :4])
print("column x=0:", image[:4, 0])
print("RESTFREQ", header["RESTFREQ"], "CRVAL3", header["CRVAL3"], "NAXIS", header["NAXIS"])
print("cutout kept from window 0:", kept[0].tolist())
print(reader.stats)
pool = reader.framer.pool
print(f"receive buffers: {pool.allocated} allocated, {pool.reused} reused")
