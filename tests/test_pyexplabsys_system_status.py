"""``system_status()``: the reference's keys and order, real host facts, never an exception."""

from __future__ import annotations

import importlib
import json
import os
import platform
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from daqwire.pyexplabsys.system_status import MAC_ADDRESS_UNKNOWN, system_status
from tests.conftest import vectors_root

# the module itself, even if the package re-exports the function under the same name
status_module = importlib.import_module("daqwire.pyexplabsys.system_status")

KEYS = [
    "filesystem_usage",
    "last_apt_cache_change_unixtime",
    "last_git_fetch_unixtime",
    "load_average",
    "mac_address",
    "machine_name",
    "max_python_mem_usage_bytes",
    "number_of_python_threads",
    "os_version",
    "purpose",
    "python_version",
    "rpi_model",
    "rpi_temperature",
    "sd_card_serial",
    "uptime",
]
NESTED = {
    "filesystem_usage": ["total_bytes", "free_bytes"],
    "last_git_fetch_unixtime": ["PyExpLabSys", "machines"],
    "load_average": ["1m", "5m", "15m"],
    "purpose": ["id", "purpose", "long_description"],
    "uptime": ["uptime_sec", "idle_sec"],
}


def _shape(value: Any) -> Any:
    """Keys in order, recursively (leaves dropped)."""
    if isinstance(value, dict):
        return [(key, _shape(item)) for key, item in value.items()]
    return None


def _recorded_system_status() -> dict[str, Any]:
    """The ``system_status`` of the first recorded ``status`` reply of the reference."""
    entries = json.loads((vectors_root() / "pyexplabsys" / "date_pull.json").read_text("utf-8"))
    for entry in entries:
        if entry["request"] == "status" and entry["reply"]:
            reply: dict[str, Any] = json.loads(entry["reply"])
            return reply["system_status"]  # type: ignore[no-any-return]
    raise AssertionError("no recorded status reply in date_pull.json")


def test_keys_and_order() -> None:
    status = system_status()
    assert list(status) == KEYS
    for key, inner in NESTED.items():
        assert list(status[key]) == inner, key


def test_same_shape_as_the_reference_recording() -> None:
    assert _shape(system_status()) == _shape(_recorded_system_status())


def test_types() -> None:
    status = system_status()
    fs = status["filesystem_usage"]
    assert all(isinstance(fs[k], int) for k in ("total_bytes", "free_bytes"))
    assert 0 <= fs["free_bytes"] <= fs["total_bytes"]
    assert status["last_apt_cache_change_unixtime"] is None or isinstance(
        status["last_apt_cache_change_unixtime"], float
    )
    assert status["last_git_fetch_unixtime"] == {"PyExpLabSys": None, "machines": None}
    assert all(isinstance(v, float) and v >= 0 for v in status["load_average"].values())
    assert isinstance(status["mac_address"], str) and status["mac_address"]
    assert isinstance(status["machine_name"], str)
    assert isinstance(status["max_python_mem_usage_bytes"], int)
    assert isinstance(status["number_of_python_threads"], int)
    assert status["number_of_python_threads"] >= 1
    assert status["os_version"] is None or isinstance(status["os_version"], str)
    assert status["purpose"] == {"id": None, "purpose": None, "long_description": None}
    assert isinstance(status["python_version"], str)
    assert status["rpi_model"] is None or isinstance(status["rpi_model"], str)
    assert status["rpi_temperature"] is None or isinstance(status["rpi_temperature"], float)
    assert status["sd_card_serial"] is None or isinstance(status["sd_card_serial"], str)
    assert all(isinstance(v, float) and v >= 0 for v in status["uptime"].values())
    json.dumps(status, allow_nan=False)  # standard JSON, ready for the status reply


