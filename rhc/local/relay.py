# SPDX-License-Identifier: BSD-3-Clause
"""A TCP relay on loopback that counts the bytes a server sends through it: what a remote read
costs, counted the same way for any protocol (HTTP, XRootD); and, with a delay, a model of a
wide-area link (workers at another site than their Redis), which this machine's kernel cannot
give (no netem)."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Callable

from rhc.local.ports import free_port

_BUFFER = 256 * 1024


class CountingRelay:
    """Listens on 127.0.0.1:port and relays every connection to target_port, counting the bytes
    that come back from the target; each direction holds what it relays `delay` seconds (half a
    round trip), as a link does: data in flight overtakes nothing and waits for nothing. Threads,
    stopped by stop()."""

    def __init__(self, target_port: int, *, delay: float = 0.0) -> None:
        self.target_port = target_port
        self.delay = delay
        self.port = free_port()
        self._received = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._connections: list[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> CountingRelay:
        self._accepting.start()
        return self

    @property
    def bytes_from_server(self) -> int:
        with self._lock:
            return self._received

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # stopped
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # the target is down: so is the relay, for this client
                client.close()
                continue
            with self._lock:
                self._connections += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, counted: bool) -> None:
        send = self._delayed(source, target) if self.delay else target.sendall
        with contextlib.suppress(OSError):
            while data := source.recv(_BUFFER):
                if counted:
                    with self._lock:
                        self._received += len(data)
                send(data)
        if self.delay:
            send(b"")  # the end, once what is in flight arrived
        else:
            _close(source, target)

    def _delayed(self, source: socket.socket, target: socket.socket) -> Callable[[bytes], None]:
        """A send that hands data to target `delay` seconds after it was given; b"" ends it."""
        line: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

        def deliver() -> None:
            with contextlib.suppress(OSError):
                while (item := line.get())[1]:
                    due, data = item
                    time.sleep(max(due - time.monotonic(), 0.0))  # the link's latency itself
                    target.sendall(data)
            _close(source, target)

        threading.Thread(target=deliver, daemon=True).start()
        return lambda data: line.put((time.monotonic() + self.delay, data))

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # wakes the accepting thread; close() alone does not
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self._accepting.join(5)


def _close(*ends: socket.socket) -> None:
    for end in ends:
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
