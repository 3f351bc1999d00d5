"""Constellation data path: CDTP1 and CDTP2 senders, satellites and receivers.

The seed-era drop-in names (``DataSender``, ``PushThread``, ``RandomDataSender``,
``DataSenderArgumentParser``) sit beside daqwire's own ``CdtpTransmitter`` and
``DataReceiver``. Every byte is packed and parsed by ``daqwire.generated.cdtp1``/``cdtp2``.
"""

from daqwire.constellation.arrays import array_block, record_array, record_arrays
from daqwire.constellation.chirp import beacon, chirp_id
from daqwire.constellation.datasender import (
    CDTPMessageIdentifier,
    DataQueue,
    DataSender,
    DataSenderArgumentParser,
    PushThread,
    PushTimeouts,
    RandomDataSender,
)
from daqwire.constellation.files import RunFileWriter
from daqwire.constellation.receiver import (
    CdtpStateError,
    DataReceived,
    DataReceiver,
    Event,
    MessageRejected,
    ReceiverStats,
    RunEnded,
    RunStarted,
    RunSummary,
)
from daqwire.constellation.satellite import Satellite
from daqwire.constellation.states import (
    SatelliteState,
    Transition,
    TransitionFailed,
    TransitionNotAllowed,
)
from daqwire.constellation.transmitter import CdtpTransmitter, SendTimeout, TransmitterError
from daqwire.generated.cdtp2 import RunCondition

__all__ = [
    "CDTPMessageIdentifier",
    "CdtpStateError",
    "CdtpTransmitter",
    "DataQueue",
    "DataReceived",
    "DataReceiver",
    "DataSender",
    "DataSenderArgumentParser",
    "Event",
    "MessageRejected",
    "PushThread",
    "PushTimeouts",
    "RandomDataSender",
    "ReceiverStats",
    "RunCondition",
    "RunEnded",
    "RunFileWriter",
    "RunStarted",
    "RunSummary",
    "Satellite",
    "SatelliteState",
    "SendTimeout",
    "Transition",
    "TransitionFailed",
    "TransitionNotAllowed",
    "TransmitterError",
    "array_block",
    "beacon",
    "chirp_id",
    "record_array",
    "record_arrays",
]
