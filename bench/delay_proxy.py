"""A userspace TCP proxy that delays every byte by half a round trip each way (no netem here).

Bytes keep their order; each chunk is released `one_way` seconds after it arrived. It runs in a
process of its own: a benchmark that measures work done in its own process (hashing, tar) must not slow
the link it is measured over, while a baseline run as a subprocess would not.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import time


class DelayProxy:
    def __init__(self, target_port: int, rtt: float = 0.050, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.one_way = rtt / 2
        context = multiprocessing.get_context("fork")
        self._port = context.Value("i", 0)
        self._ready = context.Event()
        self._process = context.Process(target=self._run, daemon=True)

    @property
    def port(self) -> int:
        return self._port.value

    async def _pump(self, reader, writer):
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
                await queue.put((time.monotonic() + self.one_way, data))
        finally:
            await queue.put((0, None))
            await sender

    async def _handle(self, client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        await asyncio.gather(self._pump(client_reader, server_writer),
                             self._pump(server_reader, client_writer),
                             return_exceptions=True)

    def _run(self):
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self._port.value = server.sockets[0].getsockname()[1]
        self._ready.set()
        loop.run_forever()

    def start(self) -> "DelayProxy":
        self._process.start()
        if not self._ready.wait(10):
            raise RuntimeError("the delay proxy did not start within 10 s")
        return self

    def stop(self) -> None:
        self._process.terminate()
        self._process.join(5)
