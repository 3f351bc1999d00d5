"""The ts_m2com ``TcpClient`` drop-in: one M2 connection whose monitor loop survives bad lines."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final

from daqwire.errors import RemoteProtocolError
from daqwire.generated.m2 import (
    SEQUENCE_ID_MAX,
    MsgType,
    encode_command,
    encode_event,
    encode_telemetry,
)
from daqwire.lsst.base import cancel_and_wait
from daqwire.lsst.client import Client

__all__ = ["MESSAGE_RATE_PERIOD_S", "MessageCallback", "TcpClient", "index_generator"]

#: seconds between two "Consumed <n> messages/s." logs of a client with ``check_message_rate``
MESSAGE_RATE_PERIOD_S: Final = 2.0

#: ``callback_process_message(*args, message=<decoded JSON value>)``
MessageCallback = Callable[..., Awaitable[object]]


def index_generator(imin: int = 1, imax: int = SEQUENCE_ID_MAX) -> Iterator[int]:
    """Yield ``imin, imin + 1, ... imax`` and wrap to ``imin`` (ts_utils ``index_generator``)."""
    if imax < imin:
        raise ValueError(f"imin={imin} must be less than imax={imax}")

    def _indices() -> Iterator[int]:
        index = imin - 1
        while True:
            index += 1
            if index > imax:
                index = imin
            yield index

    return _indices()


class TcpClient(Client):
    """A ts_tcpip client of one M2 port: writes ``cmd_``, ``evt_`` and ``tel_`` messages.

    Every line read is passed as ``callback_process_message(*args, message=<value>)``. A bad
    line (not JSON, not UTF-8, too long) is logged and skipped; EOF or a reset ends the
    monitor loop and closes the client (with a ``reconnect`` policy the base ``Client``
    reconnects instead and a new monitor loop starts).
    """

    def __init__(
        self,
        host: str,
        port: int,
        callback_process_message: MessageCallback,
        *args: Any,
        log: logging.Logger | None = None,
        sequence_generator: Iterator[int] | None = None,
        name: str = "tcp-client",
        check_message_rate: bool = False,
        **kwargs: Any,
    ) -> None:
        self._callback_process_message = callback_process_message
        self._callback_args = args
        self._sequence_generator = (
            index_generator() if sequence_generator is None else sequence_generator
        )
        #: sequence_id of the last command written (-1 before the first)
        self.last_sequence_id = -1
        self._check_message_rate = check_message_rate
        #: seconds between two message-rate logs (with ``check_message_rate``)
        self.message_rate_period_s = MESSAGE_RATE_PERIOD_S
        self._task_monitor_message: asyncio.Future[None] = _done_future()
        #: lines skipped by the monitor loop because they were malformed
        self.messages_skipped = 0
        # connect(timeout) bounds the connect, as in ts_m2com (pass connect_timeout to add one)
        kwargs.setdefault("connect_timeout", None)
        super().__init__(
            host,
            port,
            log=log,
            connect_callback=self._connect_state_changed,
            name=name,
            **kwargs,
        )

    async def connect(self, timeout: float = 10.0) -> None:
        """Wait for the connection started by the constructor; failures are logged and raised."""
        try:
            await asyncio.wait_for(self.start_task, timeout=timeout)
        except (OSError, TimeoutError) as error:
            self.log.warning("Can not connect to %s:%s: %r", self.host, self.port, error)
            raise

    async def write_message(
        self,
        msg_type: MsgType | int,
        msg_name: str,
        msg_details: dict[str, Any] | None = None,
        comp_name: str | None = None,
    ) -> None:
        """Write one command, event or telemetry message; a command takes the next sequence_id."""
        if not self.connected:
            raise RuntimeError("Client not connected with tcp/ip server.")
        details = {} if msg_details is None else msg_details
        if "id" in details:
            raise ValueError("The 'id' is in the message details already.")
        if msg_type == MsgType.Command:
            await self.write_command(msg_name, details)
            return
        if msg_type == MsgType.Event:
            data = encode_event(name=msg_name, compName=comp_name, details=details)
        elif msg_type == MsgType.Telemetry:
            data = encode_telemetry(name=msg_name, compName=comp_name, details=details)
        else:
            raise ValueError(f"The message type: {msg_type} is not supported.")
        await self.write(data)

    async def write_command(
        self,
        msg_name: str,
        msg_details: dict[str, Any] | None = None,
        *,
        before_send: Callable[[int], object] | None = None,
    ) -> int:
        """Write a command with the next sequence_id and return that id.

        ``before_send(sequence_id)`` is called once the id is drawn and before a byte is
        written, so a waiter can be registered before the reply can arrive.
        """
        if not self.connected:
            raise RuntimeError("Client not connected with tcp/ip server.")
        details = {} if msg_details is None else msg_details
        if "id" in details:
            raise ValueError("The 'id' is in the message details already.")
        sequence_id = next(self._sequence_generator)
        self.last_sequence_id = sequence_id
        data = encode_command(name=msg_name, sequence_id=sequence_id, details=details)
        if before_send is not None:
            before_send(sequence_id)
        await self.write(data)
        return sequence_id

    @property
    def monitor_task(self) -> asyncio.Future[None]:
        """The task that reads messages while connected (done when it is not running)."""
        return self._task_monitor_message

    async def close(self) -> None:
        """Close the connection and stop the monitor loop; safe without a connection."""
        await cancel_and_wait(self._task_monitor_message)
        await super().close()

    async def _connect_state_changed(self, client: object) -> None:
        """Start the monitor loop on every new connection."""
        if self.connected and self._task_monitor_message.done():
            self._task_monitor_message = asyncio.create_task(
                self._monitor_message(), name=f"{self.name}-monitor"
            )

    async def _monitor_message(self) -> None:
        """Read lines until the connection ends; bad lines are skipped, never fatal."""
        self.log.info("Begin to monitor the incoming message.")
        count = 0
        time_start = time.monotonic()
        try:
            while True:
                try:
                    message = await self.read_json()
                except RemoteProtocolError as error:
                    self.messages_skipped += 1
                    self.log.error("Ignoring the received message: %s", error)
                    continue
                except asyncio.IncompleteReadError:
                    self.log.info("EOF is reached.")
                    break
                except ConnectionError as error:
                    self.log.info("Reader disconnected (%r); closing client.", error)
                    break
                except Exception:
                    self.log.exception("Reading failed; closing client.")
                    break
                if self._check_message_rate:
                    count += 1
                    elapsed = time.monotonic() - time_start
                    if elapsed >= self.message_rate_period_s and elapsed > 0:
                        self.log.debug("Consumed %s messages/s.", count // elapsed)
                        count = 0
                        time_start = time.monotonic()
                try:
                    await self._callback_process_message(*self._callback_args, message=message)
                except Exception as error:
                    self.log.warning("Error in processing the message: %r", error, exc_info=True)
        finally:
            self.log.info("Stop to monitor the incoming message.")
        if self.reconnect is None:
            await self.close()


def _done_future() -> asyncio.Future[None]:
    """A future that is already done (the idle state of a task slot)."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future
