# SPDX-License-Identifier: BSD-3-Clause
"""`rhc minicondor serve | submit | q | rm | vacate | status`: the mini pool
(rhc.condor.minipool), a mock HTCondor pool for trying rhc and for end-to-end tests. These
commands stay thin; the defaults live in rhc.condor.minipool.settings."""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rhc.cli.signals import serve_until_interrupted
from rhc.config import resolve_pool_token
from rhc.manager.status import Table

if TYPE_CHECKING:
    from rhc.condor.minipool import MiniPoolClient

_POOL_OPTION = click.option(
    "--pool", "pool_url", default=None, help="The mini pool's URL (default: 127.0.0.1, port 9618)."
)


class _CondorTable(Table):
    """A table as condor_q and condor_status print it: no line under the headers."""

    rule = ""


def _pool_client(pool_url: str | None) -> MiniPoolClient:
    # Imported when used: the pool needs the HTCondor bindings, which workers do not have.
    from rhc.condor.minipool import DEFAULT_POOL_URL, MiniPoolClient

    # The token comes from the config (pool_token_file), never from the command line.
    return MiniPoolClient(pool_url or DEFAULT_POOL_URL, token=resolve_pool_token())


@click.group()
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
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The API token's file (0600), written with a fresh token if missing; clients name it "
    "in their config (pool_token_file).",
)
@click.option(
    "--server-name",
    "server_names",
    multiple=True,
    help="A host name clients reach the pool by, besides loopback (repeatable).",
)
@click.option(
    "--allow-vanilla", is_flag=True, default=None, help="Run vanilla jobs (as the pool's user)."
)
@click.option(
    "--allow-image",
    "allowed_images",
    multiple=True,
    help="An image pattern docker jobs may name (repeatable; default rhc/worker:*, "
    "rhc/worker-coffea:*).",
)
@click.option("--pids-limit", type=int, default=None, help="Processes per container (1024).")
@click.option(
    "--max-request-bytes", type=int, default=None, help="Largest request body (default 1 MB)."
)
def minicondor_serve(
    host: str,
    port: int | None,
    work_dir: Path | None,
    token_file: Path,
    server_names: tuple[str, ...],
    max_request_bytes: int | None,
    **options: object,
) -> None:
    """Run a mini pool until SIGTERM or Ctrl-C; then stop its jobs and exit."""
    from rhc.condor.minipool import MiniPoolServer, Pool, PoolSettings
    from rhc.condor.minipool.access import load_token
    from rhc.condor.minipool.server import DEFAULT_MAX_REQUEST_BYTES
    from rhc.condor.minipool.settings import DEFAULT_PORT

    given = {key: value for key, value in options.items() if value not in (None, ())}
    token = load_token(token_file)
    with tempfile.TemporaryDirectory(prefix="rhc-minipool-") as scratch:
        settings = PoolSettings(work_dir=work_dir or Path(scratch), **given)
        pool = Pool(settings).start()
        try:
            server = MiniPoolServer(
                pool,
                token=token,
                host=host,
                port=DEFAULT_PORT if port is None else port,
                names=server_names,
                max_request_bytes=max_request_bytes or DEFAULT_MAX_REQUEST_BYTES,
            )
            server.start()
            click.echo(
                f"mini pool {settings.name} at {server.url}: {settings.slots} slot(s) of "
                f"{settings.slot_cpus} cpu(s) and {settings.slot_memory_mb} MB; "
                f"work dir {settings.work_dir}",
                err=True,
            )
            serve_until_interrupted()
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
    click.echo(_CondorTable(["ID", "OWNER", "BATCH", "STATE", "REASON"], rows))
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
    click.echo(_CondorTable(["NAME", "CPUS", "MEMORY_MB", "STATE", "JOB"], rows))
    claimed = sum(slot["state"] == "Claimed" for slot in slots)
    click.echo(f"\nTotal: {len(slots)} slot(s); {claimed} claimed, {len(slots) - claimed} free")
