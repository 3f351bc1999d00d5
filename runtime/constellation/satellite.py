"""Satellite: the Constellation finite state machine with a local, synchronous Python API.

Transitions are methods (``initialize``, ``launch``, ``land``, ``start``, ``stop``,
``interrupt``, ``failure``, ``shutdown``) that return once the steady state is reached. A
transition the current state does not allow raises :class:`TransitionNotAllowed` and changes
nothing; a hook that raises puts the satellite in ERROR (``status`` says which hook and why) and
the method raises :class:`TransitionFailed`. ``do_run`` runs in a worker thread the satellite
owns; it must return soon after ``self.stop_running`` (a ``threading.Event``) is set.

Network control (CSCP commands, CHIRP offers, CHP heartbeats, CMDP monitoring) is not
implemented yet: the seed's ``cmd_port``/``hb_port``/``mon_port``/``interface`` arguments are
accepted and stored so that existing code constructs unchanged, but nothing listens on them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from daqwire.constellation.states import (
    TRANSITIONS,
    SatelliteState,
    Transition,
    TransitionFailed,
    TransitionNotAllowed,
    check_run_identifier,
)

__all__ = ["Satellite"]

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

#: how often a failing worker thread retries to take the transition lock
_WORKER_LOCK_POLL_S = 0.05
#: how long the failure transition waits for a worker that ignores ``stop_running``
_FAILURE_JOIN_S = 1.0


def _describe(exc: BaseException, where: str) -> str:
    return f"{type(exc).__name__} in {where}: {exc}"


class Satellite:
    """A Constellation satellite: the FSM, its hooks and a worker thread for ``do_run``.

    ``name`` must be non-empty and free of ``.`` and whitespace; the canonical name (the CDTP
    sender) is ``"<ClassName>.<name>"``. Override the ``do_*`` hooks; each may return a status
    string. Use as a context manager to reach DEAD (interrupting a run) on exit.
    """

    def __init__(
        self,
        name: str,
        group: str = "constellation",
        cmd_port: int | None = None,
        hb_port: int | None = None,
        mon_port: int | None = None,
        interface: str | Sequence[str] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name or "." in name or any(c.isspace() for c in name):
            raise ValueError(f"invalid satellite name {name!r}: non-empty, no '.', no whitespace")
        self.name = name
        self.group = group
        # stored for drop-in compatibility; network control is not implemented yet
        self.cmd_port = cmd_port
        self.hb_port = hb_port
        self.mon_port = mon_port
        self.interface = interface
        self.log = logger.getChild(self.canonical_name)
        #: the configuration of the last ``initialize`` (a copy; hooks may add defaults)
        self.config: dict[str, Any] = {}
        #: set when ``do_run`` must return (stop, interrupt, failure, shutdown)
        self.stop_running = threading.Event()
        self._lock = threading.RLock()  # serialises transitions
        self._busy = 0  # transitions under way (guarded by _cond)
        self._cond = threading.Condition()  # guards state/status, wakes wait_for_state
        self._state = SatelliteState.NEW
        self._status = "Satellite constructed"
        self._last_changed = datetime.now(UTC)
        self._run_identifier = ""
        self._worker: threading.Thread | None = None
        self._worker_result: str | None = None
        self._joining_worker = False
        self._worker_failure: str | None = None
        self._interrupted_from: SatelliteState | None = None
        self._previous_state = SatelliteState.NEW

    # ------------------------------------------------------------------ properties

    @property
    def canonical_name(self) -> str:
        """``"<ClassName>.<name>"``: the sender name on the wire."""
        return f"{type(self).__name__}.{self.name}"

    @property
    def state(self) -> SatelliteState:
        """The current FSM state."""
        with self._cond:
            return self._state

    @property
    def status(self) -> str:
        """The status text of the last transition (the reason, in ERROR)."""
        with self._cond:
            return self._status

    @property
    def last_changed(self) -> datetime:
        """When the state last changed (UTC)."""
        with self._cond:
            return self._last_changed

    @property
    def run_identifier(self) -> str:
        """The identifier of the current or last run; ``""`` before the first run."""
        return self._run_identifier

    @property
    def _state_thread_evt(self) -> threading.Event:
        """Seed-era name of :attr:`stop_running` (the event ``do_run`` watches)."""
        return self.stop_running

    def stop_requested(self) -> bool:
        """True once ``do_run`` must return (constellationdaq 1.0 spelling)."""
        return self.stop_running.is_set()

    def wait_for_state(self, state: SatelliteState, timeout_s: float | None = None) -> bool:
        """Block until the satellite rests in ``state`` (no transition or failure handling
        under way); False if ``timeout_s`` passed first."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._state == state and not self._busy, timeout=timeout_s
            )

    # ------------------------------------------------------------------ hooks

    def do_initializing(self, config: dict[str, Any]) -> str | None:
        """Read the configuration; the default accepts anything."""
        return "Initialized"

    def do_launching(self) -> str | None:
        """Prepare the hardware for runs."""
        return "Launched"

    def do_landing(self) -> str | None:
        """Undo ``do_launching``."""
        return "Landed"

    def do_starting(self, run_identifier: str) -> str | None:
        """Last preparations before ``do_run``."""
        return "Started"

    def do_run(self, run_identifier: str) -> str | None:
        """Acquire until ``self.stop_running`` is set (worker thread); return a status."""
        self.stop_running.wait()
        return "Finished RUN"

    def do_stopping(self) -> str | None:
        """Called after ``do_run`` returned on ``stop``."""
        return "Stopped"

    def do_interrupting(self) -> str | None:
        """Called on ``interrupt``; default: ``do_stopping`` (if RUN), then ``do_landing``."""
        if self._interrupted_from == SatelliteState.RUN:
            self.do_stopping()
        self.do_landing()
        return "Interrupted"

    def do_failure(self) -> str | None:
        """Called on the way to ERROR (after ``do_run`` was asked to stop); must not raise."""
        return "Failed gracefully"

    # internal hooks for subclasses of the framework (DataSender)

    def _pre_initializing_hook(self, config: dict[str, Any]) -> None:
        """Runs before ``do_initializing`` with the satellite's copy of the configuration."""

    def _pre_run_hook(self, run_identifier: str) -> None:
        """Runs after ``do_starting``, before the state is RUN (DataSender sends the BOR)."""

    def _post_stopping_hook(self) -> None:
        """Runs after ``do_stopping`` (DataSender sends the EOR)."""

    def _post_interrupting_hook(self, interrupted_from: SatelliteState) -> None:
        """Runs after ``do_interrupting`` (DataSender ends an open run)."""

    def _failure_hook(self) -> None:
        """Runs on the way to ERROR after ``do_failure``; exceptions are logged."""

    def _shutdown_hook(self) -> None:
        """Releases resources on the way to DEAD; exceptions are logged."""

    # ------------------------------------------------------------------ transitions

    def initialize(self, config: dict[str, Any] | None = None) -> None:
        """NEW/INIT/SAFE/ERROR -> INIT with ``config`` (copied into ``self.config``)."""

        def body() -> str | None:
            self._join_worker(timeout_s=_FAILURE_JOIN_S)
            self.config = dict(config or {})
            self._pre_initializing_hook(self.config)
            return self._call("do_initializing", lambda: self.do_initializing(self.config))

        self._transition(Transition.initialize, body, "Initialized")

    def launch(self) -> None:
        """INIT -> ORBIT."""
        self._transition(
            Transition.launch, lambda: self._call("do_launching", self.do_launching), "Launched"
        )

    def land(self) -> None:
        """ORBIT -> INIT."""
        self._transition(
            Transition.land, lambda: self._call("do_landing", self.do_landing), "Landed"
        )

    def reconfigure(self, partial_config: dict[str, Any]) -> None:
        """ORBIT -> ORBIT with ``partial_config`` merged in; needs a ``do_reconfigure`` hook."""
        hook = getattr(self, "do_reconfigure", None)
        if hook is None:
            raise TransitionNotAllowed(
                Transition.reconfigure, self.state, f"{type(self).__name__} has no do_reconfigure"
            )

        def body() -> str | None:
            result: str | None = self._call("do_reconfigure", lambda: hook(partial_config))
            self.config.update(partial_config)
            return result

        self._transition(Transition.reconfigure, body, "Reconfigured")

    def start(self, run_identifier: str) -> None:
        """ORBIT -> RUN; ``run_identifier`` must match ``^[\\w-]+$``; starts ``do_run``."""
        check_run_identifier(run_identifier)

        def body() -> str | None:
            self._run_identifier = run_identifier
            self.stop_running.clear()
            message = self._call("do_starting", lambda: self.do_starting(run_identifier))
            self._call("start", lambda: self._pre_run_hook(run_identifier))
            self._worker_result = None
            self._worker_failure = None
            self._worker = threading.Thread(
                target=self._worker_main,
                args=(run_identifier,),
                name=f"daqwire-run-{self.canonical_name}",
                daemon=True,
            )
            return message

        self._transition(Transition.start, body, "Started", after=self._start_worker)

    def stop(self) -> None:
        """RUN -> ORBIT: stop ``do_run`` (waiting for it), then ``do_stopping``."""

        def body() -> str | None:
            run_message = self._stop_worker(timeout_s=None)
            message = self._call("do_stopping", self.do_stopping)
            self._call("stop", self._post_stopping_hook)
            parts = [m for m in (run_message, message) if m]
            return "; ".join(parts) if parts else None

        self._transition(Transition.stop, body, "Stopped")

    def interrupt(self) -> None:
        """ORBIT/RUN -> SAFE: stop ``do_run`` if running, ``do_interrupting``, end the run."""

        def body() -> str | None:
            previous = self._interrupted_from = self._previous_state
            if previous == SatelliteState.RUN:
                self._stop_worker(timeout_s=None)
            message = self._call("do_interrupting", self.do_interrupting)
            self._call("interrupt", lambda: self._post_interrupting_hook(previous))
            return message

        self._transition(Transition.interrupt, body, "Interrupted")

    def failure(self, reason: str = "Failure requested") -> None:
        """Any state but DEAD -> ERROR with status ``reason``: stops ``do_run``, ``do_failure``."""
        with self._transitioning():
            if self.state == SatelliteState.DEAD:
                raise TransitionNotAllowed(Transition.failure, SatelliteState.DEAD)
            self._enter_error(reason)

    def shutdown(self) -> None:
        """NEW/INIT/SAFE/ERROR -> DEAD, releasing every thread and socket."""

        def body() -> str | None:
            self.stop_running.set()
            self._join_worker(timeout_s=_FAILURE_JOIN_S)
            try:
                self._shutdown_hook()
            except Exception:
                self.log.exception("releasing resources at shutdown failed")
            return None

        self._transition(Transition.shutdown, body, "Shut down")

    def close(self) -> None:
        """Reach DEAD from any state (interrupting a run); idempotent, never raises."""
        with self._transitioning():
            if self.state == SatelliteState.DEAD:
                return
            try:
                if self.state in (SatelliteState.RUN, SatelliteState.ORBIT):
                    self.interrupt()
            except Exception:
                self.log.exception("interrupt during close failed")
            if not self._is_dead():
                try:
                    self.shutdown()
                except Exception:
                    self.log.exception("shutdown during close failed; forcing DEAD")
                    self._shutdown_hook()
                    self._set_state(SatelliteState.DEAD, "Closed")

    def _is_dead(self) -> bool:
        return self.state == SatelliteState.DEAD

    def __enter__(self) -> Satellite:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.canonical_name} {self.state.name}>"

    # ------------------------------------------------------------------ machinery

    @contextlib.contextmanager
    def _transitioning(self) -> Iterator[None]:
        """Hold the transition lock and count as busy for ``wait_for_state``."""
        with self._lock:
            with self._cond:
                self._busy += 1
            try:
                yield
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _set_state(self, state: SatelliteState, status: str | None = None) -> None:
        with self._cond:
            self._state = state
            if status is not None:
                self._status = status
            self._last_changed = datetime.now(UTC)
            self._cond.notify_all()
        self.log.debug("state %s (%s)", state.name, self._status)

    def _set_status(self, status: str) -> None:
        with self._cond:
            self._status = status

    def _call(self, where: str, hook: Callable[[], _T]) -> _T:
        """Run a hook; an exception becomes a _HookError naming ``where``."""
        try:
            return hook()
        except _HookError:
            raise
        except Exception as exc:
            raise _HookError(_describe(exc, where)) from exc

    def _transition(
        self,
        transition: Transition,
        body: Callable[[], str | None],
        default_status: str,
        *,
        after: Callable[[], None] | None = None,
    ) -> None:
        rule = TRANSITIONS[transition]
        with self._transitioning():
            state = self.state
            if state not in rule.sources:
                raise TransitionNotAllowed(transition, state)
            self._previous_state = state
            if rule.via is not None:
                self._set_state(rule.via)
            try:
                message = body()
            except _HookError as exc:
                self._enter_error(exc.status)
                raise TransitionFailed(transition, exc.status) from exc.__cause__
            self._set_state(rule.target, message if isinstance(message, str) else default_status)
            if after is not None:
                after()

    def _enter_error(self, reason: str) -> None:
        """Go to ERROR with ``reason`` as status, then clean up (caller holds the lock)."""
        self.log.error("failure: %s", reason)
        self.stop_running.set()
        self._set_state(SatelliteState.ERROR, reason)
        if self._worker is not None and self._worker is not threading.current_thread():
            self._join_worker(timeout_s=_FAILURE_JOIN_S)
        for name, hook in (("do_failure", self.do_failure), ("failure", self._failure_hook)):
            try:
                hook()
            except Exception:
                self.log.exception("%s raised on the way to ERROR", name)

    def _start_worker(self) -> None:
        if self._worker is not None:
            self._worker.start()

    def _stop_worker(self, *, timeout_s: float | None) -> str | None:
        """Ask ``do_run`` to return and wait; a failure it reported is raised as _HookError."""
        self.stop_running.set()
        self._join_worker(timeout_s=timeout_s)
        if self._worker_failure is not None:
            failure, self._worker_failure = self._worker_failure, None
            raise _HookError(failure)
        return self._worker_result

    def _join_worker(self, *, timeout_s: float | None) -> None:
        worker = self._worker
        if worker is None or worker is threading.current_thread():
            return
        self.stop_running.set()
        self._joining_worker = True
        try:
            if worker.is_alive():
                worker.join(timeout_s)
        finally:
            self._joining_worker = False
        if worker.is_alive():
            self.log.error(
                "do_run did not return within %s s; leaving its thread behind", timeout_s
            )
        else:
            self._worker = None

    def _worker_main(self, run_identifier: str) -> None:
        try:
            result = self.do_run(run_identifier)
        except Exception as exc:
            self._worker_failed(_describe(exc, "do_run"))
            return
        self._worker_result = result if isinstance(result, str) else None
        if isinstance(result, str) and not self.stop_running.is_set():
            self._set_status(result)

    def _worker_failed(self, status: str) -> None:
        """Take the failure transition from the worker, or hand it to a transition joining us."""
        me = threading.current_thread()
        while True:
            if self._lock.acquire(timeout=_WORKER_LOCK_POLL_S):
                try:
                    with self._transitioning():
                        if self._worker is me and self.state == SatelliteState.RUN:
                            self._enter_error(status)
                        else:
                            self.log.error("do_run failed after the run ended: %s", status)
                finally:
                    self._lock.release()
                return
            if self._joining_worker:
                self._worker_failure = status
                return
            time.sleep(0)


class _HookError(Exception):
    """A hook raised; ``status`` is the ERROR status text."""

    def __init__(self, status: str) -> None:
        self.status = status
        super().__init__(status)
