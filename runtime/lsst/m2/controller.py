"""The ts_m2com ``Controller`` drop-in: two clients, reconnects, status matching by sequence_id."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final

from daqwire.errors import RemoteProtocolError
from daqwire.generated.m2 import (
    STATUS_IDS,
    Ack,
    BypassedActuatorIlcs,
    ClosedLoopControlMode,
    CommandStatus,
    Fail,
    InnerLoopControlMode,
    Message,
    Noack,
    PowerSystemState,
    PowerType,
    Success,
    decode_message,
)
from daqwire.lsst.base import cancel_and_wait
from daqwire.lsst.m2.commands import CommandTracker
from daqwire.lsst.m2.tcp_client import TcpClient, index_generator
from daqwire.lsst.reconnect import ReconnectPolicy

__all__ = ["NUM_INNER_LOOP_CONTROLLER", "Controller"]

#: number of inner-loop controllers (ILCs): 72 axial + 6 tangent actuators + 6 sensors
NUM_INNER_LOOP_CONTROLLER: Final = 84
#: MTM2 enum values used for the bookkeeping (ts_xml): PowerSystemState.Init,
#: ClosedLoopControlMode.Idle, InnerLoopControlMode.Unknown
POWER_STATE_INIT: Final = 1
CLOSED_LOOP_IDLE: Final = 1
ILC_MODE_UNKNOWN: Final = 8

_STATUS_OF: Final[dict[type[Any], CommandStatus]] = {
    Ack: CommandStatus.Ack,
    Noack: CommandStatus.NoAck,
    Success: CommandStatus.Success,
    Fail: CommandStatus.Fail,
}

Callback = Callable[..., Awaitable[object]]


def _initial_power_status() -> dict[str, Any]:
    return {
        "motor_power_is_on": False,
        "motor_power_state": POWER_STATE_INIT,
        "communication_power_is_on": False,
        "communication_power_state": POWER_STATE_INIT,
    }


class Controller:
    """Talk to an M2 cell controller over its command and telemetry ports.

    ``start()`` runs a connection loop that (re)connects both ports with backoff and calls
    the lost-connection callback when either drops. One sequence generator serves every
    connection, so sequence ids keep increasing across reconnects. Command statuses are
    matched to their command by sequence_id and never reach the event callback.
    """

    def __init__(
        self,
        log: logging.Logger | None = None,
        *,
        reconnect: ReconnectPolicy | None = None,
        connection_check_interval_s: float = 0.1,
    ) -> None:
        self.log = (
            log.getChild(type(self).__name__) if log is not None else logging.getLogger(__name__)
        )
        self.reconnect = reconnect if reconnect is not None else ReconnectPolicy()
        self.connection_check_interval_s = connection_check_interval_s
        self.client_command: TcpClient | None = None
        self.client_telemetry: TcpClient | None = None
        #: status of the last command written (from the statuses that carried its sequence_id)
        self.last_command_status = CommandStatus.Unknown
        self.power_system_status = _initial_power_status()
        self.closed_loop_control_mode = CLOSED_LOOP_IDLE
        self.ilc_modes = [ILC_MODE_UNKNOWN] * NUM_INNER_LOOP_CONTROLLER
        #: bypassed ILCs, 0-based
        self.ilc_bypassed: list[int] = []
        #: connections made after the first one
        self.reconnect_count = 0
        self.commands = CommandTracker(self.log)
        self._sequence_generator: Iterator[int] | None = None
        self._task_connection: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._callback_process_event: Callback | None = None
        self._args_callback_process_event: tuple[Any, ...] = ()
        self._callback_process_telemetry: Callback | None = None
        self._args_callback_process_telemetry: tuple[Any, ...] = ()
        self._callback_process_lost_connection: Callback | None = None
        self._args_callback_process_lost_connection: tuple[Any, ...] = ()

    def set_callback_process_event(self, process_event: Callback, *args: Any) -> None:
        """Events go to ``process_event(*args, message=<dict>)``."""
        self._callback_process_event = process_event
        self._args_callback_process_event = args

    def set_callback_process_telemetry(self, process_telemetry: Callback, *args: Any) -> None:
        """Telemetry goes to ``process_telemetry(*args, message=<dict>)``."""
        self._callback_process_telemetry = process_telemetry
        self._args_callback_process_telemetry = args

    def set_callback_process_lost_connection(
        self, process_lost_connection: Callback, *args: Any
    ) -> None:
        """``process_lost_connection(*args)`` is awaited each time a connection drops."""
        self._callback_process_lost_connection = process_lost_connection
        self._args_callback_process_lost_connection = args

    @property
    def sequence_generator(self) -> Iterator[int] | None:
        """The generator of command sequence ids (shared by every connection)."""
        return self._sequence_generator

    @property
    def running(self) -> bool:
        """True while the connection loop runs (from ``start()`` until ``close()`` or giving up)."""
        return self._task_connection is not None and not self._task_connection.done()

    def are_clients_connected(self) -> bool:
        """True if both the command and the telemetry client are connected."""
        return (
            self.client_command is not None
            and self.client_telemetry is not None
            and self.client_command.connected
            and self.client_telemetry.connected
        )

    def start(
        self,
        host: str,
        port_command: int,
        port_telemetry: int,
        sequence_generator: Iterator[int] | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Start the connection loop (needs a running event loop and the three callbacks)."""
        if (
            self._callback_process_event is None
            or self._callback_process_telemetry is None
            or self._callback_process_lost_connection is None
        ):
            raise RuntimeError(
                "Set the event, telemetry and lost-connection callbacks before start()."
            )
        if self._task_connection is not None and not self._task_connection.done():
            raise RuntimeError("The controller is already started; close() it first.")
        if sequence_generator is not None:
            self._sequence_generator = sequence_generator
        elif self._sequence_generator is None:
            self._sequence_generator = index_generator()
        self._task_connection = asyncio.create_task(
            self._connection_loop(host, port_command, port_telemetry, timeout),
            name="m2-controller-connection",
        )

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until both clients are connected (``TimeoutError`` after ``timeout`` s)."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def write_command_to_server(
        self,
        message_name: str,
        message_details: dict[str, Any] | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Send a command and wait for its success.

        Raises ``OSError("No TCP/IP connection.")`` when not connected and
        ``RuntimeError("<name> command failed.")`` (a ``CommandFailedError``; a
        ``CommandTimeoutError`` on timeout) when it fails, is refused or is not answered.
        """
        client = self.client_command
        if client is None or not self.are_clients_connected():
            raise OSError("No TCP/IP connection.")
        registered: list[int] = []

        def register(sequence_id: int) -> None:
            self.commands.register(sequence_id, message_name)
            registered.append(sequence_id)

        self.last_command_status = CommandStatus.Unknown
        try:
            await client.write_command(message_name, message_details, before_send=register)
        except BaseException:
            for sequence_id in registered:
                self.commands.discard(sequence_id)
            raise
        await self.commands.wait(registered[0], timeout)

    async def close(self) -> None:
        """Stop the connection loop and close both clients; safe to call repeatedly."""
        if self._task_connection is not None:
            await cancel_and_wait(self._task_connection)
        self._connected.clear()
        self.commands.abort_all()
        await self._close_clients()
        self.last_command_status = CommandStatus.Unknown
        self.power_system_status = _initial_power_status()
        self.closed_loop_control_mode = CLOSED_LOOP_IDLE
        self.ilc_modes = [ILC_MODE_UNKNOWN] * NUM_INNER_LOOP_CONTROLLER
        self.ilc_bypassed = []

    async def _connection_loop(
        self, host: str, port_command: int, port_telemetry: int, timeout: float
    ) -> None:
        """Connect both ports, wait for a loss, report it, reconnect; until close()."""
        self.log.info("Begin the connection loop with servers.")
        policy = self.reconnect
        failures = 0
        connections = 0
        try:
            while True:
                if await self._connect(host, port_command, port_telemetry, timeout):
                    failures = 0
                    connections += 1
                    if connections > 1:
                        self.reconnect_count += 1
                    self._connected.set()
                    await self._wait_lost()
                    self._connected.clear()
                    self.log.info("Lost the TCP/IP connection in the connection loop.")
                    self.commands.abort_all()
                    await self._close_clients()
                    await self._call_lost_connection()
                    delay = policy.delay(0)
                else:
                    if not policy.allows(failures):
                        self.log.error(
                            "Giving up after %d failed connection attempts.", failures + 1
                        )
                        return
                    delay = policy.delay(failures)
                    failures += 1
                await asyncio.sleep(delay)
        finally:
            self._connected.clear()
            self.log.info("Stop the connection loop with servers.")

    async def _connect(
        self, host: str, port_command: int, port_telemetry: int, timeout: float
    ) -> bool:
        """Build fresh clients for both ports and connect them; False (all closed) on failure."""
        assert self._callback_process_telemetry is not None
        command = TcpClient(
            host,
            port_command,
            self._process_command_port_message,
            log=self.log,
            sequence_generator=self._sequence_generator,
            name="command",
        )
        telemetry = TcpClient(
            host,
            port_telemetry,
            self._callback_process_telemetry,
            *self._args_callback_process_telemetry,
            log=self.log,
            name="telemetry",
            check_message_rate=True,
        )
        self.client_command = command
        self.client_telemetry = telemetry
        results = await asyncio.gather(
            command.connect(timeout=timeout),
            telemetry.connect(timeout=timeout),
            return_exceptions=True,
        )
        errors = [result for result in results if isinstance(result, BaseException)]
        if not errors:
            self.log.info("Servers are connected.")
            return True
        self.log.info(
            "Can not connect to servers %s:%s and %s:%s: %r",
            host,
            port_command,
            host,
            port_telemetry,
            errors[0],
        )
        await self._close_clients()
        return False

    async def _wait_lost(self) -> None:
        """Return once either client is no longer connected."""
        command, telemetry = self.client_command, self.client_telemetry
        assert command is not None and telemetry is not None
        watched = {command.done_task, telemetry.done_task}
        while self.are_clients_connected():
            await asyncio.wait(
                watched,
                timeout=self.connection_check_interval_s,
                return_when=asyncio.FIRST_COMPLETED,
            )

    async def _call_lost_connection(self) -> None:
        assert self._callback_process_lost_connection is not None
        try:
            await self._callback_process_lost_connection(
                *self._args_callback_process_lost_connection
            )
        except Exception:
            self.log.exception("The lost-connection callback failed.")

    async def _close_clients(self) -> None:
        clients = [c for c in (self.client_command, self.client_telemetry) if c is not None]
        self.client_command = None
        self.client_telemetry = None
        for client in clients:
            try:
                await client.close()
            except Exception:
                self.log.exception("Closing the %s client failed.", client.name)

    async def _process_command_port_message(self, message: Any = None) -> None:
        """Statuses go to the command tracker; events update the state and go to the callback."""
        try:
            decoded: Message | None = decode_message(message)
        except RemoteProtocolError as error:
            if not isinstance(message, dict) or message.get("id") in STATUS_IDS:
                self.log.warning("Ignoring a malformed message %r: %s", message, error)
                return
            self.log.debug("Forwarding an event the spec does not describe: %s", error)
            decoded = None
        status = _STATUS_OF.get(type(decoded))
        if status is not None:
            assert isinstance(decoded, Ack | Noack | Success | Fail)
            if self.commands.handle(status, decoded.sequence_id):
                self.last_command_status = status
            return
        if decoded is not None:
            self._update_state(decoded)
        await self._process_event_with_callback(message)

    def _update_state(self, message: Message) -> None:
        """Keep the power, closed-loop and ILC bookkeeping of the reference up to date."""
        if isinstance(message, PowerSystemState):
            if message.powerType == PowerType.Motor:
                self.power_system_status["motor_power_is_on"] = message.status
                self.power_system_status["motor_power_state"] = message.state
            elif message.powerType == PowerType.Communication:
                self.power_system_status["communication_power_is_on"] = message.status
                self.power_system_status["communication_power_state"] = message.state
        elif isinstance(message, ClosedLoopControlMode):
            self.closed_loop_control_mode = message.mode
        elif isinstance(message, InnerLoopControlMode):
            if 0 <= message.address < len(self.ilc_modes):
                self.ilc_modes[message.address] = message.mode
        elif isinstance(message, BypassedActuatorIlcs):
            self.ilc_bypassed = [ilc - 1 for ilc in message.ilcs]

    async def _process_event_with_callback(self, message: dict[str, Any]) -> None:
        callback = self._callback_process_event
        if callback is None:
            return
        try:
            await callback(*self._args_callback_process_event, message=message)
        except Exception:
            self.log.exception("Error in processing the event: %r", message)
