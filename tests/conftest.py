# SPDX-License-Identifier: BSD-3-Clause
"""Fixtures shared by every tier: a real redis-server the tests start themselves, config files,
and real worker processes. Nothing is mocked."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import lz4.frame
import numpy as np
import pytest
import uproot

from rhc import Manager
from rhc.config import samples_directory, write_config_file
from rhc.local import RedisServer, start_worker, stop_workers
from rhc.local.setup import namespace_configs
from rhc.wire.keys import Keys
from rhc.wire.protocol import TaskBatch, WorkerInfo, compat_tag, versions

REPOSITORY = Path(__file__).resolve().parent.parent


def rhc_command(
    *arguments: str, env: dict | None = None, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run `rhc` from this checkout, as a person types it."""
    return subprocess.run(
        [sys.executable, "-m", "rhc", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY), **(env or {})},
        input=stdin,
        timeout=timeout,
    )


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail if the block takes seconds or more: bad input must end, never hang."""
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"took {elapsed:.1f} s, over its {seconds} s bound"


def assert_says(text: str, *fragments: str) -> None:
    """The message holds every fragment: what went wrong, and what to do about it."""
    missing = [fragment for fragment in fragments if fragment not in text]
    assert not missing, f"{missing} not in the message:\n{text}"


def lz4_bomb(declared: int) -> bytes:
    """A payload body (flag byte and lz4 frame) of `declared` zero bytes: valid, and about
    4 KB per MB it declares."""
    compressor = lz4.frame.LZ4FrameCompressor()
    chunk = bytes(2**20)
    parts = [compressor.begin(source_size=declared)]
    parts += [compressor.compress(chunk) for _ in range(declared // len(chunk))]
    return b"\x01" + b"".join(parts) + compressor.flush()


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> object:
    """Poll a condition on a real system until it holds (there is no push to wait on)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer):
    client = redis_server.client()
    yield client
    client.close()


