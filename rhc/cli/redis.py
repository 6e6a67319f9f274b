# SPDX-License-Identifier: BSD-3-Clause
"""`rhc redis setup | namespace`: what an operator does to give rhc a Redis of its own, safe
to expose: TLS, ACL users per role and namespace, and a config file per client."""

from __future__ import annotations

from pathlib import Path

import click

from rhc.config import resolve_settings
from rhc.local.setup import add_namespace, set_up, write_namespace_configs
from rhc.wire.connection import connect


@click.group()
def redis() -> None:
    """Set up a Redis for rhc, and give namespaces their users."""


@redis.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--namespace", required=True, help="The first namespace to create users for.")
@click.option(
    "--host",
    "hosts",
    multiple=True,
    required=True,
    help="A name clients dial the server by (repeatable; the first goes in their URL).",
)
@click.option("--port", type=int, default=6379, show_default=True)
@click.option("--no-tls", is_flag=True, help="Plain TCP: only for a Redis no network reaches.")
@click.option(
    "--seen-at",
    type=click.Path(path_type=Path),
    help="Where the Redis server sees DIRECTORY/redis (e.g. a container's mount).",
)
@click.option("--worker-config", default=None, help="Where the notebook sees worker.toml.")
@click.option("--condor-pool", default=None, help="The notebook's condor_pool setting.")
def setup(
    directory: Path,
    namespace: str,
    hosts: tuple[str, ...],
    port: int,
    no_tls: bool,
    seen_at: Path | None,
    worker_config: str | None,
    condor_pool: str | None,
) -> None:
    """Write, into DIRECTORY (0700): redis/ for the server (include redis/security.conf in its
    config), and the config files of the notebook (rhc.toml), the workers (worker.toml), the
    monitor (monitor.toml) and the operator (admin.toml)."""
    notebook = {"worker_config": worker_config, "condor_pool": condor_pool}
    set_up(
        directory,
        namespace=namespace,
        hosts=hosts,
        port=port,
        tls=not no_tls,
        seen_at=seen_at,
        **{name: value for name, value in notebook.items() if value is not None},
    )
    click.echo(f"wrote {directory}: redis/ for the server; rhc.toml, worker.toml, monitor.toml")
    click.echo("and admin.toml for its clients (each holds a password: keep them 0600)")


@redis.command()
@click.argument("name")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--admin-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The operator's config file (admin.toml from `rhc redis setup`).",
)
def namespace(name: str, directory: Path, admin_config: Path) -> None:
    """Create (or renew) the users of namespace NAME, and write its notebook's and its workers'
    config files (rhc.toml, worker.toml) into DIRECTORY."""
    admin = resolve_settings(config_file=admin_config, require_secret=False)
    client = connect(admin, role="admin")
    try:
        users = add_namespace(client, name)
    finally:
        client.close()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_namespace_configs(
        admin.redis_url,
        users,
        notebook_file=directory / "rhc.toml",
        worker_file=(directory / "worker.toml").resolve(),
        namespace=name,
        ca=admin.redis_ca,
    )
    click.echo(f"namespace {name!r}: wrote {directory}/rhc.toml and worker.toml")
