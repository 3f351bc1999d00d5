"""The reconnecting AARTFAAC connector, the tkp.stream drop-in API and MergedStreams.

Faults are played by scripted loopback servers (close mid-window, silence, late start,
restart on the same port, bad windows); the tests wait for conditions by polling counters
with a generous deadline and never assert on timing.
"""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

from daqwire.aartfaac import (
    BACK_LOG,
    CHECKSUM,
    Connector,
    MergedStreams,
    StreamImage,
    backoff_delay,
    connection_handler,
    connector,
    extract_timestamp,
    getbytes,
    merger,
    read_window,
    reconstruct_fits,
    stream_generator,
)
from daqwire.errors import FieldValueError, StreamClosedError
from daqwire.generated.aartfaac import Window
from tests.aartfaac_servers import (
    HOLD,
    LoopbackServer,
    ServerFactory,
    Step,
    connected,
    decode_all,
    free_port,
    same_window,
    wait_until,
)
from tests.conftest import index_image, load_aartfaac_vector

WAIT_S = 10.0


def vector(kind: str, name: str) -> bytes:
    return load_aartfaac_vector(kind, name)[0]


W16 = vector("valid", "w16x16_casa4d")
W64 = vector("valid", "w64x32_casa4d")
SEQ3 = vector("valid", "seq3_w16x16_casa4d")
SEQ3_DATES = [
    w["date_obs"] for w in load_aartfaac_vector("valid", "seq3_w16x16_casa4d")[1]["windows"]
]


@pytest.fixture
def serve() -> Iterator[ServerFactory]:
    """``serve(script, port=..., chunk=...)``: a started loopback server, stopped after."""
    with ServerFactory() as factory:
        yield factory


class Sink:
    """Collects what a connector delivers; can be told to raise on some calls."""

    def __init__(self, fail_on: Callable[[int], bool] = lambda n: False) -> None:
        self.items: list[StreamImage] = []
        self.calls = 0
        self._fail_on = fail_on
        self._lock = threading.Lock()

    def __call__(self, item: StreamImage) -> None:
        with self._lock:
            self.calls += 1
            if self._fail_on(self.calls):
                raise ValueError(f"sink refuses call {self.calls}")
            self.items.append(item)

    @property
    def windows(self) -> list[Window]:
        with self._lock:
            return [item.window for item in self.items]


@pytest.fixture
def make_connector() -> Iterator[Callable[..., Connector]]:
    """``make_connector(port, sink, **options)``: a started Connector with small backoff."""
    made: list[Connector] = []

    def make(port: int, sink: Callable[[StreamImage], object], **options: Any) -> Connector:
        settings: dict[str, Any] = {
            "timeout_s": WAIT_S,
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.05,
            "rng": random.Random(0),
        }
        settings.update(options)
        conn = Connector("127.0.0.1", port, sink, **settings)
        made.append(conn)
        conn.start()
        return conn

    yield make
    for conn in made:
        conn.stop()
        assert not conn.running


def connector_threads(*ports: int) -> list[str]:
    names = {f"aartfaac-connector-127.0.0.1:{port}" for port in ports}
    return [t.name for t in threading.enumerate() if t.name in names and t.is_alive()]


def assert_stopped(conn: Connector) -> None:
    conn.stop()
    assert not conn.running
    assert connector_threads(conn.port) == []
    conn.stop()  # idempotent


# --- 9. connector faults ------------------------------------------------------------------------


def test_server_closing_mid_window_counts_truncated_and_reconnects(
    serve: ServerFactory, make_connector: Callable[..., Connector]
) -> None:
    def script(n: int) -> list[Step]:
        return [W16 + W64[:5000]] if n == 0 else [SEQ3, HOLD]

    server = serve(script)
    sink = Sink()
    conn = make_connector(server.port, sink)
    wait_until(lambda: len(sink.items) == 4)
    stats = conn.stats
    assert conn.running
    assert (stats.windows, stats.truncated, stats.errors) == (4, 1, 0)
    assert (stats.connects, stats.reconnects, stats.connect_failures) == (2, 1, 0)
    assert stats.connected is True
    assert stats.last_error is not None and "inside a window" in stats.last_error
    assert stats.stream == f"127.0.0.1:{server.port}"
    refs = decode_all(W16) + decode_all(SEQ3)
    assert all(same_window(g, r) for g, r in zip(sink.windows, refs, strict=True))
    assert [item.sequence for item in sink.items] == [1, 2, 3, 4]
    assert {item.stream for item in sink.items} == {f"127.0.0.1:{server.port}"}
    assert server.accepted == 2
    assert_stopped(conn)
    assert conn.stats.connected is False


