# SPDX-License-Identifier: BSD-3-Clause
"""Running one job: a process group for the vanilla universe, a sibling container (through the
`docker` SDK, imported only when a docker job runs) for the docker universe.

A runner starts a Launch and returns an Execution, which the pool waits on and terminates:
SIGTERM, then SIGKILL after a grace period, as condor does on removal and eviction.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from rhc.condor.minipool.errors import HoldError
from rhc.condor.minipool.outputs import open_output
from rhc.config import child_environment

log = logging.getLogger(__name__)

POOL_LABEL = "rhc.minipool"
"""Label on every container a pool starts; its value is the pool's name."""

JOB_LABEL = "rhc.minipool.job"
"""Label with the job id (ClusterId.ProcId) of the container."""


TMPFS_MB = 256
"""Size of the tmpfs on a container's /tmp (its HOME in the worker image), counted in its memory."""

ENGINE_TIMEOUT = 600
"""Seconds a Docker engine call may take (the SDK's default is 60): on the vfs storage driver,
creating a container copies its whole image, and a 1.4 GB image took 50 s to over 2 min here."""

_TEXT_BUSY_ATTEMPTS, _TEXT_BUSY_PAUSE = 40, 0.05
"""Tries, and seconds between them, to start an executable that is briefly busy (2 s in all)."""


@dataclass(frozen=True)
class Launch:
    """Everything needed to start one job.

    ``command`` is the argv (empty: the image's own command); ``environment`` is the job's own
    (its description's and the _CONDOR_* variables), without the pool's; ``output`` and
    ``error`` are paths relative to ``scratch``; ``run`` counts the job's starts (an evicted
    job starts again).
    """

    job_id: str
    command: tuple[str, ...]
    environment: dict[str, str]
    scratch: Path
    output: str
    error: str
    image: str | None = None
    cpus: int = 1
    memory_mb: int = 128
    labels: dict[str, str] = field(default_factory=dict)
    run: int = 1


def container_name(pool_name: str, job_id: str, run: int) -> str:
    """The Docker name of a job's container, after the condor job, so that `docker ps` tells
    which job a worker is: <pool>-job-<cluster>.<proc>, and -run<N> when it runs again."""
    return f"{pool_name}-job-{job_id}" + (f"-run{run}" if run > 1 else "")


class Execution(Protocol):
    """A started job."""

    ended: threading.Event
    """Set as soon as the job's process or container has exited, before its logs are collected
    and it is cleaned up: from then on it can no longer be evicted."""

    def wait(self) -> int:
        """Block until the job ends; its exit code, or minus the signal that killed it."""

    def terminate(self, grace: float) -> None:
        """SIGTERM, then SIGKILL if it still runs after grace seconds; returns when it ended
        or was killed."""


class Runner(Protocol):
    """Starts jobs of one universe."""

    def start(self, launch: Launch) -> Execution:
        """Start launch.

        Raises:
          HoldError: the job cannot start (executable or image missing); it is put on hold.
        """


class VanillaRunner:
    """Runs a job as a process group of its own, with the pool's environment plus the job's
    (as condor's getenv), stdout and stderr in files."""

    def start(self, launch: Launch) -> Execution:
        with contextlib.ExitStack() as files:  # the child keeps its own copies open
            stdout = files.enter_context(_open_output(launch, launch.output, "output"))
            stderr = (
                stdout
                if launch.error == launch.output
                else files.enter_context(_open_output(launch, launch.error, "error"))
            )
            try:
                process = _popen(
                    list(launch.command),
                    cwd=launch.scratch,
                    env=child_environment(**launch.environment),
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,
                )
            except OSError as exc:
                raise HoldError(f"cannot run {launch.command[0]}: {exc.strerror}") from exc
        return _ProcessGroup(process)


