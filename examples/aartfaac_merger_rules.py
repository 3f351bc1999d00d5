"""The rules of the Merger, shown on hand-made input (no network, no emulator).

Feeds a Merger that expects streams A, B and C with chosen DATE-OBS values on a fake clock,
and prints what happens to every image and every group. Strings stand in for the images.
Run it from the repository root: python examples/aartfaac_merger_rules.py
"""

import logging
import queue
import sys

from daqwire.aartfaac import Merger

logging.basicConfig(stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s")
now = [0.0]  # seconds on the fake monotonic clock
merger: Merger[str] = Merger(["A", "B", "C"], max_wait_s=2.0, back_log=2, clock=lambda: now[0])


def take_groups() -> None:
    while True:
        try:
            group = merger.get_nowait()
        except queue.Empty:
            return
        if group is None:  # closed and drained
            return
        state = "complete" if group.complete else "partial"
        print(f"  group {group.timestamp.isoformat()} {group.streams} {state} ({group.reason})")


def add(stream: str, date_obs: str | None, take: bool = True) -> None:
    kept = merger.add(f"image {stream}", date_obs, stream=stream)
    print(f"t={now[0]:.0f} {stream} {date_obs}: {'kept' if kept else 'dropped'}")
    if take:
        take_groups()


add("A", "2024-03-12T10:00:01.000000")
add("B", "2024-03-12T10:00:01Z")  # naive means UTC, so this is the same instant
add("A", "2024-03-12T10:00:02.000000")  # a newer group opens; the older one stays open
add("C", "2024-03-12T10:00:01")  # arrives after a newer image, still completes its group
add("A", "2024-03-12T10:00:01.000000")  # at or before the newest emitted group: late
add("B", "2024-03-12T10:00:02.000000")
add("B", "2024-03-12T10:00:02.000000")  # a second image of B in one group: duplicate
add("C", "not a date")  # counted as a bad timestamp; nothing dies
add("C", None)  # no DATE-OBS at all: the same
now[0] = 3.0  # more than max_wait_s after the 10:00:02 group opened
merger.poll()
take_groups()  # the 10:00:02 group, partial (timeout)
for second in (3, 4, 5):  # three groups nobody takes; back_log=2 keeps the newest two
    add("A", f"2024-03-12T10:00:0{second}", take=False)
merger.close()  # flushes the open groups, partial, in timestamp order
take_groups()
print(merger.stats)
