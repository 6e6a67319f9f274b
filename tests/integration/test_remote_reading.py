# SPDX-License-Identifier: BSD-3-Clause
"""Reading NanoAOD where it lives: over HTTP (nginx) and root:// (a real XRootD server), through
the workers' range cache. The bytes a run moves are counted between the readers and the server,
by a relay both protocols pass through."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import uproot

from rhc import Manager
from rhc.errors import TaskError
from rhc.local import Served, XRootDServer, free_port
from rhc.nanoaod import Dimuon, run
from rhc.nanoaod.dimuon import BRANCHES, direct
from rhc.nanoaod.generate import generate_physics
from rhc.wire.keys import Keys
from rhc.wire.protocol import WorkerInfo
from tests.conftest import own_cache, wait_for

COLD_OVER_DIRECT = 1.3
"""A cold run may move this much more than one process reading the same branches directly."""
WARM_OVER_DIRECT = 0.05


def node_cache(tmp_path: Path) -> Callable[[str], list[str]]:
    """Worker options for workers on one node: one disk cache, no memory cache to speak of."""
    return lambda name: ["--cache-dir", str(tmp_path / "node-cache"), "--cache-bytes", "1"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("served")
    return {
        "physics": generate_physics(directory / "physics.root", 400_000, seed=3),
        # baskets of 8 analysis branches between those of 500 that no one reads, as in NanoAOD
        "wide": generate_physics(directory / "wide.root", 200_000, seed=4, extra_branches=500),
    }


@pytest.fixture(params=["http", "root"])
def served(request, files, tmp_path) -> Iterator[Served]:
    served = Served(request.param, files["physics"].parent, tmp_path / request.param)
    yield served
    served.stop()


def test_a_second_run_moves_5x_fewer_bytes_and_both_equal_the_direct_histogram(
    cluster, files, served, tmp_path
):
    # Given two workers on one node, sharing its disk cache, with memory caches too small to help
    cluster.start_workers(2, options=node_cache(tmp_path))
    manager = Manager()
    urls = [served.url(files["physics"])]
    # When the analysis runs twice over the file's URL
    first = run(manager, Dimuon(), urls, chunksize=100_000, progress=False)
    cold = served.moved()
    second = run(manager, Dimuon(), urls, chunksize=100_000, progress=False)
    warm = served.moved() - cold
    # Then both runs give the direct computation's histogram, the second moving 5x fewer bytes
    expected = direct([str(files["physics"])])["mass"].values(flow=True)
    assert np.array_equal(first.value["mass"].values(flow=True), expected)
    assert np.array_equal(second.value["mass"].values(flow=True), expected)
    assert warm * 5 <= cold, (served.protocol, warm, cold)


def test_a_wide_file_moves_only_the_bytes_of_the_branches_read(cluster, files, served, tmp_path):
    # Given a wide file (500 branches no one reads), and what one process reading the analysis'
    # branches directly moves
    url = served.url(files["wide"])
    with uproot.open(url) as root_file:
        root_file["Events"].arrays([*BRANCHES, *Dimuon.optional_branches], how=dict)
    direct_bytes = served.moved()
    cluster.start_workers(2, options=node_cache(tmp_path))
    manager = Manager()
    # When two workers run the analysis on it cold, then warm
    start = served.moved()
    run(manager, Dimuon(), [url], chunksize=100_000, progress=False)
    cold = served.moved() - start
    run(manager, Dimuon(), [url], chunksize=100_000, progress=False)
    warm = served.moved() - start - cold
    # Then the cold run moves about what the direct read did, the warm one next to nothing
    size = files["wide"].stat().st_size
    figures = f"{served.protocol}: file {size}, direct {direct_bytes}, cold {cold}, warm {warm}"
    assert cold <= COLD_OVER_DIRECT * direct_bytes, figures
    assert warm <= WARM_OVER_DIRECT * direct_bytes, figures
    assert direct_bytes < size / 10, figures  # the file is wide indeed


@pytest.fixture
def xrootd(files) -> Iterator[XRootDServer]:
    server = XRootDServer(files["physics"].parent).start()
    yield server
    server.stop()


def test_with_the_first_redirector_down_files_open_at_the_second(cluster, files, xrootd):
    # Given a CMS logical file name and two redirectors, the first of them down
    cluster.start_workers(2)
    down = f"root://127.0.0.1:{free_port()}/"
    logical = f"/store/{files['physics'].name}"
    # When the analysis runs over the logical name
    result = run(
        Manager(),
        Dimuon(),
        [logical],
        chunksize=100_000,
        redirectors=[down, xrootd.address],
        progress=False,
    )
    # Then every chunk was read at the second, giving the direct histogram
    expected = direct([str(files["physics"])])["mass"].values(flow=True)
    assert np.array_equal(result.value["mass"].values(flow=True), expected)
    assert result.events == 400_000 and not result.bad_files


def test_a_file_at_no_redirector_names_every_attempt(cluster, files, xrootd):
    cluster.start_workers(1)
    down = f"root://127.0.0.1:{free_port()}/"
    with pytest.raises(Exception, match="cannot be opened at any of its 2 locations") as caught:
        run(Manager(), Dimuon(), ["/store/absent.root"], redirectors=[down, xrootd.address])
    assert down in str(caught.value) and xrootd.address in str(caught.value)
    assert "Connection error" in str(caught.value) and "file not found" in str(caught.value)


@pytest.mark.parametrize("skip_bad_files", [False, True])
def test_a_server_stopped_mid_run_is_named_with_the_file(
    cluster, files, xrootd, redis_client, tmp_path, skip_bad_files
):
    # Given two workers reading a file over root:// without caches that could help
    cluster.start_workers(2, options=own_cache(tmp_path, memory=1))
    url = xrootd.url(files["physics"])
    workers = Keys(cluster.namespace).workers

    def stop_after_the_first_chunk() -> None:
        def some_done() -> bool:
            found = [WorkerInfo.decode(raw) for raw in redis_client.hvals(workers)]
            return sum(info.done for info in found) >= 1

        wait_for(some_done, 60, "a chunk to be done")
        xrootd.stop()

    stopper = threading.Thread(target=stop_after_the_first_chunk)
    stopper.start()
    # When the server stops once a chunk is done
    try:
        if not skip_bad_files:
            with pytest.raises(TaskError) as caught:
                run(Manager(), Dimuon(), [url], chunksize=10_000, progress=False)
            # Then the error names the file and its server
            assert url in str(caught.value), str(caught.value)
            return
        result = run(
            Manager(), Dimuon(), [url], chunksize=10_000, skip_bad_files=True, progress=False
        )
    finally:
        stopper.join()
    # Then, skipping bad files, the run completes and reports the file
    assert [bad.file for bad in result.bad_files] == [url]
    assert 0 < result.events < 400_000
