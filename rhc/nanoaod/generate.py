# SPDX-License-Identifier: BSD-3-Clause
"""NanoAOD-shaped files with many events, because the real samples hold only 280 of them.

``generate_physics`` draws events from physics distributions (for clones without the samples),
simulated events with a ``genWeight``; ``generate_resampled`` resamples and smears the real
samples' events, without one (as collision data). Both write the samples' branches with their
types, in slices, so memory stays bounded whatever the number of events.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

from rhc.errors import ArgumentError, MissingFileError

DEFAULT_SLICE_EVENTS = 100_000
"""Events generated and written per ``extend``: bounds memory and makes one basket per branch."""

DEFAULT_SMEAR = 0.01
"""Relative smearing of resampled kinematics: enough to make every event distinct."""

NEGATIVE_WEIGHT_FRACTION = 0.1
"""The share of generated events with a negative genWeight, as in an NLO sample."""

MUON_MASS = 0.10566
Z_MASS = 91.1876
Z_WIDTH = 2.4952

_BRANCH_TYPES = {
    "run": "uint32",
    "luminosityBlock": "uint32",
    "event": "uint64",
    # uproot names the fields Muon_pt, ... and gives them one shared counter, nMuon (as NanoAOD).
    "Muon": "var * {pt: float32, eta: float32, phi: float32, mass: float32, "
    "pfRelIso04_all: float32, charge: int32, mediumId: bool}",
    "Jet": "var * {pt: float32, eta: float32, phi: float32, mass: float32}",
    "MET_pt": "float32",
    "MET_phi": "float32",
}
_JAGGED = {
    "Muon": ("pt", "eta", "phi", "mass", "pfRelIso04_all", "charge", "mediumId"),
    "Jet": ("pt", "eta", "phi", "mass"),
}

_Slice = Callable[[np.random.Generator, int], dict[str, object]]
_WEIGHT_STREAM, _EXTRA_STREAM = 1, 2
"""Seed genWeight's and the extra branches' random streams beside the events' one
(default_rng([seed, stream])): drawing from the events' stream would change every later slice."""


def generate_physics(
    path: str | PathLike[str],
    events: int,
    *,
    seed: int = 0,
    extra_branches: int = 0,
    gen_weight: bool = True,
) -> Path:
    """Write ``events`` Z/Drell-Yan → μμ events with extra muons, jets and MET to ``path``.

    About a third of the events pass the reference dimuon selection, most of them near the Z peak.
    Each event has a ``genWeight`` of +1 or, for one event in ten, -1: the weights of an NLO
    sample, all of one size; ``gen_weight=False`` leaves it out, as collision data has none.
    ``extra_branches`` adds that many float branches (Extra_0, ...) that no analysis reads, their
    baskets between the others' as in a real NanoAOD file of ~1,600 branches: a "wide" file, to
    measure what reading only some branches of a remote file costs. The same seed gives the same
    events with or without genWeight and extra branches: they are drawn from streams of their own.

    Raises:
      ValueError: if ``events`` is not positive, or ``extra_branches`` negative.
    """
    _check_events(events)
    if extra_branches < 0:
        raise ArgumentError(f"extra_branches must not be negative, got {extra_branches}")
    make_slice = _physics_slice
    extra_types = {}
    if extra_branches:
        extra = np.random.default_rng([seed, _EXTRA_STREAM])
        make_slice = _with_extra_branches(make_slice, extra_branches, extra)
        extra_types = {f"Extra_{i}": "float32" for i in range(extra_branches)}
    if gen_weight:
        make_slice = _with_gen_weight(make_slice, np.random.default_rng([seed, _WEIGHT_STREAM]))
        extra_types = {"genWeight": "float32", **extra_types}
    return _write(Path(path), events, np.random.default_rng(seed), make_slice, extra_types)


def generate_resampled(
    path: str | PathLike[str],
    events: int,
    *,
    sources: Sequence[str | PathLike[str]],
    seed: int = 0,
    smear: float = DEFAULT_SMEAR,
) -> Path:
    """Write ``events`` events drawn with replacement from ``sources`` and smeared to ``path``.

    Momenta and masses are scaled by 1 + N(0, smear), eta and phi shifted by N(0, smear); charges,
    IDs and multiplicities are kept, and run/luminosityBlock/event are renumbered to be unique.

    Raises:
      ValueError: if ``events`` is not positive, ``sources`` is empty or ``smear`` is negative.
      FileNotFoundError: if a source does not exist.
    """
    _check_events(events)
    if not sources:
        raise ArgumentError("resampling needs at least one source file")
    if smear < 0:
        raise ArgumentError(f"smear must not be negative, got {smear}")
    for source in sources:
        if not Path(source).is_file():
            raise MissingFileError(errno.ENOENT, "NanoAOD source not found", str(source))
    names = ["MET_pt", "MET_phi"] + [f"{c}_{f}" for c, fields in _JAGGED.items() for f in fields]
    pool = ak.concatenate([_read(source, names) for source in sources])

    def resample_slice(rng: np.random.Generator, n: int) -> dict[str, object]:
        picked = pool[rng.integers(0, len(pool), n)]
        out: dict[str, object] = {}
        for collection, fields in _JAGGED.items():
            counts = ak.to_numpy(ak.num(picked[f"{collection}_pt"]))
            flat = {f: ak.to_numpy(ak.flatten(picked[f"{collection}_{f}"])) for f in fields}
            out[collection] = _objects(counts, _smeared(rng, flat, smear))
        met = {name: ak.to_numpy(picked[name]) for name in ("MET_pt", "MET_phi")}
        out.update(_smeared(rng, met, smear))
        return out

    return _write(Path(path), events, np.random.default_rng(seed), resample_slice)


