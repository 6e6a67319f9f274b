# SPDX-License-Identifier: BSD-3-Clause
"""Workers killed outright or told to leave, over and over, while jobs run: results stay exact."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from rhc import Manager
from tests.chaos.conftest import LIGHT_WORKER, Workload, live_workers, random_marks
from tests.conftest import assert_says, wait_for

WORKERS = 4


def start_light_workers(cluster, count: int, *, wait: bool) -> list[str]:
    return cluster.start_workers(count, wait=wait, options=lambda name: LIGHT_WORKER)


def registered(manager: Manager, cluster) -> list[str]:
    """Workers that joined and still run: killing one of these takes tasks from a live worker."""
    names = {worker.name for worker in manager.workers().workers}
    return [name for name in live_workers(cluster) if name in names]


def test_twenty_random_sigkills_during_a_10k_task_job_lose_and_double_nothing(cluster, rng):
    # Given four workers running a 10,000-task map and a 10,000-task reduce of 2 ms tasks
    start_light_workers(cluster, WORKERS, wait=True)
    manager = cluster.manager()
    work = Workload(manager, tasks=10_000, seconds=0.002)
    # When, at 20 random points of the job, a random worker is SIGKILLed with its task process
    # and a replacement is started, as condor would reschedule a job whose node died
    for mark in random_marks(rng, work.tasks, 20):
        work.await_done(mark)
        victims = wait_for(lambda: registered(manager, cluster), 60, "a live worker to kill")
        cluster.kill_group(rng.choice(victims))
        start_light_workers(cluster, 1, wait=False)
    # Then both jobs complete exactly: no task lost, none counted twice
    work.check()


def kill_task_process(cluster, name: str) -> bool:
    """SIGKILL a worker's task process; False while it has none (a new one is starting)."""
    threads = Path(f"/proc/{cluster.workers[name].pid}/task")
    try:
        children = [child for thread in threads.iterdir() for child in _children(thread)]
    except FileNotFoundError:  # the worker, or a thread of it, is gone
        return False
    for child in children:  # the thread that started it is its parent
        with contextlib.suppress(FileNotFoundError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                os.kill(int(child), signal.SIGKILL)
                return True
    return False


def _children(thread: Path) -> list[str]:
    return (thread / "children").read_text().split()


def test_twenty_task_processes_killed_mid_job_lose_and_double_nothing(cluster, rng):
    # Given four workers running a 4,000-task map and a 4,000-task reduce of 5 ms tasks, whose
    # merged values live in the task processes until they are stored
    start_light_workers(cluster, WORKERS, wait=True)
    work = Workload(cluster.manager(), tasks=4_000, seconds=0.005)
    # When, at 20 random points of the job, a random worker's task process is SIGKILLed (the
    # OOM killer, a segfault in a library): running, between two batches, or starting
    for mark in random_marks(rng, work.tasks, 20):
        work.await_done(mark)
        name = rng.choice(live_workers(cluster))
        wait_for(
            lambda name=name: (
                kill_task_process(cluster, name) or cluster.workers[name].poll() is not None
            ),
            60,
            f"a task process of {name} to kill",
        )
        if cluster.workers[name].poll() is not None:  # it gave up: condor would start another
            start_light_workers(cluster, 1, wait=False)
    # Then both jobs complete exactly, and a worker left only if its task processes died
    # START_TRIES times in a row while starting
    work.check()
    for name, process in cluster.workers.items():
        if process.poll() is not None:
            (last,) = [line for line in cluster.log(name).splitlines() if "stopped after" in line]
            assert_says(last, "StartFailed", "while starting")


def test_sigterm_to_every_worker_once_hands_back_their_tasks_and_each_exits_zero(cluster, rng):
    # Given four workers running a map and a reduce of 2,000 tasks of 10 ms
    originals = start_light_workers(cluster, WORKERS, wait=True)
    work = Workload(cluster.manager(), tasks=2_000, seconds=0.01)
    # When each of them, in random order at random points, gets SIGTERM (condor's eviction or
    # condor_rm) and a replacement starts
    marks = random_marks(rng, work.tasks, WORKERS)
    for name, mark in zip(rng.sample(originals, WORKERS), marks, strict=True):
        work.await_done(mark)
        cluster.workers[name].send_signal(signal.SIGTERM)
        start_light_workers(cluster, 1, wait=False)
    # Then each left cleanly, having handed back what it held
    for name in originals:
        assert cluster.workers[name].wait(30) == 0, cluster.log(name)
        assert "handing back tasks" in cluster.log(name)
    # And both jobs complete exactly
    work.check()
