# SPDX-License-Identifier: BSD-3-Clause
"""Typing a command into a JupyterLab terminal as a person does, through Jupyter's own API: a
terminal made by POST /api/terminals, its websocket at /terminals/websocket/NAME (JSON lists:
["stdin", text] in, ["stdout", text] out). Its shell is the one JupyterLab opens, a login shell,
unlike `docker exec`."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass

import aiohttp

_END = "rhc-typed-exit-"
"""Echoed with the command's exit status after it: the terminal's output has no other end."""


@dataclass(frozen=True)
class Typed:
    """What a terminal showed after a command was typed in it, and the command's exit status
    (None if it did not end in time)."""

    output: str
    status: int | None


def type_in_terminal(jupyter_url: str, token: str, command: str, timeout: float = 120) -> Typed:
    """Type command (and Enter) in a new JupyterLab terminal; what it showed until the command
    ended. The terminal is closed afterwards."""
    return asyncio.run(_type(jupyter_url, token, command, timeout))


async def _type(jupyter_url: str, token: str, command: str, timeout: float) -> Typed:
    async with aiohttp.ClientSession(headers={"Authorization": f"token {token}"}) as session:
        async with session.post(f"{jupyter_url}/api/terminals") as response:
            assert response.status == 200, f"POST /api/terminals: {response.status}"
            name = (await response.json())["name"]
        try:
            socket_url = f"ws{jupyter_url.removeprefix('http')}/terminals/websocket/{name}"
            async with session.ws_connect(socket_url) as socket:
                await socket.send_json(["set_size", 50, 250])  # wide: no line wraps
                await socket.send_json(["stdin", f"{command}; echo {_END}$?\r"])
                return await _read_until_the_end(socket, timeout)
        finally:
            async with session.delete(f"{jupyter_url}/api/terminals/{name}"):
                pass


async def _read_until_the_end(socket: aiohttp.ClientWebSocketResponse, timeout: float) -> Typed:
    output = ""
    try:
        async with asyncio.timeout(timeout):
            async for message in socket:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                kind, *content = json.loads(message.data)
                if kind == "stdout":
                    output += content[0]
                    # the echo of the typed line shows "$?", the shell's own echo a number
                    if ended := re.search(rf"{_END}(\d+)", output):
                        return Typed(output, int(ended.group(1)))
                elif kind == "disconnect":
                    break
    except TimeoutError:
        pass
    return Typed(output, None)
