"""Read and merge several AARTFAAC streams in one process: connectors feeding one merger."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from types import TracebackType

from daqwire.aartfaac.connection import Connector, StreamStats
from daqwire.aartfaac.merging import BACK_LOG, DropPolicy, MergedGroup, Merger, MergerStats
from daqwire.aartfaac.reader import DEFAULT_TIMEOUT_S, StreamImage
from daqwire.generated.aartfaac import WINDOW_MAX_FITS_BYTES, WINDOW_MAX_IMAGE_BYTES, PixelOrder

__all__ = ["MergedStreams", "parse_address"]

log = logging.getLogger(__name__)


def parse_address(text: str, *, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``HOST:PORT`` (or ``[v6]:PORT`` or ``:PORT``) as a (host, port) pair."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"not a HOST:PORT address: {text!r}")
    host = host.strip("[]") or default_host
    return host, int(port_text)


class MergedStreams:
    """Connect to N imagers and yield their images grouped by DATE-OBS.

    One ``Connector`` thread per stream feeds a ``Merger`` directly (no queue in between,
    no copies: groups hold zero-copy views of the receive buffers). Iterate to take groups;
    ``close()`` stops the connectors and flushes the last groups.
    """

    def __init__(
        self,
        addresses: Sequence[tuple[str, int]],
        *,
        pixel_order: PixelOrder = "naxis2_fastest",
        max_wait_s: float = 2.0,
        back_log: int = BACK_LOG,
        drop: DropPolicy = "oldest",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float = 5.0,
        backoff_max_s: float = 5.0,
        max_fits_bytes: int = WINDOW_MAX_FITS_BYTES,
        max_image_bytes: int = WINDOW_MAX_IMAGE_BYTES,
    ) -> None:
        if not addresses:
            raise ValueError("no stream addresses given")
        self.connectors = [
            Connector(
                host,
                port,
                self._add,
                pixel_order=pixel_order,
                timeout_s=timeout_s,
                connect_timeout_s=connect_timeout_s,
                backoff_initial_s=min(0.1, backoff_max_s),
                backoff_max_s=backoff_max_s,
                max_fits_bytes=max_fits_bytes,
                max_image_bytes=max_image_bytes,
                # the backlog and the open group each hold one buffer per stream
                max_buffers=back_log + 3,
            )
            for host, port in addresses
        ]
        names = [c.stream for c in self.connectors]
        if len(set(names)) != len(names):
            raise ValueError(f"the same stream is given twice: {names}")
        self.merger: Merger[StreamImage] = Merger(
            names, max_wait_s=max_wait_s, back_log=back_log, drop=drop
        )
        self._started = False

    def _add(self, item: StreamImage) -> None:
        try:
            date_obs: str | None = item.date_obs
        except Exception:  # decode checked it; be safe anyway
            date_obs = None
        self.merger.add(item, date_obs, stream=item.stream)

    def start(self) -> MergedStreams:
        """Start every connector (idempotent)."""
        if not self._started:
            self._started = True
            for connector in self.connectors:
                connector.start()
        return self

    def get(self, timeout_s: float | None = None) -> MergedGroup[StreamImage] | None:
        """The next group; None once closed and drained; ``queue.Empty`` on timeout."""
        return self.merger.get(timeout_s)

    def __iter__(self) -> Iterator[MergedGroup[StreamImage]]:
        """Groups until ``close()`` (then the flushed last groups)."""
        self.start()
        return iter(self.merger)

    @property
    def stream_stats(self) -> list[StreamStats]:
        """Per-stream counters: windows, bytes, resyncs, reconnects, errors, ..."""
        return [c.stats for c in self.connectors]

    @property
    def merger_stats(self) -> MergerStats:
        """Merger counters: groups, late, duplicates, bad timestamps, drops, ..."""
        return self.merger.stats

    def close(self) -> None:
        """Stop and join the connectors, then flush the open groups (idempotent)."""
        for connector in self.connectors:
            connector.stop()
        self.merger.close()

    def __enter__(self) -> MergedStreams:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
