# SPDX-License-Identifier: BSD-3-Clause
"""The dashboard and /metrics against a real Redis and real workers: exact counts, the token,
a Redis that goes away, secrets, the one action, departures and failures."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import requests

from rhc.errors import JobCancelledError, TaskError
from tests import fixtures
from tests.conftest import wait_for
from tests.dashboard_process import DashboardProcess


@pytest.fixture
def dashboard_of(tmp_path: Path):
    started: list[DashboardProcess] = []

    def start(cluster, **options: object) -> DashboardProcess:
        directory = tmp_path / f"dashboard{len(started)}"
        directory.mkdir()
        process = DashboardProcess(cluster.server, directory, [cluster.namespace], **options)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def counter(metrics: dict, name: str, namespace: str) -> float:
    return metrics.get((f"rhc_tasks_{name}_total", (("namespace", namespace),)), 0.0)


def workers_shown(metrics: dict, namespace: str) -> float:
    return sum(
        value
        for (name, labels), value in metrics.items()
        if name == "rhc_workers" and ("namespace", namespace) in labels
    )


def test_metrics_count_a_job_exactly_and_the_live_workers(cluster, dashboard_of):
    # Given two workers and the dashboard's counts before a job
    cluster.start_workers(2)
    dashboard = dashboard_of(cluster)
    ns = cluster.namespace
    wait_for(lambda: workers_shown(dashboard.metrics(), ns) == 2, 10, "both workers in /metrics")
    before = dashboard.metrics()
    # When a job of N tasks runs, k of which raise
    n, failing = 300, [3, 50, 51, 299]
    with cluster.manager() as manager:
        results = manager.remote_map(
            fixtures.fail_on,
            [(x, failing) for x in range(n)],
            return_exceptions=True,
            progress=False,
        )
    assert sum(isinstance(r, TaskError) for r in results) == len(failing)

    # Then /metrics, parsed by prometheus_client, moved by exactly N-k, k and N
    def deltas() -> tuple[float, ...]:
        after = dashboard.metrics()
        return tuple(
            counter(after, name, ns) - counter(before, name, ns)
            for name in ("succeeded", "failed", "submitted", "started")
        )

    wait_for(lambda: deltas()[3] == n, 10, "the started count, flushed with heartbeats")
    assert deltas() == (n - len(failing), len(failing), n, n)
    after = dashboard.metrics()
    assert workers_shown(after, ns) == 2
    histogram = after[("rhc_task_runtime_seconds_count", (("namespace", ns),))]
    assert histogram - before.get(("rhc_task_runtime_seconds_count", (("namespace", ns),)), 0) == n


def queue_gauges(metrics: dict, namespace: str) -> tuple[float | None, float | None]:
    labels = (("namespace", namespace),)
    return metrics.get(("rhc_queue_length", labels)), metrics.get(("rhc_batches_running", labels))


def test_the_queue_gauges_count_batches_waiting_and_batches_taken(cluster, dashboard_of):
    # Given a job of three long tasks, one batch each (their time is not known yet), and no
    # worker yet
    dashboard = dashboard_of(cluster)
    ns = cluster.namespace
    manager = cluster.manager()
    job = manager.submit(fixtures.sleep_for, [30.0] * 3)
    # Then /metrics shows three batches waiting and none taken (read from the job's stream,
    # which no live worker names yet)
    wait_for(lambda: queue_gauges(dashboard.metrics(), ns) == (3, 0), 10, "three waiting")
    # When a worker starts (a function it never ran may be long: it takes none ahead)
    cluster.start_workers(1)
    # Then it has taken one, and two wait
    wait_for(lambda: queue_gauges(dashboard.metrics(), ns) == (2, 1), 20, "two waiting, one taken")
    job.cancel()
    manager.close()


def test_the_dashboard_shows_failures_with_traceback_and_argument(cluster, dashboard_of):
    cluster.start_workers(1)
    dashboard = dashboard_of(cluster)
    with cluster.manager() as manager:
        manager.remote_map(fixtures.fail_on_three, range(5), return_exceptions=True, progress=False)
    shown = wait_for(
        lambda: dashboard.namespace(cluster.namespace)["failures"], 10, "the failure shown"
    )
    failure = shown[0]
    assert failure["task"] == "3" and failure["argument"] == "3"
    assert "fail_on_three" in failure["traceback"] and failure["error"] == "ValueError"
    job = dashboard.namespace(cluster.namespace)["jobs"][0]
    assert (job["done"], job["failed"], job["state"]) == (5, 1, "delivered")
    assert job["expected"] == job["total"] == 5


def test_requests_without_the_right_token_are_refused(cluster, dashboard_of):
    dashboard = dashboard_of(cluster)
    url = dashboard.url
    for path in ("", "api/overview", "metrics", "api/spans?namespace=x&job=y"):
        assert requests.get(url + path, timeout=5).status_code == 401, path
        wrong = {"Authorization": "Bearer not-the-token"}
        assert requests.get(url + path, headers=wrong, timeout=5).status_code == 403, path
    assert requests.get(url + "?token=not-the-token", timeout=5).status_code == 403
    forged = requests.Session()
    forged.cookies.set("rhc_dashboard", "a-guessed-session")
    assert forged.get(url + "api/overview", timeout=5).status_code == 403
    # and the printed URL's token opens a session that reads without the token in the address
    session = dashboard.session()
    assert session.get(url + "api/overview", timeout=5).ok


def test_cancel_needs_the_token_and_the_pages_csrf_token_and_ends_the_job(cluster, dashboard_of):
    # Given a long job running, and a dashboard that may cancel the namespace's jobs
    cluster.start_workers(2)
    dashboard = dashboard_of(cluster, manager_config=cluster.config_file)
    manager = cluster.manager()
    job = manager.submit(fixtures.sleep_for, [0.05] * 2000)
    body = {"namespace": cluster.namespace, "job": job.id}
    url = dashboard.url + "api/cancel"
    # When it is asked without the token, or from a session without the page's CSRF token
    assert requests.post(url, json=body, timeout=5).status_code == 401
    session = dashboard.session()
    assert session.post(url, json=body, timeout=5).status_code == 403
    assert (
        session.post(url, json=body, headers={"X-CSRF-Token": "guess"}, timeout=5).status_code
        == 403
    )
    # Then the job runs on
    assert job.progress.done < 2000
    # When the page's own request comes, with the CSRF token the page holds
    page = session.get(dashboard.url, timeout=5).text
    csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    response = session.post(url, json=body, headers={"X-CSRF-Token": csrf}, timeout=5)
    assert response.ok and response.json() == {"cancelled": True}, response.text
    # Then the notebook's job ends as cancelled, at once
    with pytest.raises(JobCancelledError):
        job.results(timeout=10)
    manager.close()


def test_a_redis_that_goes_away_shows_unreachable_and_recovers(own_redis, dashboard_of):
    server, make = own_redis
    cluster = make()
    dashboard = dashboard_of(cluster)
    wait_for(lambda: dashboard.overview()["redis"]["up"], 10, "Redis up")
    server.stop()
    down = wait_for(
        lambda: (o := dashboard.overview())["redis"]["up"] is False and o, 10, "Redis down"
    )
    assert down["redis"]["error"].startswith("Redis unreachable")
    assert dashboard.metrics()[("rhc_redis_up", ())] == 0
    server.start()
    wait_for(lambda: dashboard.overview()["redis"]["up"], 15, "Redis up again")


def test_workers_that_left_are_shown_with_why(cluster, dashboard_of):
    # Given two workers
    stopped, killed = cluster.start_workers(2)
    dashboard = dashboard_of(cluster)
    # When one gets SIGTERM and the other SIGKILL
    cluster.workers[stopped].send_signal(signal.SIGTERM)
    cluster.workers[stopped].wait(timeout=30)
    cluster.kill_group(killed)
    lost_at = time.monotonic()

    def departures() -> dict[str, str]:
        shown = dashboard.namespace(cluster.namespace)["departures"]
        return {d["worker"]: d["reason"] for d in shown}

    # Then the first is listed at once as stopped by SIGTERM
    assert wait_for(lambda: departures().get(stopped), 10, "the SIGTERM") == "SIGTERM"
    # and the killed one first as lost (its heartbeat is overdue) ...
    wait_for(
        lambda: any(
            w["name"] == killed and w["state"] == "lost heartbeat"
            for w in dashboard.namespace(cluster.namespace)["workers"]
        ),
        10,
        "the killed worker shown as lost",
    )
    # ... then, once another worker sweeps it, among those that left: its heartbeat was lost
    cluster.start_workers(1)
    reason = wait_for(lambda: departures().get(killed), 20, "the sweep")
    assert reason.startswith("heartbeat lost"), reason
    assert time.monotonic() - lost_at < 20


def test_nothing_the_dashboard_serves_holds_a_secret(cluster, dashboard_of):
    cluster.start_workers(1)
    dashboard = dashboard_of(cluster, manager_config=cluster.config_file)
    with cluster.manager() as manager:
        job = manager.submit(fixtures.fail_on_three, range(10), return_exceptions=True)
        job.results()
    session = dashboard.session()
    served = [
        session.get(dashboard.url, timeout=5).text,
        session.get(dashboard.url + "static/dashboard.js", timeout=5).text,
        dashboard.get("api/overview").text,
        dashboard.get(f"api/spans?namespace={cluster.namespace}&job={job.id}").text,
        dashboard.get("metrics").text,
        dashboard.log(),
    ]
    secrets = {
        "monitor password": cluster.server.monitor.password,
        "manager password": cluster.settings["redis_password"],
        "rhc secret": cluster.settings["secret"],
        "task key": cluster.settings["task_key"].split(":", 1)[1],
        "dashboard token (outside the printed URL)": dashboard.token,
    }
    served[-1] = served[-1].replace(dashboard.printed_url(), "")
    for text in served:
        for what, secret in secrets.items():
            assert secret not in text, f"{what} served"


def test_a_nanoaod_run_shows_its_events_and_bytes_read(cluster, dashboard_of, samples):
    # Given two workers and the dashboard
    from rhc.nanoaod import Dimuon, run

    cluster.start_workers(2)
    dashboard = dashboard_of(cluster)
    # When the dimuon analysis runs over the samples
    with cluster.manager() as manager:
        result = run(manager, Dimuon(), samples, chunksize=20, progress=False)

    # Then its job counts the events and the bytes the chunks read, as the run does
    def finished_job() -> dict | None:
        jobs = dashboard.namespace(cluster.namespace)["jobs"]
        return jobs[0] if jobs and jobs[0]["state"] != "running" else None

    job = wait_for(finished_job, 10, "the run's job, ended")
    assert job["counts"]["events"] == result.events
    assert job["counts"]["bytes_read"] == result.bytes_read > 0
    metrics = dashboard.metrics()
    key = ("rhc_counted_total", (("name", "events"), ("namespace", cluster.namespace)))
    assert metrics[key] == result.events


def test_the_managers_notebook_repr_links_the_dashboard_without_its_token(cluster):
    with cluster.manager(dashboard_url="http://127.0.0.1:8787/") as manager:
        shown = manager._repr_html_()
    assert '<a href="http://127.0.0.1:8787/"' in shown and "token" not in shown
    with cluster.manager() as manager:
        assert "<a " not in manager._repr_html_()


def test_a_task_process_killed_is_shown_with_its_signal_and_the_worker_lives_on(
    cluster, dashboard_of
):
    # Given a worker
    (name,) = cluster.start_workers(1)
    dashboard = dashboard_of(cluster)
    # When a task's process is killed as the OOM killer would (retried, then failed)
    with cluster.manager() as manager:
        results = manager.remote_map(
            fixtures.killed_on_two, range(4), return_exceptions=True, progress=False, retries=0
        )
    assert isinstance(results[2], TaskError)
    # Then the page lists it under "workers that left" as its task process's, with the signal,
    # and the worker itself is still there
    ns = wait_for(
        lambda: (ns := dashboard.namespace(cluster.namespace))["departures"] and ns,
        10,
        "the task process's death shown",
    )
    (death,) = ns["departures"]
    assert death["worker"] == name and death["left"] == "0"
    assert "SIGKILL (out of memory, or killed)" in death["reason"], death
    assert [worker["name"] for worker in ns["workers"]] == [name]
