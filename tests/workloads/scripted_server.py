"""A server that writes exact bytes: every request on a connection is answered with the same
``pieces``, with a pause between them so that each piece arrives in its own read. It lets
tests send what no conforming server would (bad framing, bare LF, folded headers)."""

from __future__ import annotations

import asyncio
import threading


class ScriptedServer:
    """Answers every request with ``pieces``, pausing between them; closes if asked."""

    def __init__(self, pieces: list[bytes], close: bool = False) -> None:
        self.pieces = pieces
        self.close = close
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:  # each request on the connection in turn, until the client leaves
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                for piece in self.pieces:
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.01)
                if self.close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client left, or the server is stopping
        finally:
            writer.close()

    def run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            self.stop = asyncio.Event()
            self.ready.set()
            async with server:
                await self.stop.wait()

        asyncio.run(main())
