"""The DATE-OBS merger: the ten recorded tkp merger runs replayed with our semantics, each
documented rule on its own, a threaded run, and a hypothesis property over random interleavings.

Expected groups and counters are written out by hand. They are never computed by the merger's
own logic. A fake clock drives every deadline, so no test depends on timing.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daqwire.aartfaac.merging import (
    BACK_LOG,
    DropPolicy,
    MergedGroup,
    Merger,
    MergerStats,
    parse_date_obs,
)
from daqwire.errors import FieldValueError, LocalProtocolError
from tests.conftest import vectors_root

LOGGER = "daqwire.aartfaac.merging"


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def utc(text: str) -> datetime:
    """An ISO timestamp taken as UTC (stdlib parse, independent of the merger's dateutil)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Expected:
    """One expected group: UTC timestamp, streams in arrival order, complete flag, input indices."""

    timestamp: str
    streams: str
    complete: bool
    images: tuple[int, ...]


def as_expected(group: MergedGroup[int]) -> Expected:
    streams = "".join(s or "?" for s in group.streams)
    stamp = group.timestamp.astimezone(UTC).replace(tzinfo=None).isoformat()
    return Expected(stamp, streams, group.complete, group.images)


def drain(merger: Merger[int]) -> list[MergedGroup[int]]:
    out: list[MergedGroup[int]] = []
    while True:
        try:
            group = merger.get_nowait()
        except queue.Empty:
            return out
        if group is None:
            return out
        out.append(group)


# -- the recorded tkp scenarios ----------------------------------------------------------------


def load_scenarios() -> dict[str, dict[str, Any]]:
    path: Path = vectors_root() / "aartfaac" / "merger_scenarios.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return {s["name"]: s for s in data["scenarios"]}


SCENARIOS = load_scenarios()

MINUTE = "2024-01-02T03:04:"
#: name -> (drop policy, expected groups after close(), expected stats after draining,
#:          whether tkp's groups_out is a strict prefix of ours: tkp lost the tail or died)
REPLAYS: dict[str, tuple[DropPolicy, list[Expected], MergerStats, bool]] = {
    # tkp never emits T2; we emit every group as soon as it is complete
    "in_order_3_streams": (
        "oldest",
        [
            Expected(f"{MINUTE}00.500000", "ABC", True, (0, 1, 2)),
            Expected(f"{MINUTE}01.500000", "ABC", True, (3, 4, 5)),
            Expected(f"{MINUTE}02.500000", "ABC", True, (6, 7, 8)),
        ],
        MergerStats(images=9, groups=3, complete_groups=3),
        True,
    ),
    # tkp splits into [A,B]@1 [A]@2 [C]@1 (+[B,C]@2 pending); we keep one group per timestamp
    "next_timestamp_before_slow_stream": (
        "oldest",
        [
            Expected(f"{MINUTE}01.500000", "ABC", True, (0, 1, 3)),
            Expected(f"{MINUTE}02.500000", "ABC", True, (2, 4, 5)),
            Expected(f"{MINUTE}03.500000", "A", False, (6,)),
        ],
        MergerStats(images=7, groups=3, complete_groups=2, partial_groups=1),
        False,
    ),
    # tkp keeps both A images; we drop the second one as a duplicate
    "duplicate_from_same_stream": (
        "oldest",
        [
            Expected(f"{MINUTE}01.500000", "AB", True, (0, 2)),
            Expected(f"{MINUTE}02.500000", "A", False, (3,)),
        ],
        MergerStats(images=3, groups=2, complete_groups=1, partial_groups=1, duplicates=1),
        False,
    ),
    # the T1 group is emitted (partial, superseded) the moment T2 completes
    "missing_stream": (
        "oldest",
        [
            Expected(f"{MINUTE}01.500000", "AC", False, (0, 1)),
            Expected(f"{MINUTE}02.500000", "ABC", True, (2, 3, 4)),
            Expected(f"{MINUTE}03.500000", "A", False, (5,)),
        ],
        MergerStats(images=6, groups=3, complete_groups=1, partial_groups=2),
        True,
    ),
    # tkp drops the 5 newest groups; we drop the 5 oldest
    "backlog_overflow_no_consumer": (
        "oldest",
        [Expected(f"2024-01-02T03:{m:02d}:00", "A", True, (m,)) for m in range(5, 15)],
        MergerStats(images=15, groups=15, complete_groups=15, dropped_groups=5, dropped_images=5),
        False,
    ),
    "equal_instant_different_spelling": (
        "oldest",
        [
            Expected("2024-01-02T03:04:05", "ABC", True, (0, 1, 2)),
            Expected("2024-01-02T03:04:09.500000", "A", False, (3,)),
        ],
        MergerStats(images=4, groups=2, complete_groups=1, partial_groups=1),
        True,
    ),
    "sub_microsecond_difference": (
        "oldest",
        [
            Expected("2024-01-02T03:04:05.000001", "A", False, (0,)),
            Expected("2024-01-02T03:04:05.000002", "B", False, (1,)),
            Expected("2024-01-02T03:04:09.500000", "A", False, (2,)),
        ],
        MergerStats(images=3, groups=3, partial_groups=3),
        True,
    ),
    # tkp dies with TypeError; naive is UTC for us, so A and B@...Z are one complete group
    "aware_vs_naive": (
        "oldest",
        [
            Expected("2024-01-02T03:04:05", "AB", True, (0, 1)),
            Expected("2024-01-02T03:04:09.500000", "A", False, (2,)),
        ],
        MergerStats(images=3, groups=2, complete_groups=1, partial_groups=1),
        True,
    ),
    # tkp dies with KeyError; we count the bad image and carry on
    "missing_date_obs": (
        "oldest",
        [
            Expected(f"{MINUTE}01.500000", "A", False, (0,)),
            Expected(f"{MINUTE}02.500000", "A", False, (2,)),
        ],
        MergerStats(images=2, groups=2, partial_groups=2, bad_timestamps=1),
        True,
    ),
    "first_image_missing_date_obs": (
        "oldest",
        [
            Expected(f"{MINUTE}01.500000", "B", False, (1,)),
            Expected(f"{MINUTE}02.500000", "A", False, (2,)),
        ],
        MergerStats(images=2, groups=2, partial_groups=2, bad_timestamps=1),
        True,
    ),
}


def replay(scenario: dict[str, Any], drop: DropPolicy) -> tuple[list[bool], Merger[int]]:
    inputs = scenario["input"]
    merger: Merger[int] = Merger(
        {stream for stream, _ in inputs},
        back_log=scenario["backlog"],
        drop=drop,
        clock=FakeClock(),
    )
    accepted = [merger.add(i, date_obs, stream=s) for i, (s, date_obs) in enumerate(inputs)]
    merger.close()
    return accepted, merger


def test_every_recorded_scenario_is_replayed() -> None:
    assert set(REPLAYS) == set(SCENARIOS)
    assert len(SCENARIOS) == 10


@pytest.mark.parametrize("name", sorted(REPLAYS))
def test_replay_tkp_scenario(name: str) -> None:
    scenario = SCENARIOS[name]
    drop, expected_groups, expected_stats, tkp_is_prefix = REPLAYS[name]
    accepted, merger = replay(scenario, drop)
    groups = drain(merger)

    assert [as_expected(g) for g in groups] == expected_groups
    assert merger.get_nowait() is None
    assert merger.stats == expected_stats
    assert accepted.count(True) == expected_stats.images
    assert all(g.timestamp.utcoffset() == timedelta(0) for g in groups)
    tkp_groups = [
        Expected(
            parse_date_obs(group[0][1]).replace(tzinfo=None).isoformat(),
            "".join(stream for stream, _ in group),
            True,
            (),
        )
        for group in scenario["groups_out"]
    ]
    ours = [Expected(e.timestamp, e.streams, True, ()) for e in expected_groups]
    assert ours != tkp_groups
    assert (ours[: len(tkp_groups)] == tkp_groups) is tkp_is_prefix


def test_backlog_overflow_drop_newest_matches_tkp() -> None:
    scenario = SCENARIOS["backlog_overflow_no_consumer"]
    _, merger = replay(scenario, "newest")
    groups = drain(merger)
    assert [as_expected(g) for g in groups] == [
        Expected(f"2024-01-02T03:{m:02d}:00", "A", True, (m,)) for m in range(10)
    ]
    tkp = [group[0][1] for group in scenario["groups_out"]]
    assert [g.timestamp.replace(tzinfo=None).isoformat() for g in groups] == tkp
    assert merger.stats == MergerStats(
        images=15, groups=15, complete_groups=15, dropped_groups=5, dropped_images=5
    )


def test_out_of_order_groups_are_ready_before_close() -> None:
    scenario = SCENARIOS["next_timestamp_before_slow_stream"]
    merger: Merger[int] = Merger(["A", "B", "C"], clock=FakeClock())
    for i, (stream, date_obs) in enumerate(scenario["input"][:6]):
        merger.add(i, date_obs, stream=stream)
    first, second = merger.get_nowait(), merger.get_nowait()
    assert first is not None and second is not None
    assert (first.streams, first.images, first.reason) == (("A", "B", "C"), (0, 1, 3), "complete")
    assert (second.streams, second.images) == (("A", "B", "C"), (2, 4, 5))
    with pytest.raises(queue.Empty):
        merger.get_nowait()


# -- one rule at a time --------------------------------------------------------------------------

T1, T2, T3, T4 = (f"2024-01-02T03:04:0{s}" for s in (1, 2, 3, 4))


def test_in_order_streams_emit_complete_groups_immediately() -> None:
    merger: Merger[str] = Merger(["A", "B", "C"], clock=FakeClock())
    for stamp in (T1, T2):
        for stream in "ABC":
            assert merger.add(f"{stream}{stamp[-1]}", stamp, stream=stream)
        images = tuple(f"{stream}{stamp[-1]}" for stream in "ABC")
        assert merger.get_nowait() == MergedGroup(
            utc(stamp), images, ("A", "B", "C"), True, "complete"
        )
    assert merger.stats == MergerStats(images=6, groups=2, complete_groups=2)


def test_late_image_after_its_group_was_emitted(caplog: pytest.LogCaptureFixture) -> None:
    merger: Merger[int] = Merger(["A", "B"], clock=FakeClock())
    assert merger.add(0, T2, stream="A") and merger.add(1, T2, stream="B")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert not merger.add(2, T2, stream="A")  # its group is gone: late, not a duplicate
        assert not merger.add(3, T1, stream="B")  # older than the newest emitted group
    assert merger.add(4, T3, stream="A")
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.WARNING]
    assert "late image from stream A" in caplog.records[0].getMessage()
    assert merger.stats == MergerStats(
        images=3, groups=1, complete_groups=1, late=2, open_groups=1, backlog=1
    )


