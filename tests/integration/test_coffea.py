# SPDX-License-Identifier: BSD-3-Clause
"""rhc.coffea.Executor on real workers: a coffea processor gives exactly what coffea's own
IterativeExecutor gives, bad files are skipped and reported as coffea reports them, one partial
result per worker reaches the notebook, a killed worker changes nothing, and workers with
another coffea are refused before the run or refuse its items."""

from __future__ import annotations

import importlib.metadata
import threading
import time
import warnings
from pathlib import Path

import coffea
import numpy as np
import pytest
import uproot
from coffea import processor
from coffea.nanoevents import NanoAODSchema

import rhc.coffea
from rhc import Manager, TaskError
from rhc.coffea.dimuon import CUTS, DimuonProcessor
from rhc.coffea.record import PREPROCESSING, PROCESSING
from rhc.errors import ArgumentError, VersionMismatchError
from rhc.nanoaod.dimuon import direct
from rhc.nanoaod.generate import generate_physics
from tests.coffea_fixtures import FailingProcessor, SlowDimuonProcessor
from tests.conftest import REPOSITORY, assert_says, wait_for

# NanoAODSchema warns of the real samples' missing cross-references, per chunk
pytestmark = pytest.mark.filterwarnings("ignore:Missing cross-reference:RuntimeWarning")

OTHER_COFFEA = "2025.1.0"
"""The version the shadowed coffea of some workers says it is."""


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> str:
    """A million NanoAOD-shaped events (run, luminosityBlock and event included: NanoEvents
    needs them), written once for the module."""
    path = tmp_path_factory.mktemp("generated") / "physics.root"
    return str(generate_physics(path, 1_000_000, seed=1))


def run_coffea(
    executor: processor.ExecutorBase,
    fileset: dict,
    processor_instance: processor.ProcessorABC | None = None,
    **options: object,
) -> object:
    """A processor (the dimuon one by default) through coffea's Runner, as a coffea user runs
    it; with a metadata cache of its own, so that every run reads its files' metadata (both
    phases run on the executor)."""
    runner = processor.Runner(
        executor=executor,
        schema=NanoAODSchema,
        metadata_cache={},
        **{"chunksize": 100_000, **options},
    )
    return runner(
        fileset, treename="Events", processor_instance=processor_instance or DimuonProcessor()
    )


def iterative() -> processor.IterativeExecutor:
    return processor.IterativeExecutor(status=False)


def assert_same_output(output: dict, expected: dict) -> None:
    """Histograms equal bin for bin (flow bins included), cutflows equal, per dataset."""
    assert output.keys() == expected.keys()
    for dataset, want in expected.items():
        got = output[dataset]
        assert np.array_equal(got["mass"].values(flow=True), want["mass"].values(flow=True))
        assert got["cutflow"] == want["cutflow"], dataset


def test_the_executor_takes_its_manager_first_and_copies_as_coffea_copies_it(cluster):
    # Given an executor built as a coffea user builds one
    manager = Manager()
    executor = rhc.coffea.Executor(manager, retries=1, compression=None, timeout=600)
    # When coffea's Runner copies it for a phase
    copy = executor.copy(desc="Preprocessing", unit="file")
    # Then the copy has every setting, and shares the record of the run with the original
    assert isinstance(copy, processor.executor.ExecutorBase)
    assert (copy.manager, copy.retries, copy.timeout, copy.desc) == (
        manager,
        1,
        600,
        "Preprocessing",
    )
    assert copy.last_run is executor.last_run
    # And unknown options and bad values are refused, naming what exists
    with pytest.raises(ArgumentError, match="crash_retries"):
        rhc.coffea.Executor(manager, retry=2)
    with pytest.raises(ArgumentError):
        rhc.coffea.Executor(manager, crash_retries=-1)
    with pytest.raises(ArgumentError):
        rhc.coffea.Executor()