def test_silent_server_times_out_and_reconnects(
    serve: ServerFactory, make_connector: Callable[..., Connector]
) -> None:
    def script(n: int) -> list[Step]:
        return [W16, HOLD] if n == 1 else [HOLD]

    server = serve(script)
    sink = Sink()
    conn = make_connector(server.port, sink, timeout_s=0.2)
    wait_until(lambda: len(sink.items) == 1 and conn.stats.timeouts >= 2)
    stats = conn.stats
    assert conn.running
    assert stats.connects >= 2 and stats.reconnects == stats.connects - 1
    assert stats.connects >= stats.timeouts
    assert (stats.windows, stats.errors, stats.truncated) == (1, 0, 0)
    assert stats.last_error is not None and "sent nothing for 0.2 s" in stats.last_error
    assert same_window(sink.windows[0], decode_all(W16)[0])
    assert_stopped(conn)


def test_server_down_at_first_then_started_on_the_same_port(
    serve: ServerFactory, make_connector: Callable[..., Connector]
) -> None:
    port = free_port()
    sink = Sink()
    conn = make_connector(port, sink)
    wait_until(lambda: conn.stats.connect_failures >= 3)
    assert conn.running
    assert (conn.stats.connects, conn.stats.windows) == (0, 0)
    assert conn.stats.last_error is not None and conn.stats.last_error.startswith("connect:")
    serve([SEQ3, HOLD], port=port)
    wait_until(lambda: len(sink.items) == 3)
    stats = conn.stats
    assert stats.connect_failures >= 3
    assert (stats.connects, stats.reconnects, stats.windows, stats.errors) == (1, 0, 3, 0)
    assert all(same_window(g, r) for g, r in zip(sink.windows, decode_all(SEQ3), strict=True))
    assert_stopped(conn)


def test_server_restart_on_the_same_port_reconnects(
    serve: ServerFactory, make_connector: Callable[..., Connector]
) -> None:
    def script(n: int) -> list[Step]:
        return [SEQ3, HOLD] if n == 0 else [W64, HOLD]

    server = serve(script)
    sink = Sink()
    conn = make_connector(server.port, sink)
    wait_until(lambda: len(sink.items) == 3)
    server.stop()  # closes the held connection and stops listening
    wait_until(lambda: conn.stats.connect_failures >= 1)  # refused while it is down
    assert conn.running
    server.start()
    wait_until(lambda: len(sink.items) == 4)
    stats = conn.stats
    assert (stats.connects, stats.reconnects) == (2, 1)
    assert (stats.windows, stats.errors, stats.truncated) == (4, 0, 0)
    assert server.accepted == 2
    refs = decode_all(SEQ3) + decode_all(W64)
    assert all(same_window(g, r) for g, r in zip(sink.windows, refs, strict=True))
    assert_stopped(conn)


def test_bad_window_is_skipped_on_the_same_connection(
    serve: ServerFactory, make_connector: Callable[..., Connector]
) -> None:
    bad = vector("malformed", "array_length_vs_naxis_mismatch")
    server = serve([bad + W16, HOLD])
    sink = Sink()
    conn = make_connector(server.port, sink)
    wait_until(lambda: len(sink.items) == 1)
    stats = conn.stats
    assert conn.running
    assert (stats.errors, stats.windows, stats.resyncs) == (1, 1, 1)
    assert (stats.connects, stats.reconnects, stats.truncated) == (1, 0, 0)
    assert stats.last_error is not None and stats.last_error.startswith("bad window:")
    assert "window.image" in stats.last_error
    assert same_window(sink.windows[0], decode_all(W16)[0])
    assert server.accepted == 1
    assert_stopped(conn)


