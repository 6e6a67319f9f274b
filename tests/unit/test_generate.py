# SPDX-License-Identifier: BSD-3-Clause
"""Generated NanoAOD files: the samples' schema, deterministic, and enough events that pass."""

from __future__ import annotations

import re
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from click.testing import CliRunner

from rhc.cli.main import cli
from rhc.config import samples_directory
from rhc.nanoaod.dimuon import dimuon_masses as rhc_dimuon_masses
from rhc.nanoaod.generate import generate_physics, generate_resampled

# The reference sample first: the generated files must have its schema.
SAMPLE_NAMES = ["nano_dimuon.root", "nano_dy.root", "nanoAOD_2015_CMS_Open_Data_ttbar.root"]
BRANCHES = [
    "run",
    "luminosityBlock",
    "event",
    "nMuon",
    "Muon_pt",
    "Muon_eta",
    "Muon_phi",
    "Muon_mass",
    "Muon_pfRelIso04_all",
    "Muon_charge",
    "Muon_mediumId",
    "nJet",
    "Jet_pt",
    "Jet_eta",
    "Jet_phi",
    "Jet_mass",
    "MET_pt",
    "MET_phi",
]


@pytest.fixture(scope="module")
def sources() -> list[Path]:
    # A missing samples folder fails these tests, never skips them (DESIGN.md, "Data").
    paths = [samples_directory() / name for name in SAMPLE_NAMES]
    missing = [str(path) for path in paths if not path.is_file()]
    assert not missing, f"the NanoAOD samples are missing: {missing}"
    return paths


@pytest.fixture(scope="module")
def physics_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_physics(tmp_path_factory.mktemp("physics") / "z.root", 200_000, seed=1)


@pytest.fixture(scope="module")
def resampled_file(tmp_path_factory: pytest.TempPathFactory, sources: list[Path]) -> Path:
    path = tmp_path_factory.mktemp("resampled") / "resampled.root"
    return generate_resampled(path, 20_000, sources=sources, seed=1)


def read(path: Path, branches: list[str] = BRANCHES) -> ak.Array:
    with uproot.open(path) as file:
        return file["Events"].arrays(branches)


def schema(path: Path, branches: list[str] | None = None) -> dict[str, tuple[str, str]]:
    """Each branch's C++ type and leaf title (``Muon_pt[nMuon]`` names the shared counter)."""
    with uproot.open(path) as file:
        tree = file["Events"]
        return {
            name: (tree[name].typename, tree[name].member("fLeaves")[0].member("fTitle"))
            for name in (tree.keys() if branches is None else branches)
        }


def dimuon_masses(events: ak.Array) -> np.ndarray:
    """The reference selection (ORIGIN.md), written here independently of rhc."""
    good = events.Muon_mediumId & (events.Muon_pfRelIso04_all < 0.35) & (events.Muon_pt >= 7)
    muons = ak.zip(
        {name: events[f"Muon_{name}"][good] for name in ("pt", "eta", "phi", "mass", "charge")}
    )
    pairs = muons[ak.num(muons) == 2]
    pairs = pairs[ak.all(pairs.pt > 15, axis=1) & (ak.sum(pairs.charge, axis=1) == 0)]
    first, second = pairs[:, 0], pairs[:, 1]
    px = first.pt * np.cos(first.phi) + second.pt * np.cos(second.phi)
    py = first.pt * np.sin(first.phi) + second.pt * np.sin(second.phi)
    pz = first.pt * np.sinh(first.eta) + second.pt * np.sinh(second.eta)
    energy = np.hypot(first.pt * np.cosh(first.eta), first.mass) + np.hypot(
        second.pt * np.cosh(second.eta), second.mass
    )
    return ak.to_numpy(np.sqrt(np.maximum(energy**2 - px**2 - py**2 - pz**2, 0)))


def test_generated_files_have_exactly_the_branches_and_types_of_the_samples(
    sources, physics_file, resampled_file
):
    # Given the reference sample's schema for the branches rhc analyses, and a simulated
    # sample's genWeight
    expected = schema(sources[0], BRANCHES)
    gen_weight = schema(sources[1], ["genWeight"])

    # Then both generated files have those branches, no others, with the same types and
    # counters; the simulated events have a genWeight as well, the resampled ones none (as data)
    assert schema(physics_file) == expected | gen_weight
    assert schema(resampled_file) == expected
    assert expected["nMuon"][0] == "uint32_t"
    assert expected["Muon_pt"] == ("float[]", "Muon_pt[nMuon]")
    assert gen_weight["genWeight"] == ("float", "genWeight")


def test_generated_gen_weights_are_plus_or_minus_one_and_change_no_other_branch(
    tmp_path, physics_file
):
    # Given the same seed with and without genWeight
    weighted = read(physics_file, [*BRANCHES, "genWeight"])
    unweighted = generate_physics(tmp_path / "data.root", 200_000, seed=1, gen_weight=False)

    # Then every other branch is the same, and one weight in about ten is negative
    assert "genWeight" not in schema(unweighted)
    assert ak.array_equal(weighted[BRANCHES], read(unweighted))
    weights = ak.to_numpy(weighted.genWeight)
    assert set(np.unique(weights)) == {-1.0, 1.0}
    assert np.mean(weights < 0) == pytest.approx(0.1, abs=0.01)


def test_extra_branches_make_a_wide_file_of_the_same_events(tmp_path, physics_file):
    # Given the same seed with 20 extra branches, over more than one slice
    wide = generate_physics(tmp_path / "wide.root", 200_000, seed=1, extra_branches=20)
    # Then the file has them, and every other branch holds the same events
    names = set(schema(wide))
    assert {f"Extra_{i}" for i in range(20)} <= names and "Extra_20" not in names
    assert ak.array_equal(
        read(wide, [*BRANCHES, "genWeight"]), read(physics_file, [*BRANCHES, "genWeight"])
    )


