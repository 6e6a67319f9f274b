# SPDX-License-Identifier: BSD-3-Clause
"""The NanoAOD layer on real workers: the reference analysis equals a direct computation bin for
bin, bad files can be left out, merging happens on the workers, and a killed worker changes
nothing. (Bad files named with their reasons are in test_bad_input.py.)"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest

from rhc import Manager
from rhc.nanoaod import Dimuon, run
from rhc.nanoaod.dimuon import direct
from rhc.nanoaod.generate import generate_physics, generate_resampled
from rhc.wire.keys import Keys
from rhc.wire.protocol import PARTIAL, WorkerInfo
from tests.conftest import own_cache, wait_for


def assert_same_analysis(result: dict, expected: dict) -> None:
    assert np.array_equal(result["mass"].values(flow=True), expected["mass"].values(flow=True))
    assert result["met_mean"].keys() == expected["met_mean"].keys()
    for name, mean in expected["met_mean"].items():
        assert result["met_mean"][name] == pytest.approx(mean, rel=1e-6)


def test_the_dimuon_histogram_over_the_real_samples_equals_a_direct_computation(cluster, samples):
    # Given two workers and the three real samples cut into 15-event chunks
    cluster.start_workers(2)
    # When the reference analysis runs on them
    result = run(
        Manager(),
        Dimuon(),
        {"data": samples[:2], "ttbar": samples[2:]},
        chunksize=15,
        progress=False,
    )
    # Then it equals the single-process computation bin for bin: all 8 selected events
    expected = direct(samples)
    assert_same_analysis(result.value, expected)
    assert result.value["mass"].sum() == expected["mass"].sum() == 8
    # And every chunk is reported once, with its worker and timing
    assert result.events == 280 and len(result.chunks) == 20
    assert {report.worker for report in result.chunks} <= {"w0", "w1"}
    assert all(report.finished >= report.started for report in result.chunks)


def test_skipping_bad_files_completes_and_lists_them(cluster, samples, bad_files):
    cluster.start_workers(2)
    result = run(
        Manager(),
        Dimuon(),
        [*samples, *bad_files.values()],
        skip_bad_files=True,
        chunksize=20,
        progress=False,
    )
    assert_same_analysis(result.value, direct(samples))
    assert {bad.file for bad in result.bad_files} == set(bad_files.values())


def test_the_manager_receives_about_one_partial_per_worker(cluster, samples, caplog):
    cluster.start_workers(2)
    manager = Manager()
    with caplog.at_level(logging.DEBUG, logger="rhc.manager.job"):
        result = run(manager, Dimuon(), samples * 3, chunksize=8, progress=False)
    assert len(result.chunks) == 3 * (5 + 5 + 25)
    partials = [line for line in caplog.messages if f": {PARTIAL} from " in line]
    assert len(partials) <= 6 < len(result.chunks)


@pytest.fixture(scope="module")
def generated(tmp_path_factory, samples) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("generated")
    return {
        "physics": generate_physics(directory / "physics.root", 1_000_000, seed=1),
        "resampled": generate_resampled(
            directory / "resampled.root", 1_000_000, sources=samples, seed=2
        ),
    }


@pytest.mark.parametrize("kind", ["physics", "resampled"])
def test_a_million_generated_events_give_the_direct_histogram_bin_for_bin(cluster, generated, kind):
    cluster.start_workers(2)
    path = str(generated[kind])
    result = run(Manager(), Dimuon(), [path], chunksize=100_000, progress=False)
    expected = direct([path])
    assert_same_analysis(result.value, expected)
    assert result.value["mass"].sum() >= 10_000  # a histogram that is really filled
    assert result.events == 1_000_000 and len(result.chunks) == 10


def test_a_worker_killed_mid_run_does_not_change_the_histogram(cluster, generated, redis_client):
    # Given three workers running the analysis over 40 chunks
    cluster.start_workers(3)
    path = str(generated["physics"])
    workers = Keys(cluster.namespace).workers

    def kill_w0_when_busy() -> None:
        def busy() -> bool:
            raw = redis_client.hget(workers, "w0")
            return raw is not None and WorkerInfo.decode(raw).done >= 2

        wait_for(busy, 60, "w0 to have processed chunks")
        cluster.kill_group("w0")

    killer = threading.Thread(target=kill_w0_when_busy)
    killer.start()
    # When w0's processes are killed mid-run
    result = run(Manager(), Dimuon(), [path], chunksize=25_000, progress=False)
    killer.join()
    # Then the histogram is still exactly the direct one, every chunk counted once
    assert cluster.workers["w0"].returncode is not None
    assert_same_analysis(result.value, direct([path]))
    assert sorted(r.chunk.entry_start for r in result.chunks) == list(range(0, 1_000_000, 25_000))


def test_the_timeline_of_a_real_run_renders_with_its_efficiency(cluster, generated, tmp_path):
    cluster.start_workers(2)
    result = run(Manager(), Dimuon(), [str(generated["physics"])], chunksize=50_000, progress=False)
    png = tmp_path / "timeline.png"
    figure, summary = result.plot_timeline(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    busy = sum(r.finished - r.started for r in result.chunks)
    wall = max(r.finished for r in result.chunks) - min(r.started for r in result.chunks)
    workers = {r.worker for r in result.chunks}
    assert summary.efficiency == pytest.approx(busy / (wall * len(workers)))
    assert f"{100 * summary.efficiency:.1f}%" in figure.axes[0].get_title()
    assert summary.events == 1_000_000


def test_a_second_run_sends_chunks_back_to_the_workers_that_cached_them(
    cluster, generated, tmp_path
):
    cluster.start_workers(2, options=own_cache(tmp_path))
    manager = Manager()
    path = [str(generated["physics"])]
    first = run(manager, Dimuon(), path, chunksize=50_000, progress=False)
    second = run(manager, Dimuon(), path, chunksize=50_000, progress=False)
    where = {r.chunk: r.worker for r in first.chunks}
    same = sum(where[r.chunk] == r.worker for r in second.chunks)
    assert same >= 0.9 * len(second.chunks), (same, len(second.chunks))
    assert second.bytes_read * 5 <= first.bytes_read
    assert_same_analysis(second.value, first.value)
