# SPDX-License-Identifier: BSD-3-Clause
"""The dashboard's web app (aiohttp): the page, its JSON, /metrics and the one action.

One background loop reads a snapshot every REFRESH seconds, whoever watches: every viewer and
every scrape is served from the latest one, so the load on Redis does not grow with them. A
Redis that goes away shows as "Redis unreachable" until it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict
from importlib.resources import files

import redis
from aiohttp import web

from rhc.config import Settings
from rhc.dashboard.access import Access
from rhc.dashboard.history import History
from rhc.dashboard.metrics import CONTENT_TYPE, exposition
from rhc.dashboard.snapshot import Snapshot, SnapshotReader
from rhc.dashboard.views import overview
from rhc.errors import JobNotFoundError, RhcError
from rhc.manager import Manager
from rhc.wire.activity import SPANS_KEPT, Span
from rhc.wire.connection import connect
from rhc.wire.keys import Keys

log = logging.getLogger(__name__)

REFRESH = 1.0
"""Seconds between snapshots: the page polls at this pace too."""

SPANS_PER_READ = 5_000
"""How many spans of a job's timeline one request returns (the page asks for the rest)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATIC = files("rhc.dashboard") / "static"
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the address may hold the token
    "Cache-Control": "no-store",
}
_ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


class Dashboard:
    """The state behind the app: the latest snapshot, its history, who may see it, and the
    manager that cancels jobs (None: the dashboard only reads)."""

    def __init__(
        self,
        settings: Settings,
        namespaces: list[str],
        token: str,
        canceller: Manager | None = None,
    ) -> None:
        self._settings = settings
        self.namespaces = namespaces
        self.access = Access(token)
        self.canceller = canceller
        self.history = History()
        self.latest = Snapshot(taken=time.time(), redis_up=False, error="not read yet")
        self._client: redis.Redis | None = None
        self._reader: SnapshotReader | None = None

    def __repr__(self) -> str:
        return f"Dashboard(namespaces={self.namespaces!r}, url={self._settings.masked_url!r})"

    @property
    def heartbeat_interval(self) -> float:
        return self._settings.heartbeat_interval

    def refresh(self) -> Snapshot:
        """Read a snapshot (in a thread: redis-py blocks); a failure is a snapshot too."""
        try:
            if self._reader is None:
                self._client = connect(self._settings, role="dashboard")
                self._reader = SnapshotReader(self._client, self.namespaces)
            snapshot = self._reader.read()
        except (redis.RedisError, RhcError, OSError) as exc:
            self._drop_client()
            snapshot = Snapshot(
                taken=time.time(),
                redis_up=False,
                error=f"Redis unreachable at {self._settings.masked_url}: {_first_line(exc)}",
            )
        self.latest = snapshot
        self.history.add(snapshot)
        return snapshot

    def spans(self, namespace: str, job: str, after: str) -> list[dict]:
        """A job's spans after the entry id `after` ("" for the first)."""
        if self._client is None:
            return []
        start = f"({after}" if after else "-"
        entries = self._client.xrange(Keys(namespace).spans(job), min=start, count=SPANS_PER_READ)
        return [
            {"id": entry_id.decode(), **asdict(Span.from_fields(fields))}
            for entry_id, fields in entries
        ]

    def close(self) -> None:
        self._drop_client()
        if self.canceller is not None:
            self.canceller.close()

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client, self._reader = None, None


def build_app(dashboard: Dashboard) -> web.Application:
    """The aiohttp application serving `dashboard`."""
    app = web.Application(middlewares=[_security_headers])
    app["dashboard"] = dashboard
    app.router.add_get("/", _page)
    app.router.add_get("/health", _health)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/api/overview", _overview)
    app.router.add_get("/api/spans", _spans)
    app.router.add_post("/api/cancel", _cancel)
    app.router.add_get("/static/{name}", _asset)
    app.cleanup_ctx.append(_refreshing)
    return app


async def _refreshing(app: web.Application) -> AsyncIterator[None]:
    dashboard: Dashboard = app["dashboard"]

    async def loop() -> None:
        while True:
            started = time.monotonic()
            await asyncio.to_thread(dashboard.refresh)
            await asyncio.sleep(max(0.0, REFRESH - (time.monotonic() - started)))

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.to_thread(dashboard.close)


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(_HEADERS)
        raise
    response.headers.update(_HEADERS)
    return response


async def _page(request: web.Request) -> web.Response:
    dashboard: Dashboard = request.app["dashboard"]
    login = dashboard.access.login(request)
    if login is not None:
        return login
    dashboard.access.check(request)
    page = (_STATIC / "index.html").read_text()
    page = page.replace("{{csrf}}", dashboard.access.csrf(request))
    return web.Response(text=page, content_type="text/html")


async def _asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in _ASSETS:
        raise web.HTTPNotFound()
    return web.Response(text=(_STATIC / name).read_text(), content_type=_ASSETS[name])


async def _health(request: web.Request) -> web.Response:
    """For healthchecks, without a token: that the server answers, nothing about the cluster."""
    return web.json_response({"ok": True})


async def _metrics(request: web.Request) -> web.Response:
    dashboard: Dashboard = request.app["dashboard"]
    dashboard.access.check(request)
    body = exposition(lambda: dashboard.latest, dashboard.heartbeat_interval)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def _overview(request: web.Request) -> web.Response:
    dashboard: Dashboard = request.app["dashboard"]
    dashboard.access.check(request)
    data = overview(dashboard.latest, dashboard.history, dashboard.heartbeat_interval)
    data["can_cancel"] = dashboard.canceller is not None
    return web.json_response(data)


async def _spans(request: web.Request) -> web.Response:
    dashboard: Dashboard = request.app["dashboard"]
    dashboard.access.check(request)
    namespace, job = _job_of(request.query, dashboard)
    after = request.query.get("after", "")
    try:
        spans = await asyncio.to_thread(dashboard.spans, namespace, job, after)
    except redis.RedisError as exc:
        raise web.HTTPServiceUnavailable(text=f"Redis unreachable: {_first_line(exc)}\n") from exc
    return web.json_response({"spans": spans, "kept": SPANS_KEPT})


async def _cancel(request: web.Request) -> web.Response:
    dashboard: Dashboard = request.app["dashboard"]
    dashboard.access.check_action(request)
    try:
        body = await request.json()
    except json.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text='send JSON: {"namespace": …, "job": …}\n') from exc
    namespace, job = _job_of(body, dashboard)
    canceller = dashboard.canceller
    if canceller is None or canceller.settings.namespace != namespace:
        raise web.HTTPConflict(
            text="this dashboard only reads: start it with --manager-config (the namespace's "
            "notebook config) to cancel its jobs\n"
        )
    try:
        cancelled = await asyncio.to_thread(canceller.cancel, job)
    except JobNotFoundError as exc:
        raise web.HTTPNotFound(text=f"{exc}\n") from exc
    log.info("job %s of namespace %s cancelled from the dashboard", job, namespace)
    return web.json_response({"cancelled": cancelled})


def _job_of(source: object, dashboard: Dashboard) -> tuple[str, str]:
    """The namespace and job a request names (its query, or its JSON body)."""
    fields = source if isinstance(source, Mapping) else {}
    namespace, job = fields.get("namespace", ""), fields.get("job", "")
    if namespace not in dashboard.namespaces or not isinstance(job, str) or not job.isalnum():
        raise web.HTTPBadRequest(text="name a namespace this dashboard shows, and a job id\n")
    return namespace, job


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
