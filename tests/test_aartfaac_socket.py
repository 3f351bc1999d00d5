"""The incremental window decoder fed from a real loopback TCP connection."""

from __future__ import annotations

import socket
import threading
from typing import Any

from daqwire.generated.aartfaac import STREAM_END, WindowDecoder, decode_window_from


def _serve_once(payload: bytes, chunk: int) -> tuple[socket.socket, threading.Thread]:
    listener = socket.create_server(("127.0.0.1", 0))

    def send() -> None:
        conn, _ = listener.accept()
        with conn:
            for start in range(0, len(payload), chunk):
                conn.sendall(payload[start : start + chunk])
        listener.close()

    thread = threading.Thread(target=send, name="aartfaac-test-sender")
    thread.start()
    return listener, thread


def test_windows_from_a_tcp_stream(load_vector: Any) -> None:
    data, meta = load_vector("valid", "seq3_w16x16_casa4d")
    expected = []
    offset = 0
    while offset < len(data):
        window, offset = decode_window_from(data, offset)
        expected.append(window)
    listener, sender = _serve_once(data, chunk=1000)
    decoder = WindowDecoder()
    received = []
    with socket.create_connection(listener.getsockname(), timeout=10) as conn:
        while True:
            chunk = conn.recv(4096)
            decoder.feed(chunk)  # b"" at EOF closes the decoder
            received.extend(decoder)
            if not chunk:
                break
    sender.join(timeout=10)
    assert not sender.is_alive()
    assert decoder.next_event() is STREAM_END
    assert received == expected
    assert [w.fits.split("DATE-OBS= '")[1][:26] for w in received] == [
        w["date_obs"] for w in meta["windows"]
    ]
    assert decoder.stream_offset == len(data)
