"""Host facts for the ``system_status`` part of the PyExpLabSys ``status`` reply (§6).

Same keys and order as the reference; values come from cheap, non-blocking reads of /proc,
/sys and /etc (no subprocess, no DNS). A fact that cannot be read is ``None``.
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["MAC_ADDRESS_UNKNOWN", "system_status"]

#: what the reference reports when it cannot find the MAC address
MAC_ADDRESS_UNKNOWN = "MAC ADDRESS UNKNOWN"

APT_STAMPS = ("/var/cache/apt/pkgcache.bin", "/var/lib/apt/periodic/update-success-stamp")
ROUTE_TABLE = "/proc/net/route"
NET_CLASS = "/sys/class/net"
OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
RPI_MODEL = "/proc/device-tree/model"
THERMAL_ZONE = "/sys/class/thermal/thermal_zone0/temp"
SD_CARD_SERIAL = "/sys/block/mmcblk0/device/serial"
UPTIME = "/proc/uptime"

T = TypeVar("T")


def _safe(probe: Callable[..., T], *args: Any) -> T | None:
    """``probe(*args)``, or ``None`` if it raises anything."""
    try:
        return probe(*args)
    except Exception:
        return None


def _read_text(path: str, limit: int = 4096) -> str:
    """At most ``limit`` bytes of a small file as text, NUL and surrounding space stripped."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO cannot block us
    try:
        chunks = []
        size = 0
        while size < limit:  # /proc files may come a page at a time
            chunk = os.read(fd, limit - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace").replace("\0", "").strip()


def _filesystem_usage() -> dict[str, int | None]:
    usage = _safe(shutil.disk_usage, "/")
    if usage is None:
        return {"total_bytes": None, "free_bytes": None}
    return {"total_bytes": usage.total, "free_bytes": usage.free}


def _last_apt_cache_change() -> float | None:
    for path in APT_STAMPS:
        stat = _safe(os.stat, path)
        if stat is not None:
            return stat.st_mtime
    return None


def _load_average() -> dict[str, float | None]:
    load = _safe(os.getloadavg)
    if load is None:
        return {"1m": None, "5m": None, "15m": None}
    # two decimals, as /proc/loadavg prints them (glibc derives these from fixed-point sysinfo)
    return {"1m": round(load[0], 2), "5m": round(load[1], 2), "15m": round(load[2], 2)}


def _default_route_interface() -> str | None:
    """The interface of the IPv4 default route with the lowest metric, from /proc/net/route."""
    best: tuple[int, str] | None = None
    for line in _read_text(ROUTE_TABLE, 65536).splitlines()[1:]:  # after the header
        fields = line.split()
        if len(fields) < 8 or fields[1] != "00000000" or fields[7] != "00000000":
            continue
        if not int(fields[3], 16) & 0x1:  # RTF_UP
            continue
        metric = int(fields[6])
        if best is None or metric < best[0]:
            best = (metric, fields[0])
    return None if best is None else best[1]


def _mac_address() -> str:
    iface = _safe(_default_route_interface)
    if not iface or "/" in iface or iface.startswith("."):
        return MAC_ADDRESS_UNKNOWN
    address = _safe(_read_text, f"{NET_CLASS}/{iface}/address", 64)
    if not address or address.strip("0:") == "":
        return MAC_ADDRESS_UNKNOWN
    return address


def _max_python_mem_usage() -> int:
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # KiB on Linux, bytes on macOS


def _os_version() -> str | None:
    for path in OS_RELEASE:
        text = _safe(_read_text, path, 16384)
        if text is None:
            continue
        for line in text.splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key == "VERSION":
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                    value = value[1:-1]
                return value or None
        return None
    return None


def _rpi_temperature() -> float:
    return int(_read_text(THERMAL_ZONE, 64)) / 1000.0


def _non_empty(path: str) -> str | None:
    return _read_text(path, 256) or None


def _uptime() -> dict[str, float | None]:
    values = _safe(lambda: [float(v) for v in _read_text(UPTIME, 256).split()[:2]])
    if values is None or len(values) != 2:
        return {"uptime_sec": None, "idle_sec": None}
    return {"uptime_sec": values[0], "idle_sec": values[1]}


def system_status() -> dict[str, Any]:
    """The reference's ``system_status`` object for this host, keys in the same order."""
    return {
        "filesystem_usage": _filesystem_usage(),
        "last_apt_cache_change_unixtime": _last_apt_cache_change(),
        "last_git_fetch_unixtime": {"PyExpLabSys": None, "machines": None},
        "load_average": _load_average(),
        "mac_address": _safe(_mac_address) or MAC_ADDRESS_UNKNOWN,
        "machine_name": _safe(socket.gethostname),
        "max_python_mem_usage_bytes": _safe(_max_python_mem_usage),
        "number_of_python_threads": _safe(threading.active_count),
        "os_version": _safe(_os_version),
        "purpose": {"id": None, "purpose": None, "long_description": None},
        "python_version": _safe(platform.python_version),
        "rpi_model": _safe(_non_empty, RPI_MODEL),
        "rpi_temperature": _safe(_rpi_temperature),
        "sd_card_serial": _safe(_non_empty, SD_CARD_SERIAL),
        "uptime": _uptime(),
    }
