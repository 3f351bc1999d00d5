"""The Constellation FSM of Satellite without any network: state codes, allowed and refused
transitions, hook order, failures in hooks and in do_run, interrupt, shutdown, close.

Order is checked through recorded hook calls and threading.Events; no duration is asserted.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from daqwire.constellation.satellite import Satellite
from daqwire.constellation.states import (
    InvalidRunIdentifier,
    SatelliteState,
    Transition,
    TransitionFailed,
    TransitionNotAllowed,
    check_run_identifier,
)
from daqwire.errors import DaqwireError

S = SatelliteState
WAIT_S = 5.0  # the longest a test waits for a state; never asserted


class Recorder(Satellite):
    """Records every hook call; ``fail`` names a hook that raises."""

    def __init__(self, *args: Any, fail: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, Any]] = []
        self.fail = fail
        self.running = threading.Event()

    def _hook(self, name: str, arg: Any = None) -> str:
        self.calls.append((name, arg))
        if self.fail == name:
            raise RuntimeError(f"boom in {name}")
        return f"{name} done"

    def do_initializing(self, config: dict[str, Any]) -> str | None:
        return self._hook("do_initializing", dict(config))

    def do_launching(self) -> str | None:
        return self._hook("do_launching")

    def do_landing(self) -> str | None:
        return self._hook("do_landing")

    def do_starting(self, run_identifier: str) -> str | None:
        return self._hook("do_starting", run_identifier)

    def do_stopping(self) -> str | None:
        return self._hook("do_stopping")

    def do_failure(self) -> str | None:
        return self._hook("do_failure")

    def do_run(self, run_identifier: str) -> str | None:
        self.calls.append(("do_run", run_identifier))
        self.running.set()
        if self.fail == "do_run":
            raise ValueError("acquisition broke")
        self.stop_running.wait()
        return "run finished"


@pytest.fixture
def sat() -> Any:
    s = Recorder("sat1", "testgroup")
    yield s
    s.close()


def names(sat: Recorder) -> list[str]:
    return [c[0] for c in sat.calls]


def test_state_codes_match_constellation() -> None:
    assert {s.name: s.value for s in SatelliteState} == {
        "NEW": 0x10,
        "initializing": 0x12,
        "INIT": 0x20,
        "launching": 0x23,
        "ORBIT": 0x30,
        "landing": 0x32,
        "reconfiguring": 0x33,
        "starting": 0x34,
        "RUN": 0x40,
        "stopping": 0x43,
        "interrupting": 0x0E,
        "SAFE": 0xE0,
        "ERROR": 0xF0,
        "DEAD": 0xFF,
    }
    steady = {s for s in SatelliteState if s.is_steady}
    assert steady == {S.NEW, S.INIT, S.ORBIT, S.RUN, S.SAFE, S.ERROR, S.DEAD}


def test_names() -> None:
    sat = Satellite("sat1", "g")
    assert sat.canonical_name == "Satellite.sat1"
    assert Recorder("x").canonical_name == "Recorder.x"
    for bad in ("", "a.b", "a b"):
        with pytest.raises(ValueError, match="invalid satellite name"):
            Satellite(bad)


def test_seed_positional_arguments_are_kept() -> None:
    sat = Satellite("sat1", "grp", 23999, 61234, 55556, ["lo"])
    assert (sat.group, sat.cmd_port, sat.hb_port, sat.mon_port, sat.interface) == (
        "grp",
        23999,
        61234,
        55556,
        ["lo"],
    )


def test_full_cycle_calls_hooks_in_order(sat: Recorder) -> None:
    assert sat.state == S.NEW
    sat.initialize({"voltage": 12.5})
    assert (sat.state, sat.status) == (S.INIT, "do_initializing done")
    assert sat.config == {"voltage": 12.5}
    sat.launch()
    assert sat.state == S.ORBIT
    sat.start("run_0001")
    assert sat.state == S.RUN and sat.run_identifier == "run_0001"
    assert sat.running.wait(WAIT_S)
    sat.stop()
    assert (sat.state, sat.status) == (S.ORBIT, "run finished; do_stopping done")
    sat.land()
    assert sat.state == S.INIT
    sat.shutdown()
    assert sat.state == S.DEAD
    assert sat.calls == [
        ("do_initializing", {"voltage": 12.5}),
        ("do_launching", None),
        ("do_starting", "run_0001"),
        ("do_run", "run_0001"),
        ("do_stopping", None),
        ("do_landing", None),
    ]


def test_config_is_copied(sat: Recorder) -> None:
    config = {"a": 1}
    sat.initialize(config)
    sat.config["b"] = 2
    assert config == {"a": 1}


@pytest.mark.parametrize(
    ("prepare", "call", "transition"),
    [
        ([], "launch", Transition.launch),
        ([], "start", Transition.start),
        ([], "stop", Transition.stop),
        ([], "interrupt", Transition.interrupt),
        (["initialize"], "land", Transition.land),
        (["initialize"], "start", Transition.start),
        (["initialize", "launch"], "initialize", Transition.initialize),
        (["initialize", "launch"], "shutdown", Transition.shutdown),
        (["initialize", "launch"], "launch", Transition.launch),
        (["initialize", "launch", "start"], "land", Transition.land),
        (["initialize", "launch", "start"], "shutdown", Transition.shutdown),
        (["initialize", "launch", "start"], "start", Transition.start),
        (["shutdown"], "initialize", Transition.initialize),
        (["shutdown"], "failure", Transition.failure),
    ],
)
def test_refused_transitions_change_nothing(
    sat: Recorder, prepare: list[str], call: str, transition: Transition
) -> None:
    for step in prepare:
        getattr(sat, step)("run1") if step == "start" else getattr(sat, step)()
    before, calls = sat.state, list(sat.calls)
    with pytest.raises(TransitionNotAllowed) as info:
        getattr(sat, call)("run2") if call == "start" else getattr(sat, call)()
    assert isinstance(info.value, DaqwireError)
    assert info.value.transition == transition and info.value.state == before
    assert f"Transition {transition.value} not allowed from {before.name}" in str(info.value)
    assert sat.state == before and sat.calls == calls


@pytest.mark.parametrize("run_id", ["run 1", "run/1", "", "run1\n", "ü-ok-but-😀"])
def test_invalid_run_identifier_is_refused(sat: Recorder, run_id: str) -> None:
    sat.initialize()
    sat.launch()
    with pytest.raises(InvalidRunIdentifier, match="invalid characters"):
        sat.start(run_id)
    assert sat.state == S.ORBIT and "do_starting" not in names(sat)


def test_valid_run_identifiers() -> None:
    for run_id in ("run_0001", "A-b_3", "123"):
        assert check_run_identifier(run_id) == run_id
    assert issubclass(InvalidRunIdentifier, ValueError)


@pytest.mark.parametrize(
    ("hook", "steps", "transition"),
    [
        ("do_initializing", ["initialize"], Transition.initialize),
        ("do_launching", ["initialize", "launch"], Transition.launch),
        ("do_starting", ["initialize", "launch", "start"], Transition.start),
        ("do_stopping", ["initialize", "launch", "start", "stop"], Transition.stop),
        ("do_landing", ["initialize", "launch", "land"], Transition.land),
    ],
)
def test_a_hook_that_raises_puts_the_satellite_in_error(
    hook: str, steps: list[str], transition: Transition
) -> None:
    sat = Recorder("sat1", fail=hook)
    try:
        with pytest.raises(TransitionFailed) as info:
            for step in steps:
                getattr(sat, step)("run1") if step == "start" else getattr(sat, step)()
        assert info.value.transition == transition
        assert sat.state == S.ERROR
        assert sat.status == f"RuntimeError in {hook}: boom in {hook}"
        assert info.value.status == sat.status
        assert isinstance(info.value.__cause__, RuntimeError)
        assert names(sat)[-1] == "do_failure"
        # ERROR -> initialize recovers
        sat.fail = ""
        sat.initialize()
        assert sat.state == S.INIT
    finally:
        sat.close()


def test_do_run_exception_goes_to_error_with_status() -> None:
    sat = Recorder("sat1", fail="do_run")
    try:
        sat.initialize()
        sat.launch()
        sat.start("run1")
        assert sat.wait_for_state(S.ERROR, WAIT_S)
        assert sat.status == "ValueError in do_run: acquisition broke"
        assert sat.stop_running.is_set()
        with pytest.raises(TransitionNotAllowed):
            sat.stop()
        sat.initialize()
        sat.launch()
        sat.fail = ""
        sat.start("run2")
        assert sat.running.wait(WAIT_S)
        sat.stop()
        assert sat.state == S.ORBIT
    finally:
        sat.close()


class FailsWhenStopped(Satellite):
    """do_run raises only after it was asked to stop: the stop transition reports it."""

    def do_run(self, run_identifier: str) -> str | None:
        self.stop_running.wait()
        raise OSError("device unplugged while stopping")


def test_do_run_failure_during_stop_is_reported_by_stop() -> None:
    sat = FailsWhenStopped("sat1")
    try:
        sat.initialize()
        sat.launch()
        sat.start("run1")
        with pytest.raises(TransitionFailed, match="OSError in do_run: device unplugged"):
            sat.stop()
        assert sat.state == S.ERROR
    finally:
        sat.close()


class ReturnsEarly(Satellite):
    def do_run(self, run_identifier: str) -> str | None:
        return f"done with {run_identifier}"


def test_do_run_returning_early_keeps_run_state() -> None:
    sat = ReturnsEarly("sat1")
    try:
        sat.initialize()
        sat.launch()
        sat.start("r1")
        assert sat._worker is not None
        sat._worker.join(WAIT_S)
        assert sat.state == S.RUN and sat.status == "done with r1"
        sat.stop()
        assert sat.status == "done with r1; Stopped"
    finally:
        sat.close()


def test_interrupt_from_run_and_from_orbit(sat: Recorder) -> None:
    sat.initialize()
    sat.launch()
    sat.start("run1")
    assert sat.running.wait(WAIT_S)
    sat.interrupt()
    assert (sat.state, sat.status) == (S.SAFE, "Interrupted")
    assert names(sat)[-3:] == ["do_run", "do_stopping", "do_landing"]  # the default interrupting
    sat.initialize()
    sat.launch()
    del sat.calls[:]
    sat.interrupt()
    assert sat.state == S.SAFE
    assert names(sat) == ["do_landing"]  # no run: no do_stopping
    sat.shutdown()
    assert sat.state == S.DEAD


def test_failure_from_any_state_and_reason(sat: Recorder) -> None:
    sat.failure("operator pulled the plug")
    assert (sat.state, sat.status) == (S.ERROR, "operator pulled the plug")
    sat.initialize()
    sat.launch()
    sat.start("run1")
    assert sat.running.wait(WAIT_S)
    sat.failure()
    assert (sat.state, sat.status) == (S.ERROR, "Failure requested")
    assert sat.stop_running.is_set()
    sat.shutdown()
    assert sat.state == S.DEAD


def test_wait_for_state(sat: Recorder) -> None:
    assert not sat.wait_for_state(S.RUN, 0.05)
    assert sat.wait_for_state(S.NEW, 0)
    reached = threading.Event()

    def waiter() -> None:
        if sat.wait_for_state(S.ORBIT, WAIT_S):
            reached.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    sat.initialize()
    sat.launch()
    thread.join(WAIT_S)
    assert reached.is_set()


def test_seed_names_for_the_stop_event(sat: Recorder) -> None:
    assert sat._state_thread_evt is sat.stop_running
    assert not sat.stop_requested()
    sat.stop_running.set()
    assert sat.stop_requested()


def test_reconfigure_needs_a_hook(sat: Recorder) -> None:
    sat.initialize({"a": 1})
    sat.launch()
    with pytest.raises(TransitionNotAllowed, match="no do_reconfigure"):
        sat.reconfigure({"a": 2})

    class Reconf(Satellite):
        def do_reconfigure(self, partial: dict[str, Any]) -> str:
            return f"now {partial}"

    r = Reconf("r")
    try:
        r.initialize({"a": 1, "b": 1})
        r.launch()
        r.reconfigure({"a": 2})
        assert (r.state, r.status, r.config) == (S.ORBIT, "now {'a': 2}", {"a": 2, "b": 1})
    finally:
        r.close()


def test_close_from_run_and_context_manager() -> None:
    with Recorder("sat1") as sat:
        sat.initialize()
        sat.launch()
        sat.start("run1")
        assert sat.running.wait(WAIT_S)
    assert sat.state == S.DEAD
    assert "do_stopping" in names(sat)
    sat.close()  # idempotent
    assert sat.state == S.DEAD


def test_transitional_states_are_visible_to_hooks() -> None:
    seen: list[SatelliteState] = []
    in_run = threading.Event()

    class Watcher(Satellite):
        def do_initializing(self, config: dict[str, Any]) -> str | None:
            seen.append(self.state)
            return None

        def do_launching(self) -> str | None:
            seen.append(self.state)
            return None

        def do_starting(self, run_identifier: str) -> str | None:
            seen.append(self.state)
            return None

        def do_run(self, run_identifier: str) -> str | None:
            seen.append(self.state)
            in_run.set()
            return super().do_run(run_identifier)

        def do_stopping(self) -> str | None:
            seen.append(self.state)
            return None

    with Watcher("w") as w:
        w.initialize()
        w.launch()
        w.start("r")
        assert in_run.wait(WAIT_S)
        w.stop()
        assert w.status == "Finished RUN"  # do_stopping returned None: only do_run's text
    assert seen == [S.initializing, S.launching, S.starting, S.RUN, S.stopping]
