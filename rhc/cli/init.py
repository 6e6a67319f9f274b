# SPDX-License-Identifier: BSD-3-Clause
"""`rhc init`: write a config file with a fresh secret, asking for the Redis password."""

from __future__ import annotations

from pathlib import Path

import click

from rhc.cli.options import REDIS_URL
from rhc.config import CONFIG_FILE_VARIABLE, new_secret, write_config_file


@click.command()
@click.option(
    "--redis-url", required=True, type=REDIS_URL, help="redis://host:port (no password here)."
)
@click.option(
    "--path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("rhc.toml"),
    show_default=True,
)
@click.option("--namespace", default=None)
@click.option(
    "--ca",
    "ca_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The CA certificate (PEM) that verifies a rediss:// server, copied into the file.",
)
def init(redis_url: str, path: Path, namespace: str | None, ca_file: Path | None) -> None:
    """Write a config file (mode 0600) with a new secret; the Redis password is asked for."""
    password = click.prompt(
        "Redis password (empty for none)", default="", hide_input=True, show_default=False
    )
    write_config_file(
        path,
        {
            "redis_url": redis_url,
            "redis_password": password or None,
            "secret": new_secret(),
            "namespace": namespace,
            "redis_ca": ca_file.read_text() if ca_file else None,
        },
    )
    click.echo(
        f"wrote {path} (mode 0600). Use it with: export {CONFIG_FILE_VARIABLE}={path.resolve()}"
    )
