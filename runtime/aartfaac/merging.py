"""Group AARTFAAC images from several streams by DATE-OBS: a correct replacement for tkp's merger.

tkp's merger never emits its newest group, dies on a missing, unparseable or mixed aware/naive
DATE-OBS, splits groups on out-of-order arrival and drops the newest group when its backlog is
full. This merger:

* parses DATE-OBS with dateutil (as lenient as tkp). Naive values are taken in ``naive_tz``
  (UTC by default), so ``...Z`` and naive spellings of one instant share a group. Group
  timestamps are in UTC. Equality is exact: 1 µs apart means two groups. A zone *name*
  without a known offset (``CET``) is refused.
* keeps one open group per timestamp, so late and out-of-order images join the right group.
  A group is emitted once every expected stream has delivered (complete); as partial when
  ``max_wait_s`` has passed since its first image, when a newer group is emitted (output is in
  strictly increasing timestamp order), when more than ``max_open_groups`` are open (the
  oldest goes), or on close().
* counts, logs and drops (never raises on) images with a missing or bad DATE-OBS, a second
  image from one stream in a group, and images at or before the newest emitted timestamp.
* bounds the backlog to ``back_log`` groups. When it is full it drops the oldest queued group
  by default (tkp drops the newest).

It has no thread of its own. Deadlines are checked in add(), poll() and get() against an
injectable monotonic clock, and a blocked get() wakes at the earliest deadline.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from queue import Empty
from typing import Final, Generic, Literal, TypeVar

from dateutil import parser as _dateutil_parser

from daqwire.errors import FieldValueError, LocalProtocolError

__all__ = [
    "BACK_LOG",
    "DropPolicy",
    "EmitReason",
    "MergedGroup",
    "Merger",
    "MergerStats",
    "parse_date_obs",
]

_log = logging.getLogger(__name__)

#: default backlog size in groups, as in tkp.stream
BACK_LOG: Final = 10
_PROTOCOL: Final = "aartfaac"
_DATE_OBS_PATH: Final = "window.fits.DATE-OBS"

DropPolicy = Literal["oldest", "newest"]
EmitReason = Literal["complete", "timeout", "flush", "superseded", "open_limit"]
T = TypeVar("T")


def _tzinfos(name: str | None, offset: int | None) -> tzinfo | None:
    """dateutil hook: an explicit offset becomes a fixed zone; a bare zone name is refused,
    since dateutil would otherwise turn it into local time or silently drop it."""
    if offset is not None:
        return UTC if offset == 0 else timezone(timedelta(seconds=offset))
    if name is not None:
        raise ValueError(f"time zone name {name!r} has no known offset")
    return None


def parse_date_obs(value: str, *, naive_tz: tzinfo = UTC) -> datetime:
    """Parse a DATE-OBS value leniently (dateutil, like tkp) into an aware datetime.

    A value without a zone gets ``naive_tz``. Raises FieldValueError for anything unparseable.
    """
    return _parse_cached(value, naive_tz)


@functools.lru_cache(maxsize=1024)
def _parse_cached(value: str, naive_tz: tzinfo) -> datetime:
    """The parse, remembered: every stream of a tick sends the same DATE-OBS string."""
    try:
        parsed = _dateutil_parser.parse(value, tzinfos=_tzinfos)
        if not isinstance(parsed, datetime):
            raise TypeError(f"dateutil returned {type(parsed).__name__}")
    except Exception as exc:  # dateutil raises ParserError, ValueError, OverflowError, TypeError
        raise FieldValueError(
            f"unparseable DATE-OBS {value!r:.80}: {exc}",
            protocol=_PROTOCOL,
            field_path=_DATE_OBS_PATH,
        ) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=naive_tz)


@dataclass(frozen=True, slots=True)
class MergedGroup(Generic[T]):
    """The images of one DATE-OBS (``timestamp``, in UTC), at most one per named stream, in
    arrival order. They are the caller's objects, never copies."""

    timestamp: datetime
    images: tuple[T, ...]
    streams: tuple[str | None, ...]
    complete: bool
    reason: EmitReason


@dataclass(frozen=True, slots=True)
class MergerStats:
    """Snapshot of the merger's counters.

    ``images + late + duplicates + bad_timestamps`` equals the number of add() calls.
    ``groups`` counts every emitted group, including the ones the backlog policy dropped.
    """

    images: int = 0
    groups: int = 0
    complete_groups: int = 0
    partial_groups: int = 0
    late: int = 0
    duplicates: int = 0
    bad_timestamps: int = 0
    dropped_groups: int = 0
    dropped_images: int = 0
    open_groups: int = 0
    backlog: int = 0