def test_sink_that_raises_is_counted_and_reading_goes_on(
    serve: ServerFactory, make_connector: Callable[..., Connector]
) -> None:
    server = serve([SEQ3 + W64, HOLD])
    sink = Sink(fail_on=lambda n: n in (1, 3))
    conn = make_connector(server.port, sink)
    wait_until(lambda: sink.calls == 4)
    stats = conn.stats
    assert conn.running
    assert (stats.sink_errors, stats.windows, stats.connects) == (2, 4, 1)
    refs = [decode_all(SEQ3)[1], decode_all(W64)[0]]
    assert all(same_window(g, r) for g, r in zip(sink.windows, refs, strict=True))
    assert [item.sequence for item in sink.items] == [2, 4]
    assert_stopped(conn)


def test_connector_start_twice_and_bad_options(serve: ServerFactory) -> None:
    server = serve([HOLD])
    conn = Connector("127.0.0.1", server.port, Sink(), backoff_initial_s=0.01, backoff_max_s=0.05)
    assert not conn.running
    conn.stop()  # before start: a no-op
    conn = Connector("127.0.0.1", server.port, Sink(), backoff_initial_s=0.01, backoff_max_s=0.05)
    conn.start()
    try:
        with pytest.raises(RuntimeError):
            conn.start()
        wait_until(lambda: conn.stats.connected)
        assert conn.running
    finally:
        assert_stopped(conn)
    assert conn.stats.connects == 1
    for bad in (
        {"timeout_s": 0},
        {"connect_timeout_s": -1},
        {"backoff_initial_s": 0},
        {"backoff_initial_s": 2.0, "backoff_max_s": 1.0},
        {"backoff_jitter": 1.0},
        {"backoff_jitter": -0.1},
    ):
        with pytest.raises(ValueError):
            Connector("127.0.0.1", 1, Sink(), **bad)
    assert Connector("", 6666, Sink()).stream == "127.0.0.1:6666"  # tkp's '' host


# --- 10. backoff_delay ----------------------------------------------------------------------


def test_backoff_doubles_and_caps_without_jitter() -> None:
    delays = [backoff_delay(n, initial_s=0.1, max_s=5.0, jitter=0.0) for n in range(9)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])
    assert backoff_delay(10_000, initial_s=0.1, max_s=5.0, jitter=0.0) == 5.0
    assert backoff_delay(0, initial_s=0.01, max_s=0.05, jitter=0.0) == pytest.approx(0.01)
    assert backoff_delay(3, initial_s=0.01, max_s=0.05, jitter=0.0) == pytest.approx(0.05)


def test_backoff_jitter_stays_in_range_and_is_deterministic() -> None:
    rng = random.Random(1234)
    for attempt in range(12):
        base = min(5.0, 0.1 * 2**attempt)
        for _ in range(50):
            delay = backoff_delay(attempt, initial_s=0.1, max_s=5.0, jitter=0.5, rng=rng)
            assert base * 0.5 <= delay <= base
    first = [backoff_delay(n, jitter=0.3, rng=random.Random(7)) for n in range(8)]
    assert first == [backoff_delay(n, jitter=0.3, rng=random.Random(7)) for n in range(8)]
    draw = random.Random(7).random()
    assert first == pytest.approx([min(5.0, 0.1 * 2**n) * (1 - 0.3 * draw) for n in range(8)])
    seq_rng, ref_rng = random.Random(99), random.Random(99)
    seq = [backoff_delay(2, initial_s=1.0, max_s=10.0, jitter=0.5, rng=seq_rng) for _ in range(5)]
    assert seq == pytest.approx([4.0 * (1 - 0.5 * ref_rng.random()) for _ in range(5)])


# --- 11. the tkp drop-in API -----------------------------------------------------------------


def test_compat_constants() -> None:
    assert CHECKSUM == 0x47494A53484F4D4F == 5136718571548659023
    assert BACK_LOG == 10


def test_getbytes_exact_counts_over_chunked_sends_then_eof(serve: ServerFactory) -> None:
    payload = bytes(range(256)) * 40 + b"xyz"  # 10243 bytes
    server = serve([payload], chunk=7)
    with connected(server) as sock:
        first = getbytes(sock, 10000)
        assert type(first) is bytes and first == payload[:10000]
        assert getbytes(sock, 0) == b""
        assert getbytes(sock, 240) == payload[10000:10240]
        with pytest.raises(StreamClosedError) as closed:
            getbytes(sock, 5)  # 3 bytes left, then EOF
    assert isinstance(closed.value, OSError)
    assert str(closed.value) == "Server closed connection"


