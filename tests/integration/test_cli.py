# SPDX-License-Identifier: BSD-3-Clause
"""The `rhc` command as a person types it, and the local cluster it starts."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import click
import pytest
import redis
from click.testing import CliRunner

from rhc import Manager
from rhc.cli.main import cli
from rhc.config import read_config_file, resolve_settings
from rhc.errors import BrokerConnectionError
from rhc.local import LocalCluster, free_port
from rhc.wire.connection import connect
from tests import fixtures
from tests.conftest import rhc_command as rhc
from tests.conftest import wait_for


def command_lines(pid: int) -> list[str]:
    """The command lines of a process and all its descendants."""
    line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    lines = [line] if line else []
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for child in children:
        lines += command_lines(int(child))
    return lines


def test_no_secret_appears_on_any_command_line_the_project_builds(tmp_path):
    # Given a local cluster: redis-server, workers and their task processes
    cluster = LocalCluster(tmp_path / "cluster", workers=2).start()
    try:
        settings = read_config_file(cluster.config_file)
        secrets = [settings["redis_password"], settings["secret"]]
        for worker in cluster.workers:
            wait_for(
                lambda pid=worker.pid: len(command_lines(pid)) >= 2,
                30,
                "the worker's task process to start",
            )
        lines = command_lines(cluster.redis.process.pid)
        for worker in cluster.workers:
            lines += command_lines(worker.pid)
        # Then the processes exist (workers with their task process) and no line has a secret
        assert len(lines) >= 5, lines
        assert any("rhc worker" in line for line in lines)
        assert not [line for line in lines for secret in secrets if secret in line]
        # And the config file holding them is private
        assert stat.S_IMODE(cluster.config_file.stat().st_mode) == 0o600
    finally:
        cluster.stop()
    assert all(worker.returncode == 0 for worker in cluster.workers)


def test_rhc_local_runs_a_command_against_a_fresh_cluster_and_stops_it(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(
        "from rhc import Manager\n"
        "print('RESULT', Manager().remote_map(abs, [-1, -2, 3], progress=False))\n"
    )
    done = rhc(
        "local", "-n", "2", "--dir", str(tmp_path / "cluster"), "--", sys.executable, str(script)
    )
    assert done.returncode == 0, done.stderr
    assert "RESULT [1, 2, 3]" in done.stdout
    assert "stopping workers and Redis" in done.stderr


def test_the_options_after_rhc_locals_command_are_the_commands_own():
    done = rhc("local", "-n", "1", sys.executable, "-c", "print('OPTIONS', 'PASSED')", "-n", "3")
    assert done.returncode == 0, done.stderr
    assert "OPTIONS PASSED" in done.stdout


def test_rhc_local_tls_runs_its_command_over_tls_only(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(
        "from rhc import Manager\n"
        "manager = Manager()\n"
        "print('URL', manager.settings.masked_url.split(':')[0])\n"
        "print('RESULT', manager.remote_map(abs, [-4, 5], progress=False))\n"
    )
    done = rhc("local", "-n", "1", "--tls", sys.executable, str(script))
    assert done.returncode == 0, done.stderr
    assert "URL rediss" in done.stdout and "RESULT [4, 5]" in done.stdout


def test_rhc_status_shows_workers_queues_and_jobs(cluster):
    cluster.start_workers(1)
    job = Manager().submit(fixtures.sleep_for, [3.0, 3.0])
    done = rhc("status", env={"RHC_CONFIG_FILE": str(cluster.config_file)})
    assert done.returncode == 0, done.stderr
    assert "w0" in done.stdout and job.id in done.stdout
    assert "tasks:py3.11" in done.stdout
    assert cluster.secret not in done.stdout + done.stderr
    assert cluster.settings["redis_password"] not in done.stdout + done.stderr
    job.cancel()


def test_rhc_init_writes_a_private_config_file_with_a_fresh_secret(tmp_path):
    path = tmp_path / "rhc.toml"
    done = rhc(
        "init",
        "--redis-url",
        "redis://redis.example:6379",
        "--path",
        str(path),
        stdin="s3cret-password\n",
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings = read_config_file(path)
    assert settings["redis_password"] == "s3cret-password"
    assert len(settings["secret"]) >= 32
    assert "s3cret-password" not in done.stdout + done.stderr


def every_command(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += every_command(command, (*path, name))
        else:
            found.append((*path, name))
    return found


def test_every_command_explains_itself_with_help():
    commands = every_command(cli)
    assert ("local",) in commands and ("nanoaod", "generate", "physics") in commands
    for path in commands:
        shown = CliRunner().invoke(cli, [*path, "--help"])
        assert shown.exit_code == 0, (path, shown.output)
        assert shown.output.startswith("Usage: "), (path, shown.output)
        assert " ".join(path) in shown.output.splitlines()[0], (path, shown.output)


def test_an_unknown_option_is_refused_before_anything_starts():
    # Given an option rhc local does not have, before the command to run
    done = rhc("local", "--no-such-option", "-n", "1", "--", "true")
    # Then click refuses it by name, and no cluster started
    assert done.returncode == 2, done.stderr
    assert "No such option '--no-such-option'" in done.stderr
    assert "starting Redis" not in done.stderr and "Traceback" not in done.stderr


def test_a_command_that_does_not_exist_is_named_in_one_line():
    done = rhc("local", "-n", "1", "--", "no-such-command-anywhere", "--flag")
    assert done.returncode == 127
    assert done.stderr.strip().splitlines() == [
        "Error: no-such-command-anywhere: command not found (nothing was started)"
    ]


@pytest.mark.parametrize(
    "arguments",
    [
        ("worker", "redis://:hunter2-password@10.0.0.1:6379"),
        ("status", "redis://:hunter2-password@10.0.0.1:6379"),
        ("init", "--redis-url", "redis://user:hunter2-password@10.0.0.1:6379"),
        ("condor", "submit", "--dry-run", "--redis-url", "rediss://:hunter2-password@redis:6380"),
        ("worker", "redis://10.0.0.1:6379/0?password=hunter2-password"),
    ],
    ids=["worker", "status", "init", "condor submit", "query string"],
)
def test_every_command_refuses_a_password_in_a_url_without_showing_it(arguments):
    refused = CliRunner().invoke(cli, list(arguments))
    assert refused.exit_code == 2, refused.output
    assert "keep the password off the command line" in refused.output
    assert "hunter2" not in refused.output


def test_an_operator_sets_up_a_redis_and_adds_a_namespace(tmp_path):
    # Given `rhc redis setup` for a TLS Redis on loopback
    port = str(free_port())
    arguments = ["redis", "setup", str(tmp_path / "s"), "--namespace", "ana", "--port", port]
    made = CliRunner().invoke(cli, [*arguments, "--host", "127.0.0.1"])
    assert made.exit_code == 0, made.output
    written = {path.name: path for path in (tmp_path / "s").rglob("*") if path.is_file()}
    assert {"rhc.toml", "worker.toml", "monitor.toml", "admin.toml", "users.acl"} <= set(written)
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in written.values())
    # When a redis-server includes what it wrote
    config = tmp_path / "redis.conf"
    config.write_text(f'include {tmp_path}/s/redis/security.conf\nbind 127.0.0.1\nsave ""\n')
    server = subprocess.Popen(["redis-server", str(config)], stdout=subprocess.DEVNULL)
    try:
        notebook = read_config_file(tmp_path / "s" / "rhc.toml")
        assert notebook["redis_url"] == f"rediss://127.0.0.1:{port}"
        manager = wait_for(lambda: connects(notebook), 10, "the server")
        # Then the notebook's user may work in its namespace, and not the admin's way
        assert manager.hgetall("rhc:ana:workers") == {}
        with pytest.raises(redis.exceptions.NoPermissionError):
            manager.execute_command("ACL", "LIST")
        # And a namespace added with the operator's config has users of its own
        admin = str(tmp_path / "s" / "admin.toml")
        physics = str(tmp_path / "physics")
        added = CliRunner().invoke(
            cli, ["redis", "namespace", "physics", physics, "--admin-config", admin]
        )
        assert added.exit_code == 0, added.output
        other = connects(read_config_file(tmp_path / "physics" / "rhc.toml"))
        assert other.hgetall("rhc:physics:workers") == {}
        with pytest.raises(redis.exceptions.NoPermissionError):
            other.hgetall("rhc:ana:workers")
    finally:
        server.terminate()
        server.wait(10)


def connects(config: dict) -> redis.Redis | None:
    """A client logged in with a config file's user, or None while the server is not up."""
    settings = resolve_settings(require_secret=False, **config)
    try:
        return connect(settings, role="test")
    except BrokerConnectionError:
        return None
