"""``daqwire cdtp``: send and receive in-process and as subprocesses, files, timeouts, help."""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from daqwire.cli import main
from daqwire.constellation.cli import parse_endpoint, parse_size
from daqwire.generated import cdtp2

WAIT_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def daqwire_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "daqwire.cli", *args]


def test_parse_size() -> None:
    assert parse_size("1000") == 1000
    assert parse_size("1KiB") == 1024
    assert parse_size("64kib") == 65536
    assert parse_size("1MiB") == 1 << 20
    assert parse_size("1.5MB") == 1_500_000
    assert parse_size("2 GiB") == 2 << 30
    assert parse_size("0") == 0
    for bad in ("", "1.5B", "12 parsecs", "-1", "1e3", "KiB"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_size(bad)


def test_parse_endpoint() -> None:
    assert parse_endpoint("tcp://10.0.0.1:5555") == "tcp://10.0.0.1:5555"
    assert parse_endpoint("localhost:5555") == "tcp://localhost:5555"
    assert parse_endpoint("ipc:///tmp/x") == "ipc:///tmp/x"
    for bad in ("localhost", ":5", "host:port"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_endpoint(bad)


def test_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["cdtp", "--help"], ["cdtp", "send", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
    out = capsys.readouterr().out
    assert "cdtp         Constellation data (CDTP1/CDTP2)" in out
    assert "daqwire cdtp send --port 23999 --size 64KiB --count 1000" in out
    assert "--rate-hz" in out and "1KiB, 64KiB, 1MiB" in out
    with pytest.raises(SystemExit) as info:
        main(["cdtp", "send", "--size", "12 parsecs"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["cdtp", "receive", "nowhere"])
    assert info.value.code == 2
    assert "expected tcp://HOST:PORT" in capsys.readouterr().err


def test_send_in_process_to_receiver_subprocess(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    out_dir = tmp_path / "runs"
    receiver = subprocess.Popen(
        daqwire_cmd(
            "cdtp", "receive", f"127.0.0.1:{port}", "--runs", "1", "--json", "--timeout-s",
            str(WAIT_S), "--out", str(out_dir), "--format", "npy",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        code = main(
            ["cdtp", "send", "--port", str(port), "--host", "127.0.0.1", "--size", "4KiB",
             "--count", "25", "--name", "CliTest.one", "--run-id", "r42", "--timeout-s",
             str(WAIT_S)]
        )  # fmt: skip
        stdout, stderr = receiver.communicate(timeout=WAIT_S)
    finally:
        receiver.kill()
    assert code == 0
    sent = capsys.readouterr().out
    assert "sent run 'r42' as CliTest.one: 25 records, 102400 bytes" in sent
    assert receiver.returncode == 0, stderr
    (line,) = stdout.splitlines()
    record = json.loads(line)
    assert record["sender"] == "CliTest.one" and record["run_id"] == "r42"
    assert (record["records"], record["bytes"], record["missed"]) == (25, 102400, 0)
    assert record["condition"] == "GOOD" and not record["eor_missing"]
    folder = Path(record["file"])
    assert folder.parent == out_dir and folder.name == "CliTest.one_run0001_r42"
    blocks = sorted(folder.glob("*.npy"))
    assert len(blocks) == 25
    first = np.load(blocks[0])
    assert first.dtype == np.uint8 and first.shape == (4096,)
    assert "CliTest.one run 1 started" in stderr and "received" in stderr


def test_receive_in_process_from_sender_subprocess(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h5py = pytest.importorskip("h5py")
    port = free_port()
    sender = subprocess.Popen(
        daqwire_cmd(
            "cdtp", "send", "--proto", "1", "--port", str(port), "--host", "127.0.0.1",
            "--size", "1000", "--count", "7", "--timeout-s", str(WAIT_S),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        code = main(
            ["cdtp", "receive", f"tcp://127.0.0.1:{port}", "--proto", "1", "--runs", "1",
             "--timeout-s", str(WAIT_S), "--out", str(tmp_path)]
        )  # fmt: skip
        stdout, stderr = sender.communicate(timeout=WAIT_S)
    finally:
        sender.kill()
    assert code == 0 and sender.returncode == 0, stderr
    assert "sent run 'run_0001' as DaqwireSender.cli: 7 records, 7000 bytes" in stdout
    out = capsys.readouterr().out
    match = re.match(
        r"DaqwireSender\.cli run 1 \(run_0001\): 7 records, 7000 bytes, missed 0, condition GOOD"
        r", [\d.]+ s, [\d.]+ MB/s -> (.*\.h5)$",
        out.strip(),
    )
    assert match, out
    with h5py.File(match.group(1), "r") as f:
        group = f["DaqwireSender.cli"]
        assert sorted(k for k in group if k.startswith("data_")) == [
            f"data_{i:09d}" for i in range(1, 8)
        ]
        assert group["data_000000007"]["block_00"].shape == (1000,)
        assert group["EOR"].attrs["condition"] == "GOOD"
        assert json.loads(group["BOR"].attrs["configuration"])["count"] == 7


def test_daqwire_script_send_and_receive() -> None:
    script = Path(sys.executable).with_name("daqwire")
    if not script.exists():
        pytest.skip("the daqwire console script is not installed next to this python")
    port = free_port()
    receiver = subprocess.Popen(
        [str(script), "cdtp", "receive", f"tcp://127.0.0.1:{port}", "--runs", "1",
         "--timeout-s", str(WAIT_S)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        sent = subprocess.run(
            [str(script), "cdtp", "send", "--port", str(port), "--host", "127.0.0.1",
             "--size", "1KiB", "--count", "20", "--rate-hz", "2000", "--batch-bytes", "0",
             "--timeout-s", str(WAIT_S)],
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )  # fmt: skip
        stdout, stderr = receiver.communicate(timeout=WAIT_S)
    finally:
        receiver.kill()
    assert sent.returncode == 0, sent.stderr
    assert receiver.returncode == 0, stderr
    assert stdout.startswith(
        "DaqwireSender.cli run 1 (run_0001): 20 records, 20480 bytes, missed 0, condition GOOD"
    )


def test_receive_times_out_without_sender(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["cdtp", "receive", f"127.0.0.1:{free_port()}", "--timeout-s", "0.3"])
    assert code == 1
    err = capsys.readouterr().err
    assert "nothing received for 0.3 s; stopping" in err
    assert "received 0 messages, 0 records, 0 bytes in 0 runs" in err


def test_send_without_receiver_times_out(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["cdtp", "send", "--host", "127.0.0.1", "--timeout-s", "0.3", "--count", "1"])
    assert code == 1
    assert "no DataReceiver took the BOR" in capsys.readouterr().err


def test_receive_bind_reports_missing_eor_and_gaps(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    ctx: zmq.Context[Any] = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    try:
        push.connect(f"tcp://127.0.0.1:{port}")  # a connecting PUSH queues until the bind
        name = "Lossy.sat"
        push.send_multipart(
            cdtp2.encode_bor_message(
                cdtp2.BorMessage(name, (cdtp2.DataRecord(0, {}, ()), cdtp2.DataRecord(1, {}, ())))
            )
        )
        push.send_multipart(
            cdtp2.encode_data_message(
                cdtp2.DataMessage(name, (cdtp2.DataRecord(3, {}, (b"xyz",)),))
            )
        )
        push.send_multipart([b"not cdtp"])
        code = main(
            ["cdtp", "receive", f"tcp://127.0.0.1:{port}", "--bind", "--timeout-s", "0.5",
             "--eor-timeout-s", "0.2", "--json"]
        )  # fmt: skip
    finally:
        push.close(linger=0)
        ctx.term()
    assert code == 1
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert record["sender"] == name and record["eor_missing"]
    assert (record["records"], record["missed"]) == (1, 2)
    assert record["condition"] == "INCOMPLETE|ABORTED"
    assert "rejected a message: " in captured.err and "Error decoding message" in captured.err
    assert "decode errors 1" in captured.err
