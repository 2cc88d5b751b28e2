"""A userspace TCP proxy that delays every byte by half a round trip each way (no netem here).

Bytes keep their order; each chunk is released `one_way` seconds after it arrived. Counts the
bytes in each direction, so a benchmark can report what a deploy really sent.
"""
from __future__ import annotations

import asyncio
import threading
import time


class DelayProxy:
    def __init__(self, target_port: int, rtt: float = 0.050, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.one_way = rtt / 2
        self.sent = 0        # client -> server bytes
        self.received = 0    # server -> client bytes
        self.connections = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def reset(self) -> None:
        self.sent = self.received = self.connections = 0

    async def _pump(self, reader, writer, count_attr: str):
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                if data is None:
                    break
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                setattr(self, count_attr, getattr(self, count_attr) + len(data))
                await queue.put((time.monotonic() + self.one_way, data))
        finally:
            await queue.put((0, None))
            await sender

    async def _handle(self, client_reader, client_writer):
        self.connections += 1
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        await asyncio.gather(self._pump(client_reader, server_writer, "sent"),
                             self._pump(server_reader, client_writer, "received"),
                             return_exceptions=True)

    def _run(self):
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> "DelayProxy":
        self._thread.start()
        self._ready.wait(10)
        return self
