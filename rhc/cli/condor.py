# SPDX-License-Identifier: BSD-3-Clause
"""`rhc condor submit | q | rm`: workers on HTCondor (or the mini pool), from the command line."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click

from rhc import defaults
from rhc.cli.options import DURATION, REDIS_URL
from rhc.condor.credentials import check_proxy, check_token
from rhc.condor.description import UNIVERSES
from rhc.config import (
    Settings,
    resolve_settings,
)
from rhc.errors import ConfigurationError
from rhc.manager.status import Table
from rhc.urls import strip_password

BATCH_NAME = "rhc-workers"


@click.group()
def condor() -> None:
    """Submit rhc workers to HTCondor (or the mini pool named by the condor_pool setting)."""


@condor.command()
@click.option("-n", "--count", default=1, show_default=True, help="How many workers.")
@click.option("--universe", type=click.Choice(UNIVERSES), default="docker", show_default=True)
@click.option(
    "--image",
    envvar="RHC_WORKER_IMAGE",
    help="docker: an image name; container: docker://..., a .sif, /cvmfs/... "
    "(default: RHC_WORKER_IMAGE).",
)
@click.option(
    "--environment",
    type=click.Path(dir_okay=False, path_type=Path),
    help="vanilla: a tarball of a Python environment with rhc, sent with each job.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The workers' 0600 config file, sent with each job (default: the worker_config setting).",
)
@click.option(
    "--redis-url", type=REDIS_URL, help="The URL workers dial (default: the configured one)."
)
@click.option("--namespace", help="The namespace the workers serve.")
@click.option("--request-cpus", default=1, show_default=True)
@click.option("--request-memory", default="2GB", show_default=True)
@click.option("--request-disk", default="4GB", show_default=True)
@click.option("--requirements", help="An extra ClassAd requirements expression.")
@click.option("--site", "sites", multiple=True, help="A +DESIRED_Sites entry (repeatable).")
@click.option(
    "--x509-proxy",
    type=click.Path(dir_okay=False, path_type=Path),
    help="An x509 proxy (voms-proxy-init) sent with each job; the workers' X509_USER_PROXY "
    "(default: the x509_proxy setting).",
)
@click.option(
    "--bearer-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A WLCG bearer token file sent with each job; the workers' BEARER_TOKEN_FILE "
    "(default: the bearer_token_file setting).",
)
@click.option(
    "--lifetime",
    type=DURATION,
    default=f"{defaults.DEFAULT_CREDENTIAL_LIFETIME / 3600:g}h",
    show_default=True,
    help="How long the workers must be able to read data: a proxy or token that expires "
    "sooner is refused. Seconds, or e.g. 90m, 8h, 2d; 0 refuses only what has expired.",
)
@click.option("--batch-name", default=BATCH_NAME, show_default=True)
@click.option("--dry-run", is_flag=True, help="Print the submit description; submit nothing.")
@click.argument("worker_options", nargs=-1, type=click.UNPROCESSED)
def submit(
    count: int,
    universe: str,
    image: str | None,
    environment: Path | None,
    config_file: Path | None,
    redis_url: str | None,
    namespace: str | None,
    request_cpus: int,
    request_memory: str,
    request_disk: str,
    requirements: str | None,
    sites: tuple[str, ...],
    x509_proxy: Path | None,
    bearer_token_file: Path | None,
    lifetime: float,
    batch_name: str,
    dry_run: bool,
    worker_options: tuple[str, ...],
) -> None:
    """Submit COUNT workers. Options after `--` go to `rhc worker` (e.g. -- --cache-bytes N)."""
    bindings()
    from rhc.condor.description import WorkerJob, describe
    from rhc.condor.schedd import scheduler

    settings = resolve_settings(
        require_secret=False,
        namespace=namespace,
        x509_proxy=str(x509_proxy) if x509_proxy else None,
        bearer_token_file=str(bearer_token_file) if bearer_token_file else None,
    )
    proxy = Path(settings.x509_proxy) if settings.x509_proxy else None
    token = Path(settings.bearer_token_file) if settings.bearer_token_file else None
    _check_credentials(proxy, token, lifetime)
    job = WorkerJob(
        redis_url=strip_password(redis_url or settings.redis_url),
        config_file=_worker_config(config_file, settings),
        universe=universe,
        image=image,
        environment=environment,
        namespace=settings.namespace,
        count=count,
        request_cpus=request_cpus,
        request_memory=request_memory,
        request_disk=request_disk,
        requirements=requirements,
        desired_sites=sites,
        x509_proxy=proxy,
        bearer_token_file=token,
        batch_name=batch_name,
        worker_options=worker_options,
    )
    description = describe(job)
    if dry_run:
        click.echo(str(description), nl=False)
        return
    ids = scheduler(settings).submit(description, job.sent_files)
    click.echo(f"{len(ids)} worker job(s) submitted: {', '.join(ids)}")


@condor.command()
@click.option("--batch-name", default=BATCH_NAME, show_default=True)
def q(batch_name: str) -> None:
    """Show the worker jobs: id, state, and why they are idle or held."""
    bindings()
    from rhc.condor.schedd import scheduler

    jobs = scheduler(_settings()).jobs(batch_name)
    rows = [(job.id, job.owner, job.state, job.reason) for job in jobs]
    click.echo(Table(("ID", "OWNER", "STATE", "REASON"), rows))
    click.echo(f"{len(jobs)} job(s) in batch {batch_name!r}")


@condor.command()
@click.argument("ids", nargs=-1)
@click.option("--batch-name", default=BATCH_NAME, show_default=True)
def rm(ids: tuple[str, ...], batch_name: str) -> None:
    """Remove worker jobs (all of the batch, or the given ClusterId.ProcId ids). Workers hand
    back their tasks and exit."""
    bindings()
    from rhc.condor.schedd import scheduler

    removed = scheduler(_settings()).remove(batch_name, list(ids))
    click.echo(f"{removed} job(s) removed")


def bindings() -> None:
    """The HTCondor bindings, or what to install: workers do not need them, so they are extra."""
    try:
        import htcondor2  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            "`rhc condor` needs the HTCondor Python bindings: pip install 'rhc[condor]'"
        ) from exc


def _settings() -> Settings:
    return resolve_settings(require_secret=False)


def _check_credentials(proxy: Path | None, token: Path | None, lifetime: float) -> None:
    """Refuse credentials that are not the user's alone or expire within lifetime seconds; say
    (on stderr, so that a dry run's output stays a description) until when the others last."""
    now = datetime.now(timezone.utc)
    checked = [check_proxy(proxy, lifetime=lifetime, now=now)] if proxy else []
    checked += [check_token(token, lifetime=lifetime, now=now)] if token else []
    for credential in checked:
        click.echo(credential.describe(now), err=True)


def _worker_config(given: Path | None, settings: Settings) -> Path:
    """The file that carries the workers' Redis user and password to them: theirs, never the
    notebook's (which could send tasks)."""
    if given is not None:
        return given
    if not settings.worker_config:
        raise ConfigurationError(
            "workers need a config file of their own, with their Redis user (never the "
            "notebook's): pass --config, or set worker_config in the notebook's config file "
            "(`rhc redis setup` and `rhc local` write both)"
        )
    return Path(settings.worker_config)