def test_read_window_returns_exact_lengths_for_each_window(serve: ServerFactory) -> None:
    server = serve([SEQ3 + W64])
    with connected(server) as sock:
        parts = [read_window(sock) for _ in range(4)]
        with pytest.raises(StreamClosedError):
            read_window(sock)
    assert [(len(f), len(i)) for f, i in parts] == [(5760, 1024)] * 3 + [(5760, 64 * 32 * 4)]
    assert all(type(f) is bytes and type(i) is bytes for f, i in parts)
    assert parts[3] == (W64[512 : 512 + 5760], W64[512 + 5760 :])
    for n, (fits_bytes, _image) in enumerate(parts[:3]):
        assert f"DATE-OBS= '{SEQ3_DATES[n]}'".encode() in fits_bytes


def test_reconstruct_fits_gives_y_x_float32_for_the_non_square_vector() -> None:
    fits_bytes, image_bytes = W64[512 : 512 + 5760], W64[512 + 5760 :]
    hdulist = reconstruct_fits(fits_bytes, image_bytes)
    assert isinstance(hdulist, fits.HDUList)
    data = hdulist[0].data
    header = hdulist[0].header
    assert data.shape == (32, 64)  # tkp gave (64, 32), the transpose
    assert data.dtype == np.float32
    yy, xx = np.mgrid[0:32, 0:64]
    assert np.array_equal(data, (yy * 64 + xx).astype(np.float32))
    assert data[1, 0] == 64.0 and data[0, 1] == 1.0 and data[31, 63] == 2047.0
    assert (header["NAXIS1"], header["NAXIS2"]) == (64, 32)
    assert header["CTYPE1"] == "RA---SIN" and header["CTYPE2"] == "DEC--SIN"
    assert reconstruct_fits(fits_bytes, image_bytes, pixel_order="naxis1_fastest")[
        0
    ].data.shape == (32, 64)


def test_extract_timestamp_naive_z_missing_and_bad() -> None:
    naive = reconstruct_fits(W16[512 : 512 + 5760], W16[512 + 5760 :])
    assert extract_timestamp(naive) == datetime(2026, 11, 21, 12, 52, 8, 477364)
    assert extract_timestamp(naive).tzinfo is None
    z = vector("edge", "date_obs_with_Z")
    aware = reconstruct_fits(z[512 : 512 + 5760], z[512 + 5760 :])
    stamp = extract_timestamp(aware)
    assert stamp == datetime(2026, 11, 21, 12, 52, 8, 477364, tzinfo=UTC)
    assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
    missing = fits.HDUList([fits.PrimaryHDU(data=np.zeros((2, 2), np.float32))])
    with pytest.raises(FieldValueError) as caught:
        extract_timestamp(missing)
    assert caught.value.field_path == "window.fits.DATE-OBS"
    bad = fits.HDUList([fits.PrimaryHDU(header=fits.Header([("DATE-OBS", "not-a-date")]))])
    with pytest.raises(FieldValueError) as caught:
        extract_timestamp(bad)
    assert caught.value.field_path == "window.fits.DATE-OBS"


def test_connection_handler_puts_stream_hdulists_and_skips_a_bad_window(
    serve: ServerFactory,
) -> None:
    bad = vector("malformed", "array_length_vs_naxis_mismatch")
    server = serve([W16 + bad + W64])
    items: queue.Queue[Any] = queue.Queue()
    with connected(server) as sock:
        connection_handler(sock, items, timeout_s=WAIT_S)  # returns when the server closes
    got = [items.get_nowait() for _ in range(items.qsize())]
    assert len(got) == 2
    assert all(type(h) is fits.HDUList for h in got)  # TraP checks the type exactly
    assert [h.stream for h in got] == [f"127.0.0.1:{server.port}"] * 2
    assert got[0][0].data.shape == (16, 16) and got[1][0].data.shape == (32, 64)
    assert np.array_equal(got[0][0].data, index_image(16, 16))
    assert np.array_equal(got[1][0].data, index_image(64, 32))


def test_connection_handler_returns_on_a_silent_server(serve: ServerFactory) -> None:
    server = serve([HOLD])
    items: queue.Queue[Any] = queue.Queue()
    with connected(server) as sock:
        connection_handler(sock, items, timeout_s=0.2)
    assert items.empty()


