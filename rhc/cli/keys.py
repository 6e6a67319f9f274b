# SPDX-License-Identifier: BSD-3-Clause
"""`rhc keys`: rotate the task key that signs what workers run, and end a rotation."""

from __future__ import annotations

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
def rotate(config_file: Path) -> None:
    """Sign with a new task key from now on. The workers' config gets its public half and keeps
    the old one as previous_task_public_key, so jobs signed before still run: start new
    workers with it, and run `rhc keys end-rotation` once the old jobs ended."""
    notebook, worker_file, worker = _read_both(config_file)
    old = TaskKey(str(notebook["task_key"])).public.text
    new_key = new_task_key()
    new_public = TaskKey(new_key).public.text
    write_config_file(
        worker_file,
        {**worker, "task_public_key": new_public, "previous_task_public_key": old},
    )
    write_config_file(
        config_file, {**notebook, "task_key": new_key, "previous_task_public_key": old}
    )
    click.echo(
        f"new task key {TaskKey(new_key).key_id.hex()} in {config_file}; {worker_file} trusts it "
        f"and, until `rhc keys end-rotation`, the previous one. Workers read it when they start"
    )


@keys.command("end-rotation")
@CONFIG
def end_rotation(config_file: Path) -> None:
    """Stop accepting the previous task key: remove it from both config files."""
    notebook, worker_file, worker = _read_both(config_file)
    for path, values in ((worker_file, worker), (config_file, notebook)):
        values.pop("previous_task_public_key", None)
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
