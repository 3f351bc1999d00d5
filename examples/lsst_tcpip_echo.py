"""A ts_tcpip-style echo server and client: JSON lines, and bad lines that cost one error each."""

import asyncio
import logging
import math

from daqwire.errors import JsonSyntaxError, LineTooLongError
from daqwire.lsst import Client, OneClientReadLoopServer


class EchoServer(OneClientReadLoopServer):
    """Echo every JSON line back; answer a line that is not JSON with an error object."""

    async def read_and_dispatch(self) -> None:
        try:
            data = await self.read_json()
        except JsonSyntaxError as exc:
            await self.write_json({"error": exc.message})
            return
        await self.write_json(data)


async def main() -> None:
    async with EchoServer(port=0, name="echo", line_limit=1024) as server:
        async with Client(server.host, server.port, name="client", line_limit=512) as client:
            for value in ({"id": "echo", "seq": 1}, [1, 2, 3], 2**70, math.inf):
                await client.write_json(value)
                print("echoed:", await client.read_json())

            await client.write(b"not json\r\n")
            print("server said:", await client.read_json())

            # A line over the server's 1024-byte limit: the server logs one warning and
            # goes on at the next line.
            await client.write(b'"' + b"x" * 2000 + b'"\r\n')
            await client.write_json({"after": "the long line"})
            print("echoed:", await client.read_json())

            # A 700-byte line is within the server's limit, so it is echoed, but it is over
            # the client's 512: the client raises one error and reads on.
            await client.write_json({"say": "y" * 700})
            await client.write_json({"and then": "more"})
            try:
                await client.read_json()
            except LineTooLongError as exc:
                print(f"skipped a line of {exc.actual} bytes (limit {exc.limit})")
            print("echoed:", await client.read_json())
            print("still connected:", client.connected)


logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
asyncio.run(main())
