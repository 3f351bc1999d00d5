"""Drop-in replacements for Constellation's seed-era ``core.datasender`` module.

``DataSender`` is a :class:`~daqwire.constellation.satellite.Satellite` that ships run data
over CDTP through a :class:`~daqwire.constellation.transmitter.CdtpTransmitter`. It speaks
CDTP1 by default (the seed-era wire format; ``protocol=2`` switches to CDTP2, which
constellationdaq 1.0.x receivers expect). Its data port is bound at construction.

Life cycle: ``start`` sends the BOR and waits up to the BOR timeout for a receiver to take it
(else ERROR); ``do_run`` queues data with ``self.data_queue.put((payload, meta))``; ``stop``
waits for ``do_run``, calls ``do_stopping`` and sends the EOR after everything queued
(else ERROR); ``interrupt`` and ``failure`` end an open run with an EOR (CDTP2 condition
INTERRUPTED or ABORTED|TAINTED), then give up on what a receiver does not take in time.

Where the seed text and the seed-era code differ, this module follows the seed text:

* ``BOR``/``EOR`` properties set the run *payloads* (BOR default: the configuration dict;
  EOR default: ``{}`` for CDTP1, the run metadata for CDTP2, into which an EOR dict is
  merged). The header meta (CDTP1) or record-0 tags (CDTP2) are ``bor_tags``/``eor_tags``.
* ``do_run`` watches ``self.stop_running`` (``self._state_thread_evt`` is the same event).
* The configuration keys ``_bor_timeout``, ``_data_timeout``, ``_eor_timeout`` (also read
  without the underscore) are milliseconds, ``-1`` = wait forever, default 10000; the
  underscore keys are written back into the configuration, so they appear in the BOR payload.
* An interrupt from ORBIT (no run open) sends no EOR (the seed-era code sent one without BOR).

Network control (CSCP, CHIRP, CHP, CMDP) is not implemented yet; drive satellites through the
Python methods.
"""

from __future__ import annotations

import argparse
import logging
import math
import queue
import random
import socket as socket_module
import threading
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import zmq

from daqwire.constellation.satellite import Satellite
from daqwire.constellation.states import SatelliteState
from daqwire.constellation.transmitter import CdtpTransmitter, Payload, SendTimeout
from daqwire.generated import cdtp1, cdtp2

__all__ = [
    "CDTPMessageIdentifier",
    "DataQueue",
    "DataSender",
    "DataSenderArgumentParser",
    "PushThread",
    "PushTimeouts",
    "RandomDataSender",
    "timeout_ms_to_s",
]

logger = logging.getLogger(__name__)

#: the seed's name for the CDTP1 message types (``DAT``, ``BOR``, ``EOR``)
CDTPMessageIdentifier = cdtp1.MessageType

#: default BOR/DATA/EOR timeout in milliseconds
DEFAULT_TIMEOUT_MS = 10000


