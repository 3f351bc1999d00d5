"""Keep reading one AARTFAAC stream while the imager restarts (Connector).

Starts an in-process Emulator on a free loopback port and reads it with a Connector thread.
Then it stops the emulator for half a second and starts a new one on the same port. The
Connector reconnects on its own (capped exponential backoff with jitter); its stats and the
warnings it logs show what happened.
Run it from the repository root: python examples/aartfaac_reconnect.py
"""

import logging
import sys
import time

from daqwire.aartfaac import Connector, Emulator, StreamImage

logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s")
images: list[StreamImage] = []

emulator = Emulator([0], size=(32, 32), rate_hz=10)
emulator.start()
host, port = emulator.addresses[0]
connector = Connector(host, port, images.append, timeout_s=2.0, backoff_max_s=0.5)
connector.start()  # a thread that connects, reads and reconnects until stop()
time.sleep(1.0)
emulator.stop()  # the imager goes away ...
time.sleep(0.5)
with Emulator([port], size=(32, 32), rate_hz=10):  # ... and comes back on the same port
    time.sleep(1.0)
    connector.stop()

s = connector.stats
print(f"windows {s.windows}, connects {s.connects}, reconnects {s.reconnects}")
print(f"connect failures: {s.connect_failures > 0}, bad windows: {s.errors}")
in_order = [image.sequence for image in images] == list(range(1, len(images) + 1))
print(f"images handed to the sink: {len(images)}, numbered 1, 2, 3, ...: {in_order}")
print("last error:", s.last_error)
