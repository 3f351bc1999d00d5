"""daqwire: spec-driven wire protocols for instruments, telescopes and data acquisition."""

from daqwire.errors import (
    DaqwireError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    SpecError,
)

__all__ = [
    "DaqwireError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "SpecError",
    "__version__",
]

__version__ = "0.1.0"
