# SPDX-License-Identifier: BSD-3-Clause
"""`rhc worker`: serve tasks until stopped; the entry point of every worker job."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from rhc.cli.options import REDIS_URL
from rhc.config import resolve_settings

log = logging.getLogger(__name__)

PRELOAD = ("rhc.nanoaod",)
"""What `rhc worker` imports before taking tasks: the NanoAOD stack takes about half a second to
import, which would otherwise delay each worker's first chunk."""


@click.command()
@click.argument("redis_url", required=False, type=REDIS_URL)
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
    help="Where the byte ranges read from remote files are kept (default: the job's scratch); "
    "workers given the same directory share them.",
)
@click.option(
    "--disk-cache-bytes",
    type=int,
    default=None,
    help="Disk for the byte ranges read from remote files.",
)
@click.option(
    "--bearer-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A bearer token file sent with the job (relative to where it starts: its scratch); "
    "tasks find its absolute path in BEARER_TOKEN_FILE.",
)
@click.option(
    "--preload",
    multiple=True,
    default=PRELOAD,
    show_default=True,
    metavar="MODULE",
    help="A module to import before taking tasks (repeatable); its rhc_warm_up(), if it "
    "defines one, runs then too.",
)
def worker(
    redis_url: str | None,
    name: str | None,
    namespace: str | None,
    config_file: Path | None,
    bearer_token_file: Path | None,
    **options: object,
) -> None:
    """Run a worker. The password and secret come from the config file (RHC_CONFIG_FILE)."""
    from rhc.condor.credentials import job_token_file
    from rhc.worker import Worker

    if bearer_token_file is not None:
        # A path, not the token: the worker's task processes inherit it, as readers of
        # root:// and https:// data look for it (the WLCG bearer token discovery).
        os.environ["BEARER_TOKEN_FILE"] = str(job_token_file(bearer_token_file))
        log.info("bearer token file: %s", os.environ["BEARER_TOKEN_FILE"])

    given = {key: value for key, value in options.items() if value is not None}
    settings = resolve_settings(redis_url=redis_url, namespace=namespace, config_file=config_file)
    Worker(settings=settings, name=name, **given).run()