def _check_events(events: int) -> None:
    if events <= 0:
        raise ArgumentError(f"events must be positive, got {events}")


def _read(source: str | PathLike[str], names: list[str]) -> ak.Array:
    with uproot.open(source) as file:
        return file["Events"].arrays(names)


def _with_extra_branches(make_slice: _Slice, count: int, values: np.random.Generator) -> _Slice:
    def wide_slice(rng: np.random.Generator, n: int) -> dict[str, object]:
        extra = {f"Extra_{i}": values.normal(size=n).astype(np.float32) for i in range(count)}
        return {**make_slice(rng, n), **extra}

    return wide_slice


def _with_gen_weight(make_slice: _Slice, weights: np.random.Generator) -> _Slice:
    def weighted_slice(rng: np.random.Generator, n: int) -> dict[str, object]:
        found = make_slice(rng, n)
        negative = weights.random(n) < NEGATIVE_WEIGHT_FRACTION
        return {**found, "genWeight": np.where(negative, -1.0, 1.0).astype(np.float32)}

    return weighted_slice


def _write(
    path: Path,
    events: int,
    rng: np.random.Generator,
    make_slice: _Slice,
    extra_types: dict[str, str] | None = None,
) -> Path:
    """Write the events of make_slice, the samples' branches and then `extra_types`."""
    types = _BRANCH_TYPES | (extra_types or {})
    with uproot.recreate(path) as file:
        tree = file.mktree("Events", types)
        _make_counters_unsigned(tree)
        for start in range(0, events, DEFAULT_SLICE_EVENTS):
            stop = min(start + DEFAULT_SLICE_EVENTS, events)
            index = np.arange(start, stop, dtype=np.uint64)
            # Fresh numbers, unique per file, so resampled events are not duplicates to a reader.
            numbers = {
                "run": np.ones(stop - start, dtype=np.uint32),
                "luminosityBlock": (index // 1000 + 1).astype(np.uint32),
                "event": index + 1,
            }
            tree.extend({**numbers, **make_slice(rng, stop - start)})
    return path


def _make_counters_unsigned(tree: uproot.WritableTree) -> None:
    """Declare the counters (nMuon, nJet) uint32, as NanoAOD does; uproot always writes int32."""
    # uproot 5.7 has no option for the counter type, and mktree has already written the TTree
    # metadata: change the counters' type and have the first extend rewrite the metadata, as uproot
    # does for trees it opened from a file. The schema test in test_generate.py guards this.
    cascading = tree._cascading
    for datum in (d for d in cascading._branch_data if d.get("kind") == "counter"):
        datum["dtype"], datum["fTitle"] = np.dtype(">u4"), datum["fName"] + "/i"
    cascading._needs_relocation_before_extend = True


def _objects(counts: np.ndarray, fields: dict[str, np.ndarray]) -> ak.Array:
    """Jagged records (one list per event) from flat per-object arrays, as the tree wants them."""
    fields = {f: v.astype(np.float32) if v.dtype == np.float64 else v for f, v in fields.items()}
    return ak.unflatten(ak.zip(fields, depth_limit=1), counts)


def _smeared(
    rng: np.random.Generator, flat: dict[str, np.ndarray], smear: float
) -> dict[str, np.ndarray]:
    """Kinematics (named *pt, *mass, *eta, *phi) smeared; other fields, such as charge, kept."""
    out = {}
    for name, values in flat.items():
        kind = name.rsplit("_", 1)[-1]
        if kind in ("pt", "mass"):
            values = values * (1 + rng.normal(0, smear, len(values)))
        elif kind in ("eta", "phi"):
            values = values + rng.normal(0, smear, len(values))
            if kind == "phi":
                values = (values + np.pi) % (2 * np.pi) - np.pi
        out[name] = values.astype(flat[name].dtype)
    return out


def _physics_slice(rng: np.random.Generator, n: int) -> dict[str, object]:
    # 70 % of events hold a prompt pair: 80 % of them from the Z, the rest a falling continuum.
    pair_events = np.flatnonzero(rng.random(n) < 0.7)
    k = len(pair_events)
    u = rng.random(k)
    lo, hi = np.arctan((np.array([20.0, 500.0]) - Z_MASS) * 2 / Z_WIDTH)
    z_mass = Z_MASS + Z_WIDTH / 2 * np.tan(lo + u * (hi - lo))  # Breit-Wigner in 20-500 GeV
    dy_mass = (20.0**-2 + u * (500.0**-2 - 20.0**-2)) ** -0.5  # dN/dm ∝ m^-3 in 20-500 GeV
    mass = np.where(rng.random(k) < 0.8, z_mass, dy_mass) * (1 + rng.normal(0, 0.02, k))
    px, py, pz = _decay(rng, mass, rng.gamma(1.5, 8.0, k), rng.normal(0, 1.5, k))
    charge = rng.choice(np.array([-1, 1], dtype=np.int32), k)
    # Non-prompt muons (heavy flavour): soft, mostly non-isolated, often failing the medium ID.
    extra = rng.poisson(0.4, n)
    m = int(extra.sum())
    pt = np.concatenate([np.hypot(px, py), 3 + rng.exponential(6.0, m)])
    muons = {
        "pt": pt,
        "eta": np.concatenate([np.arcsinh(pz / pt[: 2 * k]), rng.uniform(-2.4, 2.4, m)]),
        "phi": np.concatenate([np.arctan2(py, px), rng.uniform(-np.pi, np.pi, m)]),
        "mass": np.full(2 * k + m, MUON_MASS),
        "pfRelIso04_all": np.concatenate([rng.exponential(0.04, 2 * k), rng.exponential(0.8, m)]),
        "charge": np.concatenate([charge, -charge, rng.choice(np.array([-1, 1], np.int32), m)]),
        "mediumId": rng.random(2 * k + m) < np.repeat([0.97, 0.8], [2 * k, m]),
    }
    owner = np.concatenate([pair_events, pair_events, np.repeat(np.arange(n), extra)])
    accepted = (np.abs(muons["eta"]) < 2.4) & (muons["pt"] > 3)
    counts, muons = _sorted_by_pt(n, owner[accepted], {f: v[accepted] for f, v in muons.items()})
    # Jets: Poisson multiplicity, dN/dpt ∝ pt^-4 above 15 GeV, |eta| < 4.7.
    jet_counts = rng.poisson(2.5, n)
    j = int(jet_counts.sum())
    jet_pt = 15.0 * rng.random(j) ** (-1 / 3)
    jets = {
        "pt": jet_pt,
        "eta": rng.triangular(-4.7, 0, 4.7, j),
        "phi": rng.uniform(-np.pi, np.pi, j),
        "mass": jet_pt * rng.uniform(0.05, 0.3, j),
    }
    jet_counts, jets = _sorted_by_pt(n, np.repeat(np.arange(n), jet_counts), jets)
    return {
        "Muon": _objects(counts, muons),
        "Jet": _objects(jet_counts, jets),
        "MET_pt": rng.rayleigh(20.0, n).astype(np.float32),
        "MET_phi": rng.uniform(-np.pi, np.pi, n).astype(np.float32),
    }


def _decay(
    rng: np.random.Generator, mass: np.ndarray, pt: np.ndarray, rapidity: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lab momenta (first daughters, then second) of isotropic two-muon decays of bosons."""
    k = len(mass)
    boson_phi = rng.uniform(-np.pi, np.pi, k)
    mt = np.hypot(mass, pt)
    beta = np.stack([pt * np.cos(boson_phi), pt * np.sin(boson_phi), mt * np.sinh(rapidity)])
    beta /= mt * np.cosh(rapidity)
    beta2 = np.maximum((beta**2).sum(axis=0), 1e-12)
    gamma = 1 / np.sqrt(1 - beta2)
    cos_theta = rng.uniform(-1, 1, k)
    sin_theta = np.sqrt(1 - cos_theta**2)
    phi = rng.uniform(-np.pi, np.pi, k)
    p_star = np.sqrt(mass**2 / 4 - MUON_MASS**2)
    direction = np.stack([sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta]) * p_star
    lab = []
    for p in (direction, -direction):
        along = (beta * p).sum(axis=0)
        lab.append(p + ((gamma - 1) * along / beta2 + gamma * mass / 2) * beta)
    px, py, pz = np.concatenate(lab, axis=1)
    return px, py, pz


def _sorted_by_pt(
    n: int, owner: np.ndarray, fields: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Group objects by event, leading pt first (NanoAOD's order), and count them per event."""
    order = np.lexsort((-fields["pt"], owner))
    return np.bincount(owner, minlength=n), {f: v[order] for f, v in fields.items()}
