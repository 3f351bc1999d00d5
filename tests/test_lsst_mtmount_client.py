"""MTMount ``TelemetryClient`` over real loopback TCP against the ts_mtmount vectors.

The TMA side is a ``MockTma`` with streaming off, so each test writes exactly the frames it
wants (``inject``). Every topic frame of ``mtmount_telemetry.json`` part B publishes exactly the
recorded SAL data; the edge cases give the recorded samples and logs; part C failures give the
reference outcome, except malformed lines, which are counted and skipped (our fix). Clocks are
replaced by fakes where a value or a rate depends on them; nothing asserts a duration.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from daqwire.errors import StreamTimeoutError
from daqwire.generated.lsst_tcpip import encode_line
from daqwire.generated.mtmount_telemetry import encode
from daqwire.lsst.mtmount import (
    SAL_TOPICS,
    TOPIC_CLASSES,
    InProcessPublisher,
    MockTma,
    TelemetryClient,
    current_tai,
)
from tests.lsst_peers import (
    WAIT_S,
    assert_no_stray_tasks,
    free_port,
    full_backlog_listener,
    lsst_vector,
    wait_for_value,
)

VECTORS = lsst_vector("mtmount_telemetry")
PART_B = VECTORS["partB_all_topics_and_edges"]
PART_C = VECTORS["partC_failures"]
HEARTBEAT = "tel_telemetryClientHeartbeat"
CLIENT_LOGGER = "TelemetryClient(TelemetryClient)"
#: the TAI timestamp of every synthetic part B frame
FRAME_TAI = 1795266220.8117886
Sample = tuple[str, dict[str, Any]]


def run(main: Callable[[], Awaitable[None]]) -> None:
    """Run a test coroutine, then check that no background task outlived it."""

    async def wrapper() -> None:
        await asyncio.wait_for(main(), 3 * WAIT_S)
        await assert_no_stray_tasks()

    asyncio.run(wrapper())


class Recorder:
    """A publisher callback keeping every sample except heartbeats, with a bounded wait."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self._changed = asyncio.Event()

    def __call__(self, topic: str, data: dict[str, Any]) -> None:
        if topic != HEARTBEAT:
            self.samples.append((topic, data))
            self._changed.set()

    def of(self, topic: str) -> list[dict[str, Any]]:
        return [data for t, data in self.samples if t == topic]

    async def wait(self, probe: Callable[[list[Sample]], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not probe(self.samples):
                self._changed.clear()
                await self._changed.wait()

    async def after(self, start: int, topic: str) -> list[Sample]:
        """Wait for a sample of ``topic`` after index ``start``; the samples up to it."""
        await self.wait(lambda s: any(t == topic for t, _ in s[start:]))
        end = next(i for i in range(start, len(self.samples)) if self.samples[i][0] == topic)
        return self.samples[start : end + 1]


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Session:
    """A MockTma without streaming, a TelemetryClient connected to it and its samples."""

    def __init__(self, mock: MockTma, client: TelemetryClient, recorder: Recorder) -> None:
        self.mock = mock
        self.client = client
        self.recorder = recorder

    async def send(self, frame: bytes) -> None:
        await self.mock.inject(frame)

    async def sync(self) -> list[Sample]:
        """Send a sentinel frame; the samples the frames before it produced."""
        start = len(self.recorder.samples)
        await self.send(SENTINEL)
        samples = await self.recorder.after(start, "tel_mainPowerSupply")
        assert samples[-1] == ("tel_mainPowerSupply", SENTINEL_DATA)
        return samples[:-1]


@asynccontextmanager
async def session(**kwargs: Any) -> Any:
    recorder = Recorder()
    publisher = InProcessPublisher(queue_size=0)
    publisher.subscribe(recorder)
    mock = MockTma(rate_hz=0)
    await mock.start()
    kwargs.setdefault("telemetry_timeout", 3 * WAIT_S)
    client = TelemetryClient("127.0.0.1", mock.port, publisher=publisher, **kwargs)
    try:
        await asyncio.wait_for(client.start_task, WAIT_S)
        await mock.wait_connected(WAIT_S)
        yield Session(mock, client, recorder)
    finally:
        await client.close()
        await mock.close()


def truncated_count(value: Any) -> int | None:
    """N if ``value`` is a vector list shortened to ``[..., "...(N items)"]``."""
    if isinstance(value, list) and value and isinstance(value[-1], str):
        match = re.fullmatch(r"\.\.\.\((\d+) items\)", value[-1])
        assert match is not None, value[-1]
        return int(match.group(1))
    return None


def assert_recorded(recorded: dict[str, Any], actual: dict[str, Any]) -> None:
    """``actual`` equals a recorded SAL sample (shortened arrays: prefix and length)."""
    assert set(actual) == set(recorded)
    for key, value in recorded.items():
        count = truncated_count(value)
        if count is None:
            assert actual[key] == value, key
        else:
            assert len(actual[key]) == count, key
            assert actual[key][: len(value) - 1] == value[:-1], key


def frame_of(entry: dict[str, Any]) -> bytes:
    """The recorded frame of a part B topic, or one built from its published data."""
    if entry["frame_text"] is not None:
        frame: bytes = entry["frame_text"].encode()
        return frame
    fields: dict[str, Any] = {}
    for key, value in entry["published"][0]["data"].items():
        count = truncated_count(value)
        if count is not None:
            head = value[:-1]
            assert len(set(head)) == 1  # the synthetic frames repeat one value per array
            value = head + [head[0]] * (count - len(head))
        fields[key] = tuple(value) if isinstance(value, list) else value
    return encode(TOPIC_CLASSES[entry["topicID"]](**fields))


SENTINEL_ENTRY = next(e for e in PART_B["per_topic"] if e["topicID"] == 21)
SENTINEL = frame_of(SENTINEL_ENTRY)
SENTINEL_DATA = SENTINEL_ENTRY["published"][0]["data"]


def client_logs(caplog: pytest.LogCaptureFixture, start: int = 0) -> list[logging.LogRecord]:
    return [r for r in caplog.records[start:] if r.name.endswith(CLIENT_LOGGER)]


# --- 1. part B: every topic -------------------------------------------------------------------


def test_all_vector_topics_publish_the_recorded_data() -> None:
    """One frame per topic, in the recorded order: the recorded samples, nothing else.

    Recorded frames are sent as they are; for the others the frame is built from the recorded
    data with the generated encoder and must have the recorded length and first keys.
    """

    async def main() -> None:
        clock = FakeClock()
        async with session() as s:
            s.client.monotonic = clock
            s.client.current_tai = lambda: FRAME_TAI + 0.25
            for entry in PART_B["per_topic"]:
                frame = frame_of(entry)
                assert len(frame) == entry["frame_len"]
                assert list(json.loads(frame))[:8] == entry["frame_keys_head"]
                start = len(s.recorder.samples)
                await s.send(frame)
                (expected,) = entry["published"]
                samples = await s.recorder.after(start, expected["topic"])
                topic, data = samples[-1]
                assert topic == expected["topic"]
                assert_recorded(expected["data"], data)
                # the clock offset comes first (before extraction), as recorded
                also = [t for t, _ in samples[:-1]]
                assert also == [p["topic"] for p in entry["also_published"]]
                for _, offset in samples[:-1]:
                    assert offset == {"offset": FRAME_TAI - (FRAME_TAI + 0.25)}
            assert s.client.frame_count == len(PART_B["per_topic"])
            assert s.client.stats.clock_offsets == 1
            assert s.client.connected

    run(main)


def test_every_generated_topic_is_in_the_vectors() -> None:
    assert sorted(e["topicID"] for e in PART_B["per_topic"]) == sorted(SAL_TOPICS)
    for entry in PART_B["per_topic"]:
        assert entry["published"][0]["topic"] == f"tel_{SAL_TOPICS[entry['topicID']]}"


# --- 2. part B: edge cases --------------------------------------------------------------------


def test_edge_cases_give_the_recorded_samples_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Unknown id (logged once), missing key, extra keys, non-object, no topicID, "6"."""
    caplog.set_level(logging.INFO, logger="daqwire.lsst")

    async def main() -> None:
        clock = FakeClock()
        async with session() as s:
            s.client.monotonic = clock
            s.client.current_tai = lambda: FRAME_TAI - 1.5
            for case in PART_B["edge_cases"]:
                first_log = len(caplog.records)
                await s.send(case["frame"]["text"].encode())
                samples = await s.sync()
                assert [t for t, _ in samples] == [p["topic"] for p in case["published"]]
                for (topic, data), recorded in zip(samples, case["published"], strict=True):
                    if topic == "evt_clockOffset":
                        assert data == {"offset": 1.5}
                    else:
                        assert_recorded(recorded["data"], data)
                logs = client_logs(caplog, first_log)
                # by number: importing constellationdaq renames ERROR to "CRITICAL" globally
                levels = [getattr(logging, x["level"]) for x in case["logs"]]
                assert [r.levelno for r in logs] == levels
                for record, recorded in zip(logs, case["logs"], strict=True):
                    # the vector shortened long messages to 200 characters
                    assert record.getMessage().startswith(recorded["msg"])
                    assert (record.exc_info is not None) == (recorded["exc"] is not None)
            assert s.client.unsupported_topic_ids == {99, "6"}
            assert s.client.stats.unknown == 3
            assert s.client.stats.errors == 3
            assert s.client.connected

    run(main)


def test_missing_key_names_the_field(caplog: pytest.LogCaptureFixture) -> None:
    """Our extraction error is the generated FieldValueError with the field path."""
    caplog.set_level(logging.INFO, logger="daqwire.lsst")
    case = PART_B["edge_cases"][2]

    async def main() -> None:
        async with session() as s:
            await s.send(case["frame"]["text"].encode())
            await s.sync()

    run(main)
    (record,) = [r for r in client_logs(caplog) if r.levelno == logging.ERROR]
    assert record.exc_info is not None
    assert "azimuth.actualAcceleration" in str(record.exc_info[1])


# --- 3. clock offset, preprocessors -----------------------------------------------------------


def test_clock_offset_at_most_once_per_interval() -> None:
    """Counted against a fake clock: one per interval, only for topics 5, 6, 14 and 15."""
    frames = {e["topicID"]: frame_of(e) for e in PART_B["per_topic"]}

    async def main() -> None:
        clock = FakeClock()
        async with session() as s:
            s.client.monotonic = clock
            s.client.current_tai = lambda: FRAME_TAI - 2.0
            for topic_id in (1, 2, 3, 8, 27):  # not 21: that is the sync sentinel
                await s.send(frames[topic_id])
            assert [t for t, _ in await s.sync() if t == "evt_clockOffset"] == []
            for _ in range(5):
                for topic_id in (5, 6, 14, 15):
                    await s.send(frames[topic_id])
            offsets = [d for t, d in await s.sync() if t == "evt_clockOffset"]
            assert offsets == [{"offset": 2.0}]
            clock.now += 0.999
            await s.send(frames[15])
            assert [t for t, _ in await s.sync() if t == "evt_clockOffset"] == []
            clock.now += 0.001
            for topic_id in (14, 14, 6):
                await s.send(frames[topic_id])
            offsets = [d for t, d in await s.sync() if t == "evt_clockOffset"]
            assert offsets == [{"offset": 2.0}]
            clock.now += 5.0
            await s.send(frames[5])
            assert [t for t, _ in await s.sync()] == ["evt_clockOffset", "tel_azimuthDrives"]
            assert s.client.stats.clock_offsets == 3

    run(main)


def test_current_tai_is_utc_plus_37_s() -> None:
    import time

    before = time.time()
    tai = current_tai()
    after = time.time()
    assert before + 37.0 <= tai <= after + 37.0


class NegatingClient(TelemetryClient):
    """Inverts the azimuth, as an old ts_mtmount preprocessor did."""

    def _preprocess_azimuth(self, data: dict[str, Any]) -> None:
        data["actualPosition"] = -data["actualPosition"]


def test_preprocessor_edits_the_raw_frame() -> None:
    azimuth = next(e for e in PART_B["per_topic"] if e["topicID"] == 6)
    frame = json.loads(azimuth["frame_text"])
    frame["actualPosition"] = 12.5

    async def main() -> None:
        recorder = Recorder()
        publisher = InProcessPublisher()
        publisher.subscribe(recorder, "tel_azimuth")
        async with MockTma(rate_hz=0) as mock:
            client = NegatingClient("127.0.0.1", mock.port, publisher=publisher)
            assert client.get_preprocessor("azimuth") == client._preprocess_azimuth
            assert client.get_preprocessor("elevation") is None
            await client.start_task
            await mock.wait_connected(WAIT_S)
            await mock.inject(encode_line(frame))
            await recorder.wait(lambda s: len(s) == 1)
            await client.close()
        assert recorder.samples[0][1]["actualPosition"] == -12.5

    run(main)


# --- 4. part C: failures ----------------------------------------------------------------------


def connected_events(publisher: InProcessPublisher) -> list[dict[str, Any]]:
    events = []
    queue = publisher.queue
    assert queue is not None
    while not queue.empty():
        topic, data = queue.get_nowait()
        if topic == "evt_telemetryConnected":
            events.append(data)
    return events


def test_no_telemetry_gives_up_like_the_reference(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="daqwire.lsst")
    recorded = PART_C["no_telemetry_for_1.6s"]

    async def main() -> None:
        publisher = InProcessPublisher()
        async with MockTma(rate_hz=0) as mock:
            client = TelemetryClient("127.0.0.1", mock.port, publisher=publisher)
            await client.start_task
            await asyncio.wait_for(client.done_task, WAIT_S)
            assert not client.connected
            assert client.start_error is None
            await client.close()
        assert connected_events(publisher) == recorded["telemetryConnected_events"]
        assert not publisher.closed  # given by the caller, so not closed by the client

    run(main)
    errors = [r.getMessage() for r in client_logs(caplog) if r.levelno >= logging.ERROR]
    assert errors == [x["msg"] for x in recorded["logs"]]


def test_server_close_gives_up_like_the_reference(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="daqwire.lsst")

    async def main() -> None:
        async with session() as s:
            await s.sync()
            await s.mock.close()
            await asyncio.wait_for(s.client.done_task, WAIT_S)
            assert not s.client.connected

    run(main)
    messages = [r.getMessage() for r in client_logs(caplog)]
    assert "Telemetry client lost its connection; giving up." in messages
    assert not [r for r in client_logs(caplog) if r.levelno >= logging.ERROR]


def test_peer_closing_at_once_gives_up(caplog: pytest.LogCaptureFixture) -> None:
    """A TMA that accepts and hangs up before sending anything: done, never a hang."""
    caplog.set_level(logging.INFO, logger="daqwire.lsst")

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()
        await writer.wait_closed()

    async def main() -> None:
        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        publisher = InProcessPublisher()
        try:
            client = TelemetryClient("127.0.0.1", port, publisher=publisher)
            await client.start_task
            await asyncio.wait_for(client.done_task, WAIT_S)
            await client.close()
        finally:
            server.close()
            await server.wait_closed()
        events = connected_events(publisher)
        assert events[0] == {"connected": False} and events[-1] == {"connected": False}

    run(main)
    messages = [r.getMessage() for r in client_logs(caplog)]
    assert "Telemetry client lost its connection; giving up." in messages


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"this is not json\r\n", id="non-json"),
        pytest.param(b"x" * 65537 + b"\r\n", id="over-64KiB"),
        pytest.param(b'{"topicID": 6, "a": "\xff"}\r\n', id="bad-utf8"),
        pytest.param(b"\r\n", id="empty"),
    ],
)
def test_malformed_line_is_counted_and_skipped(bad: bytes) -> None:
    """Our fix: the reference gives up on these (part C); we count, log and go on."""

    async def main() -> None:
        async with session() as s:
            await s.send(bad)
            await s.send(bad)
            assert await s.sync() == []
            assert s.client.malformed_count == 2
            assert s.client.connected
            assert not s.client.done_task.done()

    run(main)


def test_line_limit_is_configurable() -> None:
    big = next(e for e in PART_B["per_topic"] if e["topicID"] == 25)  # 18 kB

    async def main() -> None:
        async with session(line_limit=16384) as s:
            await s.send(frame_of(big))
            assert await s.sync() == []
            assert s.client.stats.malformed == 1
            assert s.client.lines_skipped == 1

    run(main)


def test_connection_refused(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="daqwire.lsst")
    port = free_port()

    async def main() -> None:
        publisher = InProcessPublisher()
        client = TelemetryClient("127.0.0.1", port, publisher=publisher)
        await client.start_task  # ends without error, as the reference
        assert isinstance(client.start_error, ConnectionRefusedError)
        assert client.done_task.done()
        assert not client.connected
        await client.close()
        assert connected_events(publisher) == [{"connected": False}]

    run(main)
    (record,) = [r for r in client_logs(caplog) if r.levelno >= logging.ERROR]
    assert record.getMessage().startswith(
        f"Could not open connection to host=127.0.0.1, port={port}: ConnectionRefusedError("
    )


def test_connection_timeout() -> None:
    async def main() -> None:
        with full_backlog_listener() as port:
            client = TelemetryClient("127.0.0.1", port, connection_timeout=0.2)
            await client.start_task
            assert isinstance(client.start_error, StreamTimeoutError)
            assert isinstance(client.start_error, TimeoutError)
            await client.close()

    run(main)


def test_close_is_idempotent_and_stops_everything() -> None:
    async def main() -> None:
        async with session() as s:
            await s.sync()
            publisher = s.client.publisher
            await s.client.close()
            await s.client.close()
            assert s.client.done_task.done()
            assert not s.client.connected
            assert isinstance(publisher, InProcessPublisher)
            assert not s.client.owns_publisher and not publisher.closed

    run(main)


def test_default_publisher_is_owned_and_closed() -> None:
    async def main() -> None:
        async with MockTma(rate_hz=0) as mock:
            client = TelemetryClient("127.0.0.1", mock.port)
            await client.start_task
            publisher = client.publisher
            assert isinstance(publisher, InProcessPublisher) and client.owns_publisher
            await client.close()
            assert publisher.closed
            assert publisher.counts["evt_telemetryConnected"] == 4

    run(main)


# --- 5. amain ---------------------------------------------------------------------------------


def test_amain_requires_host(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        asyncio.run(TelemetryClient.amain([]))
    assert info.value.code == 2
    assert "--host is required" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["--host", "h", "--port", "x"], ["--host", "h", "--loglevel", "info"]]
)
def test_amain_rejects_bad_numbers(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        asyncio.run(TelemetryClient.amain(argv))
    assert info.value.code == 2
    assert "invalid int value" in capsys.readouterr().err


def test_amain_connection_refused_is_a_failure() -> None:
    port = free_port()
    assert asyncio.run(TelemetryClient.amain(["--host", "127.0.0.1", "--port", str(port)])) == 1


def test_amain_runs_until_sigterm() -> None:
    async def main() -> None:
        async with MockTma(rate_hz=20) as mock:
            argv = ["--host", "127.0.0.1", "--port", str(mock.port), "--loglevel", "30"]
            task = asyncio.create_task(TelemetryClient.amain(argv))
            await mock.wait_connected(WAIT_S)
            await wait_for_value(lambda: mock.sent_counts[6] >= 2)
            os.kill(os.getpid(), signal.SIGTERM)
            assert await asyncio.wait_for(task, WAIT_S) == 0
            assert not task.cancelled()

    run(main)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