def test_older_open_group_still_takes_late_images() -> None:
    merger: Merger[int] = Merger(["A", "B"], clock=FakeClock())
    merger.add(0, T2, stream="A")
    merger.add(1, T1, stream="A")  # older than an open group, but nothing emitted yet
    merger.add(2, T1, stream="B")  # completes T1
    group = merger.get_nowait()
    assert group is not None and (group.timestamp, group.images) == (utc(T1), (1, 2))
    assert merger.stats.late == 0


def test_duplicate_stream_keeps_the_first(caplog: pytest.LogCaptureFixture) -> None:
    merger: Merger[str] = Merger(["A", "B"], clock=FakeClock())
    first, second = "first", "second"
    assert merger.add(first, T1, stream="A")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert not merger.add(second, T1, stream="A")
    assert "second image from stream A" in caplog.text
    merger.add("b", T1, stream="B")
    group = merger.get_nowait()
    assert group is not None and group.images == ("first", "b")
    assert group.images[0] is first  # references, never copies
    assert merger.stats.duplicates == 1


def test_stream_none_has_no_duplicate_detection() -> None:
    merger: Merger[int] = Merger(clock=FakeClock())
    assert merger.add(0, T1) and merger.add(1, T1)
    merger.close()
    group = merger.get_nowait()
    assert group is not None
    assert (group.images, group.streams, group.complete, group.reason) == (
        (0, 1),
        (None, None),
        False,
        "flush",
    )