def test_the_dimuon_processor_gives_on_the_real_samples_exactly_what_coffea_gives(cluster, samples):
    # Given two workers and the three real samples in two datasets
    cluster.start_workers(2)
    executor = rhc.coffea.Executor(Manager(), status=False)
    fileset = {"data": samples[:2], "ttbar": samples[2:]}
    # When the coffea dimuon processor runs through rhc, and through coffea's own executor
    output = run_coffea(executor, fileset, chunksize=50)
    expected = run_coffea(iterative(), fileset, chunksize=50)
    # Then the outputs are equal bin for bin, cutflows included
    assert_same_output(output, expected)
    # And they select the 8 events of the reference analysis
    assert sum(output[d]["mass"].sum() for d in output) == sum(direct(samples)["entries"].values())
    assert sum(output[d]["mass"].sum() for d in output) == 8
    assert sum(output[d]["cutflow"][CUTS[0]] for d in output) == 280
    # And the executor the user holds shows both phases of the run, item by item
    run = executor.last_run
    assert [phase.name for phase in run.phases] == [PREPROCESSING, PROCESSING]
    assert len(run.phase(PREPROCESSING).spans) == 3
    assert {span.worker for span in run.spans()} <= {"w0", "w1"}
    assert run.summary().events == 280


def test_the_dimuon_processor_gives_on_a_million_generated_events_exactly_what_coffea_gives(
    cluster, generated, tmp_path
):
    # Given two workers and a generated file of a million events
    cluster.start_workers(2)
    executor = rhc.coffea.Executor(Manager(), status=False)
    fileset = {"DY": [generated]}
    # When the processor runs through rhc in 10 chunks, and through coffea's own executor
    output = run_coffea(executor, fileset)
    expected = run_coffea(iterative(), fileset)
    # Then the outputs are equal bin for bin, with a histogram that is really filled
    assert_same_output(output, expected)
    assert output["DY"]["mass"].sum() >= 10_000
    assert output["DY"]["cutflow"][CUTS[0]] == 1_000_000
    # And the timeline of the run renders
    png = tmp_path / "timeline.png"
    _, summary = executor.last_run.plot_timeline(png)
    assert png.read_bytes()[:4] == b"\x89PNG" and summary.events == 1_000_000


def skipped_files(caught: list[warnings.WarningMessage]) -> set[str]:
    """What coffea reports of the files it skipped: one warning each."""
    return {str(w.message) for w in caught if str(w.message).startswith("Skipping bad file")}


def test_bad_files_are_skipped_and_reported_as_coffeas_own_executor_does(
    cluster, samples, bad_files
):
    # Given two workers, and a fileset with a corrupt file and a truncated one; skipbadfiles
    # naming the errors they raise (True covers OSError only: the truncated file)
    cluster.start_workers(2)
    fileset = {"data": [*samples, bad_files["corrupt"], bad_files["truncated"]]}
    skip = {"skipbadfiles": (OSError, ValueError), "chunksize": 50}
    # When the processor runs through rhc and through coffea's own executor
    with warnings.catch_warnings(record=True) as through_rhc:
        warnings.simplefilter("always")
        output = run_coffea(rhc.coffea.Executor(Manager(), status=False), fileset, **skip)
    with warnings.catch_warnings(record=True) as through_coffea:
        warnings.simplefilter("always")
        expected = run_coffea(iterative(), fileset, **skip)
    # Then both complete with the same output, that of the good files alone
    assert_same_output(output, expected)
    assert output["data"]["cutflow"][CUTS[0]] == 280
    # And both report the same two files skipped, with the reasons and attempts
    reports = skipped_files(through_rhc)
    assert reports == skipped_files(through_coffea)
    assert len(reports) == 2
    assert any(bad_files["truncated"] in report for report in reports)
    assert all("after 4 attempts" in report for report in reports)


def test_with_result_types_a_bad_file_gives_the_err_coffeas_own_executor_gives(
    cluster, samples, bad_files
):
    # Given two workers and a fileset with a truncated file
    cluster.start_workers(2)
    fileset = {"data": [samples[0], bad_files["truncated"]]}
    options = {"skipbadfiles": True, "use_result_type": True}
    # When the processor runs with use_result_type, through rhc and through coffea
    result = run_coffea(rhc.coffea.Executor(Manager(), status=False), fileset, **options)
    expected = run_coffea(iterative(), fileset, **options)
    # Then both give an Err holding the same exception, an OSError naming the file
    assert result.is_err() and expected.is_err()
    assert type(result.exception) is type(expected.exception)
    assert isinstance(result.exception, OSError)
    assert str(result.exception) == str(expected.exception)
    assert bad_files["truncated"] in str(result.exception)


