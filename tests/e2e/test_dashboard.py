# SPDX-License-Identifier: BSD-3-Clause
"""The stack's dashboard: through its published port (with its token), and from JupyterLab
through jupyter-server-proxy, showing the pool's workers."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_for
from tests.e2e.conftest import Stack

NAMESPACE = "analysis"


def workers_in_metrics(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "rhc_workers" and sample.labels["namespace"] == NAMESPACE
    )


def test_the_dashboard_on_its_published_port_wants_its_token_and_shows_the_pool_workers(
    stack: Stack, pool_workers
):
    url = stack.dashboard_url
    assert requests.get(url + "health", timeout=10).ok
    assert requests.get(url + "api/overview", timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert requests.get(url + "metrics", headers=wrong, timeout=10).status_code == 403
    # the URL `make run` prints opens a session; the page then reads the overview
    session = requests.Session()
    assert session.get(f"{url}?token={stack.dashboard_token}", timeout=10).ok
    pool = {worker["name"] for worker in pool_workers}

    def shown() -> set[str]:  # the page's data is refreshed every second
        overview = session.get(url + "api/overview", timeout=10).json()
        assert overview["redis"]["up"], overview["redis"]
        return {worker["name"] for ns in overview["namespaces"] for worker in ns["workers"]}

    wait_for(lambda: pool & shown(), 30, f"the pool's workers {pool} on the page")
    # and Prometheus, with the token as a bearer, sees them too
    bearer = {"Authorization": f"Bearer {stack.dashboard_token}"}
    metrics = requests.get(url + "metrics", headers=bearer, timeout=10)
    assert metrics.ok and workers_in_metrics(metrics.text) >= 1


def test_the_dashboard_is_reached_from_jupyterlab_through_its_proxy(stack: Stack, pool_workers):
    # Given a person logged in to JupyterLab (its cookie)
    session = requests.Session()
    jupyter_token = stack.secrets()["jupyter_token"]
    assert session.get(f"{stack.jupyter_url}/lab?token={jupyter_token}", timeout=30).ok
    proxied = f"{stack.jupyter_url}/proxy/dashboard:8787/"
    # When they open the dashboard there: without its token it is refused
    assert session.get(proxied + "api/overview", timeout=30).status_code == 401
    # With it, the page and its data come through the proxy
    page = session.get(f"{proxied}?token={stack.dashboard_token}", timeout=30)
    assert page.ok and 'name="csrf-token"' in page.text, page.text[:500]
    overview = session.get(proxied + "api/overview", timeout=30)
    assert overview.ok and overview.json()["namespaces"][0]["name"] == NAMESPACE