def test_compat_connector_thread_delivers_and_stops_on_the_event(serve: ServerFactory) -> None:
    server = serve([SEQ3, HOLD])
    items: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(
        target=connector,
        args=("127.0.0.1", server.port, items),
        kwargs={"stop": stop, "timeout_s": WAIT_S},
        name="test-compat-connector",
    )
    thread.start()
    try:
        got = [items.get(timeout=WAIT_S) for _ in range(3)]
        assert connector_threads(server.port) != []
    finally:
        stop.set()
        thread.join(WAIT_S)
    assert not thread.is_alive()
    assert connector_threads(server.port) == []
    assert all(type(h) is fits.HDUList for h in got)  # TraP checks the type exactly
    assert [h[0].header["DATE-OBS"] for h in got] == SEQ3_DATES
    assert {h.stream for h in got} == {f"127.0.0.1:{server.port}"}


def _hdul(stream: str | None, date_obs: str | None) -> fits.HDUList:
    header = fits.Header([("DATE-OBS", date_obs)]) if date_obs is not None else fits.Header()
    hdulist = fits.HDUList([fits.PrimaryHDU(data=np.zeros((2, 2), np.float32), header=header)])
    hdulist.stream = stream
    return hdulist


def test_compat_merger_groups_survives_bad_items_and_flushes_on_none() -> None:
    t1, t2, t3, t4 = (f"2026-11-21T12:52:0{s}.500000" for s in (1, 2, 3, 4))
    a1, b1 = _hdul("a", t1), _hdul("b", t1)
    b_missing = _hdul("b", None)
    a2, a3 = _hdul("a", t2), _hdul("a", t3)
    b_bad = _hdul("b", "not-a-date")
    b3 = _hdul("b", t3)
    b2_late = _hdul("b", t2)  # t3 went out before it came
    a4 = _hdul("a", t4)
    image_queue: queue.Queue[Any] = queue.Queue()
    grouped_queue: queue.Queue[Any] = queue.Queue()
    for item in (a1, b1, b_missing, a2, a3, b_bad, "not an HDUList", b3, b2_late, a4, None):
        image_queue.put(item)
    thread = threading.Thread(
        target=merger,
        args=(image_queue, grouped_queue),
        kwargs={"streams": 2, "max_wait_s": 60.0},
        name="test-compat-merger",
    )
    thread.start()
    thread.join(WAIT_S)
    assert not thread.is_alive()  # returned after the None
    groups = [grouped_queue.get_nowait() for _ in range(grouped_queue.qsize())]
    assert [[id(h) for h in g] for g in groups] == [
        [id(a1), id(b1)],  # complete
        [id(a2)],  # superseded when t3 completed
        [id(a3), id(b3)],  # complete
        [id(a4)],  # flushed by the None
    ]
    assert all(type(g) is list for g in groups)


def test_stream_generator_yields_groups_and_close_stops_its_threads(
    serve: ServerFactory,
) -> None:
    servers = [serve([SEQ3, HOLD]) for _ in range(2)]
    ports = [s.port for s in servers]
    gen = stream_generator(["127.0.0.1", ""], ports, max_wait_s=30.0, timeout_s=WAIT_S)
    try:
        groups = [next(gen) for _ in range(3)]
        assert len(connector_threads(*ports)) == 2
    finally:
        gen.close()
    assert connector_threads(*ports) == []
    names = {f"127.0.0.1:{p}" for p in ports}
    for n, group in enumerate(groups):
        assert type(group) is list and len(group) == 2
        assert all(isinstance(h, fits.HDUList) for h in group)
        assert {h.stream for h in group} == names
        assert [h[0].header["DATE-OBS"] for h in group] == [SEQ3_DATES[n]] * 2
        for h in group:
            assert h[0].data.shape == (16, 16)
            assert np.array_equal(h[0].data, index_image(16, 16))
    with pytest.raises(ValueError):
        next(stream_generator(["127.0.0.1"], [1, 2]))


# --- 12. MergedStreams ------------------------------------------------------------------------


def _with_date_obs(window: bytes, old: str, new: str) -> bytes:
    assert len(old) == len(new) and window.count(old.encode()) == 1
    return window.replace(old.encode(), new.encode())