@dataclass(slots=True)
class _OpenGroup(Generic[T]):
    deadline: float
    images: list[T] = field(default_factory=list)
    streams: list[str | None] = field(default_factory=list)
    names: set[str] = field(default_factory=set)


def _invalid(message: str) -> LocalProtocolError:
    return LocalProtocolError(message, protocol=_PROTOCOL)


class Merger(Generic[T]):
    """Thread-safe grouping of images from N streams by DATE-OBS (see the module docstring).

    ``streams``: the expected stream names, their number (that many distinct names make a group
    complete), or None (unknown: groups only leave by timeout, supersede, open limit or close).
    Producers call add() from any thread; a consumer calls get() or iterates.
    """

    def __init__(
        self,
        streams: Iterable[str] | int | None = None,
        *,
        max_wait_s: float = 2.0,
        back_log: int = BACK_LOG,
        drop: DropPolicy = "oldest",
        max_open_groups: int = 16,
        naive_tz: tzinfo = UTC,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._expected_names: frozenset[str] | None = None
        self._expected_count: int | None = None
        if isinstance(streams, str):
            raise _invalid("streams must be an iterable of names, a count or None, not a str")
        if isinstance(streams, int):
            if streams < 1:
                raise _invalid(f"streams count must be >= 1, got {streams}")
            self._expected_count = streams
        elif streams is not None:
            self._expected_names = frozenset(streams)
            if not self._expected_names:
                raise _invalid("streams must name at least one stream")
        if not max_wait_s > 0:
            raise _invalid(f"max_wait_s must be > 0, got {max_wait_s}")
        if back_log < 1:
            raise _invalid(f"back_log must be >= 1, got {back_log}")
        if max_open_groups < 1:
            raise _invalid(f"max_open_groups must be >= 1, got {max_open_groups}")
        if drop not in ("oldest", "newest"):
            raise _invalid(f"drop must be 'oldest' or 'newest', got {drop!r}")
        self._max_wait_s = max_wait_s
        self._back_log = back_log
        self._drop: DropPolicy = drop
        self._max_open_groups = max_open_groups
        self._naive_tz = naive_tz
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._open: dict[datetime, _OpenGroup[T]] = {}
        self._backlog: deque[MergedGroup[T]] = deque()
        self._watermark: datetime | None = None
        self._closed = False
        self._tally = MergerStats()

    @property
    def closed(self) -> bool:
        """Whether close() has been called."""
        with self._lock:
            return self._closed

    @property
    def stats(self) -> MergerStats:
        """A consistent snapshot of the counters and gauges."""
        with self._lock:
            return dataclasses.replace(
                self._tally, open_groups=len(self._open), backlog=len(self._backlog)
            )

    def add(self, image: T, date_obs: str | None, *, stream: str | None = None) -> bool:
        """Put one image in its group; False if it was dropped as late, duplicate or bad timestamp.

        Raises LocalProtocolError only when called after close().
        """
        stamp: datetime | None = None
        problem = "no DATE-OBS"
        if date_obs is not None:
            try:
                stamp = parse_date_obs(date_obs, naive_tz=self._naive_tz).astimezone(UTC)
            except FieldValueError as exc:
                problem = exc.message
        with self._lock:
            if self._closed:
                raise _invalid("add() called after close()")
            now = self._clock()
            self._emit_due(now)
            if stamp is None:
                self._count(bad_timestamps=1)
                _log.warning("image from stream %s dropped: %s", stream, problem)
                return False
            if self._watermark is not None and stamp <= self._watermark:
                self._count(late=1)
                _log.warning(
                    "late image from stream %s for %s dropped (newest emitted group: %s)",
                    stream,
                    stamp.isoformat(),
                    self._watermark.isoformat(),
                )
                return False
            group = self._open.get(stamp)
            if group is None:
                group = self._open[stamp] = _OpenGroup(now + self._max_wait_s)
                self._changed.notify_all()  # a blocked get() must learn the new deadline
            elif stream is not None and stream in group.names:
                self._count(duplicates=1)
                _log.warning(
                    "second image from stream %s for %s dropped", stream, stamp.isoformat()
                )
                return False
            group.images.append(image)
            group.streams.append(stream)
            if stream is not None:
                group.names.add(stream)
            self._count(images=1)
            if self._is_complete(group):
                self._emit_through(stamp, "complete", now)
            elif len(self._open) > self._max_open_groups:
                self._emit_through(min(self._open), "open_limit", now)
            return True

    def poll(self) -> int:
        """Emit the groups whose deadline has passed; returns how many were emitted."""
        with self._lock:
            return self._emit_due(self._clock())

    def get(self, timeout_s: float | None = None) -> MergedGroup[T] | None:
        """The next group, blocking until one is ready; None once closed and drained.

        ``timeout_s`` is real time; raises queue.Empty when it expires. Group deadlines follow
        the merger's clock.
        """
        if timeout_s is not None and not timeout_s >= 0:
            raise ValueError(f"timeout_s must be >= 0, got {timeout_s}")
        end = None if timeout_s is None else time.monotonic() + timeout_s
        with self._lock:
            while True:
                now = self._clock()
                self._emit_due(now)
                if self._backlog:
                    return self._backlog.popleft()
                if self._closed:
                    return None
                wait = min((g.deadline for g in self._open.values()), default=math.inf) - now
                if end is not None:
                    remaining = end - time.monotonic()
                    if remaining <= 0:
                        raise Empty
                    wait = min(wait, remaining)
                self._changed.wait(None if wait == math.inf else min(wait, threading.TIMEOUT_MAX))

    def get_nowait(self) -> MergedGroup[T] | None:
        """The next group if one is ready; None once closed and drained; else queue.Empty."""
        return self.get(timeout_s=0)

    def close(self) -> None:
        """Flush every open group (partial, in timestamp order) and refuse further add() calls."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._emit_due(self._clock())
            for stamp in sorted(self._open):
                self._push(stamp, self._open.pop(stamp), "flush")
            self._changed.notify_all()

    def __iter__(self) -> Iterator[MergedGroup[T]]:
        """get() until the merger is closed and drained."""
        while (group := self.get()) is not None:
            yield group

    # -- internals; the lock is held ---------------------------------------------------------

    def _count(self, **increments: int) -> None:
        tally = self._tally
        self._tally = dataclasses.replace(
            tally, **{name: getattr(tally, name) + n for name, n in increments.items()}
        )

    def _is_complete(self, group: _OpenGroup[T]) -> bool:
        if self._expected_names is not None:
            return self._expected_names <= group.names
        return self._expected_count is not None and len(group.names) >= self._expected_count

    def _emit_due(self, now: float) -> int:
        due = [stamp for stamp, group in self._open.items() if group.deadline <= now]
        return self._emit_through(max(due), "timeout", now) if due else 0

    def _emit_through(self, stamp: datetime, reason: EmitReason, now: float) -> int:
        """Emit the open group at ``stamp`` after every older one, keeping the output in order."""
        older = sorted(s for s in self._open if s < stamp)
        for key in older:
            group = self._open.pop(key)
            self._push(key, group, "timeout" if group.deadline <= now else "superseded")
        self._push(stamp, self._open.pop(stamp), reason)
        return len(older) + 1

    def _push(self, stamp: datetime, group: _OpenGroup[T], reason: EmitReason) -> None:
        complete = self._is_complete(group)
        merged = MergedGroup(stamp, tuple(group.images), tuple(group.streams), complete, reason)
        self._watermark = stamp
        self._count(groups=1, **{"complete_groups" if complete else "partial_groups": 1})
        if not complete and (self._expected_names or self._expected_count):
            _log.info(
                "partial group %s emitted (%s) with streams %s",
                stamp.isoformat(),
                reason,
                sorted(group.names),
            )
        if len(self._backlog) >= self._back_log:
            victim = self._backlog.popleft() if self._drop == "oldest" else merged
            self._count(dropped_groups=1, dropped_images=len(victim.images))
            _log.warning(
                "backlog full (%d groups): dropped the %s group %s (%d images); "
                "%d groups, %d images dropped so far",
                self._back_log,
                self._drop,
                victim.timestamp.isoformat(),
                len(victim.images),
                self._tally.dropped_groups,
                self._tally.dropped_images,
            )
            if self._drop == "newest":
                return
        self._backlog.append(merged)
        self._changed.notify_all()
