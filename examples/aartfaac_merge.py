"""Merge three AARTFAAC streams by DATE-OBS with MergedStreams.

Starts an in-process Emulator with three free loopback ports (64 x 64 sky images, 5 windows/s),
prints the merged groups of about two seconds, then the per-stream and merger counters.
This is what tkp's stream_generator does for TraP's stream mode (one reader per stream, one
merger grouping by DATE-OBS), with complete groups sent at once and no pickling.
Run it from the repository root: python examples/aartfaac_merge.py
"""

import queue
import time

from daqwire.aartfaac import Emulator, MergedStreams

with Emulator([0, 0, 0], size=(64, 64), rate_hz=5) as emulator:
    streams = MergedStreams(emulator.addresses, max_wait_s=1.0)
    with streams:  # starts one connector thread per stream; close() flushes the open groups
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            try:
                group = streams.get(timeout_s=0.5)
            except queue.Empty:
                continue
            state = "complete" if group.complete else f"partial ({group.reason})"
            shapes = {item.image.shape for item in group.images}
            print(f"{group.timestamp.isoformat()}  {len(group.images)}/3 {state}  {shapes}")
    for group in streams.merger:  # what close() flushed, if anything was still open
        print(f"{group.timestamp.isoformat()}  {len(group.images)}/3 flushed at close")

for s in streams.stream_stats:
    print(f"{s.stream}: windows {s.windows}, errors {s.errors}, reconnects {s.reconnects}")
print(streams.merger_stats)
