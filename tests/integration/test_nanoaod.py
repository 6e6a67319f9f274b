# SPDX-License-Identifier: BSD-3-Clause
"""The NanoAOD layer on real workers: the reference analysis equals a direct computation bin for
bin, per dataset and weighted, bad files can be left out, merging happens on the workers, a
killed worker changes nothing, and results are saved to ROOT files. (Bad files named with their
reasons are in test_bad_input.py.)"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import redis
import uproot

from rhc import Manager
from rhc.nanoaod import Dimuon, run
from rhc.nanoaod.dimuon import BRANCHES, dimuon_pairs, direct
from rhc.nanoaod.generate import generate_physics, generate_resampled
from rhc.wire.keys import Keys
from rhc.wire.protocol import PARTIAL, WorkerInfo
from tests.conftest import Cluster, own_cache, wait_for


def assert_same_analysis(result: dict, expected: dict) -> None:
    """The same datasets, each histogram equal bin for bin (sums of weights and of their
    squares, flow bins included), the same sums of weights and entries, the same MET means."""
    assert list(result["mass"].axes["dataset"]) == list(expected["mass"].axes["dataset"])
    for dataset in expected["mass"].axes["dataset"]:
        found, wanted = result["mass"][dataset, :], expected["mass"][dataset, :]
        assert np.array_equal(found.values(flow=True), wanted.values(flow=True)), dataset
        assert np.array_equal(found.variances(flow=True), wanted.variances(flow=True)), dataset
    assert result["sumw"] == expected["sumw"]
    assert result["entries"] == expected["entries"]
    assert result["met_mean"].keys() == expected["met_mean"].keys()
    for name, mean in expected["met_mean"].items():
        assert result["met_mean"][name] == pytest.approx(mean, rel=1e-6)


def by_name(samples: list[str]) -> dict[str, list[str]]:
    """The real samples as datasets: collision data, and two simulated ones."""
    names = {"nano_dimuon.root": "data", "nano_dy.root": "DY"}
    return {names.get(Path(path).name, "ttbar"): [path] for path in samples}


def test_the_dimuon_histogram_over_the_real_samples_equals_a_direct_computation(cluster, samples):
    # Given two workers and the three real samples cut into 15-event chunks, as three datasets
    cluster.start_workers(2)
    fileset = by_name(samples)
    # When the reference analysis runs on them
    result = run(Manager(), Dimuon(), fileset, chunksize=15, progress=False)
    # Then it equals the single-process computation bin for bin: all 8 selected events
    expected = direct(fileset)
    assert_same_analysis(result.value, expected)
    assert sum(result.value["entries"].values()) == 8
    # And the simulated events weigh their genWeight, summed over every event read; the data
    # events (no genWeight in their file) weigh 1, so their sum of weights is their number
    for dataset, (path,) in fileset.items():
        with uproot.open(path) as root_file:
            tree = root_file["Events"]
            assert ("genWeight" in tree) == (dataset != "data")
            events = tree.arrays([*BRANCHES, *(["genWeight"] if dataset != "data" else [])])
        weights = (
            ak.to_numpy(events.genWeight).astype(np.float64)
            if dataset != "data"
            else np.ones(len(events))
        )
        index, _ = dimuon_pairs(events)
        assert result.value["sumw"][dataset] == weights.sum(), dataset
        filled = result.value["mass"][dataset, :].sum(flow=True)
        assert (filled.value, filled.variance) == (
            weights[index].sum(),
            (weights[index] ** 2).sum(),
        ), dataset
    assert result.value["sumw"]["data"] == 40
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
    assert result.value["entries"]["default"] >= 10_000  # a histogram that is really filled
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
    cluster, generated, tmp_path, redis_client
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
    # and it sends each worker its chunks several to a message (a batch, a span), though the
    # first run scattered them over both workers; so does the next, sized for the cached time
    assert batches_of_last_job(cluster, redis_client) <= len(second.chunks) // 3
    run(manager, Dimuon(), path, chunksize=50_000, progress=False)
    assert batches_of_last_job(cluster, redis_client) <= len(second.chunks) // 3


def batches_of_last_job(cluster: Cluster, redis_client: redis.Redis) -> int:
    keys = Keys(cluster.namespace)
    (job,) = redis_client.zrange(keys.recent_jobs, -1, -1)
    return redis_client.xlen(keys.spans(job.decode()))


def test_a_run_after_one_of_smaller_chunks_sizes_its_batches_afresh(
    cluster, generated, redis_client, tmp_path
):
    # Given a first try over a small file in chunks of 1,000 events: the time of a chunk is
    # remembered for the processor
    cluster.start_workers(2)
    manager = Manager()
    small = generate_physics(tmp_path / "small.root", 20_000, seed=2)
    run(manager, Dimuon(), [str(small)], chunksize=1_000, progress=False)
    # When the same processor runs over chunks of 100,000 events
    path = [str(generated["physics"])]
    run(manager, Dimuon(), path, chunksize=100_000, progress=False)
    # Then its first batches hold a chunk each, as for a function never run: batches sized for
    # the small chunks' time would leave one worker with several large chunks at the end
    keys = Keys(cluster.namespace)
    (job,) = redis_client.zrange(keys.recent_jobs, -1, -1)
    spans = [fields for _, fields in redis_client.xrange(keys.spans(job.decode()))]
    first = sorted(spans, key=lambda fields: float(fields[b"started"]))[:2]
    assert [len(set(fields[b"tasks"].split(b"-"))) for fields in first] == [1, 1]  # "n-n"


def test_two_datasets_keep_their_own_histograms_each_equal_to_its_direct_computation(
    cluster, generated
):
    # Given two workers, and two datasets of a million events each: generated simulation (with
    # a genWeight) and resampled events (without one, as collision data)
    cluster.start_workers(2)
    fileset = {"DY": [str(generated["physics"])], "data": [str(generated["resampled"])]}
    # When the analysis runs over both
    result = run(Manager(), Dimuon(), fileset, chunksize=250_000, progress=False)
    # Then each dataset has its histogram, equal bin for bin to the direct computation
    assert_same_analysis(result.value, direct(fileset))
    # And each is what its dataset gives alone: nothing of one is in the other
    for dataset, files in fileset.items():
        alone = direct(files)["mass"]["default", :]
        found = result.value["mass"][dataset, :]
        assert np.array_equal(found.values(flow=True), alone.values(flow=True)), dataset
        assert result.value["entries"][dataset] >= 10_000, dataset


def test_simulated_events_weigh_their_gen_weight_and_data_events_one(cluster, tmp_path):
    # Given the same 200,000 generated events twice: as simulation with a genWeight (+1, or -1
    # for one in ten), and as collision data without one
    simulation = generate_physics(tmp_path / "simulation.root", 200_000, seed=5)
    data = generate_physics(tmp_path / "data.root", 200_000, seed=5, gen_weight=False)
    cluster.start_workers(2)
    # When the analysis runs over both
    fileset = {"simulation": [str(simulation)], "data": [str(data)]}
    result = run(Manager(), Dimuon(), fileset, chunksize=50_000, progress=False)
    # Then the file without genWeight is no bad file
    assert not result.bad_files and result.events == 400_000
    # And its histogram counts the pairs, while the simulated one sums their genWeights
    with uproot.open(simulation) as root_file:
        events = root_file["Events"].arrays([*BRANCHES, "genWeight"])
    weights = ak.to_numpy(events.genWeight).astype(np.float64)
    index, masses = dimuon_pairs(events)
    edges = np.concatenate([[-np.inf], result.value["mass"].axes["mass"].edges, [np.inf]])
    counts, _ = np.histogram(masses, edges)
    weighted, _ = np.histogram(masses, edges, weights=weights[index])
    histogram = result.value["mass"]
    assert np.array_equal(histogram["data", :].values(flow=True), counts)
    assert np.array_equal(histogram["data", :].variances(flow=True), counts)
    assert np.array_equal(histogram["simulation", :].values(flow=True), weighted)
    assert np.array_equal(histogram["simulation", :].variances(flow=True), counts)  # (±1)² = 1
    assert (weighted < counts).any()
    # And the sums of weights are the data's number of events and the sum of genWeight
    assert result.value["sumw"] == {"data": 200_000.0, "simulation": weights.sum()}
    assert result.value["sumw"]["simulation"] < 0.9 * 200_000
    assert result.value["entries"] == {"data": len(masses), "simulation": len(masses)}


def test_a_result_saved_to_a_root_file_reads_back_with_uproot_bin_for_bin(
    cluster, samples, tmp_path
):
    # Given a run over the three real samples and 100,000 generated events, as four datasets
    cluster.start_workers(2)
    generated = generate_physics(tmp_path / "generated.root", 100_000, seed=6)
    fileset = {**by_name(samples), "generated": [str(generated)]}
    result = run(Manager(), Dimuon(), fileset, chunksize=25_000, progress=False)
    # When it is saved to a ROOT file
    path = tmp_path / "dimuon.root"
    names = result.save(path)
    # Then every dataset's histogram is a TH1D of its own, and the tables of numbers are there
    datasets = ["DY", "data", "generated", "ttbar"]
    assert names == [*(f"mass/{d}" for d in datasets), "sumw", "entries", "met_mean"]
    with uproot.open(path) as root_file:
        for dataset in datasets:
            # And uproot reads each back equal bin for bin, flow bins and sums of squares too
            written, histogram = root_file[f"mass/{dataset}"], result.value["mass"][dataset, :]
            assert written.classname == "TH1D"
            axis = written.axis()
            assert [axis.member(m) for m in ("fNbins", "fXmin", "fXmax")] == [350, 50, 400]
            assert np.array_equal(written.values(flow=True), histogram.values(flow=True))
            assert np.array_equal(written.variances(flow=True), histogram.variances(flow=True))
            assert written.title == f"Dataset: {dataset}"
        sumw = root_file["sumw"]
        assert dict(zip(sumw.axis().labels(), sumw.values(), strict=True)) == result.value["sumw"]
    assert result.value["entries"]["generated"] >= 10_000
