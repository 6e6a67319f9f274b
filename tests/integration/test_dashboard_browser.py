# SPDX-License-Identifier: BSD-3-Clause
"""The dashboard as a person sees it: its page in a real headless Chromium (Debian's, driven by
playwright), against a real Redis, real workers and `rhc dashboard` as it is started, opened
from the URL it printed. Every wait is on the page (playwright's expect and wait_for_function),
and each step leaves a screenshot in test-artifacts/."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from rhc.errors import JobCancelledError
from tests import fixtures
from tests.browser import WatchedPage, chromium, screenshot
from tests.dashboard_process import DashboardProcess

HEARTBEAT_TTL = 2.0
"""The test clusters' heartbeat TTL, which the dashboard is told too."""

REFRESH = 1.0
"""The dashboard's snapshot period, which is also its page's polling period."""

SECONDS = 1000  # playwright's timeouts are in milliseconds


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def watched(browser: Browser) -> Iterator[Callable[[], WatchedPage]]:
    """Open pages, each in a fresh browser context (no cookies from another)."""
    opened: list[WatchedPage] = []

    def open_page() -> WatchedPage:
        opened.append(WatchedPage(browser))
        return opened[-1]

    yield open_page
    for page in opened:
        page.close()


@pytest.fixture
def dashboard_of(tmp_path: Path) -> Iterator[Callable[..., DashboardProcess]]:
    started: list[DashboardProcess] = []

    def start(cluster, **options: object) -> DashboardProcess:
        directory = tmp_path / f"dashboard{len(started)}"
        directory.mkdir()
        started.append(
            DashboardProcess(
                cluster.server,
                directory,
                [cluster.namespace],
                heartbeat_ttl=HEARTBEAT_TTL,
                **options,
            )
        )
        return started[-1]

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """Screenshot a step of this test into test-artifacts/<test name>/<step>.png."""
    return lambda page, step: screenshot(page, request.node.name, step)


def open_dashboard(view: WatchedPage, dashboard: DashboardProcess) -> Page:
    """Open the printed URL, as a person clicks it, and mark the page: a reload would unmark it."""
    response = view.page.goto(dashboard.printed_url())
    assert response is not None and response.ok, response and response.status
    assert "token=" not in view.page.url  # the token left the address bar
    view.page.evaluate("window.neverReloaded = true")
    return view.page


def number(page: Page, selector: str) -> int:
    return int(page.locator(selector).inner_text())


def rises_above(page: Page, selector: str, before: int, timeout: float) -> int:
    """Wait until the number shown at selector is above `before`, on this page; return it."""
    page.wait_for_function(
        "([selector, before]) => Number(document.querySelector(selector)?.textContent) > before",
        arg=[selector, before],
        timeout=timeout * SECONDS,
    )
    return number(page, selector)


def test_the_page_shows_both_workers_busy_and_the_job_rising_without_reload(
    cluster, dashboard_of, watched, shot
):
    # Given two workers, and the dashboard's page opened from the URL it printed
    names = cluster.start_workers(2)
    dashboard = dashboard_of(cluster)
    view = watched()
    page = open_dashboard(view, dashboard)
    with cluster.manager() as manager:
        # When a job of 2,000 tasks of 10 ms runs
        job = manager.submit(fixtures.sleep_for, [0.01] * 2000)
        # Then the page shows both workers busy
        for name in names:
            state = page.locator(f'#workers-{cluster.namespace} tr[data-worker="{name}"] td.state')
            expect(state).to_have_text("busy", timeout=10 * SECONDS)
        # and the job's progress rising, on the same page
        done = f"#job-{job.id} .done"
        expect(page.locator(done)).to_have_text(re.compile(r"^[1-9][0-9]*$"), timeout=10 * SECONDS)
        first = number(page, done)
        shot(page, "1-both-workers-busy")
        later = rises_above(page, done, first, timeout=5)
        assert first < later < 2000 and job.state == "running"
        shot(page, "2-progress-risen")
        # When the job's row is clicked, its timeline shows: a row per worker
        page.locator(f"#job-{job.id}").click()
        note = page.locator("#timeline-note")
        expect(note).to_contain_text("on 2 worker(s)", timeout=10 * SECONDS)
        expect(page.locator(f"#job-{job.id}")).to_have_class(re.compile(r"\bselected\b"))
        shot(page, "3-timeline")
        assert page.evaluate("window.neverReloaded") is True
        job.cancel()
    view.assert_no_errors()


