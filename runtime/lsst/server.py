"""``OneClientServer`` and ``OneClientReadLoopServer``: ts_tcpip-compatible one-client servers."""

from __future__ import annotations

import abc
import asyncio
import logging
from typing import Any

from daqwire.errors import RemoteProtocolError
from daqwire.lsst.base import (
    BaseClientOrServer,
    ConnectCallbackType,
    cancel_and_wait,
    close_stream_writer,
    stream_limit,
)
from daqwire.lsst.constants import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_ENCODING,
    DEFAULT_LINE_LIMIT,
    DEFAULT_LOCALHOST,
    DEFAULT_MAX_HEARTBEAT_INTERVAL,
    DEFAULT_MONITOR_CONNECTION_INTERVAL,
    DEFAULT_TERMINATOR,
    HEARTBEAT,
    HEARTBEAT_CHECK_INTERVAL,
)

__all__ = ["OneClientReadLoopServer", "OneClientServer"]


class OneClientServer(BaseClientOrServer):
    """Listen on ``host:port`` and serve one client at a time; a second one is closed at once.

    ``port=0`` picks a free port and fills ``port`` when listening on exactly one socket.
    ``connected_task`` resolves when a client connects; ``close_client()`` replaces it.
    Extra keyword arguments go to ``asyncio.start_server``.
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
        *,
        line_limit: int = DEFAULT_LINE_LIMIT,
        **kwargs: Any,
    ) -> None:
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self.connected_task: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._rejected = 0
        super().__init__(
            log=log,
            connect_callback=connect_callback,
            monitor_connection_interval=monitor_connection_interval,
            name=name,
            encoding=encoding,
            terminator=terminator,
            line_limit=line_limit,
            **kwargs,
        )

    @property
    def rejected_count(self) -> int:
        """Connections refused because a client was already connected."""
        return self._rejected

    async def start(self, **kwargs: Any) -> None:
        """Start listening; run by ``start_task``. A failure also sets ``done_task``."""
        if self._server is not None:
            raise RuntimeError("Start already called.")
        try:
            self._server = await asyncio.start_server(
                self._accept, host=self.host, port=self.port, limit=stream_limit(), **kwargs
            )
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                self.log.warning("start failed: %r", exc)
            if not self.done_task.done():
                self.done_task.set_result(None)
            raise
        sockets = self._server.sockets
        if self.port == 0 and len(sockets) == 1:
            self.port = int(sockets[0].getsockname()[1])
        self._start_monitoring_connection()
        self.log.info(
            "Server running: host=%s; port=%s; listening on %d sockets",
            self.host,
            self.port,
            len(sockets),
        )

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.connected:
            self._rejected += 1
            self.log.warning("Rejecting connection; a socket is already connected.")
            await close_stream_writer(writer)
            return
        if self._was_connected:
            # the previous client vanished and nobody noticed yet
            await self.close_client()
        await self._set_reader_writer(reader, writer)
        if not self.connected_task.done():
            self.connected_task.set_result(None)
        await self.call_connect_callback()

    async def basic_close_client(self) -> None:
        """Close the client stream, if any, and replace ``connected_task``; always safe."""
        if self._writer is not None:
            self.log.info("Closing the client socket.")
        try:
            await self._close_client()
        finally:
            if self.connected_task.done():
                self.connected_task = asyncio.get_running_loop().create_future()

    async def close_client(self) -> None:
        """Like ``basic_close_client`` and clear ``should_be_connected``."""
        self._should_be_connected = False
        await self.basic_close_client()

    async def close(self) -> None:
        """Close the client and the listening socket (bounded), set ``done_task``; idempotent."""
        try:
            await self.close_client()
            server = self._server
            if server is not None:
                server.close()
                try:
                    await asyncio.wait_for(server.wait_closed(), DEFAULT_CLOSE_TIMEOUT)
                except TimeoutError:
                    self.log.warning("server did not close within %s s", DEFAULT_CLOSE_TIMEOUT)
        except Exception:
            self.log.exception("close failed; continuing")
        finally:
            await cancel_and_wait(self._monitor_connection_task)
            if not self.start_task.done():
                await cancel_and_wait(self.start_task)
            if not self.done_task.done():
                self.done_task.set_result(None)

    async def _monitor_connection(self) -> None:
        while True:
            if self._was_connected and not self.connected:
                await self._connection_lost()
            await asyncio.sleep(self.monitor_connection_interval)


class OneClientReadLoopServer(OneClientServer):
    """A ``OneClientServer`` that runs ``read_and_dispatch()`` in a loop for each client.

    A disconnect ends the loop with an INFO log; a bad line (any ``RemoteProtocolError``) is
    logged and skipped; any other exception drops the client (ERROR with traceback).
    With ``run_heartbeat_monitor_task`` a client that sends no heartbeat line for
    ``max_heartbeat_interval`` s is dropped; ``read_and_dispatch`` calls
    ``handle_received_heartbeat()`` for lines where ``is_heartbeat(line)`` is true.
    """

    def __init__(
        self,
        *,
        host: str | None = DEFAULT_LOCALHOST,
        port: int | None = 0,
        log: logging.Logger | None = None,
        connect_callback: ConnectCallbackType | None = None,
        name: str = "",
        encoding: str = DEFAULT_ENCODING,
        terminator: bytes = DEFAULT_TERMINATOR,
        run_heartbeat_monitor_task: bool = False,
        max_heartbeat_interval: float = DEFAULT_MAX_HEARTBEAT_INTERVAL,
        line_limit: int = DEFAULT_LINE_LIMIT,
        **kwargs: Any,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.read_loop_task: asyncio.Future[None] = loop.create_future()
        self.read_loop_task.set_result(None)
        self.run_heartbeat_monitor_task = run_heartbeat_monitor_task
        self.max_heartbeat_interval = max_heartbeat_interval
        self.heartbeat_monitor_task: asyncio.Future[None] = loop.create_future()
        self.heartbeat_monitor_task.set_result(None)
        self.last_heartbeat_time = 0.0
        self.heartbeats_received = 0
        super().__init__(
            host=host,
            port=port,
            log=log,
            connect_callback=connect_callback,
            monitor_connection_interval=0,
            name=name,
            encoding=encoding,
            terminator=terminator,
            line_limit=line_limit,
            **kwargs,
        )

    async def call_connect_callback(self) -> None:
        """Call the connect callback; on a new client start the read loop (and heartbeat check)."""
        changed = self._was_connected != self.connected
        await super().call_connect_callback()
        if not changed:
            return
        if self.connected:
            self.log.info("Client connected.")
            self.read_loop_task.cancel()
            self.read_loop_task = asyncio.ensure_future(self.read_loop())
            self.heartbeat_monitor_task.cancel()
            if self.run_heartbeat_monitor_task:
                self.last_heartbeat_time = asyncio.get_running_loop().time()
                self.heartbeat_monitor_task = asyncio.ensure_future(self._heartbeat_monitor())
        else:
            self.log.info("Client disconnected.")

    async def read_loop(self) -> None:
        """Await ``read_and_dispatch()`` while a client is connected."""
        self.log.debug("The read_loop begins; connected=%s", self.connected)
        try:
            while self.connected:
                try:
                    await self.read_and_dispatch()
                except RemoteProtocolError as exc:
                    self.log.warning("read_loop skipped bad input: %s", exc)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.log.info("read_loop ends; the client went away: %r", exc)
            await self.close_client(cancel_read_loop_task=False)
        except Exception as exc:
            self.log.exception("read_loop failed. Disconnecting. %r", exc)
            await self.close_client(cancel_read_loop_task=False)

    @abc.abstractmethod
    async def read_and_dispatch(self) -> None:
        """Read, parse and handle one item (``read_json``, ``read_str``, ``read_into`` ...)."""

    @staticmethod
    def is_heartbeat(line: bytes | bytearray | str) -> bool:
        """True if a line body (terminator stripped) is exactly the heartbeat word."""
        if isinstance(line, str):
            return line == "heartbeat"
        return line == HEARTBEAT

    def handle_received_heartbeat(self) -> None:
        """Note a heartbeat; ``RuntimeError`` if heartbeat monitoring is off."""
        if not self.run_heartbeat_monitor_task:
            raise RuntimeError(
                "Unexpectedly received a heartbeat. "
                "Construct the server with run_heartbeat_monitor_task=True to accept them."
            )
        self.heartbeats_received += 1
        self.last_heartbeat_time = asyncio.get_running_loop().time()

    async def _heartbeat_monitor(self) -> None:
        loop = asyncio.get_running_loop()
        interval = min(HEARTBEAT_CHECK_INTERVAL, self.max_heartbeat_interval)
        while self.connected:
            await asyncio.sleep(interval)
            silent = loop.time() - self.last_heartbeat_time
            if silent > self.max_heartbeat_interval:
                self.log.error(
                    "No heartbeat for %.3g s (max %.3g s); disconnecting the client.",
                    silent,
                    self.max_heartbeat_interval,
                )
                await self.close_client()
                return

    async def close_client(self, cancel_read_loop_task: bool = True) -> None:
        """Stop the read loop (unless called from it) and the heartbeat check, close the client."""
        if cancel_read_loop_task:
            await cancel_and_wait(self.read_loop_task)
        await cancel_and_wait(self.heartbeat_monitor_task)
        await super().close_client()
