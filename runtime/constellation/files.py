"""Write received runs to disk: one HDF5 file per run, or one folder of ``.npy`` files per run.

HDF5 goes through h5py (``pip install 'daqwire[hdf5]'``): it is the HDF Group-maintained
standard binding, the one Constellation's own H5DataWriter satellite writes with, and it
reads numpy arrays without a conversion step. The layout follows H5DataWriter's naming so
existing readers find their way::

    <sender>_run0001[_<run_id>].h5
      /<sender>                 attrs: run_index, run_id, protocol, complete
      /<sender>/BOR             attrs: user_tags, configuration           (JSON text)
      /<sender>/data_000000001  attrs: tags (JSON text); datasets block_00, block_01, ...
      /<sender>/EOR             attrs: user_tags, run_metadata (JSON text), condition,
                                       condition_code, records, bytes, missed, eor_missing

The ``npy`` format needs numpy only::

    <sender>_run0001[_<run_id>]/
      bor.json                  {"sender", "run_index", "tags", "configuration"}
      data_000000001_00.npy     one file per block
      records.jsonl             one line per record: sequence_number, tags, files
      eor.json                  {"tags", "metadata", "summary"}

Blocks become arrays by their ``dtype``/``shape`` tags (:func:`~daqwire.constellation.arrays.
record_arrays`, uint8 without tags); a block whose tags do not fit is stored as raw uint8 with
an ``array_error`` note. Tag values JSON cannot hold are written as text (datetimes as ISO
8601, bytes as ``{"$bytes": hex}``). A repeated sequence number gets a ``_1``, ``_2`` suffix.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from daqwire import __version__
from daqwire.constellation.arrays import record_arrays
from daqwire.constellation.receiver import (
    DataReceived,
    Event,
    RunEnded,
    RunStarted,
    RunSummary,
    condition_name,
)
from daqwire.errors import RemoteProtocolError

__all__ = ["FORMATS", "RunFileWriter", "jsonable", "summary_record"]

log = logging.getLogger(__name__)

FORMATS = ("hdf5", "npy")
Format = Literal["hdf5", "npy"]


def jsonable(value: Any) -> Any:
    """``value`` with every part JSON can hold kept and the rest turned into text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": bytes(value).hex()}
    to_datetime = getattr(value, "to_datetime", None)  # msgpack.Timestamp
    if callable(to_datetime):
        return jsonable(to_datetime())
    return str(value)


def _json(value: Any) -> str:
    return json.dumps(jsonable(value), ensure_ascii=False, allow_nan=True)


def summary_record(summary: RunSummary) -> dict[str, Any]:
    """A run summary as a JSON-able dict (what ``daqwire cdtp receive --json`` prints)."""
    return {
        "sender": summary.sender,
        "protocol": summary.protocol,
        "run_index": summary.run_index,
        "run_id": summary.run_id,
        "records": summary.records,
        "bytes": summary.bytes,
        "missed": summary.missed,
        "out_of_order": summary.out_of_order,
        "first_sequence": summary.first_sequence,
        "last_sequence": summary.last_sequence,
        "sender_last_sequence": summary.sender_last_sequence,
        "condition": condition_name(summary.condition),
        "condition_code": int(summary.condition),
        "eor_missing": summary.eor_missing,
        "duration_s": round(summary.duration_s, 6),
        "bor_tags": jsonable(summary.bor_tags),
        "eor_tags": jsonable(summary.eor_tags),
    }


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(text: str) -> str:
    cleaned = _UNSAFE.sub("_", text).strip("._")
    return cleaned[:100] or "sender"


def _block_arrays(event: DataReceived) -> tuple[list[np.ndarray[Any, Any]], str | None]:
    try:
        return list(record_arrays(event.blocks, event.tags)), None
    except RemoteProtocolError as exc:
        log.warning("%s record %d: %s; storing raw bytes", event.sender, event.sequence_number, exc)
        return [np.frombuffer(b, dtype=np.uint8) for b in event.blocks], str(exc)


class _HasMaxSeq(Protocol):
    _max_seq: int | None


def _record_stem(run: _HasMaxSeq, seq: int, taken: Callable[[str], bool]) -> str:
    """``data_<seq>``; a sequence number at or below the highest one so far may be taken."""
    stem = f"data_{seq:09d}"
    if run._max_seq is None or seq > run._max_seq:
        run._max_seq = seq
        return stem
    name, k = stem, 0
    while taken(name):
        k += 1
        name = f"{stem}_{k}"
    return name


class _RunFile(Protocol):
    path: Path

    def data(self, event: DataReceived) -> None: ...
    def end(self, event: RunEnded | None) -> None: ...


