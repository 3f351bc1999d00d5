"""Code written for tkp.stream, run on daqwire by changing one import.

Starts an in-process Emulator with three free loopback ports (64 x 32 index images: pixel
(x, y) holds y*64 + x, 5 windows/s). Reads one window with read_window and reconstruct_fits,
then three merged groups with stream_generator, as TraP's stream mode does.
Run it from the repository root: python examples/aartfaac_tkp_dropin.py
"""

import socket
import threading
from contextlib import closing

# was: from tkp.stream import extract_timestamp, read_window, reconstruct_fits, stream_generator
from daqwire.aartfaac import extract_timestamp, read_window, reconstruct_fits, stream_generator
from daqwire.aartfaac.emulator import Emulator

with Emulator([0, 0, 0], size=(64, 32), rate_hz=5, pattern="index") as emulator:
    ports = [port for _host, port in emulator.addresses]

    with socket.create_connection(("127.0.0.1", ports[0]), timeout=5) as sock:
        fits_bytes, image_bytes = read_window(sock)
    hdulist = reconstruct_fits(fits_bytes, image_bytes)
    data, header = hdulist[0].data, hdulist[0].header
    print("data", data.shape, data.dtype, "row y=0:", data[0, :3], "column x=0:", data[:3, 0])
    print("NAXIS", header["NAXIS"], "NAXIS1", header["NAXIS1"], "NAXIS2", header["NAXIS2"])
    print("BITPIX", header["BITPIX"], "NAXIS3 kept:", "NAXIS3" in header)
    print("timestamp is naive, as in tkp:", extract_timestamp(hdulist).tzinfo is None)

    hosts = ["", "", ""]  # TraP's job template says hosts=',,': empty means this machine
    with closing(stream_generator(hosts, ports, max_wait_s=1.0)) as groups:
        for _, group in zip(range(3), groups, strict=False):
            stamps = {extract_timestamp(hdulist) for hdulist in group}
            streams = {hdulist.stream for hdulist in group}
            print(f"{len(group)} HDULists from {len(streams)} streams, {len(stamps)} timestamp")

alive = [t.name for t in threading.enumerate() if t.name.startswith("aartfaac-connector")]
print("connector threads still running:", alive)
