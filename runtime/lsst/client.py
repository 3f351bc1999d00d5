"""``Client``: a ts_tcpip-compatible TCP client with connect timeout and optional reconnection."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from daqwire.errors import StreamTimeoutError
from daqwire.lsst.base import (
    BaseClientOrServer,
    ConnectCallbackType,
    cancel_and_wait,
    stream_limit,
)
from daqwire.lsst.constants import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_ENCODING,
    DEFAULT_HEARTBEAT_SEND_SLEEP,
    DEFAULT_LINE_LIMIT,
    DEFAULT_MONITOR_CONNECTION_INTERVAL,
    DEFAULT_TERMINATOR,
    HEARTBEAT,
)
from daqwire.lsst.reconnect import ReconnectPolicy

__all__ = ["Client"]

_Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Client(BaseClientOrServer):
    """Connect to ``host:port`` (started by the constructor; await ``start_task``).

    ``host=""`` (or ``None``) builds a closed client, as ts_tcpip does. Without ``reconnect`` a
    lost connection stays lost (``should_be_connected and not connected``); with a
    ``ReconnectPolicy`` the client reconnects with backoff, also when the first connect fails.
    Extra keyword arguments go to ``asyncio.open_connection`` (``limit=`` sets the line limit).
    """

    def __init__(
        self,
        host: str | None,
        port: int | None,
        log: logging.Logger | None = None,
        connect_callback: ConnectCallbackType | None = None,
        monitor_connection_interval: float = DEFAULT_MONITOR_CONNECTION_INTERVAL,
        name: str = "",
        encoding: str = DEFAULT_ENCODING,
        terminator: bytes = DEFAULT_TERMINATOR,
        run_heartbeat_send_task: bool = False,
        heartbeat_send_sleep: float = DEFAULT_HEARTBEAT_SEND_SLEEP,
        *,
        line_limit: int = DEFAULT_LINE_LIMIT,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        reconnect: ReconnectPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        if "limit" in kwargs:
            limit = kwargs.pop("limit")
            if line_limit == DEFAULT_LINE_LIMIT:
                line_limit = limit
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.reconnect = reconnect
        self.run_heartbeat_send_task = run_heartbeat_send_task
        self.heartbeat_send_sleep = heartbeat_send_sleep
        self._open_kwargs = kwargs
        self._closing = False
        self._reconnects = 0
        self._reconnect_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        super().__init__(
            log=log,
            connect_callback=connect_callback,
            monitor_connection_interval=monitor_connection_interval,
            name=name,
            encoding=encoding,
            terminator=terminator,
            line_limit=line_limit,
        )

    def _make_start_task(self, **kwargs: Any) -> asyncio.Future[Any]:
        if not self.host:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            future.set_result(False)
            self.done_task.set_result(False)
            return future
        return super()._make_start_task(**kwargs)

    @property
    def reconnect_count(self) -> int:
        """Successful reconnections so far (the first connection does not count)."""
        return self._reconnects

    @property
    def stream_name(self) -> str:
        """``host:port`` as given to the constructor."""
        return f"{self.host}:{self.port}"

    async def start(self, **kwargs: Any) -> None:
        """Connect (retrying per ``reconnect`` if given); run by ``start_task``."""
        if self._reader is not None:
            raise RuntimeError("Start already called.")
        self._open_kwargs.update(kwargs)
        try:
            reader, writer = await self._open_with_retries(first_now=True)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                self.log.warning("start failed: %r", exc)
            if not self.done_task.done():
                self.done_task.set_result(None)
            raise
        await self._adopt(reader, writer)

    async def basic_close(self) -> None:
        """Close the stream and set ``done_task``; ``should_be_connected`` stays as it is."""
        self.log.info("Closing")
        await cancel_and_wait(self._heartbeat_task)
        await super().basic_close()

    async def close(self) -> None:
        """Close for good: stop monitoring, heartbeat and reconnection, then ``basic_close``."""
        self._should_be_connected = False
        self._closing = True
        await cancel_and_wait(self._reconnect_task)
        await cancel_and_wait(self._monitor_connection_task)
        await cancel_and_wait(self.start_task)
        await self.basic_close()

    # --- connecting ----------------------------------------------------------------------------

    async def _open_once(self) -> _Stream:
        self.log.info("Connecting to host=%s; port=%s", self.host, self.port)
        opening = asyncio.open_connection(
            self.host, self.port, limit=stream_limit(), **self._open_kwargs
        )
        timeout = self.connect_timeout
        if timeout is None or timeout <= 0:
            return await opening
        try:
            return await asyncio.wait_for(opening, timeout)
        except TimeoutError:
            raise StreamTimeoutError(
                f"connect timed out after {timeout} s", stream=self.stream_name
            ) from None

    async def _open_with_retries(self, *, first_now: bool) -> _Stream:
        policy = self.reconnect
        last: OSError | None = None
        if first_now:
            try:
                return await self._open_once()
            except OSError as exc:  # TimeoutError and ConnectionRefusedError included
                if policy is None:
                    raise
                last = exc
        assert policy is not None
        attempt = 0
        while policy.allows(attempt):
            delay = policy.delay(attempt)
            attempt += 1
            self.log.info("reconnecting in %.3g s (attempt %d)", delay, attempt)
            await asyncio.sleep(delay)
            try:
                return await self._open_once()
            except OSError as exc:
                self.log.info("connect attempt %d failed: %r", attempt, exc)
                last = exc
        assert last is not None or attempt == 0
        raise last or ConnectionError(f"{self.stream_name}: no reconnect attempt allowed")

    async def _adopt(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._set_reader_writer(reader, writer)
        self._start_monitoring_connection()
        if self.run_heartbeat_send_task:
            self._heartbeat_task = asyncio.create_task(self._heartbeat_send_loop(writer))
        await self.call_connect_callback()

    async def _connection_lost(self) -> None:
        await self._close_client()
        if (
            self.reconnect is not None
            and self._should_be_connected
            and not self._closing
            and not self.done_task.done()
            and (self._reconnect_task is None or self._reconnect_task.done())
        ):
            self._reconnect_task = asyncio.create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        try:
            reader, writer = await self._open_with_retries(first_now=False)
        except OSError as exc:
            self.log.error("giving up reconnecting to %s: %r", self.stream_name, exc)
            await self.basic_close()
            return
        self._reconnects += 1
        self.log.info("reconnected to %s", self.stream_name)
        await self._adopt(reader, writer)

    # --- background tasks ----------------------------------------------------------------------

    async def _monitor_connection(self) -> None:
        while self.connected:
            await asyncio.sleep(self.monitor_connection_interval)
        await self._connection_lost()

    async def _heartbeat_send_loop(self, writer: asyncio.StreamWriter) -> None:
        line = HEARTBEAT + self.terminator
        while self._writer is writer and self.connected:
            writer.write(line)
            self._bytes_written += len(line)
            await asyncio.sleep(self.heartbeat_send_sleep)
