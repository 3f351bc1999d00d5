"""CHIRP v1 ids and beacons: the md5 ids of group and host names, in either era's hashing.

The seed era (Constellation 7474c151, CDTP1 DataSender) hashes names as given;
constellationdaq 1.0.x (and the C++ implementation) hashes the lower-cased names.
The bytes of a beacon are packed by the generated codec ``daqwire.generated.chirp``.
"""

from __future__ import annotations

import hashlib
from typing import cast

from daqwire.generated.chirp import Beacon, MessageType, Service, encode_beacon

__all__ = ["beacon", "chirp_id"]


def chirp_id(name: str, *, lowercase: bool = True) -> bytes:
    """The 16-byte CHIRP id of a group or host name: md5 of its UTF-8 bytes.

    ``lowercase=True`` hashes ``name.lower()`` (constellationdaq 1.0.x); ``False`` hashes the
    name as given (seed era).
    """
    text = name.lower() if lowercase else name
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).digest()


def beacon(
    message_type: MessageType | int,
    service: Service | int,
    *,
    group: str,
    host: str,
    port: int = 0,
    lowercase: bool = True,
) -> bytes:
    """The 42-byte beacon datagram for ``host`` in ``group``, ids hashed as ``chirp_id`` does.

    Raises ``LocalProtocolError`` for an unknown type or service or a port outside 0-65535.
    """
    msg = Beacon(
        # the generated constructor converts a plain int and refuses a value not in the enum
        message_type=cast(MessageType, message_type),
        group_id=chirp_id(group, lowercase=lowercase),
        host_id=chirp_id(host, lowercase=lowercase),
        service=cast(Service, service),
        port=port,
    )
    return encode_beacon(msg)