def test_an_error_the_skipped_ones_do_not_cover_is_raised_as_coffeas_own_executor_raises_it(
    cluster, samples, bad_files
):
    # Given two workers and a corrupt file, whose ValueError skipbadfiles=True does not cover
    cluster.start_workers(2)
    fileset = {"data": [samples[1], bad_files["corrupt"]]}
    # When the processor runs through rhc and through coffea's own executor
    with pytest.raises(Exception) as through_rhc:
        run_coffea(rhc.coffea.Executor(Manager(), status=False), fileset, skipbadfiles=True)
    with pytest.raises(Exception) as through_coffea:
        run_coffea(iterative(), fileset, skipbadfiles=True)
    # Then both raise the same exception, and rhc says where it was raised and on what
    assert through_rhc.type is through_coffea.type is ValueError
    assert str(through_rhc.value) == str(through_coffea.value)
    note = "\n".join(getattr(through_rhc.value, "__notes__", []))
    assert_says(note, "raised on rhc worker w", bad_files["corrupt"], "Remote traceback")
    # And once the file is repaired, the same run on the same workers reads it: the failure
    # of the last run (on the worker the file goes back to) is not carried over
    Path(bad_files["corrupt"]).write_bytes(Path(samples[1]).read_bytes())
    output = run_coffea(rhc.coffea.Executor(Manager(), status=False), fileset, skipbadfiles=True)
    assert_same_output(output, run_coffea(iterative(), fileset, skipbadfiles=True))
    assert output["data"]["cutflow"][CUTS[0]] == 2 * uproot.open(samples[1])["Events"].num_entries


def test_a_processor_error_in_one_chunk_is_raised_with_its_causes(cluster, generated):
    # Given two workers and a processor that fails on one chunk of forty
    cluster.start_workers(2)
    executor = rhc.coffea.Executor(Manager(), status=False, retries=0)
    # When it runs
    with pytest.raises(Exception) as raised:
        run_coffea(executor, {"DY": [generated]}, FailingProcessor(at=500_000), chunksize=25_000)
    # Then coffea's error is raised, its cause (the processor's own error) linked to it
    assert "Failed processing file" in str(raised.value)
    assert isinstance(raised.value.__cause__, Exception)
    assert "NoSuchBranch" in str(raised.value.__cause__)


def test_the_notebook_receives_partial_results_per_worker_not_one_per_chunk(cluster, generated):
    # Given two workers and a million events in 40 chunks
    cluster.start_workers(2)
    executor = rhc.coffea.Executor(Manager(), status=False)
    # When the processor runs
    output = run_coffea(executor, {"DY": [generated]}, chunksize=25_000)
    # Then the 40 chunks reached the notebook merged: two partial results per worker at most
    # (the notebook's early request may find a worker between two of its last chunks: it stores
    # what it merged, then the rest after its last)
    processing = executor.last_run.phase(PROCESSING)
    assert processing.items == len(processing.spans) == 40
    assert 1 <= processing.partials <= 2 * 2 < processing.items
    assert executor.last_run.phase(PREPROCESSING).partials == 1
    assert output["DY"]["cutflow"][CUTS[0]] == 1_000_000


def test_a_worker_killed_mid_run_changes_nothing_in_the_output(cluster, generated):
    # Given two workers running the processor over 40 chunks of 0.1 s or more each
    cluster.start_workers(2)
    manager = Manager()

    def kill_w0_when_busy() -> None:
        def busy() -> bool:
            workers = {info.name: info for info in manager.workers().workers}
            return "w0" in workers and workers["w0"].done >= 4

        wait_for(busy, 60, "w0 to have processed chunks")
        cluster.kill_group("w0")
        killed.append(time.monotonic())

    killed: list[float] = []
    killer = threading.Thread(target=kill_w0_when_busy)
    killer.start()
    # When w0's processes are SIGKILLed mid-run
    output = run_coffea(
        rhc.coffea.Executor(manager, status=False),
        {"DY": [generated]},
        SlowDimuonProcessor(seconds=0.1),
        chunksize=25_000,
    )
    finished = time.monotonic()
    killer.join()
    # Then the output is exactly coffea's own, every chunk counted once
    assert killed and killed[0] < finished and cluster.workers["w0"].returncode is not None
    assert_same_output(output, run_coffea(iterative(), {"DY": [generated]}))
    assert output["DY"]["cutflow"][CUTS[0]] == 1_000_000


