"""Property tests of the tutorial's kettle codec and server, from the generated strategies.

Run them as ``python -m pytest docs/tutorial/test_kettle_codec.py`` with the generated
``kettle_api`` package on ``PYTHONPATH``.
"""

from __future__ import annotations

from hypothesis import given
from kettle_api import kettle
from kettle_api.kettle_strategies import datagrams, kettle_calls, time_value_values
from kettle_server import Kettle


@given(time_value_values())
def test_a_reading_reads_back_as_written(point: kettle.Point) -> None:
    decoded = kettle.decode_reading(kettle.encode_reading(point))
    assert repr(decoded) == repr(point)  # repr, because nan != nan


@given(kettle_calls())
def test_every_valid_request_is_known(call: tuple[str, bytes]) -> None:
    name, datagram = call
    assert kettle.identify_kettle_request(datagram) == name
    reply = kettle.KettleDispatcher(Kettle()).handle(datagram)
    assert kettle.match_kettle_reply(name, reply) != "unknown_command"


@given(datagrams(max_size=64))
def test_any_datagram_gets_a_reply_the_spec_allows(datagram: bytes) -> None:
    reply = kettle.KettleDispatcher(Kettle()).handle(datagram)
    request = kettle.identify_kettle_request(datagram)
    kettle.match_kettle_reply(request, reply)  # raises when the spec does not allow the reply
