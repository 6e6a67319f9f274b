"""Workers at another site than their Redis: through a relay that delays each direction by
25 ms (a 50 ms round trip, as between two grid sites), a job's results are exact."""

from __future__ import annotations

import operator
from collections.abc import Iterator

import pytest

from rhc import Manager
from rhc.local import CountingRelay
from tests import fixtures
from tests.conftest import wait_for

ONE_WAY = 0.025


@pytest.fixture
def wan(cluster) -> Iterator[CountingRelay]:
    """The cluster's Redis as its workers see it across a wide-area link."""
    relay = CountingRelay(cluster.server.port, delay=ONE_WAY).start()
    yield relay
    cluster.stop()  # the workers first: without the link, they would wait to hand back tasks
    relay.stop()


def test_workers_across_a_wan_return_every_result_exactly(cluster, wan):
    # Given two workers that reach Redis only through the delaying relay, the notebook directly
    scheme_and_host = cluster.server.url.rsplit(":", 1)[0]
    cluster.start_workers(2, env={"RHC_REDIS_URL": f"{scheme_and_host}:{wan.port}"})
    manager = Manager()
    # When a map, a merged map and a map with failures run
    squares = manager.remote_map(fixtures.square, range(300), progress=False)
    total = manager.remote_map(fixtures.square, range(300), reduce=operator.add, progress=False)
    failed = manager.remote_map(
        fixtures.fail_on_three, range(6), return_exceptions=True, progress=False
    )
    # Then every result is exact, and the workers' traffic went through the relay
    assert squares == [x * x for x in range(300)]
    assert total == sum(x * x for x in range(300))
    assert [type(r).__name__ for r in failed].count("TaskError") == 1
    assert failed[:3] == [fixtures.fail_on_three(x) for x in range(3)]
    assert wan.bytes_from_server > 0

    # And each worker measured its round trip across the link, which sizes their batches
    def round_trips() -> list[float]:
        return [info.round_trip for info in manager.workers().workers]

    wait_for(lambda: min(round_trips()) >= 2 * ONE_WAY, 10, "each worker's round trip measured")
