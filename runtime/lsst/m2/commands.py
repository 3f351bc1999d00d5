"""Match M2 command statuses to the commands waiting for them, by sequence_id."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from daqwire.generated.m2 import CommandStatus

__all__ = ["CommandFailedError", "CommandTimeoutError", "CommandTracker"]

log = logging.getLogger(__name__)


class CommandFailedError(RuntimeError):
    """An M2 command ended in fail or noack, or not at all: ``<name> command failed.``."""

    def __init__(self, name: str, sequence_id: int, status: CommandStatus) -> None:
        self.name = name
        self.sequence_id = sequence_id
        self.status = status
        super().__init__(f"{name} command failed.")


class CommandTimeoutError(CommandFailedError, TimeoutError):
    """No final status came for an M2 command within its timeout (``status`` is the last seen)."""


@dataclass(slots=True)
class _Pending:
    """One command waiting for its final status."""

    name: str
    future: asyncio.Future[CommandStatus]
    status: CommandStatus = CommandStatus.Unknown
    acked: bool = field(default=False)


class CommandTracker:
    """Outstanding commands by sequence_id: ack is intermediate, success/fail/noack are final.

    A status for a sequence_id nobody waits for (a late reply to a timed-out command, a
    reply to another client) is logged at WARNING and ignored; it never ends another command.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or log
        self._pending: dict[int, _Pending] = {}
        #: statuses that matched no outstanding command
        self.unmatched = 0

    def __len__(self) -> int:
        return len(self._pending)

    def register(self, sequence_id: int, name: str) -> None:
        """Start waiting for the statuses of command ``name`` sent with ``sequence_id``."""
        future: asyncio.Future[CommandStatus] = asyncio.get_running_loop().create_future()
        old = self._pending.get(sequence_id)
        if old is not None and not old.future.done():
            old.future.set_result(CommandStatus.Unknown)
        self._pending[sequence_id] = _Pending(name, future)

    def discard(self, sequence_id: int) -> None:
        """Stop waiting for ``sequence_id`` (the command ended or its write failed)."""
        pending = self._pending.pop(sequence_id, None)
        if pending is not None and not pending.future.done():
            pending.future.cancel()

    def handle(self, status: CommandStatus, sequence_id: int) -> bool:
        """Take one status message; False (and a WARNING) if no command waits for it."""
        pending = self._pending.get(sequence_id)
        if pending is None or pending.future.done():
            self.unmatched += 1
            self.log.warning(
                "Ignoring command status %s for sequence_id %s: no command waits for it.",
                status.name.lower(),
                sequence_id,
            )
            return False
        pending.status = status
        if status == CommandStatus.Ack:
            pending.acked = True
            self.log.debug("Command %s (sequence_id %s) acknowledged.", pending.name, sequence_id)
        else:
            pending.future.set_result(status)
        return True

    def abort_all(self) -> None:
        """End every outstanding command as failed (the connection was lost)."""
        for sequence_id, pending in self._pending.items():
            if not pending.future.done():
                self.log.warning(
                    "Command %s (sequence_id %s) failed: connection lost.",
                    pending.name,
                    sequence_id,
                )
                pending.future.set_result(CommandStatus.Unknown)

    async def wait(self, sequence_id: int, timeout: float) -> None:
        """Wait for the final status of ``sequence_id``; raise unless it is success.

        Raises ``CommandFailedError`` on fail, noack or a lost connection and
        ``CommandTimeoutError`` if no final status came within ``timeout`` seconds.
        """
        pending = self._pending[sequence_id]
        try:
            status = await asyncio.wait_for(asyncio.shield(pending.future), timeout)
        except TimeoutError:
            if pending.acked:
                self.log.debug("Only got the acknowledgement of %s.", pending.name)
            raise CommandTimeoutError(pending.name, sequence_id, pending.status) from None
        finally:
            if self._pending.get(sequence_id) is pending:
                self.discard(sequence_id)
        if status != CommandStatus.Success:
            # the status seen last: fail, noack, or ack/Unknown if the connection was lost
            raise CommandFailedError(pending.name, sequence_id, pending.status)