class _Hdf5Run:
    def __init__(self, path: Path, started: RunStarted, protocol: int) -> None:
        try:
            import h5py
        except ImportError:  # pragma: no cover - h5py is in the test extra
            raise ImportError(
                "writing HDF5 needs h5py: pip install 'daqwire[hdf5]' (or use the npy format)"
            ) from None
        self.path = path
        self._file = h5py.File(path, "w")
        self._file.attrs["daqwire_version"] = __version__
        self._file.attrs["created_utc"] = dt.datetime.now(dt.UTC).isoformat()
        self._group = self._file.create_group(started.sender)
        self._group.attrs["run_index"] = started.run_index
        run_id = started.tags.get("run_id")
        self._group.attrs["run_id"] = run_id if isinstance(run_id, str) else ""
        self._group.attrs["protocol"] = protocol
        self._group.attrs["complete"] = False
        bor = self._group.create_group("BOR")
        bor.attrs["user_tags"] = _json(started.tags)
        bor.attrs["configuration"] = _json(started.configuration)
        self._max_seq: int | None = None

    def _taken(self, name: str) -> bool:
        return name in self._group

    def data(self, event: DataReceived) -> None:
        name = _record_stem(self, event.sequence_number, self._taken)
        grp = self._group.create_group(name)
        grp.attrs["tags"] = _json(event.tags)
        arrays, error = _block_arrays(event)
        if error is not None:
            grp.attrs["array_error"] = error
        for i, arr in enumerate(arrays):
            try:
                grp.create_dataset(f"block_{i:02d}", data=arr)
            except (TypeError, ValueError) as exc:  # a dtype HDF5 cannot store (datetime64)
                grp.create_dataset(f"block_{i:02d}", data=arr.reshape(-1).view(np.uint8))
                grp.attrs["array_error"] = f"stored as raw bytes: {exc}"

    def end(self, event: RunEnded | None) -> None:
        try:
            if event is not None:
                s = event.summary
                eor = self._group.create_group("EOR")
                eor.attrs["user_tags"] = _json(event.tags)
                eor.attrs["run_metadata"] = _json(event.metadata)
                eor.attrs["condition"] = condition_name(s.condition)
                eor.attrs["condition_code"] = int(s.condition)
                eor.attrs["records"] = s.records
                eor.attrs["bytes"] = s.bytes
                eor.attrs["missed"] = s.missed
                eor.attrs["eor_missing"] = s.eor_missing
                self._group.attrs["complete"] = True
                if s.run_id:
                    self._group.attrs["run_id"] = s.run_id
        finally:
            self._file.close()


class _NpyRun:
    def __init__(self, path: Path, started: RunStarted, protocol: int) -> None:
        self.path = path
        path.mkdir(parents=True)
        bor = {
            "sender": started.sender,
            "run_index": started.run_index,
            "protocol": protocol,
            "tags": started.tags,
            "configuration": started.configuration,
        }
        (path / "bor.json").write_text(_json(bor) + "\n", encoding="utf-8")
        self._records = (path / "records.jsonl").open("w", encoding="utf-8")
        self._max_seq: int | None = None

    def _taken(self, stem: str) -> bool:
        return (self.path / f"{stem}_00.npy").exists()

    def data(self, event: DataReceived) -> None:
        stem = _record_stem(self, event.sequence_number, self._taken)
        arrays, error = _block_arrays(event)
        files = []
        for i, arr in enumerate(arrays):
            name = f"{stem}_{i:02d}.npy"
            np.save(self.path / name, arr, allow_pickle=False)
            files.append(name)
        line: dict[str, Any] = {
            "sequence_number": event.sequence_number,
            "tags": event.tags,
            "files": files,
        }
        if error is not None:
            line["array_error"] = error
        self._records.write(_json(line) + "\n")

    def end(self, event: RunEnded | None) -> None:
        try:
            if event is not None:
                eor = {
                    "tags": event.tags,
                    "metadata": event.metadata,
                    "summary": summary_record(event.summary),
                }
                (self.path / "eor.json").write_text(_json(eor) + "\n", encoding="utf-8")
        finally:
            self._records.close()


class RunFileWriter:
    """Feed it receiver events; it writes one file (HDF5) or folder (npy) per run.

    Files are opened at BOR and closed at the run's end; :meth:`close` closes runs still
    open (their ``complete`` attribute stays False, no ``eor.json``). Existing files are
    never overwritten: a ``-2``, ``-3`` suffix is added instead.
    """

    def __init__(self, directory: str | Path, *, format: Format = "hdf5", protocol: int = 2):
        if format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
        self.directory = Path(directory)
        self.format: Format = format
        self.protocol = protocol
        self._open: dict[str, _RunFile] = {}
        self._paths: list[Path] = []
        if format == "hdf5":
            try:
                import h5py  # noqa: F401
            except ImportError:
                raise ImportError(
                    "writing HDF5 needs h5py: pip install 'daqwire[hdf5]' (or use --format npy)"
                ) from None

    @property
    def paths(self) -> tuple[Path, ...]:
        """Files (hdf5) or folders (npy) of the runs that ended, in order."""
        return tuple(self._paths)

    def _path_for(self, started: RunStarted) -> Path:
        stem = f"{_safe(started.sender)}_run{started.run_index:04d}"
        run_id = started.tags.get("run_id")
        if isinstance(run_id, str) and run_id:
            stem += f"_{_safe(run_id)}"
        suffix = ".h5" if self.format == "hdf5" else ""
        path = self.directory / f"{stem}{suffix}"
        n = 2
        while path.exists():
            path = self.directory / f"{stem}-{n}{suffix}"
            n += 1
        return path

    def handle(self, event: Event) -> Path | None:
        """Write what ``event`` carries; returns the run's path when the run ended."""
        if isinstance(event, RunStarted):
            stale = self._open.pop(event.sender, None)
            if stale is not None:
                stale.end(None)
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self._path_for(event)
            run: _RunFile = (
                _Hdf5Run(path, event, self.protocol)
                if self.format == "hdf5"
                else _NpyRun(path, event, self.protocol)
            )
            self._open[event.sender] = run
            log.info("writing run %d of %s to %s", event.run_index, event.sender, path)
        elif isinstance(event, DataReceived):
            current = self._open.get(event.sender)
            if current is not None:
                current.data(event)
        elif isinstance(event, RunEnded):
            current = self._open.pop(event.sender, None)
            if current is not None:
                current.end(event)
                self._paths.append(current.path)
                return current.path
        return None

    def close(self) -> None:
        """Close the files of runs that did not end. Idempotent."""
        while self._open:
            _, run = self._open.popitem()
            run.end(None)
            log.warning("closed %s without an end of run", run.path)

    def __enter__(self) -> RunFileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
