# SPDX-License-Identifier: BSD-3-Clause
"""The `rhc` command: run a worker, show a namespace's status, run a local cluster."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
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


# --- rhc minicondor: the mini pool (rhc.condor.minipool) ------------------------------------
# A mock HTCondor pool for trying rhc and for end-to-end tests; these commands stay thin, and
# the defaults live in rhc.condor.minipool.settings.

_POOL_OPTION = click.option(
    "--pool", "pool_url", default=None, help="The mini pool's URL (default: 127.0.0.1, port 9618)."
)


def _pool_client(pool_url: str | None):  # -> MiniPoolClient, imported when used
    from rhc.condor.minipool import DEFAULT_POOL_URL, MiniPoolClient

    return MiniPoolClient(pool_url or DEFAULT_POOL_URL)


@cli.group()
def minicondor() -> None:
    """A mock HTCondor pool (schedd + startd) for trying rhc without HTCondor."""


@minicondor.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=None, help="Port (default 9618; 0: any free port).")
@click.option("--slots", type=int, default=None, help="How many jobs run at once (default 4).")
@click.option("--slot-cpus", type=int, default=None, help="Cpus of each slot (default 1).")
@click.option(
    "--slot-memory", "slot_memory_mb", type=int, default=None, help="MB per slot (default 2048)."
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where job scratch directories go (default: a temporary directory, removed on exit).",
)
@click.option(
    "--evict-every", type=float, default=None, help="Evict a running job every S seconds (0: none)."
)
@click.option("--seed", type=int, default=None, help="Seed of the eviction schedule.")
@click.option("--grace", type=float, default=None, help="SIGTERM to SIGKILL, s (default 10).")
@click.option("--network", default=None, help="Docker network for docker-universe jobs.")
@click.option("--docker-user", default=None, help="UID:GID of containers (default: the pool's).")
@click.option(
    "--docker-host-work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The work dir as the Docker engine sees it, when the pool runs in a container.",
)
@click.option("--name", default=None, help="Pool name: slot1@NAME, container labels.")
def minicondor_serve(host: str, port: int | None, work_dir: Path | None, **options: object) -> None:
    """Run a mini pool until SIGTERM or Ctrl-C; then stop its jobs and exit."""
    from rhc.condor.minipool import MiniPoolServer, Pool, PoolSettings
    from rhc.condor.minipool.settings import DEFAULT_PORT

    given = {key: value for key, value in options.items() if value is not None}
    with tempfile.TemporaryDirectory(prefix="rhc-minipool-") as scratch:
        settings = PoolSettings(work_dir=work_dir or Path(scratch), **given)
        pool = Pool(settings).start()
        try:
            server = MiniPoolServer(pool, host=host, port=DEFAULT_PORT if port is None else port)
            server.start()
            click.echo(
                f"mini pool {settings.name} at {server.url}: {settings.slots} slot(s) of "
                f"{settings.slot_cpus} cpu(s) and {settings.slot_memory_mb} MB; "
                f"work dir {settings.work_dir}",
                err=True,
            )
            _serve_until_interrupted()
            # A second Ctrl-C or SIGTERM must not cut the shutdown short and orphan jobs.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            click.echo(
                f"stopping the mini pool's jobs (SIGKILL after {settings.grace:g} s) ...", err=True
            )
            server.stop()
        finally:
            pool.stop()


@minicondor.command("submit")
@click.argument("submit_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@_POOL_OPTION
def minicondor_submit(submit_file: Path, pool_url: str | None) -> None:
    """Submit a submit description, like condor_submit: its executable (if a local file) and
    input files, relative to the current directory, are sent with it."""
    import pwd

    from rhc.condor.minipool import read_transfer_files

    description = submit_file.read_text()
    files = read_transfer_files(description, Path.cwd())
    owner = pwd.getpwuid(os.getuid()).pw_name
    cluster, procs = _pool_client(pool_url).submit(description, files, owner)
    click.echo(f"{len(procs)} job(s) submitted to cluster {cluster}.")


@minicondor.command("q")
@_POOL_OPTION
def minicondor_q(pool_url: str | None) -> None:
    """List the pool's jobs, like condor_q."""
    jobs = _pool_client(pool_url).jobs()
    rows = [
        [job["id"], job["owner"], job["batch_name"] or "", job["state"], job["reason"]]
        for job in jobs
    ]
    click.echo(_table(["ID", "OWNER", "BATCH", "STATE", "REASON"], rows))
    counts = dict.fromkeys(("Idle", "Running", "Held", "Completed", "Removed"), 0)
    for job in jobs:
        counts[job["state"]] = counts.get(job["state"], 0) + 1
    summary = ", ".join(f"{count} {state.lower()}" for state, count in counts.items())
    click.echo(f"\nTotal: {len(jobs)} job(s); {summary}")