def test_values_match_independent_reads() -> None:
    status = system_status()
    assert status["python_version"] == platform.python_version()
    assert status["machine_name"] == socket.gethostname()
    vfs = os.statvfs("/")
    assert status["filesystem_usage"]["total_bytes"] == vfs.f_blocks * vfs.f_frsize
    try:
        expected_version = platform.freedesktop_os_release().get("VERSION")
    except OSError:
        expected_version = None
    assert status["os_version"] == expected_version
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    assert status["uptime"]["uptime_sec"] == pytest.approx(uptime, abs=5.0)
    assert status["uptime"]["uptime_sec"] <= uptime  # ours was read first
    assert status["load_average"]["15m"] == pytest.approx(os.getloadavg()[2], abs=0.5)
    rss_kib = next(
        int(line.split()[1])
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    assert status["max_python_mem_usage_bytes"] == pytest.approx(rss_kib * 1024, rel=0.2)
    assert status["rpi_model"] is None or Path("/proc/device-tree/model").exists()
    assert status["sd_card_serial"] is None or Path("/sys/block/mmcblk0/device/serial").exists()


def test_thread_count_is_live() -> None:
    before = system_status()["number_of_python_threads"]
    assert before == threading.active_count()
    release = threading.Event()
    worker = threading.Thread(target=release.wait, name="status-test-thread")
    worker.start()
    try:
        assert system_status()["number_of_python_threads"] == before + 1
    finally:
        release.set()
        worker.join()


def test_mac_address_of_the_default_route(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    route = tmp_path / "route"
    route.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "wlan0\t00000000\t010200C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
        "eth1\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
        "down0\t00000000\t010200C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n"
    )
    net = tmp_path / "net"
    for iface, mac in (("eth0", "b8:27:eb:12:34:56"), ("wlan0", "b8:27:eb:ff:ff:ff")):
        (net / iface).mkdir(parents=True)
        (net / iface / "address").write_text(mac + "\n")
    monkeypatch.setattr(status_module, "ROUTE_TABLE", str(route))
    monkeypatch.setattr(status_module, "NET_CLASS", str(net))
    assert system_status()["mac_address"] == "b8:27:eb:12:34:56"  # lowest metric, up

    (net / "eth0" / "address").write_text("00:00:00:00:00:00\n")
    assert system_status()["mac_address"] == MAC_ADDRESS_UNKNOWN
    (net / "eth0" / "address").unlink()
    assert system_status()["mac_address"] == MAC_ADDRESS_UNKNOWN
    route.write_text(route.read_text().splitlines()[0] + "\n")  # no default route
    assert system_status()["mac_address"] == MAC_ADDRESS_UNKNOWN
    route.unlink()
    assert system_status()["mac_address"] == MAC_ADDRESS_UNKNOWN


def test_mac_address_on_this_host_comes_from_sysfs() -> None:
    mac = system_status()["mac_address"]
    if mac != MAC_ADDRESS_UNKNOWN:
        assert mac in {p.read_text().strip() for p in Path("/sys/class/net").glob("*/address")}


def test_raspberry_pi_and_apt_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\x00")
    temp = tmp_path / "temp"
    temp.write_text("48312\n")
    serial = tmp_path / "serial"
    serial.write_text("0x5c1a2b3c\n")
    stamp = tmp_path / "update-success-stamp"
    stamp.write_text("")
    os.utime(stamp, (1_700_000_000.5, 1_700_000_000.5))
    monkeypatch.setattr(status_module, "RPI_MODEL", str(model))
    monkeypatch.setattr(status_module, "THERMAL_ZONE", str(temp))
    monkeypatch.setattr(status_module, "SD_CARD_SERIAL", str(serial))
    monkeypatch.setattr(status_module, "APT_STAMPS", (str(tmp_path / "missing"), str(stamp)))
    status = system_status()
    assert status["rpi_model"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert status["rpi_temperature"] == pytest.approx(48.312)
    assert status["sd_card_serial"] == "0x5c1a2b3c"
    assert status["last_apt_cache_change_unixtime"] == 1_700_000_000.5

    temp.write_text("garbage\n")
    serial.write_text("")
    stamp.unlink()
    status = system_status()
    assert status["rpi_temperature"] is None
    assert status["sd_card_serial"] is None
    assert status["last_apt_cache_change_unixtime"] is None


def test_os_version_from_os_release(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text('NAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\n')
    monkeypatch.setattr(status_module, "OS_RELEASE", (str(tmp_path / "none"), str(release)))
    assert system_status()["os_version"] == "12 (bookworm)"
    release.write_text("NAME=Arch\n")  # rolling releases have no VERSION
    assert system_status()["os_version"] is None


def test_never_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(*args: object) -> Any:
        raise OSError("probe failed")

    monkeypatch.setattr(status_module.shutil, "disk_usage", broken)
    monkeypatch.setattr(status_module.os, "getloadavg", broken)
    monkeypatch.setattr(status_module.socket, "gethostname", broken)
    monkeypatch.setattr(status_module.resource, "getrusage", broken)
    monkeypatch.setattr(status_module.threading, "active_count", broken)
    monkeypatch.setattr(status_module.platform, "python_version", broken)
    for name in ("ROUTE_TABLE", "RPI_MODEL", "THERMAL_ZONE", "SD_CARD_SERIAL", "UPTIME"):
        monkeypatch.setattr(status_module, name, str(tmp_path / "missing"))
    monkeypatch.setattr(status_module, "OS_RELEASE", (str(tmp_path / "missing"),))
    monkeypatch.setattr(status_module, "APT_STAMPS", (str(tmp_path / "missing"),))
    status = system_status()
    assert list(status) == KEYS
    for key, inner in NESTED.items():
        assert list(status[key]) == inner, key
    assert status["filesystem_usage"] == {"total_bytes": None, "free_bytes": None}
    assert status["load_average"] == {"1m": None, "5m": None, "15m": None}
    assert status["uptime"] == {"uptime_sec": None, "idle_sec": None}
    assert status["mac_address"] == MAC_ADDRESS_UNKNOWN
    for key in (
        "last_apt_cache_change_unixtime",
        "machine_name",
        "max_python_mem_usage_bytes",
        "number_of_python_threads",
        "os_version",
        "python_version",
        "rpi_model",
        "rpi_temperature",
        "sd_card_serial",
    ):
        assert status[key] is None, key
