"""pytest plugin: the ``daqwire_conform`` fixture checks a live peer inside a test.

Enabled automatically when daqwire is installed (entry point ``pytest11``)::

    def test_my_pull_socket(daqwire_conform):
        report = daqwire_conform("pyexplabsys", "127.0.0.1:9000", examples=200)
        assert report.checked >= 200

A deviation fails the test with the report's summary and the reproducer commands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from daqwire.conform.report import Report

__all__ = ["daqwire_conform", "pytest_addoption"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--daqwire-examples`` and ``--daqwire-seed`` override what tests ask for."""
    group = parser.getgroup("daqwire", "daqwire conformance checks")
    group.addoption(
        "--daqwire-examples",
        type=int,
        default=None,
        metavar="N",
        help="cases per daqwire_conform call (default: what each test asks, else 100)",
    )
    group.addoption(
        "--daqwire-seed",
        type=int,
        default=None,
        metavar="S",
        help="hypothesis seed for every daqwire_conform call (default: random)",
    )


@pytest.fixture
def daqwire_conform(request: pytest.FixtureRequest) -> Callable[..., Report]:
    """A function ``(spec, target, **options) -> Report`` that fails the test on a deviation."""
    from daqwire.conform import conform

    examples = request.config.getoption("--daqwire-examples")
    seed = request.config.getoption("--daqwire-seed")

    def check(spec: str, target: str, *, check: bool = True, **options: Any) -> Report:
        if examples is not None:
            options["examples"] = examples
        if seed is not None and "seed" not in options:
            options["seed"] = seed
        report = conform(spec, target, **options)
        if check and not report.ok:
            pytest.fail(report.summary(), pytrace=False)
        return report

    return check