class Cluster:
    """A namespace on a real Redis with its own ACL users, the config files of its notebook
    side (manager user) and of its workers (worker user), and the workers started for one
    test. Settings given apply to both sides."""

    def __init__(self, server: RedisServer, directory: Path, **settings: object) -> None:
        self.server = server
        self.directory = directory
        self.namespace = "t" + uuid.uuid4().hex[:10]
        self.users = server.add_namespace(self.namespace)
        self.worker_config_file = directory / f"{self.namespace}-worker.toml"
        self.settings, self.worker_settings = namespace_configs(
            server.url,
            self.users,
            namespace=self.namespace,
            worker_file=self.worker_config_file,
            ca=server.ca,
            **{"heartbeat_interval": 0.25, "heartbeat_ttl": 2.0, **settings},
        )
        self.secret = self.settings["secret"]
        self.config_file = write_config_file(directory / f"{self.namespace}.toml", self.settings)
        write_config_file(self.worker_config_file, self.worker_settings)
        self.workers: dict[str, subprocess.Popen] = {}

    def start_workers(
        self,
        count: int,
        *,
        prefix: str | None = "w",
        python: str | None = None,
        wait: bool = True,
        env: dict[str, str] | None = None,
        options: Callable[[str], list[str]] = lambda name: [],
    ) -> list[str]:
        """Start workers named prefix0, prefix1, ...; prefix None lets them name themselves."""
        names = [f"{prefix or 'auto'}{len(self.workers) + i}" for i in range(count)]
        for name in names:
            self.workers[name] = start_worker(
                self.worker_config_file,
                scratch=self.directory,
                name=name if prefix else None,
                log_file=self.log_file(name),
                # tests.fixtures must import on workers, as a user's module on a shared disk
                extra_env={"PYTHONPATH": str(REPOSITORY), **(env or {})},
                options=options(name),
                **({"python": python} if python else {}),
            )
        if wait:
            client = self.server.client()
            key = Keys(self.namespace).workers
            registered = (
                (lambda: all(client.hexists(key, name) for name in names))
                if prefix
                else (lambda: client.hlen(key) >= len(self.workers))
            )
            wait_for(
                lambda: registered() or self._died(names),
                60,
                f"workers {names} to register",
            )
            client.close()
            assert not self._died(names), self.logs()
        return names

    def manager(self, **overrides: object) -> Manager:
        """A Manager for this namespace, from explicit arguments rather than the config file."""
        return Manager(**{**self.settings, **overrides})

    def _died(self, names: list[str]) -> list[str]:
        return [name for name in names if self.workers[name].poll() is not None]

    def log_file(self, name: str) -> Path:
        return self.directory / f"{self.namespace}-{name}.log"

    def log(self, name: str) -> str:
        return self.log_file(name).read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{self.log(name)}" for name in self.workers)

    def kill_group(self, name: str) -> None:
        process = self.workers[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        stop_workers(list(self.workers.values()))


@pytest.fixture
def make_cluster(redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Make clusters (namespaces with workers); the last one made is what Manager() finds."""
    made: list[Cluster] = []

    def make(**settings: object) -> Cluster:
        cluster = Cluster(redis_server, tmp_path, **settings)
        monkeypatch.setenv("RHC_CONFIG_FILE", str(cluster.config_file))
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop()


@pytest.fixture
def cluster(make_cluster) -> Cluster:
    return make_cluster()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[RedisServer, Callable[..., Cluster]]]:
    """A Redis of this test's own (with AOF), to stop, kill and restart, and a maker of
    clusters on it."""
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    clusters: list[Cluster] = []

    def make(**settings: object) -> Cluster:
        cluster = Cluster(server, tmp_path, **settings)
        clusters.append(cluster)
        return cluster

    yield server, make
    server.start() if server.process.poll() is not None else None
    for cluster in clusters:
        cluster.stop()
    server.stop()


@pytest.fixture(scope="module")
def samples() -> list[str]:
    """The real NanoAOD samples; missing ones are a failure, never a skip."""
    found = sorted(str(path) for path in samples_directory().glob("*.root"))
    assert len(found) == 3, f"the NanoAOD samples are missing from {samples_directory()}"
    return found


@pytest.fixture
def bad_files(tmp_path: Path, samples: list[str]) -> dict[str, str]:
    """Files a fileset should not hold, by what is wrong with them."""
    corrupt = tmp_path / "corrupt.root"
    corrupt.write_bytes(b"root" + bytes(range(256)) * 40)
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(Path(samples[0]).read_bytes()[:5000])
    not_root = tmp_path / "events.csv"
    not_root.write_text("run,luminosityBlock,event\n1,1,1\n")
    no_events = tmp_path / "runs_only.root"
    with uproot.recreate(no_events) as out:
        out.mktree("Runs", {"run": np.uint32}).extend({"run": np.arange(3, dtype=np.uint32)})
    no_branch = tmp_path / "no_muon_id.root"
    with uproot.open(samples[0]) as source:
        events = source["Events"].arrays(["MET_pt", "Muon_pt"], how=dict)
    with uproot.recreate(no_branch) as out:
        out.mktree("Events", {"MET_pt": events["MET_pt"].type, "Muon_pt": events["Muon_pt"].type})
        out["Events"].extend({"MET_pt": events["MET_pt"], "Muon_pt": events["Muon_pt"]})
    return {
        "missing": str(tmp_path / "missing.root"),
        "corrupt": str(corrupt),
        "truncated": str(truncated),
        "not ROOT": str(not_root),
        "no Events tree": str(no_events),
        "no branch": str(no_branch),
    }


@pytest.fixture(scope="session")
def other_python() -> str:
    """A Python of another minor version (pyenv's 3.12) with rhc installed, for version skew."""
    candidates = sorted(Path(os.path.expanduser("~/.pyenv/versions")).glob("3.12*/bin/python3"))
    assert candidates, "pyenv's Python 3.12 is missing (ENVIRONMENT.md says every machine has it)"
    # Keyed by the dependencies, so a change to them builds a fresh one.
    digest = hashlib.sha256((REPOSITORY / "pyproject.toml").read_bytes()).hexdigest()[:12]
    venv = REPOSITORY / ".cache" / f"venv-py3.12-{digest}"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([str(candidates[-1]), "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", str(REPOSITORY)], check=True
        )
    return str(python)


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own RHC_* variables or ./config.py."""
    for variable in list(os.environ):
        if variable.startswith("RHC_"):
            monkeypatch.delenv(variable)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _ctrl_c_raises() -> Iterator[None]:
    """Every test starts with Python's own Ctrl-C handler (KeyboardInterrupt, as in a notebook),
    whatever handler a test before it, or a library it ran, left installed."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def one_task_batch(namespace: str, job: str, function: str) -> dict:
    """The header of a batch of one task, as an intruder writes one."""
    batch = TaskBatch(namespace, job, 0, 0, 1, function, 1, 60, not_after=time.time() + 60)
    return batch.header()


def live_worker_info(name: str, **fields: object) -> WorkerInfo:
    """What a live worker of this Python would advertise, as a test forges it."""
    now = time.time()
    environment = {"compat": compat_tag(versions()), "versions": versions()}
    return WorkerInfo(
        name=name, host="h", pid=1, started=now, heartbeat=now, **environment, **fields
    )


def own_cache(tmp_path: Path, memory: int | None = None) -> Callable[[str], list[str]]:
    """Worker options giving each worker its own disk cache, as on separate condor nodes."""

    def options(name: str) -> list[str]:
        given = ["--cache-dir", str(tmp_path / f"cache-{name}")]
        return given + (["--cache-bytes", str(memory)] if memory is not None else [])

    return options