@pytest.fixture(scope="module")
def other_coffea(tmp_path_factory) -> Path:
    """A directory that, first on a worker's PYTHONPATH, makes it have coffea OTHER_COFFEA: the
    installed package's modules, linked, under a _version.py and metadata of that version. The
    worker advertises what importlib.metadata reads and imports this package."""
    root = tmp_path_factory.mktemp("other-coffea")
    installed = Path(coffea.__file__).parent
    package = root / "coffea"
    package.mkdir()
    for entry in installed.iterdir():
        if entry.name not in ("_version.py", "__pycache__"):
            (package / entry.name).symlink_to(entry)
    version = (installed / "_version.py").read_text().replace(coffea.__version__, OTHER_COFFEA)
    (package / "_version.py").write_text(version)
    metadata = root / f"coffea-{OTHER_COFFEA}.dist-info"
    metadata.mkdir()
    (metadata / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: coffea\nVersion: {OTHER_COFFEA}\n"
    )
    return root


def with_other_coffea(other_coffea: Path) -> dict[str, str]:
    return {"PYTHONPATH": f"{other_coffea}:{REPOSITORY}"}


def test_a_run_is_refused_before_it_starts_when_no_worker_has_the_notebooks_coffea(
    cluster, samples, other_coffea
):
    # Given two workers whose coffea is another than the notebook's
    cluster.start_workers(2, env=with_other_coffea(other_coffea))
    manager = Manager()
    advertised = {info.versions["coffea"] for info in manager.workers().workers}
    assert advertised == {OTHER_COFFEA} != {importlib.metadata.version("coffea")}
    executor = rhc.coffea.Executor(manager, status=False)
    # When a run starts
    with pytest.raises(VersionMismatchError) as refused:
        run_coffea(executor, {"data": samples})
    # Then it is refused before anything is sent, naming both versions and what to do
    assert_says(
        str(refused.value),
        f"this notebook's coffea {coffea.__version__}",
        f"workers w0, w1 have coffea {OTHER_COFFEA}",
        f"pip install 'coffea=={coffea.__version__}'",
    )
    assert executor.last_run.phases == []


def test_a_run_is_refused_when_one_worker_has_another_coffea_as_it_would_fail_its_items(
    cluster, samples, other_coffea
):
    # Given a worker with the notebook's coffea, and one with another
    cluster.start_workers(1)
    cluster.start_workers(1, env=with_other_coffea(other_coffea))
    executor = rhc.coffea.Executor(Manager(), status=False)
    # When a run starts, then it is refused before anything is sent, naming the odd worker
    with pytest.raises(VersionMismatchError) as refused:
        run_coffea(executor, {"data": samples})
    assert_says(
        str(refused.value),
        f"not every worker has this notebook's coffea {coffea.__version__}",
        f"worker w1 has coffea {OTHER_COFFEA}",
        "rhc/worker-coffea",
    )
    assert executor.last_run.phases == []


def test_a_worker_with_another_coffea_that_joins_a_run_refuses_its_items(
    cluster, samples, other_coffea
):
    # Given a run sent while no worker runs (nothing to check against yet)
    executor = rhc.coffea.Executor(Manager(), status=False)
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            run_coffea(executor, {"data": samples})
        except BaseException as exc:
            outcome["raised"] = exc

    runner = threading.Thread(target=run)
    runner.start()
    # When a worker with another coffea starts and takes its items
    cluster.start_workers(1, env=with_other_coffea(other_coffea))
    runner.join(120)
    # Then the worker refused to compute with it: the run fails, saying why
    raised = outcome["raised"]
    assert isinstance(raised, TaskError) and raised.error_type == "VersionMismatchError"
    assert_says(
        str(raised),
        f"worker w0 has coffea {OTHER_COFFEA}",
        f"notebook with coffea {coffea.__version__}",
    )
