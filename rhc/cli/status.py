# SPDX-License-Identifier: BSD-3-Clause
"""`rhc status`: the workers, queues and running jobs of a namespace."""

from __future__ import annotations

import click

from rhc.cli.options import REDIS_URL
from rhc.config import resolve_settings
from rhc.manager.broker import Broker
from rhc.manager.status import WorkerTable, job_table, queue_table

STATUS_RECONNECT_TIMEOUT = 5.0
"""How long `rhc status` waits for a Redis that drops while it reads: a person is waiting."""


@click.command()
@click.argument("redis_url", required=False, type=REDIS_URL)
@click.option("--namespace", help="Namespace to show (default: from config, else the user).")
def status(redis_url: str | None, namespace: str | None) -> None:
    """Show workers, queue depths and running jobs."""
    settings = resolve_settings(redis_url=redis_url, namespace=namespace, require_secret=False)
    broker = Broker(settings, role="status", reconnect_timeout=STATUS_RECONNECT_TIMEOUT)
    try:
        click.echo(f"namespace {settings.namespace!r} at {settings.masked_url}\n")
        workers, jobs = broker.read_workers(), broker.running_jobs()
        compats = {broker.registry.compat}
        compats |= {info.compat for info in workers} | {record.compat for _, record, _ in jobs}
        click.echo(f"workers\n{WorkerTable(workers)}\n")
        click.echo(f"queues\n{queue_table(broker.queue_depths(compats))}\n")
        click.echo(f"running jobs\n{job_table(jobs)}")
    finally:
        broker.close()
