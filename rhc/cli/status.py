# SPDX-License-Identifier: BSD-3-Clause
"""`rhc status`: the workers, queues and jobs of a namespace, from the snapshot the dashboard
reads (rhc.dashboard.snapshot)."""

from __future__ import annotations

import time

import click
import redis

from rhc.cli.options import REDIS_URL
from rhc.config import resolve_settings
from rhc.dashboard.snapshot import JobView, NamespaceView, SnapshotReader
from rhc.errors import BrokerError
from rhc.manager.status import Table, WorkerTable
from rhc.wire.connection import connect


@click.command()
@click.argument("redis_url", required=False, type=REDIS_URL)
@click.option("--namespace", help="Namespace to show (default: from config, else the user).")
def status(redis_url: str | None, namespace: str | None) -> None:
    """Show workers, queue depths and the latest jobs."""
    settings = resolve_settings(redis_url=redis_url, namespace=namespace, require_secret=False)
    client = connect(settings, role="status")
    try:
        view = SnapshotReader(client, [settings.namespace]).read().namespaces[0]
    except redis.RedisError as exc:
        raise BrokerError(f"could not read the status from {settings.masked_url}: {exc}") from exc
    finally:
        client.close()
    click.echo(f"namespace {settings.namespace!r} at {settings.masked_url}\n")
    click.echo(f"workers\n{WorkerTable(view.workers)}\n")
    click.echo(f"queues\n{queue_table(view)}\n")
    click.echo(f"jobs\n{job_table(view.jobs)}")


def queue_table(view: NamespaceView) -> Table:
    """Each task stream of the namespace: batches waiting, and taken but unfinished."""
    rows = [(q.stream, q.waiting, q.pending, _age(q.oldest_age)) for q in view.queues]
    rows.append(("routed to workers", view.routed_waiting, "", ""))
    return Table(("stream", "waiting batches", "taken batches", "oldest waiting"), rows)


def job_table(jobs: list[JobView]) -> Table:
    """The latest jobs: who sent them, and how far they are."""
    now = time.time()
    rows = [
        (
            job.id,
            job.record.owner,
            job.record.state,
            job.record.submitted,
            "?" if job.record.total is None else job.record.total,
            job.record.done,
            job.failed,
            "" if job.active is None else f"{now - job.active:.0f} s ago",
        )
        for job in jobs
    ]
    headers = ("job", "owner", "state", "sent", "total", "done", "failed", "last sent")
    return Table(headers, rows)


def _age(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.1f} s"
