# SPDX-License-Identifier: BSD-3-Clause
"""The notebooks run top to bottom, unattended, against a real local cluster: the example's
histograms equal a direct computation bin for bin, dataset by dataset, and read back from the ROOT
file it saves; the monitoring notebook draws the workers; neither keeps an output or shows a
secret."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import papermill
import pytest

from rhc.config import samples_directory
from rhc.local import Nginx, XRootDServer
from rhc.nanoaod.generate import generate_physics
from tests.conftest import REPOSITORY, Cluster

NOTEBOOKS = REPOSITORY / "notebooks"


def execute(name: str, tmp_path: Path, **parameters: object) -> nbformat.NotebookNode:
    """Run a notebook with papermill in a fresh kernel (which inherits this environment)."""
    output = tmp_path / f"executed-{name}"
    papermill.execute_notebook(
        str(NOTEBOOKS / name),
        str(output),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    return nbformat.read(output, as_version=4)


def assert_no_secret(cluster: Cluster, executed: nbformat.NotebookNode) -> None:
    text = nbformat.writes(executed)
    assert cluster.secret not in text, "the rhc secret shows in the notebook"
    for user in (cluster.users.manager, cluster.users.worker, cluster.server.admin):
        assert user.password not in text, f"{user.name}'s Redis password shows in the notebook"


def text_outputs(executed: nbformat.NotebookNode) -> str:
    return "".join(
        output.get("text", "")
        for cell in executed.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def own_caches(tmp_path: Path):
    """Worker options giving each worker its own cache folder, as on separate condor nodes."""
    return lambda name: ["--cache-dir", str(tmp_path / f"cache-{name}")]


@pytest.mark.parametrize("name", ["example.ipynb", "monitoring.ipynb", "coffea.ipynb"])
def test_the_committed_notebooks_have_no_outputs_and_a_parameters_cell(name):
    # Given a notebook as committed
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    # Then no code cell carries an output or an execution count
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    # And papermill finds its parameters, and no URL or credentials are written in
    assert sum("parameters" in cell.metadata.get("tags", []) for cell in code) == 1
    source = "\n".join(cell.source for cell in code)
    assert not re.search(r"redis://|\w+://[^/\s]*@|password\s*=|secret\s*=", source)


def test_the_example_notebook_equals_a_direct_computation_bin_for_bin(
    cluster, tmp_path, monkeypatch
):
    # Given two workers, the samples served by nginx, and a folder for the generated events
    samples = sorted(samples_directory().glob("*.root"))
    assert len(samples) == 3, f"the NanoAOD samples are missing from {samples_directory()}"
    cluster.start_workers(2, options=own_caches(tmp_path))
    server = Nginx(samples_directory(), tmp_path / "nginx").start()
    report = tmp_path / "report.json"
    monkeypatch.setenv("RHC_SAMPLES_URL", f"http://127.0.0.1:{server.port}")
    monkeypatch.setenv("RHC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RHC_NOTEBOOK_REPORT", str(report))
    # When the example notebook runs top to bottom over a million generated events
    try:
        executed = execute("example.ipynb", tmp_path, generated_events=1_000_000)
    finally:
        server.stop()
    # Then its histograms equal the direct computation, a dataset each, filled by thousands of
    # entries, and read back equal from the ROOT file it saved
    result = json.loads(report.read_text())
    assert result["equal"] is True and result["saved_equal"] is True
    assert result["bins"] == result["expected_bins"]
    assert set(result["bins"]) == {"generated", "data", "DY", "ttbar"}
    assert all(len(bins) == 350 for bins in result["bins"].values())
    assert result["datasets"]["data"] == ["nano_dimuon.root"]
    assert result["entries"] >= 10_000
    # And the plot of the generated events says they are simulation
    assert "Simulation" in result["plot_label"]
    assert result["events"] >= 1_000_000
    assert result["workers"] and set(result["workers"]) <= {"w0", "w1"}
    assert result["warm_speedup"] > 0
    # And the workers read the samples over HTTP, and the verdict is plain to see
    assert server.bytes_sent() > 0
    assert "EQUAL: the workers' histograms" in text_outputs(executed)
    assert_no_secret(cluster, executed)


def test_the_example_notebook_runs_on_generated_events_alone_without_samples(
    cluster, tmp_path, monkeypatch
):
    # Given a clone without the samples, and no folder named for the generated events
    cluster.start_workers(1)
    monkeypatch.setenv("RHC_SAMPLES", str(tmp_path / "no-samples"))
    report = tmp_path / "report.json"
    monkeypatch.setenv("RHC_NOTEBOOK_REPORT", str(report))
    # When the example notebook runs
    executed = execute("example.ipynb", tmp_path, generated_events=100_000)
    # Then it falls back to generated events in a temporary folder, and still agrees
    result = json.loads(report.read_text())
    assert result["equal"] is True and result["events"] == 100_000
    assert list(result["bins"]) == ["generated"] and result["saved_equal"] is True
    assert result["entries"] >= 10_000
    assert "generated events only" in text_outputs(executed)
    assert_no_secret(cluster, executed)


def test_the_monitoring_notebook_draws_rolling_rates_of_every_worker_and_job(cluster, tmp_path):
    # Given two workers
    cluster.start_workers(2)
    # When the monitoring notebook watches them for a few seconds while a demo job runs
    executed = execute("monitoring.ipynb", tmp_path, seconds=3, demo_tasks=100)
    # Then it drew the figure with the workers table, and saw both workers
    outputs = [
        output for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs
    ]
    assert any("image/png" in output.get("data", {}) for output in outputs)
    assert any("<table>" in output.get("data", {}).get("text/html", "") for output in outputs)
    assert "workers seen: w0, w1" in text_outputs(executed)
    # and the demo job as the dashboard sees it: its 100 tasks done
    jobs = [
        output["data"]["text/html"]
        for output in outputs
        if "events/s" in output.get("data", {}).get("text/html", "")
    ]
    assert jobs and "100/100" in jobs[-1], jobs[-1:]
    assert_no_secret(cluster, executed)


def test_the_coffea_notebook_reads_over_root_and_equals_coffeas_own_executor(
    cluster, tmp_path, monkeypatch
):
    # Given two workers, and an XRootD server serving the samples and the generated events
    served = tmp_path / "served"
    (served / "nanoaod").mkdir(parents=True)
    for sample in sorted(samples_directory().glob("*.root")):
        shutil.copy(sample, served / "nanoaod")
    generate_physics(served / "generated" / "physics-200000.root", 200_000, seed=1)
    cluster.start_workers(2, options=own_caches(tmp_path))
    server = XRootDServer(served).start()
    report = tmp_path / "report.json"
    monkeypatch.setenv("RHC_SAMPLES_XROOTD", f"root://127.0.0.1:{server.port}//store/nanoaod")
    monkeypatch.setenv("RHC_DATA_XROOTD", f"root://127.0.0.1:{server.port}//store/generated")
    monkeypatch.setenv("RHC_DATA_DIR", str(served / "generated"))
    monkeypatch.setenv("RHC_NOTEBOOK_REPORT", str(report))
    # When the coffea notebook runs top to bottom
    try:
        executed = execute("coffea.ipynb", tmp_path, generated_events=200_000, chunksize=50_000)
    finally:
        server.stop()
    # Then the workers read every file over root://, and the output equals coffea's own
    # executor's over the local files, bin for bin and cut for cut
    result = json.loads(report.read_text())
    files = [file for files in result["files"].values() for file in files]
    assert len(files) == 4 and all(file.startswith("root://") for file in files)
    assert result["equal"] is True and result["bins"] == result["expected_bins"]
    assert result["entries"] >= 10_000 and result["cutflow"]["events"] == 200_000
    assert all(partials <= 2 * 2 for partials in result["partials"])  # two per worker at most
    assert "EQUAL to coffea's IterativeExecutor" in text_outputs(executed)
    assert_no_secret(cluster, executed)
