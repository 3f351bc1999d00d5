"""Run a check over hypothesis-drawn cases against a live peer and shrink the first failure."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from daqwire.errors import RemoteProtocolError

__all__ = ["Found", "Problem", "search"]

C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class Problem:
    """Why one case fails: the check, the message and where (from the generated decoder)."""

    check: str
    message: str
    field_path: str | None = None
    offset: int | None = None
    evidence: bytes | None = None

    @classmethod
    def from_error(
        cls, check: str, exc: RemoteProtocolError, evidence: bytes, *, start: int = 0
    ) -> Problem:
        """The problem a generated decoder raised; ``start`` moves its offset into the item."""
        offset = None if exc.offset is None else exc.offset - start
        return cls(
            check,
            exc.message,
            field_path=exc.field_path or None,
            offset=offset if offset is None or offset >= 0 else None,
            evidence=evidence,
        )


@dataclass(frozen=True, slots=True)
class Found(Generic[C]):
    """The smallest failing case hypothesis found (after its shrink phase), and its problem."""

    case: C
    problem: Problem
    shrunk: bool


class _Failure(Exception):
    def __init__(self, case: object, problem: Problem) -> None:
        super().__init__(problem.message)
        self.case = case
        self.problem = problem


def _find_failure(exc: BaseException) -> _Failure | None:
    if isinstance(exc, _Failure):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find_failure(inner)
            if found is not None:
                return found
    for linked in (exc.__cause__, exc.__context__):
        if linked is not None and linked is not exc:
            found = _find_failure(linked)
            if found is not None:
                return found
    return None


def search(
    strategy: st.SearchStrategy[C],
    check: Callable[[C], Problem | None],
    *,
    examples: int,
    seed: int | None,
    shrink_budget_s: float = 30.0,
    on_case: Callable[[], None] | None = None,
) -> Found[C] | None:
    """Check up to ``examples`` drawn cases; on a failure, shrink it and return the minimal one.

    Shrinking talks to the live peer too; after ``shrink_budget_s`` it stops asking the peer
    and keeps the smallest failing case seen so far. Returns None when every case passed.
    """
    failing: list[tuple[C, Problem]] = []
    first_failure_at: list[float] = []

    def known(case: C) -> Problem | None:
        for seen, problem in failing:
            if seen == case:
                return problem
        return None

    @settings(
        max_examples=max(1, examples),
        database=None,
        deadline=None,
        derandomize=False,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
        verbosity=Verbosity.quiet,
    )
    @given(strategy)
    def property_(case: C) -> None:
        over = first_failure_at and time.monotonic() - first_failure_at[0] > shrink_budget_s
        problem = known(case)
        if problem is None and not over:
            if on_case is not None:
                on_case()
            problem = check(case)
            if problem is not None:
                failing.append((case, problem))
                if not first_failure_at:
                    first_failure_at.append(time.monotonic())
        if problem is not None:
            raise _Failure(case, problem)

    test = property_ if seed is None else hypothesis_seed(seed)(property_)
    try:
        test()
    except BaseException as exc:  # hypothesis re-raises the minimal failure, maybe in a group
        failure = _find_failure(exc)
        if failure is None:
            raise
        return Found(failure.case, failure.problem, shrunk=True)  # type: ignore[arg-type]
    return None