@pytest.mark.parametrize(
    "date_obs",
    [
        None,
        "garbage",
        "",
        "2024-13-45T99:00:00",
        "99999-01-01",
        "2024-01-02T03:04:05 CET",
        "2024-01-02T03:04:05+25:00",
    ],
)
def test_bad_timestamps_are_counted_not_raised(
    date_obs: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    merger: Merger[int] = Merger(["A"], clock=FakeClock())
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert merger.add(0, date_obs, stream="A") is False
    assert len(caplog.records) == 1 and "dropped" in caplog.records[0].getMessage()
    assert merger.add(1, T1, stream="A")  # the merger lives on
    assert merger.stats == MergerStats(
        images=1, groups=1, complete_groups=1, bad_timestamps=1, backlog=1
    )


def test_mixed_zulu_offset_and_naive_spellings_group_together() -> None:
    merger: Merger[int] = Merger(["A", "B", "C"], clock=FakeClock())
    merger.add(0, "2024-01-02T03:04:05", stream="A")
    merger.add(1, "2024-01-02T03:04:05Z", stream="B")
    merger.add(2, "2024-01-02T04:04:05+01:00", stream="C")
    group = merger.get_nowait()
    assert group is not None and group.complete and group.images == (0, 1, 2)
    assert group.timestamp == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert group.timestamp.tzinfo is UTC


def test_naive_tz_is_applied_to_naive_timestamps() -> None:
    cet = timezone(timedelta(hours=1))
    merger: Merger[int] = Merger(["A", "B"], naive_tz=cet, clock=FakeClock())
    merger.add(0, "2024-01-02T04:04:05", stream="A")
    merger.add(1, "2024-01-02T03:04:05Z", stream="B")
    group = merger.get_nowait()
    assert group is not None and group.complete
    assert group.timestamp == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert group.timestamp.tzinfo is UTC


def test_parse_date_obs() -> None:
    expected = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    for text in (
        "2024-01-02T03:04:05",
        "2024-01-02T03:04:05.000000",
        "2024-01-02 03:04:05",
        "2024-01-02T03:04:05Z",
        "2024-01-02T03:04:05+00:00",
    ):
        assert parse_date_obs(text) == expected
    assert parse_date_obs("2024-01-02T03:04:05.1234567").microsecond == 123456  # truncated
    with pytest.raises(FieldValueError) as info:
        parse_date_obs("not a date")
    assert (info.value.protocol, info.value.field_path) == ("aartfaac", "window.fits.DATE-OBS")


def test_int_streams_count_distinct_names() -> None:
    merger: Merger[int] = Merger(2, clock=FakeClock())
    merger.add(0, T1, stream="x")
    merger.add(1, T1)  # unnamed images never count towards completeness
    assert merger.stats.open_groups == 1
    merger.add(2, T1, stream="y")
    group = merger.get_nowait()
    assert group is not None and group.complete and group.streams == ("x", None, "y")


def test_unknown_streams_emit_only_by_timeout_or_close() -> None:
    clock = FakeClock()
    merger: Merger[int] = Merger(clock=clock, max_wait_s=1.0)
    for i, stream in enumerate("ABCDEFG"):
        merger.add(i, T1, stream=stream)
    assert merger.poll() == 0 and merger.stats.open_groups == 1
    clock.now += 1.0
    assert merger.poll() == 1
    group = merger.get_nowait()
    assert group is not None and (len(group.images), group.complete) == (7, False)


def test_timeout_emits_partial_group_via_poll() -> None:
    clock = FakeClock(0.0)
    merger: Merger[int] = Merger(["A", "B"], max_wait_s=2.0, clock=clock)
    merger.add(0, T1, stream="A")
    clock.now = 1.5
    merger.add(1, T2, stream="A")  # deadline 3.5
    clock.now = 1.999
    assert merger.poll() == 0
    with pytest.raises(queue.Empty):
        merger.get_nowait()
    clock.now = 2.0
    assert merger.poll() == 1
    assert merger.poll() == 0
    assert not merger.add(2, T1, stream="B")  # its group has gone: late
    clock.now = 3.5
    assert merger.poll() == 1
    got = drain(merger)
    assert [(g.timestamp, g.images, g.complete, g.reason) for g in got] == [
        (utc(T1), (0,), False, "timeout"),
        (utc(T2), (1,), False, "timeout"),
    ]
    assert merger.stats == MergerStats(images=2, groups=2, partial_groups=2, late=1)


def test_timeout_emits_partial_group_via_get() -> None:
    clock = FakeClock(0.0)
    merger: Merger[int] = Merger(["A", "B"], max_wait_s=2.0, clock=clock)
    merger.add(0, T1, stream="A")
    with pytest.raises(queue.Empty):
        merger.get(timeout_s=0.01)
    clock.now = 2.5
    group = merger.get()
    assert group is not None and (group.images, group.reason) == ((0,), "timeout")


def test_due_group_supersedes_older_group_that_is_not_yet_due() -> None:
    clock = FakeClock(0.0)
    merger: Merger[int] = Merger(["A", "B"], max_wait_s=2.0, clock=clock)
    merger.add(0, T2, stream="A")  # deadline 2
    clock.now = 1.0
    merger.add(1, T1, stream="A")  # older, deadline 3
    clock.now = 2.0
    assert merger.poll() == 2
    assert [(g.timestamp, g.reason) for g in drain(merger)] == [
        (utc(T1), "superseded"),
        (utc(T2), "timeout"),
    ]


def test_blocked_get_wakes_when_a_group_times_out() -> None:
    clock = FakeClock(0.0)
    merger: Merger[int] = Merger(["A", "B"], max_wait_s=0.05, clock=clock)
    result: list[MergedGroup[int] | None] = []
    consumer = threading.Thread(target=lambda: result.append(merger.get()))
    consumer.start()
    merger.add(7, T1, stream="A")
    clock.now = 1.0  # past the deadline; get() re-checks when woken by its own deadline wait
    consumer.join(timeout=10)
    assert not consumer.is_alive()
    assert result and result[0] is not None and result[0].images == (7,)


def test_max_open_groups_emits_the_oldest() -> None:
    merger: Merger[int] = Merger(["A", "B"], max_open_groups=2, clock=FakeClock())
    merger.add(0, T2, stream="A")
    merger.add(1, T3, stream="A")
    merger.add(2, T1, stream="A")  # the oldest of three: emitted at once
    merger.add(3, T4, stream="A")  # pushes T2 out
    assert merger.stats.open_groups == 2
    assert [(g.timestamp, g.images, g.reason) for g in drain(merger)] == [
        (utc(T1), (2,), "open_limit"),
        (utc(T2), (0,), "open_limit"),
    ]
    assert not merger.add(4, T2, stream="B")
    merger.add(5, T3, stream="B")
    group = merger.get_nowait()
    assert group is not None and (group.images, group.complete) == ((1, 5), True)


@pytest.mark.parametrize(
    ("drop", "remaining", "first_get"),
    [("oldest", [4, 5, 6], 2), ("newest", [1, 2, 5], 0)],
)
def test_backlog_overflow_with_slow_consumer(
    drop: DropPolicy, remaining: list[int], first_get: int, caplog: pytest.LogCaptureFixture
) -> None:
    merger: Merger[int] = Merger(["A"], back_log=3, drop=drop, clock=FakeClock())
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for minute in range(5):
            merger.add(minute, f"2024-01-02T03:0{minute}:00", stream="A")
        group = merger.get_nowait()
        assert group is not None and group.images == (first_get,)
        for minute in (5, 6):
            merger.add(minute, f"2024-01-02T03:0{minute}:00", stream="A")
    assert [g.images[0] for g in drain(merger)] == remaining
    assert merger.stats == MergerStats(
        images=7, groups=7, complete_groups=7, dropped_groups=3, dropped_images=3
    )
    drops = [r.getMessage() for r in caplog.records]
    assert len(drops) == 3 and all("backlog full (3 groups)" in m for m in drops)
    assert "3 groups, 3 images dropped so far" in drops[-1]


def test_close_is_idempotent_flushes_and_ends_iteration() -> None:
    merger: Merger[int] = Merger(["A", "B"], clock=FakeClock())
    merger.add(0, T2, stream="A")
    merger.add(1, T1, stream="B")
    assert not merger.closed
    merger.close()
    merger.close()
    assert merger.closed
    assert merger.stats == MergerStats(images=2, groups=2, partial_groups=2, backlog=2)
    assert [(g.timestamp, g.reason) for g in merger] == [(utc(T1), "flush"), (utc(T2), "flush")]
    assert merger.get() is None
    assert merger.get(timeout_s=0.01) is None
    assert merger.get_nowait() is None
    assert merger.poll() == 0
    with pytest.raises(LocalProtocolError):
        merger.add(2, T3, stream="A")
    with pytest.raises(LocalProtocolError):
        merger.add(3, None, stream="A")


def test_get_times_out_and_rejects_negative_timeouts() -> None:
    merger: Merger[int] = Merger(["A"], clock=FakeClock())
    with pytest.raises(queue.Empty):
        merger.get(timeout_s=0.01)
    with pytest.raises(queue.Empty):
        merger.get_nowait()
    with pytest.raises(ValueError):
        merger.get(timeout_s=-1)


def test_close_wakes_a_blocked_consumer() -> None:
    merger: Merger[int] = Merger(["A", "B"], clock=FakeClock())
    got: list[list[MergedGroup[int]]] = []
    consumer = threading.Thread(target=lambda: got.append(list(merger)))
    consumer.start()
    merger.add(0, T1, stream="A")
    merger.close()
    consumer.join(timeout=10)
    assert not consumer.is_alive()
    assert [g.images for g in got[0]] == [(0,)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"streams": 0},
        {"streams": []},
        {"streams": "ABC"},
        {"max_wait_s": 0},
        {"max_wait_s": float("nan")},
        {"back_log": 0},
        {"max_open_groups": 0},
        {"drop": "middle"},
    ],
)
def test_constructor_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError) as info:
        Merger(**kwargs)
    assert info.value.protocol == "aartfaac"
    assert isinstance(info.value, ValueError)


