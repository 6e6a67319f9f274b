# SPDX-License-Identifier: BSD-3-Clause
"""`rhc nanoaod generate physics | resample`: NanoAOD-shaped files with many events, for trying
an analysis and for benchmarks (the real samples hold a few hundred)."""

from __future__ import annotations

from pathlib import Path

import click

_OUTPUT = click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
_EVENTS = click.option("--events", type=int, required=True, help="How many events to write.")
_SEED = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")


@click.group()
def nanoaod() -> None:
    """NanoAOD files for trying an analysis."""


@nanoaod.group()
def generate() -> None:
    """Write NanoAOD-shaped events: from physics distributions, or resampled from real files."""


@generate.command()
@_OUTPUT
@_EVENTS
@_SEED
@click.option(
    "--extra-branches",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Float branches no analysis reads, as in a wide NanoAOD file (e.g. 500).",
)
@click.option(
    "--gen-weight/--no-gen-weight",
    default=True,
    show_default=True,
    help="Write a genWeight per event, as simulation has; without it the file reads as data.",
)
def physics(output: Path, events: int, seed: int, extra_branches: int, gen_weight: bool) -> None:
    """Z/Drell-Yan to two muons with extra muons, jets and MET, written to OUTPUT."""
    from rhc.nanoaod.generate import generate_physics

    path = generate_physics(
        output, events, seed=seed, extra_branches=extra_branches, gen_weight=gen_weight
    )
    _wrote(events, path)


@generate.command()
@_OUTPUT
@click.argument(
    "sources", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@_EVENTS
@_SEED
@click.option("--smear", type=float, default=None, help="Relative smearing of kinematics.")
def resample(
    output: Path, sources: tuple[Path, ...], events: int, seed: int, smear: float | None
) -> None:
    """Events drawn from the SOURCES files, smeared a little, written to OUTPUT."""
    from rhc.nanoaod.generate import DEFAULT_SMEAR, generate_resampled

    smear = DEFAULT_SMEAR if smear is None else smear
    _wrote(events, generate_resampled(output, events, sources=sources, seed=seed, smear=smear))


def _wrote(events: int, path: Path) -> None:
    click.echo(f"wrote {events} events to {path}")
