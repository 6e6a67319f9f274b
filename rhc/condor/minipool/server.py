# SPDX-License-Identifier: BSD-3-Clause
"""The mini pool's HTTP API: JSON in, JSON out, on loopback by default.

    POST /submit  {"description", "files": {name: {"content": base64, "mode"}}, "owner"}
                  -> {"cluster", "procs"}
    GET  /jobs    -> [job, ...]
    POST /remove  {"cluster"?, "proc"?, "batch_name"?} -> {"removed"}
    POST /vacate  {"cluster"?, "proc"?, "batch_name"?} -> {"evicted"}
    GET  /status  -> [slot, ...]
    GET  /healthz -> {"ok": true}  (the only request without the token: it tells nothing)

Every request but /healthz carries `Authorization: Bearer TOKEN` (rhc.condor.minipool.access)
and a Host header naming the pool; bodies are bounded and read only when their Content-Length
is. Errors answer {"error": message} with 400 (a bad request), 401, 404, 411, 413, 415, 421 or
500. POST bodies must be application/json: a web page cannot send that to another origin without
a CORS preflight, which this server never grants. File contents are never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rhc.condor.minipool.access import host_names, token_matches
from rhc.condor.minipool.errors import MiniPoolError
from rhc.condor.minipool.pool import Pool
from rhc.condor.minipool.settings import DEFAULT_PORT

log = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 2**20
"""The largest request body accepted (transferred files travel base64-encoded inside it): the
config file and the worker script fit; a vanilla job's Python environment needs more."""

REQUEST_TIMEOUT = 30.0
"""Seconds a client may take to send its request: a slow one does not hold a thread for ever."""


