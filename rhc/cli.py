# SPDX-License-Identifier: BSD-3-Clause
"""The `rhc` command: run a worker, show a namespace's status, run a local cluster."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from rhc.config import (
    CONFIG_FILE_VARIABLE,
    mask_url,
    new_secret,
    resolve_settings,
    url_has_password,
    write_config_file,
)
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


@cli.command()
@click.argument("redis_url", required=False)
@click.option("--name", help="Worker name (default: host-ClusterId.ProcId, or host-pid).")
@click.option("--namespace", help="Namespace to serve (default: from config, else the user).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The config file with the password and secret (default: RHC_CONFIG_FILE).",
)
@click.option(
    "--merge-flush-interval",
    type=float,
    default=None,
    help="Longest time a merged partial result stays unsent, in seconds.",
)
@click.option(
    "--cache-bytes",
    type=int,
    default=None,
    help="Memory for cached data (default, and most: half the job's memory).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where local copies of remote files go (default: the job's scratch).",
)
@click.option(
    "--disk-cache-bytes", type=int, default=None, help="Disk for local copies of remote files."
)
@click.option(
    "--preload",
    multiple=True,
    metavar="MODULE",
    help="A module to import before taking tasks (repeatable; default: rhc.nanoaod).",
)
def worker(
    redis_url: str | None,
    name: str | None,
    namespace: str | None,
    config_file: Path | None,
    **options: object,
) -> None:
    """Run a worker. The password and secret come from the config file (RHC_CONFIG_FILE)."""
    from rhc.worker import Worker

    if redis_url and url_has_password(redis_url):
        raise click.UsageError(
            f"{mask_url(redis_url)}: keep the password off the command line (it shows in `ps` "
            f"and in condor's job ad); put redis_password in the file named by "
            f"{CONFIG_FILE_VARIABLE}"
        )
    given = {key: value for key, value in options.items() if value not in (None, ())}
    settings = resolve_settings(redis_url=redis_url, namespace=namespace, config_file=config_file)
    Worker(settings=settings, name=name, **given).run()


@cli.command()
@click.argument("redis_url", required=False)
@click.option("--namespace", help="Namespace to show (default: from config, else the user).")
def status(redis_url: str | None, namespace: str | None) -> None:
    """Show workers, queue depths and running jobs."""
    from rhc.connection import connect
    from rhc.protocol import Keys
    from rhc.status import WorkerTable, job_table, queue_table, worker_infos

    settings = resolve_settings(redis_url=redis_url, namespace=namespace, require_secret=False)
    client = connect(settings, role="status")
    keys = Keys(settings.namespace)
    click.echo(f"namespace {settings.namespace!r} at {settings.masked_url}\n")
    click.echo(f"workers\n{WorkerTable(worker_infos(client, keys))}\n")
    click.echo(f"queues\n{queue_table(client, keys)}\n")
    click.echo(f"running jobs\n{job_table(client, keys)}")


@cli.command()
@click.option("--redis-url", required=True, help="redis://host:port (no password here).")
@click.option(
    "--path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("rhc.toml"),
    show_default=True,
)
@click.option("--namespace", default=None)
def init(redis_url: str, path: Path, namespace: str | None) -> None:
    """Write a config file (mode 0600) with a new secret; the Redis password is asked for."""
    if url_has_password(redis_url):
        raise click.UsageError("give the URL without its password: you are asked for it")
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
        },
    )
    click.echo(
        f"wrote {path} (mode 0600). Use it with: export {CONFIG_FILE_VARIABLE}={path.resolve()}"
    )


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("-n", "--workers", default=2, show_default=True, help="How many workers.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where Redis, logs and the config file go (default: a temporary directory).",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def local(workers: int, directory: Path | None, command: tuple[str, ...]) -> None:
    """Run Redis and N workers here. With a COMMAND, run it against them, then stop everything;
    without one, serve until Ctrl-C."""
    from rhc.local import LocalCluster

    with tempfile.TemporaryDirectory(prefix="rhc-local-") as scratch:
        cluster = LocalCluster(directory or Path(scratch), workers=workers)
        click.echo(f"starting Redis and {workers} worker(s) in {cluster.directory} ...", err=True)
        cluster.start()
        try:
            click.echo(f"ready: export {CONFIG_FILE_VARIABLE}={cluster.config_file}", err=True)
            if command:
                env = {**os.environ, CONFIG_FILE_VARIABLE: str(cluster.config_file)}
                code = subprocess.call(list(command), env=env)
            else:
                code = _serve_until_interrupted()
        finally:
            click.echo("stopping workers and Redis ...", err=True)
            cluster.stop()
    sys.exit(code)


def _serve_until_interrupted() -> int:
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        return 0
