"""M2 commands against a mock cell controller: success, fail, noack, and sequence ids."""

import asyncio
from typing import Any

from daqwire.lsst.m2 import CommandFailedError, Controller, MockM2


async def main() -> None:
    async with MockM2(command_port=0, telemetry_port=0) as mock:
        events: list[str] = []
        telemetry: list[str] = []

        async def on_event(message: Any = None) -> None:
            events.append(message["id"])

        async def on_telemetry(message: Any = None) -> None:
            telemetry.append(message["id"])

        async def on_lost() -> None:
            print("connection lost")

        controller = Controller()
        controller.set_callback_process_event(on_event)
        controller.set_callback_process_telemetry(on_telemetry)
        controller.set_callback_process_lost_connection(on_lost)
        controller.start("127.0.0.1", mock.command_port, mock.telemetry_port)
        await controller.wait_connected(timeout=10)

        await controller.write_command_to_server("power", {"powerType": 2, "status": True})
        print("power on communication: success;", controller.power_system_status)
        for name, details in (("power", {"powerType": 99, "status": True}), ("bogus", None)):
            try:
                await controller.write_command_to_server(name, details, timeout=5)
            except CommandFailedError as exc:  # a RuntimeError, as in ts_m2com
                print(f"{name}: {exc} (status {exc.status.name})")
        await controller.write_command_to_server("resetForceOffsets")
        print("sequence ids used:", [seq for _name, seq in mock.commands])
        print("welcome events received:", len(events) >= 99, "| first:", events[0])
        await asyncio.sleep(0.2)
        print("telemetry ids:", sorted(set(telemetry)))
        await controller.close()


asyncio.run(main())
