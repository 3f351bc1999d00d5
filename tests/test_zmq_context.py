"""term_bounded: a context whose term() cannot return does not hold its caller."""

from __future__ import annotations

import logging
import threading

import pytest
import zmq

from daqwire.zmq_context import term_bounded


def test_term_returns_true_when_every_socket_is_closed() -> None:
    context = zmq.Context()
    context.socket(zmq.PUSH).close(linger=0)
    assert term_bounded(context, 5.0, owner="tx") is True
    assert context.closed


def test_a_term_that_cannot_finish_is_given_up_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    context = zmq.Context()
    held = context.socket(zmq.PUSH)  # never closed in time: term() waits for it
    with caplog.at_level(logging.ERROR, logger="daqwire.zmq_context"):
        assert term_bounded(context, 0.2, owner="tx1") is False
    assert caplog.messages == [
        "tx1: libzmq did not release its sockets within 0.2 s of closing them; "
        "leaving the context to terminate in the background"
    ]
    [worker] = [t for t in threading.enumerate() if t.name == "tx1-zmq-term"]
    assert worker.daemon
    held.close(linger=0)  # term() in the background can now return
    worker.join(5.0)
    assert not worker.is_alive() and context.closed
