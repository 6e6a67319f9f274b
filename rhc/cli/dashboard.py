# SPDX-License-Identifier: BSD-3-Clause
"""`rhc dashboard`: the web dashboard and /metrics, token-protected like Jupyter."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from rhc.cli.options import REDIS_URL
from rhc.config import dashboard_token, resolve_settings
from rhc.errors import ConfigurationError

log = logging.getLogger(__name__)


@click.command()
@click.argument("redis_url", required=False, type=REDIS_URL)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--namespace",
    "namespaces",
    multiple=True,
    help="A namespace to show (repeatable; default: the config's).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The 0600 file holding the token (created if missing; default ~/.config/rhc/"
    "dashboard_token).",
)
@click.option(
    "--manager-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A namespace's notebook config (rhc.toml): lets the dashboard cancel that "
    "namespace's jobs. Without it the dashboard only reads.",
)
@click.option(
    "--show-token/--hide-token",
    default=True,
    help="Print the URL with its token (hide it where the output is kept, e.g. a container's log).",
)
@click.option(
    "--public-url",
    help="The address people open, if not http://HOST:PORT/ (behind a proxy or ssh -L).",
)
def dashboard(
    redis_url: str | None,
    host: str,
    port: int,
    namespaces: tuple[str, ...],
    token_file: Path | None,
    manager_config: Path | None,
    show_token: bool,
    public_url: str | None,
) -> None:
    """Serve the dashboard: workers, queues, jobs, failures and departures, live; /metrics for
    Prometheus (send the token as `Authorization: Bearer …`). Read with the config's Redis
    user: give it the read-only monitor one (monitor.toml)."""
    from aiohttp import web

    from rhc.dashboard.app import Dashboard, build_app
    from rhc.manager import Manager

    settings = resolve_settings(redis_url=redis_url, require_secret=False)
    shown = list(dict.fromkeys(namespaces or [settings.namespace]))
    canceller = Manager(config_file=manager_config) if manager_config else None
    if canceller is not None and canceller.settings.namespace not in shown:
        raise ConfigurationError(
            f"--manager-config is for namespace {canceller.settings.namespace!r}, which this "
            f"dashboard does not show ({', '.join(shown)}): add --namespace "
            f"{canceller.settings.namespace}"
        )
    path, token = dashboard_token(token_file)
    app = build_app(Dashboard(settings, shown, token, canceller))
    address = (public_url or f"http://{host}:{port}/").rstrip("/") + "/"
    opened = f"{address}?token={token}" if show_token else f"{address}?token=<the token>"
    click.echo(
        f"rhc dashboard of {', '.join(shown)} at {settings.masked_url}\n"
        f"    {opened}\n"
        f"    (the token is in {path}; /metrics takes it as `Authorization: Bearer …`)"
    )
    if host in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"    from another machine: ssh -L {port}:127.0.0.1:{port} <this host>")
    web.run_app(app, host=host, port=port, print=None, access_log=None)