def test_a_file_holds_the_requested_number_of_events_numbered_uniquely(tmp_path):
    # When more events than one slice are generated
    path = generate_physics(tmp_path / "z.root", 100_001, seed=3)

    # Then all are written, each with its own event number, and counters match their lists
    events = read(path, ["event", "luminosityBlock", "nMuon", "Muon_pt", "nJet", "Jet_pt"])
    assert len(events) == 100_001
    assert len(np.unique(ak.to_numpy(events.event))) == 100_001
    assert ak.all(events.nMuon == ak.num(events.Muon_pt))
    assert ak.all(events.nJet == ak.num(events.Jet_pt))


def test_the_same_seed_gives_identical_files_and_another_seed_different_ones(tmp_path, sources):
    for name, generate in [
        ("physics", generate_physics),
        (
            "resampled",
            lambda path, events, seed: generate_resampled(path, events, sources=sources, seed=seed),
        ),
    ]:
        # Given three files, two of them with the same seed
        first = read(generate(tmp_path / f"{name}-a.root", 2_000, seed=7))
        again = read(generate(tmp_path / f"{name}-b.root", 2_000, seed=7))
        other = read(generate(tmp_path / f"{name}-c.root", 2_000, seed=8))

        # Then the same seed repeats every array, and another seed changes the kinematics
        assert ak.array_equal(first, again), name
        assert not ak.array_equal(first.MET_pt, other.MET_pt), name
        assert not ak.array_equal(first.Muon_pt, other.Muon_pt), name


def test_physics_dimuon_masses_peak_at_the_z_and_fill_the_histogram(physics_file):
    # When the reference selection runs on 200,000 generated events
    masses = dimuon_masses(read(physics_file))
    in_range = masses[(masses >= 50) & (masses < 400)]

    # Then thousands of masses fill the 50-400 GeV histogram, the most in a 2 GeV bin at the Z
    assert len(in_range) >= 2_000
    counts, edges = np.histogram(in_range, bins=np.arange(50, 402, 2))
    assert 88 <= edges[np.argmax(counts)] < 94
    # And the falling continuum puts entries far from the peak too
    assert ((in_range > 150) & (in_range < 400)).sum() > 100


def test_resampled_events_are_mostly_distinct(resampled_file):
    events = read(resampled_file)

    pairs = np.stack([ak.to_numpy(ak.sum(events.Muon_pt, axis=1)), ak.to_numpy(events.MET_pt)])

    assert np.unique(pairs, axis=1).shape[1] > 0.95 * len(events)
    assert len(np.unique(ak.to_numpy(events.event))) == len(events)


def test_resampled_distributions_stay_close_to_the_sources(sources, resampled_file):
    # Given the pooled source events and 20,000 events resampled from them
    pool = ak.concatenate([read(path) for path in sources])
    events = read(resampled_file)

    # Then smeared kinematics keep their means, and discrete fields keep their values
    for name in ("MET_pt", "nMuon", "nJet"):
        assert ak.mean(events[name]) == pytest.approx(ak.mean(pool[name]), rel=0.05), name
    assert ak.mean(ak.flatten(events.Jet_pt)) == pytest.approx(
        ak.mean(ak.flatten(pool.Jet_pt)), rel=0.05
    )
    assert set(np.unique(ak.flatten(events.Muon_charge))) <= {-1, 1}
    assert ak.mean(ak.flatten(events.Muon_mediumId)) == pytest.approx(
        ak.mean(ak.flatten(pool.Muon_mediumId)), rel=0.1
    )
    assert ak.all(np.abs(events.Muon_phi) <= np.pi)
    assert ak.all(np.abs(events.MET_phi) <= np.pi)


def test_a_missing_source_raises_file_not_found_naming_it(tmp_path, sources):
    missing = tmp_path / "absent.root"

    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))) as raised:
        generate_resampled(tmp_path / "out.root", 10, sources=[*sources, missing])
    assert raised.value.filename == str(missing)
    assert not (tmp_path / "out.root").exists()


def test_zero_events_are_refused(tmp_path, sources):
    with pytest.raises(ValueError, match="events must be positive"):
        generate_physics(tmp_path / "z.root", 0)
    with pytest.raises(ValueError, match="events must be positive"):
        generate_resampled(tmp_path / "r.root", 0, sources=sources)


def test_the_command_line_writes_either_kind_of_file(tmp_path, sources):
    generate = ["nanoaod", "generate"]
    physics = [*generate, "physics", str(tmp_path / "z.root"), "--events", "10", "--seed", "2"]
    resample = [*generate, "resample", str(tmp_path / "r.root"), *map(str, sources)]
    outputs = [
        CliRunner().invoke(cli, arguments) for arguments in (physics, [*resample, "--events", "10"])
    ]

    assert all(output.exit_code == 0 for output in outputs), [o.output for o in outputs]
    assert len(read(tmp_path / "z.root")) == 10
    assert len(read(tmp_path / "r.root")) == 10
    assert all("wrote 10 events" in output.output for output in outputs)


def test_rhcs_dimuon_selection_equals_the_independent_one(sources, physics_file, resampled_file):
    # Given the real samples and both kinds of generated file
    for path in [*sources, physics_file, resampled_file]:
        events = read(path)
        # Then rhc's selection (flat columns, the mass in float64) finds the same pairs with
        # the same masses as this file's (jagged arrays, the mass in float32), up to float32
        # rounding: E² - p² of float32 momenta keeps about four digits
        found, expected = rhc_dimuon_masses(events), dimuon_masses(events)
        assert len(found) == len(expected), path
        np.testing.assert_allclose(found, expected, rtol=1e-3, err_msg=str(path))