def test_a_killed_worker_is_shown_lost_then_among_the_workers_that_left(
    cluster, dashboard_of, watched, shot
):
    # Given two workers running a job, watched on the page
    killed, stopped = cluster.start_workers(2)
    dashboard = dashboard_of(cluster)
    view = watched()
    page = open_dashboard(view, dashboard)
    workers = f"#workers-{cluster.namespace}"
    departures = f"#departures-{cluster.namespace}"
    with cluster.manager() as manager:
        job = manager.submit(fixtures.sleep_for, [0.01] * 2000)
        state = page.locator(f'{workers} tr[data-worker="{killed}"] td.state')
        expect(state).to_have_text("busy", timeout=10 * SECONDS)
        # When one is stopped (SIGTERM): no live worker is left to sweep the other at once,
        # which the dashboard would otherwise show as lost only for one heartbeat interval
        cluster.workers[stopped].terminate()
        cluster.workers[stopped].wait(timeout=30)
        reason = page.locator(f'{departures} tr[data-worker="{stopped}"] .reason')
        expect(reason).to_have_text("SIGTERM", timeout=5 * SECONDS)
        # and the other is killed (SIGKILL of its process group: task process too)
        cluster.kill_group(killed)
        killed_at = time.monotonic()
        # Then the page shows it lost once its heartbeat is older than the TTL (at most one
        # snapshot and one poll of the page later)
        expect(state).to_have_text("lost heartbeat", timeout=10 * SECONDS)
        lost_after = time.monotonic() - killed_at
        shot(page, "1-lost-heartbeat")
        print(f"shown lost {lost_after:.1f} s after the kill")
        assert lost_after < HEARTBEAT_TTL + 2 * REFRESH + 1.0, f"shown lost {lost_after:.1f} s on"
        # When a worker starts (a live one sweeps the dead)
        (sweeper,) = cluster.start_workers(1)
        # Then the killed one is listed among the workers that left: its heartbeat was lost
        reason = page.locator(f'{departures} tr[data-worker="{killed}"] .reason')
        expect(reason).to_have_text(re.compile(r"^heartbeat lost"), timeout=10 * SECONDS)
        expect(page.locator(f'{workers} tr[data-worker="{killed}"]')).to_have_count(0)
        # and the job goes on with the tasks it held, on the new worker
        sweeper_state = page.locator(f'{workers} tr[data-worker="{sweeper}"] td.state')
        expect(sweeper_state).to_have_text("busy", timeout=10 * SECONDS)
        shot(page, "2-among-the-workers-that-left")
        assert page.evaluate("window.neverReloaded") is True
        job.cancel()
    view.assert_no_errors()


# A page of another site that tries to cancel the job with the browser's cookie: a request the
# browser preflights, a simple one (sent with the cookie, without CSRF token), one in no-cors
# mode, and a read of the dashboard's page (for its CSRF token). It writes what happened.
_ATTACKER_PAGE = """<!DOCTYPE html>
<html><body><pre id="outcome">trying</pre><script>
const dashboard = DASHBOARD, body = JSON.stringify(JOB);
const outcome = [];
async function attempt(name, init) {
  try {
    const response = await fetch(dashboard + "api/cancel",
      { method: "POST", credentials: "include", body, ...init });
    outcome.push(`${name}: ${response.type} ${response.status}`);
  } catch (error) { outcome.push(`${name}: blocked`); }
}
(async () => {
  await attempt("json", { headers: { "Content-Type": "application/json" } });
  await attempt("simple", { headers: { "Content-Type": "text/plain" } });
  await attempt("no-cors", { mode: "no-cors", headers: { "Content-Type": "text/plain" } });
  try {
    await (await fetch(dashboard, { credentials: "include" })).text();
    outcome.push("read page: read");
  } catch (error) { outcome.push("read page: blocked"); }
  document.getElementById("outcome").textContent = outcome.join("\\n");
})();
</script></body></html>
"""


@contextmanager
def another_origin(page: str) -> Iterator[str]:
    """Serve `page` from another loopback port (another origin): yield its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass  # quiet: what matters is what the dashboard answered

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_cancel_is_refused_without_the_token_and_from_another_origin_and_ends_the_job_with_it(
    cluster, dashboard_of, watched, shot
):
    # Given a long job running, and a dashboard that may cancel the namespace's jobs
    cluster.start_workers(2)
    dashboard = dashboard_of(cluster, manager_config=cluster.config_file)
    with cluster.manager() as manager:
        job = manager.submit(fixtures.sleep_for, [0.05] * 2000)
        row = f"#job-{job.id}"
        # When the dashboard is opened without the token (a fresh browser, the plain address)
        stranger = watched()
        response = stranger.page.goto(dashboard.url)
        # Then the page itself is refused: there is no cancel button to click
        assert response is not None and response.status == 401
        expect(stranger.page.locator(f"{row} button.cancel")).to_have_count(0)
        shot(stranger.page, "1-without-the-token")
        # Given the page opened with the token, in a browser that now holds its session cookie
        owner = watched()
        page = open_dashboard(owner, dashboard)
        expect(page.locator(f"{row} button.cancel")).to_be_visible(timeout=10 * SECONDS)
        # When a page of another origin, in that same browser, asks to cancel the job
        attack = _ATTACKER_PAGE.replace("DASHBOARD", f'"{dashboard.url}"').replace(
            "JOB", f'{{"namespace": "{cluster.namespace}", "job": "{job.id}"}}'
        )
        answered = []
        with another_origin(attack) as address:
            attacker = owner.context.new_page()
            attacker.on("request", lambda r: r.url.endswith("/api/cancel") and answered.append(r))
            attacker.goto(address)
            outcome = attacker.locator("#outcome")
            expect(outcome).not_to_have_text("trying", timeout=10 * SECONDS)
            shot(attacker, "2-another-origin")
        # Then the browser kept every answer from the page, and the one it saw (no-cors, opaque to
        # the page) is the dashboard's refusal: 403, not 401, so the session cookie went along (a
        # page of another loopback port shares it); what it lacked is the page's CSRF token
        assert outcome.inner_text().splitlines() == [
            "json: blocked",
            "simple: blocked",
            "no-cors: opaque 0",
            "read page: blocked",
        ]
        answers = [request.response() for request in answered]
        assert [answer and answer.status for answer in answers] == [None, None, 403], answered
        # and the job runs on
        rises_above(page, f"{row} .done", number(page, f"{row} .done"), timeout=5)
        assert job.state == "running"
        # When its cancel button is clicked on the page opened with the token
        page.locator(f"{row} button.cancel").click()
        # Then the job ends, cancelled, in the notebook and on the page
        with pytest.raises(JobCancelledError):
            job.results(timeout=10)
        expect(page.locator(f"{row} .state")).to_have_text("cancelled", timeout=5 * SECONDS)
        shot(page, "3-cancelled-with-the-token")
        owner.assert_no_errors()
