"""Run a Sanic app on 127.0.0.1 in a background thread, with stop/start on the same port.

``stop()`` closes the listening socket and aborts open connections, so
clients get a real "connection refused" until ``start()`` is called again.
The fake's state lives outside the app and survives a restart.
"""
from __future__ import annotations

import asyncio
import itertools
import socket
import threading
from typing import Callable, Optional

from sanic import Sanic

Sanic.test_mode = True  # allow many short-lived apps in one process
_names = itertools.count(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SanicThread:
    def __init__(self, make_app: Callable[[str], Sanic], port: Optional[int] = None) -> None:
        self._make_app = make_app
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-server", daemon=True)
        self._thread.start()
        self._server = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def _call(self, coroutine, timeout: float = 15.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _start(self) -> None:
        app = self._make_app(f"fake_{next(_names)}")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.set_inheritable(False)
        server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
        await server.startup()
        await server.start_serving()
        self._server = server

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.server.close()
        for connection in list(server.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()
        await server.server.wait_closed()

    def start(self) -> None:
        if self._server is None:
            self._call(self._start())

    def stop(self) -> None:
        self._call(self._stop())

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
