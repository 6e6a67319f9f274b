# SPDX-License-Identifier: BSD-3-Clause
"""`rhc init`: write the notebook's config file and its workers', with a fresh secret and task
key, asking for the Redis password."""

from __future__ import annotations

from pathlib import Path

import click

from rhc.cli.options import REDIS_URL
from rhc.config import CONFIG_FILE_VARIABLE, new_secret, write_config_file
from rhc.wire.signing import TaskKey, new_task_key


@click.command()
@click.option(
    "--redis-url", required=True, type=REDIS_URL, help="redis://host:port (no password here)."
)
@click.option(
    "--path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("rhc.toml"),
    show_default=True,
    help="The notebook's config file.",
)
@click.option(
    "--worker-path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The workers' config file  [default: worker.toml beside --path].",
)
@click.option("--namespace", default=None)
@click.option(
    "--ca",
    "ca_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The CA certificate (PEM) that verifies a rediss:// server, copied into the files.",
)
def init(
    redis_url: str,
    path: Path,
    worker_path: Path | None,
    namespace: str | None,
    ca_file: Path | None,
) -> None:
    """Write the notebook's config file (with the task key that signs tasks) and the workers'
    (with only its public half), both mode 0600; the Redis password is asked for."""
    password = click.prompt(
        "Redis password (empty for none)", default="", hide_input=True, show_default=False
    )
    worker_path = worker_path or path.with_name("worker.toml")
    task_key = new_task_key()
    common = {
        "redis_url": redis_url,
        "redis_password": password or None,
        "secret": new_secret(),
        "namespace": namespace,
        "redis_ca": ca_file.read_text() if ca_file else None,
    }
    write_config_file(
        path, {**common, "task_key": task_key, "worker_config": str(worker_path.resolve())}
    )
    write_config_file(worker_path, {**common, "task_public_key": TaskKey(task_key).public.text})
    click.echo(
        f"wrote {path} and, for the workers, {worker_path} (mode 0600). Use them with: "
        f"export {CONFIG_FILE_VARIABLE}={path.resolve()}"
    )