def timeout_ms_to_s(value: Any) -> float | None:
    """A configuration timeout in ms (``-1`` or any negative = forever) as seconds or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"a timeout must be a number of milliseconds, not {value!r}")
    return None if value < 0 else float(value) / 1000.0


class DataQueue:
    """``data_queue`` of a DataSender: ``put((payload, meta))`` hands a record to the transmitter.

    Unlike the seed's unbounded ``queue.Queue`` it is bounded (``max_queue``): ``put`` waits
    up to ``timeout`` seconds (default: the configured data timeout) for room, then raises
    SendTimeout and the caller keeps the data. Bad payloads raise LocalProtocolError.
    """

    def __init__(self, sender: DataSender) -> None:
        self._sender = sender

    @property
    def maxsize(self) -> int:
        """How many records fit before ``put`` waits."""
        return self._sender.transmitter.max_queue

    def put(
        self,
        item: tuple[Payload, Mapping[str, Any] | None],
        block: bool = True,
        timeout: float | None = None,
    ) -> None:
        """Queue ``(payload, meta)``; ``timeout`` None = the data timeout, ``block=False`` = 0."""
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError("data_queue.put takes a (payload, meta) tuple")
        payload, meta = item
        wait_s: float | None = 0.0 if not block else timeout
        if block and timeout is None:
            wait_s = self._sender.data_timeout_s
        self._sender.transmitter.send_data(payload, meta, timeout_s=wait_s)

    def put_nowait(self, item: tuple[Payload, Mapping[str, Any] | None]) -> None:
        """``put(item, block=False)``."""
        self.put(item, block=False)

    def qsize(self) -> int:
        """Records accepted but not yet sent."""
        return self._sender.transmitter.queue_depth

    def empty(self) -> bool:
        """True if nothing waits to be sent."""
        return self.qsize() == 0

    def full(self) -> bool:
        """True if ``put`` would wait."""
        return self.qsize() >= self.maxsize


class DataSender(Satellite):
    """A satellite that sends run data over CDTP (CDTP1 by default, ``protocol=2`` for CDTP2).

    Takes the seed Satellite arguments (``name, group, cmd_port, hb_port, mon_port,
    interface``) plus ``data_port`` (0 = random; the bound port is ``self.data_port``).
    Keyword arguments with units tune the transmitter (see CdtpTransmitter).
    """

    def __init__(
        self,
        *args: Any,
        data_port: int = 0,
        protocol: int = 1,
        data_host: str = "*",
        context: zmq.Context[Any] | None = None,
        max_queue: int = 32768,
        payload_threshold_bytes: int = 128 * 1024,
        flush_interval_s: float = 0.5,
        sndhwm: int | None = None,
        **kwargs: Any,
    ) -> None:
        self._bor_payload: Any = None
        self._eor_payload: Any = None
        #: header meta (CDTP1) / record-0 tags (CDTP2) of the next BOR and EOR
        self.bor_tags: dict[str, Any] = {}
        self.eor_tags: dict[str, Any] = {}
        self.bor_timeout_s: float | None = DEFAULT_TIMEOUT_MS / 1000.0
        self.data_timeout_s: float | None = DEFAULT_TIMEOUT_MS / 1000.0
        self.eor_timeout_s: float | None = DEFAULT_TIMEOUT_MS / 1000.0
        self._eor_failed = False
        super().__init__(*args, **kwargs)
        self.transmitter = CdtpTransmitter(
            self.canonical_name,
            protocol=protocol,
            port=data_port,
            host=data_host,
            context=context,
            max_queue=max_queue,
            payload_threshold_bytes=payload_threshold_bytes,
            flush_interval_s=flush_interval_s,
            bor_timeout_s=self.bor_timeout_s,
            data_timeout_s=self.data_timeout_s,
            eor_timeout_s=self.eor_timeout_s,
            sndhwm=sndhwm,
        )
        self.data_port = self.transmitter.port
        self.data_queue = DataQueue(self)
        self.log.info("%s publishing CDTP%d data on port %d", self.name, protocol, self.data_port)

    @property
    def protocol(self) -> int:
        """1 (CDTP1) or 2 (CDTP2)."""
        return self.transmitter.protocol

    @property
    def BOR(self) -> Any:
        """Payload of the next BOR; None = the configuration dict (CDTP2: must be a dict)."""
        return self._bor_payload

    @BOR.setter
    def BOR(self, payload: Any) -> None:
        self._bor_payload = payload

    @property
    def EOR(self) -> Any:
        """Payload of the next EOR; None = ``{}`` (CDTP1) / the run metadata (CDTP2)."""
        return self._eor_payload

    @EOR.setter
    def EOR(self, payload: Any) -> None:
        self._eor_payload = payload

    # ------------------------------------------------------------------ framework hooks

    def _pre_initializing_hook(self, config: dict[str, Any]) -> None:
        for key in ("bor", "data", "eor"):
            seed_key = f"_{key}_timeout"
            if seed_key in config or key + "_timeout" not in config:
                value = config.setdefault(seed_key, DEFAULT_TIMEOUT_MS)
            else:
                value = config[key + "_timeout"]
            setattr(self, f"{key}_timeout_s", timeout_ms_to_s(value))
        tx = self.transmitter
        tx.bor_timeout_s = self.bor_timeout_s
        tx.data_timeout_s = self.data_timeout_s
        tx.eor_timeout_s = self.eor_timeout_s
        self._give_up_run("re-initialized with a run still open")

    def _pre_run_hook(self, run_identifier: str) -> None:
        payload = self.config if self._bor_payload is None else self._bor_payload
        self._eor_failed = False
        self.transmitter.send_bor(self.bor_tags, payload, run_id=run_identifier)

    def _post_stopping_hook(self) -> None:
        self._send_eor(cdtp2.RunCondition.GOOD)

    def _post_interrupting_hook(self, interrupted_from: SatelliteState) -> None:
        if not self.transmitter.in_run:
            return
        try:
            self._send_eor(cdtp2.RunCondition.INTERRUPTED)
        except SendTimeout as exc:
            self.log.warning("interrupt: %s", exc)
        self._give_up_run("interrupted and no DataReceiver took the data in time")

    def _failure_hook(self) -> None:
        if self.transmitter.in_run and not self._eor_failed:
            try:
                self._send_eor(cdtp2.RunCondition.ABORTED | cdtp2.RunCondition.TAINTED)
            except Exception as exc:
                self.log.warning("failure: could not end the run: %s", exc)
        self._give_up_run("satellite failed")

    def _shutdown_hook(self) -> None:
        self.transmitter.close()

    def _send_eor(self, condition: cdtp2.RunCondition) -> None:
        try:
            self.transmitter.send_eor(self.eor_tags, self._eor_payload, condition=condition)
        except SendTimeout:
            self._eor_failed = True
            raise

    def _give_up_run(self, reason: str) -> None:
        if self.transmitter.in_run:
            self.transmitter.discard(reason)
            self.transmitter.reset_run()

    def close(self) -> None:
        """Reach DEAD from any state and free the data port; idempotent."""
        super().close()
        self.transmitter.close()


class RandomDataSender(DataSender):
    """Demo satellite: every ``interval_s`` (0.5 s) queues 1024 float64 sine samples.

    The samples go as raw bytes with tags ``{"dtype": "float64"}``, like the seed's example.
    The configuration key ``interval_s`` overrides the constructor's value.
    """

    def __init__(self, *args: Any, interval_s: float = 0.5, **kwargs: Any) -> None:
        self.interval_s = interval_s
        self.packets_sent = 0
        super().__init__(*args, **kwargs)

    def do_initializing(self, config: dict[str, Any]) -> str | None:
        """Read ``interval_s`` (seconds) from the configuration, if present."""
        self.interval_s = float(config.get("interval_s", self.interval_s))
        return "Initialized"

    def do_run(self, run_identifier: str) -> str:
        """Queue a sine of random frequency until stopped."""
        samples = np.linspace(0, 2 * np.pi, 1024, endpoint=False)
        frequency = random.uniform(0, 3)
        data = np.sin(2 * np.pi * frequency * samples)
        t0 = time.monotonic()
        count = 0
        while not self.stop_running.is_set():
            self.data_queue.put((data.tobytes(), {"dtype": f"{data.dtype}"}))
            count += 1
            self.stop_running.wait(self.interval_s)
        self.packets_sent += count
        self.log.info(
            "run %s: %d packets / %.3f MB in %.1f s",
            run_identifier,
            count,
            count * data.nbytes / 1e6,
            time.monotonic() - t0,
        )
        return "Finished acquisition"


class PushTimeouts(NamedTuple):
    """BOR, DATA and EOR timeouts of a PushThread in seconds (None = forever)."""

    bor_s: float | None = 10.0
    data_s: float | None = 10.0
    eor_s: float | None = 10.0


class PushThread(threading.Thread):
    """Seed-compatible pusher: sends ``(payload, meta)`` items of ``queue`` as CDTP1.

    An item whose meta is ``CDTPMessageIdentifier.BOR``/``EOR`` carries
    ``{"payload": ..., "meta": ...}`` and sets ``borevt``/``eorevt`` once sent. Takes over
    ``socket`` (a bound PUSH socket; closed when the thread ends). ``timeouts`` is a
    PushTimeouts or a (bor, data, eor) tuple in seconds. Send timeouts never end the thread:
    a DAT is retried until sent or ``stopevt`` is set; a BOR/EOR that times out is logged and
    kept in ``errors``. Set ``stopevt`` and join to stop.
    """

    def __init__(
        self,
        name: str,
        stopevt: threading.Event,
        borevt: threading.Event,
        eorevt: threading.Event,
        socket: zmq.Socket[Any],
        timeouts: PushTimeouts | tuple[float | None, float | None, float | None],
        queue: queue.Queue[tuple[Any, Any]],
        *,
        protocol: int = 1,
    ) -> None:
        super().__init__(name=f"daqwire-PushThread-{name}", daemon=True)
        self.sender_name = name
        self.stopevt = stopevt
        self.borevt = borevt
        self.eorevt = eorevt
        self.queue = queue
        self.timeouts = PushTimeouts(*timeouts)
        self.errors: list[BaseException] = []
        self.transmitter = CdtpTransmitter(
            name,
            protocol=protocol,
            socket=socket,
            bor_timeout_s=self.timeouts.bor_s,
            data_timeout_s=self.timeouts.data_s,
            eor_timeout_s=self.timeouts.eor_s,
        )

    def run(self) -> None:
        try:
            while not self.stopevt.is_set():
                try:
                    payload, meta = self.queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                try:
                    self._handle(payload, meta)
                except Exception as exc:
                    logger.error("%s: %s", self.sender_name, exc)
                    self.errors.append(exc)
                finally:
                    self.queue.task_done()
        finally:
            self.transmitter.close(timeout_s=self.timeouts.eor_s)

    def _handle(self, payload: Any, meta: Any) -> None:
        tx = self.transmitter
        if isinstance(meta, int) and meta == CDTPMessageIdentifier.BOR:
            if tx.in_run:
                tx.reset_run()
            tx.send_bor(payload.get("meta"), payload.get("payload"))
            self.borevt.set()
        elif isinstance(meta, int) and meta == CDTPMessageIdentifier.EOR:
            tx.send_eor(payload.get("meta"), payload.get("payload"))
            self.eorevt.set()
        else:
            while True:
                try:
                    tx.send_data(payload, meta)
                    return
                except SendTimeout:
                    if self.stopevt.is_set():
                        raise


class DataSenderArgumentParser(argparse.ArgumentParser):
    """Command-line options of a DataSender (seed names plus ``--proto``).

    ``vars(parse_args())`` minus ``level`` can be passed to a DataSender as keyword arguments.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "--level",
            "-l",
            choices=["TRACE", "DEBUG", "INFO", "WARNING", "STATUS", "CRITICAL"],
            default="INFO",
            type=str.upper,
            help="maximum level of log messages printed to the console",
        )
        self.constellation = self.add_argument_group("Constellation")
        self.constellation.add_argument(
            "--name",
            "-n",
            default=socket_module.gethostname().replace("-", "_").replace(".", "_"),
            help="satellite name, unique in its group (default: host name)",
        )
        self.constellation.add_argument(
            "--group", "-g", required=True, help="Constellation group to join"
        )
        self.network = self.add_argument_group("Network configuration")
        self.network.add_argument(
            "--interface", "-i", action="append", help="network interface to announce on"
        )
        self.network.add_argument(
            "--cmd-port", "--command-port", "--cscp", type=int, help="CSCP command port"
        )
        self.network.add_argument(
            "--mon-port", "--monitoring-port", "--cmdp", type=int, help="CMDP monitoring port"
        )
        self.network.add_argument(
            "--hb-port", "--heartbeat-port", "--chp", type=int, help="CHP heartbeat port"
        )
        self.network.add_argument(
            "--data-port",
            "--cdtp-port",
            type=int,
            default=0,
            help="port for sending data via CDTP (default: random)",
        )
        self.network.add_argument(
            "--proto",
            dest="protocol",
            type=int,
            choices=[1, 2],
            default=1,
            help="CDTP version on the wire (default: %(default)s)",
        )
