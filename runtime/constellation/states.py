"""The Constellation satellite state machine: state codes, transitions and their errors.

State codes are the single bytes Constellation puts on the wire (CSCP ``get_state``, CHP
heartbeats): the high nibble is the steady state, a non-zero low nibble marks a transitional
state on its way there.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from daqwire.errors import DaqwireError

__all__ = [
    "RUN_IDENTIFIER_PATTERN",
    "STEADY_STATES",
    "TRANSITIONS",
    "InvalidRunIdentifier",
    "SatelliteState",
    "Transition",
    "TransitionFailed",
    "TransitionNotAllowed",
    "TransitionRule",
    "check_run_identifier",
]

#: a run identifier is letters, digits, ``_`` and ``-`` (Constellation's ``^[\w-]+$``)
RUN_IDENTIFIER_PATTERN = re.compile(r"[\w-]+")


class SatelliteState(enum.IntEnum):
    """Constellation FSM states with their wire codes (steady in capitals)."""

    NEW = 0x10
    initializing = 0x12
    INIT = 0x20
    launching = 0x23
    ORBIT = 0x30
    landing = 0x32
    reconfiguring = 0x33
    starting = 0x34
    RUN = 0x40
    stopping = 0x43
    interrupting = 0x0E
    SAFE = 0xE0
    ERROR = 0xF0
    DEAD = 0xFF

    @property
    def is_steady(self) -> bool:
        """True for the states a satellite rests in (NEW, INIT, ORBIT, RUN, SAFE, ERROR, DEAD)."""
        return self in STEADY_STATES


STEADY_STATES = frozenset(
    {
        SatelliteState.NEW,
        SatelliteState.INIT,
        SatelliteState.ORBIT,
        SatelliteState.RUN,
        SatelliteState.SAFE,
        SatelliteState.ERROR,
        SatelliteState.DEAD,
    }
)


class Transition(enum.Enum):
    """The commands that move a satellite between steady states."""

    initialize = "initialize"
    launch = "launch"
    land = "land"
    reconfigure = "reconfigure"
    start = "start"
    stop = "stop"
    interrupt = "interrupt"
    failure = "failure"
    shutdown = "shutdown"


@dataclass(frozen=True, slots=True)
class TransitionRule:
    """Where a transition may start, the transitional state it passes and where it ends."""

    sources: frozenset[SatelliteState]
    via: SatelliteState | None
    target: SatelliteState


_S = SatelliteState
_ALL_BUT_DEAD = frozenset(s for s in SatelliteState if s is not _S.DEAD)

#: the Constellation transition table (``failure`` is allowed from every state but DEAD)
TRANSITIONS: dict[Transition, TransitionRule] = {
    Transition.initialize: TransitionRule(
        frozenset({_S.NEW, _S.INIT, _S.SAFE, _S.ERROR}), _S.initializing, _S.INIT
    ),
    Transition.launch: TransitionRule(frozenset({_S.INIT}), _S.launching, _S.ORBIT),
    Transition.land: TransitionRule(frozenset({_S.ORBIT}), _S.landing, _S.INIT),
    Transition.reconfigure: TransitionRule(frozenset({_S.ORBIT}), _S.reconfiguring, _S.ORBIT),
    Transition.start: TransitionRule(frozenset({_S.ORBIT}), _S.starting, _S.RUN),
    Transition.stop: TransitionRule(frozenset({_S.RUN}), _S.stopping, _S.ORBIT),
    Transition.interrupt: TransitionRule(frozenset({_S.ORBIT, _S.RUN}), _S.interrupting, _S.SAFE),
    Transition.failure: TransitionRule(_ALL_BUT_DEAD, None, _S.ERROR),
    Transition.shutdown: TransitionRule(
        frozenset({_S.NEW, _S.INIT, _S.SAFE, _S.ERROR}), None, _S.DEAD
    ),
}


class TransitionNotAllowed(DaqwireError):
    """A transition was requested in a state that does not allow it; nothing changed."""

    def __init__(self, transition: Transition, state: SatelliteState, detail: str = "") -> None:
        self.transition = transition
        self.state = state
        allowed = ", ".join(s.name for s in sorted(TRANSITIONS[transition].sources))
        message = (
            f"Transition {transition.value} not allowed from {state.name} state"
            f" (allowed from: {allowed})"
        )
        if detail:
            message = f"{message}: {detail}"
        super().__init__(message)


class TransitionFailed(DaqwireError):
    """A transition hook raised; the satellite went to ERROR. ``status`` is its status text."""

    def __init__(self, transition: Transition, status: str) -> None:
        self.transition = transition
        self.status = status
        super().__init__(f"Transition {transition.value} failed, satellite in ERROR: {status}")


class InvalidRunIdentifier(DaqwireError, ValueError):
    """A run identifier holds characters other than letters, digits, ``_`` and ``-``."""


def check_run_identifier(run_identifier: str) -> str:
    """Return ``run_identifier`` if it matches ``^[\\w-]+$``, else raise InvalidRunIdentifier."""
    if not isinstance(run_identifier, str) or not RUN_IDENTIFIER_PATTERN.fullmatch(run_identifier):
        raise InvalidRunIdentifier(
            f"Run identifier contains invalid characters: {run_identifier!r}"
        )
    return run_identifier