def _job_filters(verb: str) -> Callable:
    """The arguments of `rm` and `vacate`: a job id or cluster, a batch, or --all."""

    def decorate(command: Callable) -> Callable:
        for option in (
            _POOL_OPTION,
            click.option("--batch", default=None, help=f"{verb} the jobs of this batch name."),
            click.option("--all", "every_job", is_flag=True, help=f"{verb} every job."),
            click.argument("job", required=False),
        ):
            command = option(command)
        return command

    return decorate


@minicondor.command("rm")
@_job_filters("Remove")
def minicondor_rm(
    job: str | None, every_job: bool, batch: str | None, pool_url: str | None
) -> None:
    """Remove a job (CLUSTER.PROC), a cluster (CLUSTER), a batch, or --all, like condor_rm."""
    removed = _pool_client(pool_url).remove(**_job_selection(job, every_job, batch))
    click.echo(f"{removed} job(s) marked for removal.")


@minicondor.command("vacate")
@_job_filters("Evict")
def minicondor_vacate(
    job: str | None, every_job: bool, batch: str | None, pool_url: str | None
) -> None:
    """Evict running jobs now, like condor_vacate_job: SIGTERM, then they go back to Idle and
    run again."""
    evicted = _pool_client(pool_url).vacate(**_job_selection(job, every_job, batch))
    click.echo(f"{evicted} job(s) evicted.")


def _job_selection(job: str | None, every_job: bool, batch: str | None) -> dict:
    """The filters of `rm` and `vacate`: exactly one of a job id or cluster, a batch, --all."""
    if sum((job is not None, every_job, batch is not None)) != 1:
        raise click.UsageError("give one of: a job id or cluster, --batch NAME, --all")
    cluster = proc = None
    if job is not None:
        head, dot, tail = job.partition(".")
        if not head.isdigit() or (dot and not tail.isdigit()):
            raise click.UsageError(f"{job!r} is not a job id (12.0) or a cluster (12)")
        cluster, proc = int(head), (int(tail) if dot else None)
    return {"cluster": cluster, "proc": proc, "batch_name": batch}


@minicondor.command("status")
@_POOL_OPTION
def minicondor_status(pool_url: str | None) -> None:
    """List the pool's slots, like condor_status."""
    slots = _pool_client(pool_url).status()
    rows = [
        [slot["name"], slot["cpus"], slot["memory_mb"], slot["state"], slot["job"] or ""]
        for slot in slots
    ]
    click.echo(_table(["NAME", "CPUS", "MEMORY_MB", "STATE", "JOB"], rows))
    claimed = sum(slot["state"] == "Claimed" for slot in slots)
    click.echo(f"\nTotal: {len(slots)} slot(s); {claimed} claimed, {len(slots) - claimed} free")


def _table(header: list[str], rows: list[list[object]]) -> str:
    cells = [header, *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def _add_condor_commands() -> None:
    from rhc.condor.commands import condor

    cli.add_command(condor)


_add_condor_commands()