def test_merged_streams_groups_three_streams_and_close_flushes(serve: ServerFactory) -> None:
    extra_date = "2026-11-21T12:52:15.477358"
    extra = _with_date_obs(SEQ3[14592:], SEQ3_DATES[2], extra_date)
    servers: list[LoopbackServer] = [
        serve([SEQ3 + (extra if i == 0 else b""), HOLD]) for i in range(3)
    ]
    names = [f"127.0.0.1:{s.port}" for s in servers]
    streams = MergedStreams([s.address for s in servers], max_wait_s=30.0, timeout_s=WAIT_S)
    with streams:
        groups = [streams.get(timeout_s=WAIT_S) for _ in range(3)]
        wait_until(
            lambda: streams.stream_stats[0].windows == 4 and streams.merger_stats.open_groups == 1
        )
        assert len(connector_threads(*(s.port for s in servers))) == 3
    # __exit__ closed it: connectors joined, the open group flushed
    assert connector_threads(*(s.port for s in servers)) == []
    flushed = streams.get(timeout_s=WAIT_S)
    assert streams.get(timeout_s=WAIT_S) is None
    refs = decode_all(SEQ3)
    for n, group in enumerate(groups):
        assert group is not None
        assert group.complete and group.reason == "complete"
        assert sorted(s for s in group.streams if s is not None) == sorted(names)
        assert group.timestamp == datetime.fromisoformat(SEQ3_DATES[n]).replace(tzinfo=UTC)
        assert len(group.images) == 3
        for item in group.images:
            assert isinstance(item, StreamImage) and item.stream in names
            assert item.date_obs == SEQ3_DATES[n]
            assert same_window(item.window, refs[n])
    assert flushed is not None
    assert (flushed.complete, flushed.reason, flushed.streams) == (False, "flush", (names[0],))
    assert flushed.timestamp == datetime.fromisoformat(extra_date).replace(tzinfo=UTC)
    assert same_window(flushed.images[0].window, decode_all(extra)[0])

    stats = streams.stream_stats
    assert [s.stream for s in stats] == names
    assert [s.windows for s in stats] == [4, 3, 3]
    assert [(s.connects, s.errors, s.resyncs, s.truncated) for s in stats] == [(1, 0, 0, 0)] * 3
    assert [s.connected for s in stats] == [False] * 3
    m = streams.merger_stats
    assert (m.images, m.groups, m.complete_groups, m.partial_groups) == (10, 4, 3, 1)
    assert (m.late, m.duplicates, m.bad_timestamps) == (0, 0, 0)
    assert (m.dropped_groups, m.dropped_images, m.open_groups, m.backlog) == (0, 0, 0, 0)
    streams.close()  # idempotent


def test_merged_streams_accepts_a_backoff_cap_below_the_initial_default() -> None:
    """``backoff_max_s`` is an option of MergedStreams (and connector()): any cap > 0 must work.

    MergedStreams has no ``backoff_initial_s``; its connectors keep the default initial delay
    of 0.1 s, and the Connector refuses a cap below it ("need 0 < backoff_initial_s <=
    backoff_max_s") for a parameter the caller cannot set.
    """
    streams = MergedStreams([("127.0.0.1", 1)], backoff_max_s=0.05)
    streams.close()
    stop = threading.Event()
    stop.set()  # the tkp-style connector() has the same option and the same problem
    connector("127.0.0.1", 1, queue.Queue(), stop=stop, backoff_max_s=0.05)


def test_merged_streams_iteration_ends_after_close(serve: ServerFactory) -> None:
    servers = [serve([SEQ3, HOLD]) for _ in range(3)]
    streams = MergedStreams([s.address for s in servers], max_wait_s=30.0, timeout_s=WAIT_S)
    seen: list[Any] = []
    for group in streams:  # iteration starts the connectors
        seen.append(group)
        if len(seen) == 3:
            streams.close()
    assert [len(g.images) for g in seen] == [3, 3, 3]
    assert all(g.complete for g in seen)
    assert connector_threads(*(s.port for s in servers)) == []
    with pytest.raises(ValueError):
        MergedStreams([])
    with pytest.raises(ValueError):
        MergedStreams([("127.0.0.1", 1), ("127.0.0.1", 1)])