class MiniPoolServer:
    """Serves a Pool over HTTP in a background thread, to holders of token.

    ``names`` are the host names clients reach it by besides loopback (e.g. a compose service
    name); a request whose Host header names anything else is refused.
    """

    def __init__(
        self,
        pool: Pool,
        *,
        token: str,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        names: tuple[str, ...] = (),
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        if not token:
            raise MiniPoolError("the pool needs a token: give --token-file")
        self.pool = pool
        handler = type(
            "_BoundHandler",
            (_Handler,),
            {"pool": pool, "token": token, "max_request_bytes": max_request_bytes},
        )
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise MiniPoolError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        listening = self._server.server_address[1]
        # A wildcard address is no name: browsers reach loopback through http://0.0.0.0 too.
        own = () if host in ("", "0.0.0.0", "::") else (host,)
        handler.hosts = host_names((*names, *own), listening)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> MiniPoolServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="minipool-http", daemon=True
        )
        self._thread.start()
        log.info("mini pool API at %s", self.url)
        return self

    def stop(self) -> None:
        """Stop answering (the pool itself is stopped by its owner)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    pool: Pool
    token: str
    hosts: frozenset[str]
    max_request_bytes: int
    server_version = "rhc-minipool"
    timeout = REQUEST_TIMEOUT

    def _admitted(self) -> bool:
        """Whether the request names this pool and carries its token; answered if not."""
        host = (self.headers.get("Host") or "").strip().lower()
        if host not in self.hosts:
            self.close_connection = True
            self._fail(
                HTTPStatus.MISDIRECTED_REQUEST,
                f"this pool does not serve the host name {host[:100]!r}: reach it by one it "
                "was started with (--server-name)",
            )
            return False
        if self.path == "/healthz":
            return True
        if not token_matches(self.headers.get("Authorization"), self.token):
            self.close_connection = True
            self._fail(
                HTTPStatus.UNAUTHORIZED,
                "the pool wants its token (Authorization: Bearer TOKEN): set pool_token_file "
                "in the rhc config to the file `rhc minicondor serve --token-file` wrote",
            )
            return False
        return True

    def do_GET(self) -> None:
        if not self._admitted():
            return
        if self.path == "/healthz":
            self._answer(HTTPStatus.OK, {"ok": True})
        elif self.path == "/jobs":
            self._answer(HTTPStatus.OK, self.pool.jobs())
        elif self.path == "/status":
            self._answer(HTTPStatus.OK, self.pool.status())
        else:
            self._fail(HTTPStatus.NOT_FOUND, f"no such endpoint: GET {self.path}")

    def do_POST(self) -> None:
        # Nothing of the body is read before the request is admitted and its length taken:
        # the connection is closed after the answer, so an unread body is never parsed as a
        # request of its own.
        self.close_connection = True
        if not self._admitted():
            return
        routes = {"/submit": self._submit, "/remove": self._remove, "/vacate": self._vacate}
        route = routes.get(self.path)
        if route is None:
            self._fail(HTTPStatus.NOT_FOUND, f"no such endpoint: POST {self.path}")
            return
        if self.headers.get_content_type() != "application/json":
            self._fail(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the body as application/json")
            return
        length = self._length()
        if length is None:
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise MiniPoolError("the body must be a JSON object")
            self._answer(HTTPStatus.OK, route(body))
        except json.JSONDecodeError as exc:
            self._fail(HTTPStatus.BAD_REQUEST, f"the body is not JSON: {exc}")
        except MiniPoolError as exc:
            self._fail(HTTPStatus.BAD_REQUEST, str(exc))
        except Exception as exc:  # answer, rather than drop the connection without a word
            log.exception("%s %s failed", self.command, self.path)
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, f"the pool failed: {exc!r}")

    def _length(self) -> int | None:
        """The body's declared length, if the pool takes it; answered if not."""
        declared = self.headers.get("Content-Length")
        if declared is None or "Transfer-Encoding" in self.headers:
            self._fail(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
            return None
        if not declared.strip().isdigit():
            self._fail(HTTPStatus.BAD_REQUEST, f"Content-Length {declared[:40]!r} is no length")
            return None
        length = int(declared)
        if length > self.max_request_bytes:
            self._fail(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the request has {length} bytes; the pool takes at most "
                f"{self.max_request_bytes} (start it with a larger --max-request-bytes)",
            )
            return None
        return length

    def _submit(self, body: dict) -> dict:
        description = body.get("description")
        if not isinstance(description, str):
            raise MiniPoolError("submit needs a description (the submit file's text)")
        owner = body.get("owner")
        if owner is not None and (not isinstance(owner, str) or not owner):
            raise MiniPoolError("owner must be a user name")
        files = body.get("files") or {}
        if not isinstance(files, dict):
            raise MiniPoolError("files must map names to {content, mode}")
        decoded = {name: _decode(name, entry) for name, entry in files.items()}
        cluster, procs = self.pool.submit(description, decoded, owner)
        return {"cluster": cluster, "procs": procs}

    def _remove(self, body: dict) -> dict:
        return {"removed": self.pool.remove(**_selection(body, "remove"))}

    def _vacate(self, body: dict) -> dict:
        return {"evicted": self.pool.vacate(**_selection(body, "vacate"))}

    def _answer(self, status: HTTPStatus, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _fail(self, status: HTTPStatus, message: str) -> None:
        log.info("%s %s: %d %s", self.command, self.path, status, message)
        self._answer(status, {"error": message})

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def _decode(name: object, entry: object) -> tuple[bytes, int]:
    if not isinstance(name, str):
        raise MiniPoolError(f"file name {name!r} is not a string")
    if not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
        raise MiniPoolError(f"file {name}: give {{'content': base64, 'mode': int}}")
    try:
        content = base64.b64decode(entry["content"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MiniPoolError(f"file {name}: the content is not base64") from exc
    mode = entry.get("mode")
    if not isinstance(mode, int) or isinstance(mode, bool):
        raise MiniPoolError(f"file {name}: mode {mode!r} is not a number (0o600 = 384)")
    return content, mode


def _selection(body: dict, action: str) -> dict:
    """The cluster, proc and batch_name filters of a remove or vacate request, checked."""
    unknown = set(body) - {"cluster", "proc", "batch_name"}
    if unknown:
        raise MiniPoolError(f"{action} takes cluster, proc and batch_name, not {sorted(unknown)}")
    for key in ("cluster", "proc"):
        value = body.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise MiniPoolError(f"{key} must be a whole number, not {value!r}")
    batch_name = body.get("batch_name")
    if batch_name is not None and not isinstance(batch_name, str):
        raise MiniPoolError(f"batch_name must be a string, not {batch_name!r}")
    return {"cluster": body.get("cluster"), "proc": body.get("proc"), "batch_name": batch_name}
