# SPDX-License-Identifier: BSD-3-Clause
"""A client of the mini pool's HTTP API (urllib only), for programs and the CLI."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from rhc.condor.minipool.errors import MiniPoolError
from rhc.condor.minipool.settings import DEFAULT_POOL_URL
from rhc.condor.minipool.submitfile import transfer_paths

DEFAULT_TIMEOUT = 30.0
"""How long one request may take, in seconds."""


class MiniPoolClient:
    """Talks to `rhc minicondor serve` at url, with its token (never shown by repr).

    Raises (every method):
      MiniPoolError: with the server's message, or when no pool answers at url.
    """

    def __init__(
        self,
        url: str = DEFAULT_POOL_URL,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._token = token

    def __repr__(self) -> str:
        return f"MiniPoolClient({self.url!r})"

    def submit(
        self, description: str, files: Mapping[str, tuple[bytes, int]], owner: str
    ) -> tuple[int, list[int]]:
        """Queue a submit description; files are name -> (content, mode). Returns
        (ClusterId, [ProcId, ...])."""
        encoded = {
            name: {"content": base64.b64encode(content).decode("ascii"), "mode": mode}
            for name, (content, mode) in files.items()
        }
        answer = self._request(
            "POST", "/submit", {"description": description, "files": encoded, "owner": owner}
        )
        return int(answer["cluster"]), [int(proc) for proc in answer["procs"]]

    def jobs(self) -> list[dict]:
        """Every job the pool has seen, in submit order."""
        return self._request("GET", "/jobs")

    def remove(
        self, cluster: int | None = None, proc: int | None = None, batch_name: str | None = None
    ) -> int:
        """Remove the matching jobs (every job when nothing is given); how many were removed."""
        return int(self._select("/remove", cluster, proc, batch_name)["removed"])

    def vacate(
        self, cluster: int | None = None, proc: int | None = None, batch_name: str | None = None
    ) -> int:
        """Evict the matching running jobs now; they run again. How many were evicted."""
        return int(self._select("/vacate", cluster, proc, batch_name)["evicted"])

    def _select(
        self, path: str, cluster: int | None, proc: int | None, batch_name: str | None
    ) -> dict:
        body = {"cluster": cluster, "proc": proc, "batch_name": batch_name}
        return self._request("POST", path, {k: v for k, v in body.items() if v is not None})

    def status(self) -> list[dict]:
        """The pool's slots."""
        return self._request("GET", "/status")

    def _request(self, method: str, path: str, body: object = None) -> object:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise MiniPoolError(_message(exc)) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ConnectionRefusedError):
                raise MiniPoolError(
                    f"no mini pool answers at {self.url}: start one with `rhc minicondor serve`"
                ) from None
            raise MiniPoolError(f"cannot reach the mini pool at {self.url}: {exc.reason}") from None
        except (TimeoutError, ConnectionError) as exc:
            raise MiniPoolError(f"the mini pool at {self.url} did not answer: {exc}") from None


def read_transfer_files(description: str, directory: Path) -> dict[str, tuple[bytes, int]]:
    """The files condor_submit would send for description: the executable if it is a local file
    (and transfer_executable is not false), and every input file, each with its mode; relative
    paths are taken from directory.

    Raises:
      MiniPoolError: an input file is missing, or two files have the same name.
    """
    executables, inputs = transfer_paths(description)
    paths = [directory / path for path in executables if (directory / path).is_file()]
    for entry in inputs:
        path = directory / entry
        if not path.is_file():
            raise MiniPoolError(f"transfer_input_files: {path} is not a file")
        paths.append(path)
    files: dict[str, tuple[bytes, int]] = {}
    for path in dict.fromkeys(path.resolve() for path in paths):
        if path.name in files:
            raise MiniPoolError(f"two files to send are named {path.name}: rename one")
        files[path.name] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return files


def _message(error: urllib.error.HTTPError) -> str:
    try:
        return json.loads(error.read())["error"]
    except (ValueError, KeyError, TypeError):
        return f"the mini pool answered {error.code} {error.reason}"
