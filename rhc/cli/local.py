# SPDX-License-Identifier: BSD-3-Clause
"""`rhc local`: Redis and N workers on this machine, to try rhc or to run a command against."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from rhc.cli.signals import serve_until_interrupted
from rhc.config import CONFIG_FILE_VARIABLE, child_environment
from rhc.local import LocalCluster


# Options end where COMMAND begins: what follows it is the command's own, options included.
@click.command(context_settings={"allow_interspersed_args": False})
@click.option("-n", "--workers", default=2, show_default=True, help="How many workers.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where Redis, logs and the config file go (default: a temporary directory).",
)
@click.option("--tls", is_flag=True, help="Redis speaks TLS only, with a CA of its own.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def local(workers: int, directory: Path | None, tls: bool, command: tuple[str, ...]) -> None:
    """Run Redis and N workers here. With a COMMAND, run it against them, then stop everything;
    without one, serve until Ctrl-C. Everything after COMMAND is its own:
    rhc local -n 2 python my_job.py --verbose"""
    if command and shutil.which(command[0]) is None:
        raise CommandNotFoundError(command[0])
    with tempfile.TemporaryDirectory(prefix="rhc-local-") as scratch:
        cluster = LocalCluster(directory or Path(scratch), workers=workers, tls=tls)
        click.echo(f"starting Redis and {workers} worker(s) in {cluster.directory} ...", err=True)
        cluster.start()
        try:
            click.echo(f"ready: export {CONFIG_FILE_VARIABLE}={cluster.config_file}", err=True)
            if command:
                env = child_environment(**{CONFIG_FILE_VARIABLE: str(cluster.config_file)})
                try:
                    code = subprocess.call(list(command), env=env)
                except OSError as exc:
                    raise click.ClickException(f"{command[0]}: {exc.strerror}") from exc
            else:
                code = serve_until_interrupted()
        finally:
            click.echo("stopping workers and Redis ...", err=True)
            cluster.stop()
    sys.exit(code)


class CommandNotFoundError(click.ClickException):
    """Raised for a COMMAND that is not on PATH, before anything starts; exit code 127, as a
    shell's."""

    exit_code = 127

    def __init__(self, command: str) -> None:
        super().__init__(f"{command}: command not found (nothing was started)")
