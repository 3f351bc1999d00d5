"""``MockM2``: a mock M2 cell controller on a command port and a telemetry port.

It answers a handful of ts_m2com commands (ack, events, success or fail; noack for unknown
names), sends the welcome burst of configuration and status events on every connect and
streams telemetry at 20 Hz. Bad input never stops it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from daqwire.errors import RemoteProtocolError
from daqwire.generated import m2
from daqwire.lsst.base import cancel_and_wait
from daqwire.lsst.server import OneClientServer

__all__ = [
    "DEFAULT_TELEMETRY_INTERVAL_S",
    "MOCK_COMMANDS",
    "CommandError",
    "M2State",
    "MockM2",
    "run_mock_m2",
]

_log = logging.getLogger(__name__)

#: seconds between two telemetry cycles (20 Hz, as the ts_m2com mock)
DEFAULT_TELEMETRY_INTERVAL_S: Final = 0.05

NUM_AXIAL: Final = 72
NUM_TANGENT: Final = 6
NUM_ILC: Final = 84
NUM_TEMPERATURE_RING: Final = 12

# MTM2 enum values (ts_xml) the mock reports
POWER_INIT: Final = 1
POWER_OFF: Final = 2
POWERING_ON: Final = 3
POWER_ON: Final = 5
POWERING_OFF: Final = 6
MODE_IDLE: Final = 1
MODE_TELEMETRY_ONLY: Final = 2
MODE_OPEN_LOOP: Final = 3
MODE_CLOSED_LOOP: Final = 4
ILC_MODE_UNKNOWN: Final = 8
INCLINATION_ONBOARD: Final = 1
INCLINATION_MTMOUNT: Final = 2

HARDPOINTS: Final = (6, 16, 26, 74, 76, 78)
BYPASSED_ILCS: Final = (6,)
ENABLED_FAULTS_MASK: Final = 18410715311050326015
SUMMARY_FAULTS_AT_START: Final = 144115188075855872
CONFIGURATION_FILES: Final = (
    "Configurable_File_Description_20180831T091922_M2_optical.csv",
    "Configurable_File_Description_20180831T092326_M2_handling.csv",
    "Configurable_File_Description_20180831T092423_surrogate_optical.csv",
    "Configurable_File_Description_20180831T092556_surrogate_handling.csv",
)
CONFIG: Final[dict[str, Any]] = {
    "configuration": CONFIGURATION_FILES[3],
    "version": "20180831T092556",
    "controlParameters": "CtrlParameterFiles_2018-07-19_104314_surg",
    "lutParameters": "FinalHandlingLUTs",
    "powerWarningMotor": 5.0,
    "powerFaultMotor": 10.0,
    "powerThresholdMotor": 20.0,
    "powerWarningComm": 5.0,
    "powerFaultComm": 10.0,
    "powerThresholdComm": 10.0,
    "inPositionAxial": 0.158,
    "inPositionTangent": 1.1,
    "inPositionSample": 1.0,
    "timeoutSal": 15.0,
    "timeoutCrio": 1.0,
    "timeoutIlc": 3,
    "inclinometerDelta": 2.0,
    "inclinometerDiffEnabled": True,
    "cellTemperatureDelta": 2.0,
}
#: (digitalInput, digitalOutput, interlock) by (communication power on, motor power on)
DIGITAL_IO: Final[dict[tuple[bool, bool], tuple[int, int, bool]]] = {
    (False, False): (2667642879, 28, False),
    (True, False): (2147516415, 30, True),
    (True, True): (63, 31, False),
    (False, True): (63, 31, False),
}
#: actuatorCommand values of moveActuators: Start, Stop, Pause, Resume
ACTUATOR_COMMANDS: Final = (1, 2, 3, 4)


class CommandError(Exception):
    """A command cannot be executed (bad parameter, wrong state): the mock answers ``fail``."""


def _number(details: dict[str, Any], key: str) -> float:
    value = details.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CommandError(f"{key} must be a finite number, not {value!r}")
    return float(value)


def _flag(details: dict[str, Any], key: str) -> bool:
    value = details.get(key)
    if not isinstance(value, bool):
        raise CommandError(f"{key} must be a bool, not {value!r}")
    return value


def _numbers(details: dict[str, Any], key: str, count: int) -> list[float]:
    value = details.get(key)
    if not isinstance(value, list) or len(value) != count:
        raise CommandError(f"{key} must be a list of {count} numbers")
    return [_number({key: item}, key) for item in value]


@dataclass
class M2State:
    """What the mock cell controller knows about itself (reported in events and telemetry)."""

    communication_power_on: bool = False
    communication_power_state: int = POWER_INIT
    motor_power_on: bool = False
    motor_power_state: int = POWER_INIT
    force_balance_on: bool = False
    open_loop_max_limit: bool = False
    in_position: bool = True
    commandable_by_dds: bool = True
    inclination_source: int = INCLINATION_ONBOARD
    closed_loop_control_mode: int = MODE_IDLE
    summary_faults_status: int = SUMMARY_FAULTS_AT_START
    temperature_ring: list[float] = field(default_factory=lambda: [21.0] * NUM_TEMPERATURE_RING)
    temperature_intake: list[float] = field(default_factory=lambda: [0.0, 0.0])
    temperature_exhaust: list[float] = field(default_factory=lambda: [0.0, 0.0])
    applied_axial: list[float] = field(default_factory=lambda: [0.0] * NUM_AXIAL)
    applied_tangent: list[float] = field(default_factory=lambda: [0.0] * NUM_TANGENT)
    position: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("x", "y", "z", "xRot", "yRot", "zRot"), 0.0)
    )
    axial_steps: list[int] = field(default_factory=lambda: [0] * NUM_AXIAL)
    tangent_steps: list[int] = field(default_factory=lambda: [0] * NUM_TANGENT)
    mtmount_in_position: bool = False
    inclinometer_angle_external: float = 90.0

    def digital_io(self) -> tuple[int, int, bool]:
        """(digitalInput, digitalOutput, interlock) for the current power state."""
        return DIGITAL_IO[(self.communication_power_on, self.motor_power_on)]


# --- messages ------------------------------------------------------------------------------------


def welcome_messages(state: M2State) -> list[bytes]:
    """The burst sent on every command-port connect: 13 events, 2 power states, 84 ILC modes..."""
    digital_input, digital_output, interlock = state.digital_io()
    frames = [
        m2.encode_tcp_ip_connected(isConnected=True),
        m2.encode_commandable_by_dds(state=state.commandable_by_dds),
        m2.encode_hardpoint_list(actuators=HARDPOINTS),
        m2.encode_bypassed_actuator_ilcs(ilcs=BYPASSED_ILCS),
        m2.encode_interlock(state=interlock),
        m2.encode_inclination_telemetry_source(source=state.inclination_source),
        m2.encode_temperature_offset(
            ring=tuple(state.temperature_ring),
            intake=tuple(state.temperature_intake),
            exhaust=tuple(state.temperature_exhaust),
        ),
        m2.encode_digital_input(value=digital_input),
        m2.encode_digital_output(value=digital_output),
        m2.encode_config(**CONFIG),
        m2.encode_closed_loop_control_mode(mode=state.closed_loop_control_mode),
        m2.encode_enabled_faults_mask(mask=ENABLED_FAULTS_MASK),
        m2.encode_configuration_files(files=CONFIGURATION_FILES),
        m2.encode_power_system_state(
            powerType=m2.PowerType.Communication,
            status=state.communication_power_on,
            state=state.communication_power_state,
        ),
        m2.encode_power_system_state(
            powerType=m2.PowerType.Motor,
            status=state.motor_power_on,
            state=state.motor_power_state,
        ),
    ]
    frames.extend(
        m2.encode_inner_loop_control_mode(address=address, mode=ILC_MODE_UNKNOWN)
        for address in range(NUM_ILC)
    )
    frames.append(m2.encode_force_balance_system_status(status=state.force_balance_on))
    frames.append(m2.encode_summary_faults_status(status=state.summary_faults_status))
    frames.append(m2.encode_m2_assembly_in_position(inPosition=state.in_position))
    return frames


class _Telemetry:
    """Telemetry of one 20 Hz cycle: power and displacement, plus more with motor power on."""

    def __init__(self, seed: int = 2) -> None:
        self._rng = random.Random(seed)
        lut = random.Random(seed + 1)
        self._lut_gravity_axial = tuple(
            round(lut.uniform(184.0, 265.0), 6) for _ in range(NUM_AXIAL)
        )
        self._lut_gravity_tangent = (16.113, -131.72, -4.0968, -30.391, -9.0112, -28.964)

    def _noise(self, scale: float) -> float:
        return self._rng.gauss(0.0, scale)

    def frames(self, state: M2State) -> list[bytes]:
        """Encoded telemetry lines for one cycle."""
        comm_v = 24.0 if state.communication_power_on else 0.0
        motor_v = 24.0 if state.motor_power_on else 0.0
        power = {
            "motorVoltage": motor_v + self._noise(0.05),
            "motorCurrent": (6.0 if state.motor_power_on else 0.0) + self._noise(0.05),
            "commVoltage": comm_v + self._noise(0.05),
            "commCurrent": (1.5 if state.communication_power_on else 0.0) + self._noise(0.05),
        }
        frames = [
            m2.encode_power_status_raw(**power),
            m2.encode_power_status(**{k: v + self._noise(0.01) for k, v in power.items()}),
            m2.encode_displacement_sensors(
                thetaZ=tuple(float(round(15000.0 + self._noise(300.0))) for _ in range(6)),
                deltaZ=tuple(float(round(16500.0 + self._noise(300.0))) for _ in range(6)),
            ),
        ]
        if state.motor_power_on:
            frames.extend(self._motor_frames(state))
        return frames

    def _motor_frames(self, state: M2State) -> list[bytes]:
        zeros_axial = (0.0,) * NUM_AXIAL
        measured_axial = tuple(
            g + a + self._noise(0.5)
            for g, a in zip(self._lut_gravity_axial, state.applied_axial, strict=True)
        )
        measured_tangent = tuple(
            g + a + self._noise(0.5)
            for g, a in zip(self._lut_gravity_tangent, state.applied_tangent, strict=True)
        )
        ims = {key: value + self._noise(0.05) for key, value in state.position.items()}
        angle = state.inclinometer_angle_external
        return [
            m2.encode_ilc_data(status=(0,) * (NUM_AXIAL + NUM_TANGENT)),
            m2.encode_net_forces_total(
                fx=self._noise(1.0), fy=self._noise(1.0), fz=sum(measured_axial)
            ),
            m2.encode_net_moments_total(
                mx=self._noise(1.0), my=self._noise(1.0), mz=self._noise(1.0)
            ),
            m2.encode_axial_force(
                lutGravity=self._lut_gravity_axial,
                lutTemperature=zeros_axial,
                applied=tuple(state.applied_axial),
                measured=measured_axial,
                hardpointCorrection=zeros_axial,
            ),
            m2.encode_tangent_force(
                lutGravity=self._lut_gravity_tangent,
                lutTemperature=(),
                applied=tuple(state.applied_tangent),
                measured=measured_tangent,
                hardpointCorrection=(0.0,) * NUM_TANGENT,
            ),
            m2.encode_force_balance(
                fx=self._noise(1.0),
                fy=self._noise(1.0),
                fz=self._noise(1.0),
                mx=self._noise(1.0),
                my=self._noise(1.0),
                mz=self._noise(1.0),
            ),
            m2.encode_position(**state.position),
            m2.encode_position_ims(**ims),
            m2.encode_temperature(
                ring=tuple(t + 3.5 + self._noise(0.05) for t in state.temperature_ring),
                intake=(24.5 + self._noise(0.05), 25.0 + self._noise(0.05)),
                exhaust=(25.5 + self._noise(0.05), 26.0 + self._noise(0.05)),
            ),
            m2.encode_zenith_angle(
                measured=90.0 - angle,
                inclinometerRaw=angle + self._noise(0.01),
                inclinometerProcessed=angle,
            ),
            m2.encode_axial_encoder_positions(
                position=tuple(s * 1.9e-4 for s in state.axial_steps)
            ),
            m2.encode_tangent_encoder_positions(
                position=tuple(s * 1.9e-4 for s in state.tangent_steps)
            ),
            m2.encode_axial_actuator_steps(steps=tuple(state.axial_steps)),
            m2.encode_tangent_actuator_steps(steps=tuple(state.tangent_steps)),
            m2.encode_force_error_tangent(
                force=tuple(self._noise(1.0) for _ in range(NUM_TANGENT)),
                weight=self._noise(1.0),
                sum=self._noise(1.0),
            ),
            m2.encode_inclinometer_angle_tma(inclinometer=angle),
        ]


# --- commands ------------------------------------------------------------------------------------

Handler = Callable[[M2State, dict[str, Any]], list[bytes]]


def _power_io_events(state: M2State) -> list[bytes]:
    digital_input, digital_output, interlock = state.digital_io()
    return [
        m2.encode_digital_input(value=digital_input),
        m2.encode_digital_output(value=digital_output),
        m2.encode_interlock(state=interlock),
        m2.encode_open_loop_max_limit(status=state.open_loop_max_limit),
    ]


def _switch_power(state: M2State, power_type: m2.PowerType, on: bool) -> list[bytes]:
    """Power one system on or off: the transition events (PoweringOn/Off, then On/Off)."""
    if power_type == m2.PowerType.Motor:
        if state.motor_power_on == on:
            return [
                m2.encode_power_system_state(
                    powerType=power_type, status=on, state=state.motor_power_state
                )
            ]
        events = []
        if not on and state.force_balance_on:
            state.force_balance_on = False
            events.append(m2.encode_force_balance_system_status(status=False))
        state.motor_power_on = on
        transitions = (POWERING_ON, POWER_ON) if on else (POWERING_OFF, POWER_OFF)
        for value in transitions:
            state.motor_power_state = value
            events.append(
                m2.encode_power_system_state(powerType=power_type, status=on, state=value)
            )
        state.closed_loop_control_mode = MODE_OPEN_LOOP if on else MODE_TELEMETRY_ONLY
        return events
    if state.communication_power_on == on:
        return [
            m2.encode_power_system_state(
                powerType=power_type, status=on, state=state.communication_power_state
            )
        ]
    events = []
    if state.motor_power_on and not on:
        events = _switch_power(state, m2.PowerType.Motor, False)
    state.communication_power_on = on
    transitions = (POWERING_ON, POWER_ON) if on else (POWERING_OFF, POWER_OFF)
    for value in transitions:
        state.communication_power_state = value
        events.append(m2.encode_power_system_state(powerType=power_type, status=on, state=value))
    state.closed_loop_control_mode = MODE_TELEMETRY_ONLY if on else MODE_IDLE
    return events


def _power(state: M2State, details: dict[str, Any]) -> list[bytes]:
    power_type = details.get("powerType")
    on = _flag(details, "status")
    if power_type not in (m2.PowerType.Motor, m2.PowerType.Communication):
        raise CommandError(f"unknown powerType {power_type!r}")
    if power_type == m2.PowerType.Motor and on and not state.communication_power_on:
        raise CommandError("the communication power is off")
    events = _switch_power(state, m2.PowerType(power_type), on)
    events.extend(_power_io_events(state))
    return events


def _reset_force_offsets(state: M2State, details: dict[str, Any]) -> list[bytes]:
    state.applied_axial = [0.0] * NUM_AXIAL
    state.applied_tangent = [0.0] * NUM_TANGENT
    state.in_position = False
    return [m2.encode_m2_assembly_in_position(inPosition=False)]


def _clear_errors(state: M2State, details: dict[str, Any]) -> list[bytes]:
    state.summary_faults_status = 0
    digital_input, digital_output, interlock = state.digital_io()
    return [
        m2.encode_summary_faults_status(status=0),
        m2.encode_digital_input(value=digital_input),
        m2.encode_digital_output(value=digital_output),
        m2.encode_interlock(state=interlock),
    ]


def _switch_force_balance_system(state: M2State, details: dict[str, Any]) -> list[bytes]:
    on = _flag(details, "status")
    if on and not state.motor_power_on:
        raise CommandError("the motor power is off")
    state.force_balance_on = on
    if on:
        state.open_loop_max_limit = False
    state.closed_loop_control_mode = MODE_CLOSED_LOOP if on else MODE_OPEN_LOOP
    return [
        m2.encode_force_balance_system_status(status=on),
        m2.encode_open_loop_max_limit(status=state.open_loop_max_limit),
        m2.encode_closed_loop_control_mode(mode=state.closed_loop_control_mode),
        m2.encode_digital_output(value=state.digital_io()[1]),
    ]


def _enable_open_loop_max_limit(state: M2State, details: dict[str, Any]) -> list[bytes]:
    on = _flag(details, "status")
    if on and state.force_balance_on:
        raise CommandError("the force balance system is on")
    state.open_loop_max_limit = on
    return [m2.encode_open_loop_max_limit(status=on)]


def _set_temperature_offset(state: M2State, details: dict[str, Any]) -> list[bytes]:
    ring = _numbers(details, "ring", NUM_TEMPERATURE_RING)
    intake = _numbers(details, "intake", 2) if "intake" in details else state.temperature_intake
    exhaust = _numbers(details, "exhaust", 2) if "exhaust" in details else state.temperature_exhaust
    state.temperature_ring, state.temperature_intake, state.temperature_exhaust = (
        ring,
        intake,
        exhaust,
    )
    return [
        m2.encode_temperature_offset(ring=tuple(ring), intake=tuple(intake), exhaust=tuple(exhaust))
    ]


def _apply_forces(state: M2State, details: dict[str, Any]) -> list[bytes]:
    axial = _numbers(details, "axial", NUM_AXIAL)
    tangent = _numbers(details, "tangent", NUM_TANGENT)
    if not state.force_balance_on:
        raise CommandError("the force balance system is off")
    state.applied_axial, state.applied_tangent = axial, tangent
    state.in_position = False
    return [m2.encode_m2_assembly_in_position(inPosition=False)]


def _position_mirror(state: M2State, details: dict[str, Any]) -> list[bytes]:
    target = {key: _number(details, key) for key in state.position}
    if not state.force_balance_on:
        raise CommandError("the force balance system is off")
    state.position = target
    state.in_position = True
    return [
        m2.encode_m2_assembly_in_position(inPosition=False),
        m2.encode_m2_assembly_in_position(inPosition=True),
    ]


def _reset_actuator_steps(state: M2State, details: dict[str, Any]) -> list[bytes]:
    state.axial_steps = [0] * NUM_AXIAL
    state.tangent_steps = [0] * NUM_TANGENT
    return []


def _move_actuators(state: M2State, details: dict[str, Any]) -> list[bytes]:
    command = details.get("actuatorCommand")
    if command not in ACTUATOR_COMMANDS or isinstance(command, bool):
        raise CommandError(f"unknown actuatorCommand {command!r}")
    if state.force_balance_on or not state.motor_power_on:
        raise CommandError("moving actuators needs the open loop")
    if command == 1:
        actuators = details.get("actuators")
        steps = _number(details, "displacement")
        if not isinstance(actuators, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < NUM_AXIAL + NUM_TANGENT
            for i in actuators
        ):
            raise CommandError("actuators must be a list of actuator indices")
        for index in actuators:
            if index < NUM_AXIAL:
                state.axial_steps[index] += int(steps)
            else:
                state.tangent_steps[index - NUM_AXIAL] += int(steps)
    return []


def _switch_command_source(state: M2State, details: dict[str, Any]) -> list[bytes]:
    state.commandable_by_dds = _flag(details, "isRemote")
    return [m2.encode_commandable_by_dds(state=state.commandable_by_dds)]


def _select_inclination_source(state: M2State, details: dict[str, Any]) -> list[bytes]:
    source = details.get("source")
    if source not in (INCLINATION_ONBOARD, INCLINATION_MTMOUNT) or isinstance(source, bool):
        raise CommandError(f"unknown inclination source {source!r}")
    state.inclination_source = int(source)
    return [m2.encode_inclination_telemetry_source(source=state.inclination_source)]


#: commands the mock knows (by name without cmd_), each: (state, details) -> events
MOCK_COMMANDS: Final[dict[str, Handler]] = {
    "power": _power,
    "resetForceOffsets": _reset_force_offsets,
    "clearErrors": _clear_errors,
    "switchForceBalanceSystem": _switch_force_balance_system,
    "enableOpenLoopMaxLimit": _enable_open_loop_max_limit,
    "setTemperatureOffset": _set_temperature_offset,
    "applyForces": _apply_forces,
    "positionMirror": _position_mirror,
    "resetActuatorSteps": _reset_actuator_steps,
    "moveActuators": _move_actuators,
    "switchCommandSource": _switch_command_source,
    "selectInclinationSource": _select_inclination_source,
}


# --- the server ----------------------------------------------------------------------------------


class MockM2:
    """A mock M2 cell controller: one client on the command port, one on the telemetry port.

    ``unanswered_commands`` names commands that get an ack and nothing more (to test
    timeouts). ``state`` is the mock's model; ``commands`` counts the commands received.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        command_port: int = 0,
        telemetry_port: int = 0,
        *,
        telemetry_interval_s: float = DEFAULT_TELEMETRY_INTERVAL_S,
        log: logging.Logger | None = None,
        unanswered_commands: Iterable[str] = (),
    ) -> None:
        self.host = host
        self._command_port = command_port
        self._telemetry_port = telemetry_port
        self.telemetry_interval_s = telemetry_interval_s
        self.log = log.getChild(type(self).__name__) if log is not None else _log
        self.unanswered_commands = set(unanswered_commands)
        self.state = M2State()
        self.commands: list[tuple[str, int]] = []
        #: command-port connections served so far
        self.command_connections = 0
        self._telemetry = _Telemetry()
        self._server_command: OneClientServer | None = None
        self._server_telemetry: OneClientServer | None = None
        self._current: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def command_port(self) -> int:
        """The command port (the bound one after ``start()`` when asked for port 0)."""
        server = self._server_command
        return server.port or 0 if server is not None else self._command_port

    @property
    def telemetry_port(self) -> int:
        """The telemetry port (the bound one after ``start()`` when asked for port 0)."""
        server = self._server_telemetry
        return server.port or 0 if server is not None else self._telemetry_port

    @property
    def command_connected(self) -> bool:
        """True while a client is connected to the command port."""
        return self._server_command is not None and self._server_command.connected

    @property
    def telemetry_connected(self) -> bool:
        """True while a client is connected to the telemetry port."""
        return self._server_telemetry is not None and self._server_telemetry.connected

    async def start(self) -> None:
        """Listen on both ports."""
        if self._server_command is not None:
            raise RuntimeError("MockM2 is already started")
        self._closed = False
        self._server_command = OneClientServer(
            self.host,
            self._command_port,
            log=self.log,
            connect_callback=self._command_connect_changed,
            name="Commands",
        )
        self._server_telemetry = OneClientServer(
            self.host,
            self._telemetry_port,
            log=self.log,
            connect_callback=self._telemetry_connect_changed,
            name="Telemetry",
        )
        try:
            await asyncio.gather(self._server_command.start_task, self._server_telemetry.start_task)
        except BaseException:
            await self.close()
            raise
        self.log.info(
            "MockM2 listening on %s: command port %s, telemetry port %s",
            self.host,
            self.command_port,
            self.telemetry_port,
        )

    async def close(self) -> None:
        """Stop serving and free both ports; safe to call repeatedly."""
        self._closed = True
        for task in list(self._tasks):
            await cancel_and_wait(task)
        self._current.clear()
        servers = [s for s in (self._server_command, self._server_telemetry) if s is not None]
        self._server_command = None
        self._server_telemetry = None
        for server in servers:
            try:
                await server.close()
            except Exception:
                self.log.exception("Closing the %s server failed.", server.name)

    async def disconnect_clients(self) -> None:
        """Drop the clients of both ports (as a controller reboot would); keep listening."""
        for server in (self._server_command, self._server_telemetry):
            if server is not None:
                await server.close_client()

    async def __aenter__(self) -> MockM2:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _restart_task(self, key: str, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``factory()`` as the task for ``key``, cancelling the previous one."""
        old = self._current.pop(key, None)
        if old is not None:
            old.cancel()
        if self._closed:
            return
        task = asyncio.create_task(factory(), name=f"mock-m2-{key}")
        self._current[key] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _command_connect_changed(self, server: OneClientServer) -> None:
        if server.connected:
            self.command_connections += 1
            self._restart_task("command", lambda: self._serve_commands(server))

    async def _telemetry_connect_changed(self, server: OneClientServer) -> None:
        if server.connected:
            self._restart_task("telemetry-out", lambda: self._stream_telemetry(server))
            self._restart_task("telemetry-in", lambda: self._read_telemetry(server))

    async def _serve_commands(self, server: OneClientServer) -> None:
        """Welcome burst, then answer commands until the client leaves."""
        try:
            await server.writelines(welcome_messages(self.state))
            while True:
                try:
                    message = await server.read_json()
                except RemoteProtocolError as error:
                    self.log.warning("Ignoring a bad line on the command port: %s", error)
                    continue
                try:
                    await self._dispatch(server, message)
                except (asyncio.IncompleteReadError, ConnectionError):
                    raise
                except Exception:
                    self.log.exception("Could not answer %r; going on.", message)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.log.info("The command client left.")

    async def _dispatch(self, server: OneClientServer, message: Any) -> None:
        """Answer one message of the command port."""
        try:
            decoded = m2.decode_message(message)
        except RemoteProtocolError as error:
            await self._answer_undecodable(server, message, error)
            return
        if isinstance(decoded, m2.Power):
            details = {"powerType": decoded.powerType, "status": decoded.status}
            await self._answer(server, "power", decoded.sequence_id, details)
        elif isinstance(decoded, m2.Command):
            await self._answer(server, decoded.name, decoded.sequence_id, decoded.details)
        elif isinstance(decoded, m2.Event):
            self._take_event(decoded)
        else:
            self.log.warning("Ignoring %r on the command port.", message)

    async def _answer_undecodable(
        self, server: OneClientServer, message: Any, error: RemoteProtocolError
    ) -> None:
        """A command whose parameters break the spec: fail it (noack if unknown); else ignore."""
        name = message.get("id") if isinstance(message, dict) else None
        sequence_id = message.get("sequence_id") if isinstance(message, dict) else None
        if (
            isinstance(name, str)
            and name.startswith("cmd_")
            and isinstance(sequence_id, int)
            and not isinstance(sequence_id, bool)
        ):
            self.commands.append((name[4:], sequence_id))
            if name[4:] in MOCK_COMMANDS:
                self.log.info("Command %s failed: %s", name, error)
                await server.writelines([m2.encode_ack(sequence_id), m2.encode_fail(sequence_id)])
            else:
                await server.write(m2.encode_noack(sequence_id))
            return
        self.log.warning("Ignoring a message that is no command: %s", error)

    async def _answer(
        self, server: OneClientServer, name: str, sequence_id: int, details: dict[str, Any]
    ) -> None:
        """ack, the command's events, then success or fail; noack for an unknown command."""
        self.commands.append((name, sequence_id))
        handler = MOCK_COMMANDS.get(name)
        if handler is None:
            await server.write(m2.encode_noack(sequence_id))
            return
        await server.write(m2.encode_ack(sequence_id))
        if name in self.unanswered_commands:
            return
        try:
            events = handler(self.state, details)
        except CommandError as error:
            self.log.info("Command %s (sequence_id %s) failed: %s", name, sequence_id, error)
            await server.write(m2.encode_fail(sequence_id))
            return
        except Exception:
            self.log.exception("Command %s (sequence_id %s) failed.", name, sequence_id)
            await server.write(m2.encode_fail(sequence_id))
            return
        await server.writelines([*events, m2.encode_success(sequence_id)])

    def _take_event(self, event: Any) -> None:
        """Events a client sends (the mount's position)."""
        if event.name == "mountInPosition":
            value = event.details.get("inPosition")
            if isinstance(value, bool):
                self.state.mtmount_in_position = value

    async def _stream_telemetry(self, server: OneClientServer) -> None:
        """Write one telemetry cycle every ``telemetry_interval_s`` while a client is connected."""
        loop = asyncio.get_running_loop()
        next_time = loop.time()
        try:
            while server.connected:
                await server.writelines(self._telemetry.frames(self.state))
                next_time += self.telemetry_interval_s
                await asyncio.sleep(max(0.0, next_time - loop.time()))
        except ConnectionError:
            self.log.info("The telemetry client left.")

    async def _read_telemetry(self, server: OneClientServer) -> None:
        """Read what the telemetry client sends (the mount's elevation)."""
        try:
            while True:
                try:
                    message = await server.read_json()
                    decoded = m2.decode_message(message)
                except RemoteProtocolError as error:
                    self.log.warning("Ignoring a bad line on the telemetry port: %s", error)
                    continue
                if isinstance(decoded, m2.Telemetry) and decoded.name == "elevation":
                    value = decoded.details.get("actualPosition")
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        self.state.inclinometer_angle_external = float(value)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass


async def run_mock_m2(
    host: str = "127.0.0.1",
    command_port: int = m2.COMMAND_PORT,
    telemetry_port: int = m2.TELEMETRY_PORT,
    *,
    telemetry_interval_s: float = DEFAULT_TELEMETRY_INTERVAL_S,
    ready: Callable[[MockM2], object] | None = None,
    log: logging.Logger | None = None,
) -> None:
    """Serve a ``MockM2`` until cancelled (the CLI entry); ``ready(mock)`` once it listens."""
    mock = MockM2(
        host,
        command_port,
        telemetry_port,
        telemetry_interval_s=telemetry_interval_s,
        log=log,
    )
    await mock.start()
    try:
        if ready is not None:
            ready(mock)
        await asyncio.Event().wait()
    finally:
        await mock.close()
