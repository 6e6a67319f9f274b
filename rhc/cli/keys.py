# SPDX-License-Identifier: BSD-3-Clause
"""`rhc keys`: rotate the task key that signs what workers run, and end a rotation."""

from __future__ import annotations

import time
from pathlib import Path

import click

from rhc.config import read_config_file, write_config_file
from rhc.errors import ConfigurationError
from rhc.wire.signing import TaskKey, new_task_key

CONFIG = click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The notebook's config file; the workers' is the one its worker_config names.",
)


@click.group()
def keys() -> None:
    """The task key: the notebook signs tasks with it, workers verify with its public half."""


@keys.command()
@CONFIG
@click.option(
    "--overlap",
    type=click.FloatRange(min=0, min_open=True),
    default=24.0,
    show_default=True,
    help="Hours the previous key stays trusted (jobs signed with it may finish meanwhile).",
)
def rotate(config_file: Path, overlap: float) -> None:
    """Sign with a new task key from now on. The workers' config gets its public half and keeps
    the old one as previous_task_public_key for --overlap hours, so jobs signed before still
    run: start new workers with it. `rhc keys end-rotation` ends the overlap at once."""
    notebook, worker_file, worker = _read_both(config_file)
    previous = {
        "previous_task_public_key": TaskKey(str(notebook["task_key"])).public.text,
        "previous_task_public_key_until": time.time() + 3600 * overlap,
    }
    new_key = new_task_key()
    write_config_file(
        worker_file, {**worker, "task_public_key": TaskKey(new_key).public.text, **previous}
    )
    write_config_file(config_file, {**notebook, "task_key": new_key, **previous})
    click.echo(
        f"new task key {TaskKey(new_key).key_id.hex()} in {config_file}; {worker_file} trusts it "
        f"and, for {overlap:g} hours, the previous one. Workers read it when they start"
    )


@keys.command("end-rotation")
@CONFIG
def end_rotation(config_file: Path) -> None:
    """Stop accepting the previous task key: remove it from both config files."""
    notebook, worker_file, worker = _read_both(config_file)
    for path, values in ((worker_file, worker), (config_file, notebook)):
        values.pop("previous_task_public_key", None)
        values.pop("previous_task_public_key_until", None)
        write_config_file(path, values)
    click.echo(f"{config_file} and {worker_file} trust only the current task key")


def _read_both(config_file: Path) -> tuple[dict, Path, dict]:
    notebook = read_config_file(config_file)
    if not notebook.get("task_key") or not notebook.get("worker_config"):
        raise ConfigurationError(
            f"{config_file} is not a notebook's config: it needs task_key and worker_config "
            "(the workers' config file), as `rhc init` and `rhc redis setup` write them"
        )
    worker_file = Path(str(notebook["worker_config"]))
    return notebook, worker_file, read_config_file(worker_file)
