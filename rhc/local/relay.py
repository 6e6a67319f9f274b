# SPDX-License-Identifier: BSD-3-Clause
"""A TCP relay on loopback that counts the bytes a server sends through it: what a remote read
costs, counted the same way for any protocol (HTTP, XRootD); and, with a delay, a model of a
wide-area link (workers at another site than their Redis), which this machine's kernel cannot
give (no netem). One asyncio loop in a thread of its own relays every connection."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque

from rhc.local.ports import free_port

_BUFFER = 256 * 1024


class CountingRelay:
    """Listens on 127.0.0.1:port and relays every connection to target_port, counting the bytes
    that come back from the target; each direction holds what it relays `delay` seconds (half a
    round trip), as a link does: data in flight overtakes nothing and waits for nothing.
    Stopped by stop()."""

    def __init__(self, target_port: int, *, delay: float = 0.0) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = free_port()
        self._received = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._relays: set[asyncio.Task] = set()

    def start(self) -> CountingRelay:
        self._thread.start()
        listening = asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self._server = asyncio.run_coroutine_threadsafe(listening, self._loop).result()
        return self

    @property
    def bytes_from_server(self) -> int:
        return self._received  # written by the loop's thread alone

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()

    async def _close_all(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._relays:
            await asyncio.wait(self._relays, timeout=5)

    async def _relay(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        try:
            server, to_server = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:  # the target is down: so is the relay, for this client
            to_client.close()
            return
        relay = asyncio.current_task()
        self._relays.add(relay)
        self._writers |= {to_client, to_server}
        await asyncio.gather(
            self._pump(client, to_server, counted=False),
            self._pump(server, to_client, counted=True),
        )
        self._writers -= {to_client, to_server}
        self._relays.discard(relay)

    async def _pump(
        self, source: asyncio.StreamReader, target: asyncio.StreamWriter, *, counted: bool
    ) -> None:
        link = _Link(target, self.delay) if self.delay else None
        with contextlib.suppress(OSError, ConnectionError):
            while data := await source.read(_BUFFER):
                if counted:
                    self._received += len(data)
                if link is not None:
                    link.send(data)
                else:
                    target.write(data)
                    await target.drain()
        if link is not None:
            link.send(b"")
        else:
            target.close()


class _Link:
    """One direction of a slow link: what is sent arrives `delay` seconds later, in order;
    b"" closes it once what is in flight arrived."""

    def __init__(self, target: asyncio.StreamWriter, delay: float) -> None:
        self._target = target
        self._delay = delay
        self._loop = asyncio.get_running_loop()
        self._in_flight: deque[tuple[float, bytes]] = deque()

    def send(self, data: bytes) -> None:
        self._in_flight.append((self._loop.time() + self._delay, data))
        if len(self._in_flight) == 1:
            self._loop.call_at(self._in_flight[0][0], self._arrive)

    def _arrive(self) -> None:
        while self._in_flight and self._in_flight[0][0] <= self._loop.time():
            data = self._in_flight.popleft()[1]
            if not data:
                self._target.close()
                return
            self._target.write(data)
        if self._in_flight:
            self._loop.call_at(self._in_flight[0][0], self._arrive)