def _popen(command: list[str], **options: Any) -> subprocess.Popen:
    """Popen, trying again while the executable is "text file busy": a job started at the same
    moment may have forked while this one's executable was still open for writing, and holds a
    copy of that descriptor until it execs (a few ms at most)."""
    for _ in range(_TEXT_BUSY_ATTEMPTS - 1):
        try:
            return subprocess.Popen(command, **options)
        except OSError as exc:
            if exc.errno != errno.ETXTBSY:
                raise
            time.sleep(_TEXT_BUSY_PAUSE)
    return subprocess.Popen(command, **options)


def _open_output(launch: Launch, name: str, what: str, *, append: bool = False) -> BinaryIO:
    try:
        return open_output(launch.scratch, name, append=append)
    except OSError as exc:
        raise HoldError(f"cannot write {what} {name}: {exc.strerror or exc}") from exc


class _ProcessGroup:
    """A vanilla job: its leader process and every process in its group."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self._lock = threading.Lock()
        self._reaped = False
        self.ended = threading.Event()

    def wait(self) -> int:
        # Wait without reaping, so that the group id cannot be reused while we kill what the
        # job left behind: condor kills every process of a job when it ends.
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOWAIT)
        with self._lock:
            self._signal_group(signal.SIGKILL)
            code = self.process.wait()
            self._reaped = True
        self.ended.set()
        return code

    def terminate(self, grace: float) -> None:
        with self._lock:
            if self._reaped:
                return
            self._signal_group(signal.SIGTERM)
        if self.ended.wait(grace):
            return
        with self._lock:
            if not self._reaped:
                log.info("pid %d ignored SIGTERM for %g s: SIGKILL", self.process.pid, grace)
                self._signal_group(signal.SIGKILL)
        self.ended.wait()

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group has ended
            os.killpg(self.process.pid, sig)


class DockerRunner:
    """Runs a job as a sibling container on the Docker engine the SDK finds (DOCKER_HOST or the
    socket), never pulling: an image that is not there puts the job on hold.

    The scratch directory is bind-mounted at the same path in the container; ``host_work_dir``
    is the work directory as the engine sees it, when the pool itself runs in a container.
    A container gets the job's memory and cpus, at most pids_limit processes, no capability,
    no privilege gained through setuid, a read-only root with a tmpfs on /tmp, and a user
    that is not root.
    """

    def __init__(
        self,
        *,
        pool_name: str,
        user: str,
        work_dir: Path,
        network: str | None = None,
        host_work_dir: Path | None = None,
        pids_limit: int = 1024,
        client: Any = None,
    ) -> None:
        self.pool_name = pool_name
        self.user = user
        self.work_dir = work_dir
        self.network = network
        self.host_work_dir = host_work_dir
        self.pids_limit = pids_limit
        self._client = client
        self._lock = threading.Lock()

    def run_arguments(self, launch: Launch) -> dict[str, Any]:
        """The keyword arguments of `client.containers.run` for launch."""
        source = launch.scratch
        if self.host_work_dir is not None:
            source = self.host_work_dir / launch.scratch.relative_to(self.work_dir)
        memory = f"{launch.memory_mb}m"
        arguments: dict[str, Any] = {
            "image": launch.image,
            "name": container_name(self.pool_name, launch.job_id, launch.run),
            "command": list(launch.command) or None,
            "detach": True,
            "working_dir": str(launch.scratch),
            "volumes": {str(source): {"bind": str(launch.scratch), "mode": "rw"}},
            "environment": dict(launch.environment),
            "user": self.user,
            "labels": {POOL_LABEL: self.pool_name, JOB_LABEL: launch.job_id, **launch.labels},
            "mem_limit": memory,
            "memswap_limit": memory,  # no swap beyond the memory it asked for
            "nano_cpus": launch.cpus * 10**9,
            "pids_limit": self.pids_limit,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "read_only": True,
            # HOME is /tmp in the worker image; the job's own files go to its scratch directory
            "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={TMPFS_MB}m,mode=1777"},
        }
        if self.network:
            arguments["network"] = self.network
        return arguments

    def start(self, launch: Launch) -> Execution:
        errors = _sdk().errors
        client = self._engine()
        try:
            client.images.get(launch.image)
        except errors.ImageNotFound as exc:
            raise HoldError(
                f"docker image {launch.image} is not on the pool's Docker engine (the mini pool "
                "never pulls: build or load it first)"
            ) from exc
        except errors.DockerException as exc:
            raise HoldError(f"the Docker engine failed to look up {launch.image}: {exc}") from exc
        self._hand_over(launch.scratch)
        arguments = self.run_arguments(launch)
        try:
            try:
                container = client.containers.run(**arguments)
            except errors.APIError as exc:  # 409: the name is taken
                if exc.status_code != 409 or not self._remove_leftover(client, arguments["name"]):
                    raise
                container = client.containers.run(**arguments)
        except errors.DockerException as exc:
            raise HoldError(f"docker could not start {launch.image}: {exc}") from exc
        log.info("job %s: container %s from %s", launch.job_id, container.id[:12], launch.image)
        return _Container(container, launch)

    def remove_all(self) -> int:
        """Remove every container this pool's name labels (running or not); how many."""
        if self._client is None:
            return 0  # no docker job ever ran: the pool started no container
        containers = self._client.containers.list(
            all=True, filters={"label": f"{POOL_LABEL}={self.pool_name}"}
        )
        for container in containers:
            try:
                container.remove(force=True)
            except _sdk().errors.NotFound:
                pass  # it was removed when its job ended
        return len(containers)

    def _remove_leftover(self, client: Any, name: str) -> bool:
        """Remove the container holding name if a pool of this name left it (one that did not
        stop: job ids start again with a new work directory); whether it did."""
        try:
            container = client.containers.get(name)
            if container.labels.get(POOL_LABEL) != self.pool_name:
                return False
            log.warning("removing container %s, left by a pool that did not stop", name)
            container.remove(force=True)
        except _sdk().errors.NotFound:
            pass  # it went meanwhile
        return True

    def _engine(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    self._client = _sdk().from_env(timeout=ENGINE_TIMEOUT)
                except _sdk().errors.DockerException as exc:
                    raise HoldError(f"no Docker engine answers the pool: {exc}") from exc
            return self._client

    def _hand_over(self, scratch: Path) -> None:
        """Give the scratch directory to the container's user, when the pool may (as root)."""
        uid, _, gid = self.user.partition(":")
        if os.geteuid() != 0 or int(uid) == 0:
            return
        for path in (scratch, *scratch.rglob("*")):
            os.chown(path, int(uid), int(gid) if gid else -1, follow_symlinks=False)


class _Container:
    """A docker-universe job; its logs go to the output and error files when it ends."""

    def __init__(self, container: Any, launch: Launch) -> None:
        self.container = container
        self.launch = launch
        self.ended = threading.Event()

    def wait(self) -> int:
        errors = _sdk().errors
        launch = self.launch
        try:
            code = int(self.container.wait()["StatusCode"])
            self.ended.set()
            # The container's user owned the scratch directory: written without following links
            with _open_output(launch, launch.output, "output") as handle:
                handle.write(self.container.logs(stdout=True, stderr=False))
            same = launch.error == launch.output
            with _open_output(launch, launch.error, "error", append=same) as handle:
                handle.write(self.container.logs(stdout=False, stderr=True))
        except (errors.DockerException, OSError) as exc:  # requests' errors are OSErrors
            raise HoldError(f"lost container {self.container.id[:12]}: {exc}") from exc
        finally:
            try:
                self.container.remove(force=True)
            except (errors.DockerException, OSError):
                log.warning("could not remove container %s", self.container.id[:12])
        return code

    def terminate(self, grace: float) -> None:
        # docker stop: the image's stop signal (SIGTERM), then SIGKILL after the timeout
        try:
            self.container.stop(timeout=math.ceil(grace))
        except (_sdk().errors.DockerException, OSError) as exc:  # gone already, or engine lost
            log.warning("could not stop container %s: %s", self.container.id[:12], exc)


def _sdk() -> Any:
    try:
        import docker
    except ImportError as exc:
        raise HoldError(
            "docker-universe jobs need the docker SDK: pip install 'rhc[minipool]'"
        ) from exc
    return docker