def test_defaults() -> None:
    assert BACK_LOG == 10
    merger: Merger[int] = Merger(["A"], clock=FakeClock())
    for minute in range(12):
        merger.add(minute, f"2024-01-02T03:{minute:02d}:00", stream="A")
    assert [g.images[0] for g in drain(merger)] == list(range(2, 12))


# -- threads ---------------------------------------------------------------------------------


def test_many_producers_one_consumer() -> None:
    streams = ["s0", "s1", "s2", "s3"]
    stamps = [(datetime(2024, 1, 2) + timedelta(seconds=i)).isoformat() for i in range(50)]
    merger: Merger[tuple[str, int]] = Merger(
        streams, back_log=1000, max_open_groups=1000, clock=FakeClock()
    )
    received: list[MergedGroup[tuple[str, int]]] = []
    consumer = threading.Thread(target=lambda: received.extend(merger))
    start = threading.Barrier(len(streams))

    def produce(stream: str) -> None:
        start.wait()
        for i, stamp in enumerate(stamps):
            assert merger.add((stream, i), stamp, stream=stream)

    producers = [threading.Thread(target=produce, args=(s,)) for s in streams]
    consumer.start()
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join(timeout=30)
    merger.close()
    consumer.join(timeout=30)
    assert not consumer.is_alive()

    assert [g.timestamp for g in received] == [utc(s) for s in stamps]
    for i, group in enumerate(received):
        assert group.complete and group.reason == "complete"
        assert sorted(group.images) == [(s, i) for s in streams]
        assert [image[0] for image in group.images] == list(group.streams)
    assert merger.stats == MergerStats(images=200, groups=50, complete_groups=50)


