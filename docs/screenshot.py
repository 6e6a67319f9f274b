# SPDX-License-Identifier: BSD-3-Clause
"""Take docs/dashboard.png, the README's picture of the dashboard, during a real run.

    python docs/screenshot.py [OUTPUT.png]

It starts a redis-server of its own, four workers and `rhc dashboard`, runs a job of which
some tasks fail, stops one worker (SIGTERM) and kills another (SIGKILL: its heartbeat is lost,
a live worker sweeps it), starts a long job, opens its timeline, and photographs the page in
Debian's headless chromium at 1400x900. Needs redis-server, chromium and the test extra (the
workers run tests/fixtures.py, and the dashboard is started as the tests start it).
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))  # run as a script: rhc and tests from this checkout

from playwright.sync_api import expect  # noqa: E402

from rhc import Manager  # noqa: E402
from rhc.config import write_config_file  # noqa: E402
from rhc.local import RedisServer, start_worker, stop_workers  # noqa: E402
from rhc.local.setup import namespace_configs  # noqa: E402
from tests import fixtures  # noqa: E402
from tests.browser import WatchedPage, chromium  # noqa: E402
from tests.conftest import wait_for  # noqa: E402
from tests.dashboard_process import DashboardProcess  # noqa: E402

NAMESPACE = "analysis"
WORKERS = ["node01-slot1", "node01-slot2", "node02-slot1", "node02-slot2"]
SECONDS = 1000


def main(output: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="rhc-screenshot-") as scratch:
        directory = Path(scratch)
        server = RedisServer(directory / "redis").start()
        workers = {}
        dashboard = None
        try:
            worker_file = directory / "worker.toml"
            settings, worker_settings = namespace_configs(
                server.url,
                server.add_namespace(NAMESPACE),
                namespace=NAMESPACE,
                worker_file=worker_file,
                ca=server.ca,
                heartbeat_interval=0.25,
                heartbeat_ttl=2.0,
            )
            config = write_config_file(directory / "rhc.toml", settings)
            write_config_file(worker_file, worker_settings)
            for name in WORKERS:
                workers[name] = start_worker(
                    worker_file,
                    scratch=directory,
                    name=name,
                    log_file=directory / f"{name}.log",
                    extra_env={"PYTHONPATH": str(REPOSITORY)},
                )
            dashboard = DashboardProcess(server, directory, [NAMESPACE], manager_config=config)
            wait_for(lambda: registered(dashboard) == len(WORKERS), 60, "the workers")
            with Manager(config_file=config) as manager:
                take(manager, workers, dashboard, output)
        finally:
            stop_workers(list(workers.values()))
            if dashboard is not None:
                dashboard.stop()
            server.stop()


def registered(dashboard: DashboardProcess) -> int:
    return sum(len(ns["workers"]) for ns in dashboard.overview()["namespaces"])


def take(manager: Manager, workers: dict, dashboard: DashboardProcess, output: Path) -> None:
    # Some history for the chart, then a finished job: 600 tasks, 5 of which raise
    manager.remote_map(fixtures.sleep_square, range(1500), progress=False)
    failing = [17, 204, 205, 388, 599]
    manager.remote_map(
        fixtures.fail_on,
        [(x, failing) for x in range(600)],
        return_exceptions=True,
        progress=False,
    )
    # Two workers leave: one asked to (SIGTERM), one killed (its heartbeat is lost)
    stopped, killed = workers[WORKERS[2]], workers[WORKERS[3]]
    stopped.send_signal(signal.SIGTERM)
    stopped.wait(timeout=30)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    # A long job running on the two left
    job = manager.submit(fixtures.sleep_for, [0.02] * 3000)
    with chromium() as browser:
        view = WatchedPage(browser)
        page = view.page
        page.goto(dashboard.printed_url())
        departed = page.locator(f'#departures-{NAMESPACE} tr[data-worker="{WORKERS[3]}"]')
        expect(departed).to_have_count(1, timeout=20 * SECONDS)
        page.locator(f"#job-{job.id}").click()
        expect(page.locator("#timeline-note")).to_contain_text("batches", timeout=10 * SECONDS)
        page.wait_for_function(
            "(id) => Number(document.querySelector(`#job-${id} .done`)?.textContent) > 1200",
            arg=job.id,
            timeout=30 * SECONDS,
        )
        page.locator("details.failure summary").first.click()
        page.screenshot(path=str(output))
        view.assert_no_errors()
        view.close()
    job.cancel()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPOSITORY / "docs" / "dashboard.png")
