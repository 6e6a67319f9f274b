# SPDX-License-Identifier: BSD-3-Clause
"""`rhc tls`: TLS material for a Redis that workers reach across a network."""

from __future__ import annotations

from pathlib import Path

import click

from rhc.local.tls import DEFAULT_DAYS, generate


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--host",
    "hosts",
    multiple=True,
    required=True,
    help="A name or address clients dial the server by (repeatable).",
)
@click.option("--days", type=int, default=DEFAULT_DAYS, show_default=True, help="Validity.")
@click.option("--port", type=int, default=6379, show_default=True, help="Redis's TLS port.")
def tls(directory: Path, hosts: tuple[str, ...], days: int, port: int) -> None:
    """Write a CA and a certificate it signs for Redis at HOSTs into DIRECTORY (files 0600; the
    CA's key is not kept). Give ca.crt to clients (`rhc init --ca`), the rest to Redis."""
    files = generate(directory, hosts, days=days)
    click.echo(f"wrote {files.ca}, {files.certificate} and {files.key}; in redis.conf:")
    click.echo("\n".join(files.redis_config(port)))