# -- property --------------------------------------------------------------------------------

STAMPS = [
    "2024-01-02T03:04:05",
    "2024-01-02T03:04:05Z",
    "2024-01-02T03:04:06",
    "2024-01-02T03:04:07.5",
    "2024-01-02T03:04:08",
    None,
    "bogus",
]
Op = tuple[str | None, str | None] | None  # an add (stream, DATE-OBS) or None for get_nowait
ops = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["A", "B", "C", None]), st.sampled_from(STAMPS)),
        st.none(),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    ops=ops,
    back_log=st.sampled_from([1, 2, 1000]),
    drop=st.sampled_from(["oldest", "newest"]),
    max_open=st.sampled_from([1, 2, 16]),
)
def test_property_every_accepted_image_lands_once(
    ops: list[Op], back_log: int, drop: DropPolicy, max_open: int
) -> None:
    merger: Merger[int] = Merger(
        ["A", "B", "C"], back_log=back_log, drop=drop, max_open_groups=max_open, clock=FakeClock()
    )
    accepted: set[int] = set()
    received: list[MergedGroup[int]] = []
    adds = 0
    for op in ops:
        if op is None:
            with contextlib.suppress(queue.Empty):
                group = merger.get_nowait()
                assert group is not None
                received.append(group)
            continue
        stream, date_obs = op
        if merger.add(adds, date_obs, stream=stream):
            accepted.add(adds)
        adds += 1
    merger.close()
    received.extend(drain(merger))
    stats = merger.stats

    images = [image for group in received for image in group.images]
    assert len(images) == len(set(images)) and set(images) <= accepted
    assert len(images) + stats.dropped_images == len(accepted) == stats.images
    assert len(received) + stats.dropped_groups == stats.groups
    assert stats.complete_groups + stats.partial_groups == stats.groups
    assert stats.images + stats.late + stats.duplicates + stats.bad_timestamps == adds
    assert (stats.open_groups, stats.backlog) == (0, 0)
    if back_log == 1000:
        assert stats.dropped_groups == 0 and set(images) == accepted
    stamps = [group.timestamp for group in received]
    assert all(a < b for a, b in itertools.pairwise(stamps))
    for group in received:
        named = [s for s in group.streams if s is not None]
        assert len(named) == len(set(named))
        assert group.complete == (set(named) == {"A", "B", "C"})
