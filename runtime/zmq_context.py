"""Terminating a ZeroMQ context without the risk of waiting forever."""

from __future__ import annotations

import logging
import threading
from typing import Any

import zmq

logger = logging.getLogger(__name__)

#: how long a close waits for libzmq beyond its linger before it gives up on the context
TERM_GRACE_S = 5.0


def term_bounded(context: zmq.Context[Any], timeout_s: float, *, owner: str) -> bool:
    """``context.term()``, waited for at most ``timeout_s``; True if it returned.

    ``term()`` returns once libzmq delivered or dropped every frame of the closed sockets, but
    libzmq 4.3 can wait forever for a socket closed while its peer went away with data in
    flight. The term thread is then left to finish on its own and an ERROR names ``owner``.
    """
    worker = threading.Thread(target=context.term, name=f"{owner}-zmq-term", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if not worker.is_alive():
        return True
    logger.error(
        "%s: libzmq did not release its sockets within %.3g s of closing them; "
        "leaving the context to terminate in the background",
        owner,
        timeout_s,
    )
    return False
