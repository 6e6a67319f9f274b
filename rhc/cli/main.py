# SPDX-License-Identifier: BSD-3-Clause
"""The `rhc` command: its group, its logging, and how errors end it (one line, no traceback)."""

from __future__ import annotations

import logging
import sys

import click

from rhc.cli.condor import condor
from rhc.cli.dashboard import dashboard
from rhc.cli.init import init
from rhc.cli.keys import keys
from rhc.cli.local import local
from rhc.cli.minicondor import minicondor
from rhc.cli.nanoaod import nanoaod
from rhc.cli.redis import redis
from rhc.cli.status import status
from rhc.cli.worker import worker
from rhc.errors import RhcError


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RhcError as exc:
        click.echo(f"rhc: {exc}", err=True)
        sys.exit(1)


@click.group()
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
def cli(log_level: str) -> None:
    """rhc: fan Python functions out to HTCondor workers through one Redis server."""
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


for _command in (worker, status, dashboard, init, keys, local, redis, condor, minicondor, nanoaod):
    cli.add_command(_command)
