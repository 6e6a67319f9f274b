# SPDX-License-Identifier: BSD-3-Clause
"""The dashboard's data in Python, for a notebook to draw (notebooks/monitoring.ipynb): the
same snapshots and rates the page shows."""

from __future__ import annotations

from rhc.config import resolve_settings
from rhc.dashboard.history import History
from rhc.dashboard.snapshot import SnapshotReader
from rhc.dashboard.views import overview
from rhc.manager.status import Table
from rhc.wire.connection import connect


class Monitor:
    """Reads the cluster as the dashboard does; poll() once per refresh.

    Parameters:
      namespaces: those to watch (default: the config's).
      settings: as for Manager (a read-only monitor user is enough).
    """

    def __init__(self, namespaces: list[str] | None = None, **settings: object) -> None:
        self.settings = resolve_settings(require_secret=False, **settings)
        self._client = connect(self.settings, role="monitor")
        self._reader = SnapshotReader(self._client, namespaces or [self.settings.namespace])
        self._history = History()

    def __repr__(self) -> str:
        return f"Monitor(url={self.settings.masked_url!r})"

    def poll(self) -> dict:
        """What the dashboard's page gets: Redis, then per namespace its workers, queues,
        jobs (progress, rates, counts, failures), departures and latest failures."""
        snapshot = self._reader.read()
        self._history.add(snapshot)
        return overview(snapshot, self._history, self.settings.heartbeat_interval)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def job_table(namespace: dict) -> Table:
    """A namespace's jobs from poll(): progress, tasks/s, events/s, bytes read, failures."""
    rows = []
    for job in namespace["jobs"]:
        counts, rates = job["counts"], job["count_rates"]
        rows.append(
            (
                job["id"],
                job["state"],
                f"{job['done']}/{job['total'] if job['total'] is not None else '?'}",
                job["rate"],
                rates.get("events", ""),
                f"{counts['bytes_read'] / 1e6:.1f}" if "bytes_read" in counts else "",
                job["failed"],
                job["retried"],
            )
        )
    headers = ("job", "state", "done", "tasks/s", "events/s", "MB read", "failed", "retried")
    return Table(headers, rows)
