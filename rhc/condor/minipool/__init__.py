# SPDX-License-Identifier: BSD-3-Clause
"""The mini pool: a mock HTCondor schedd + startd, to try rhc and run its end-to-end tests
without HTCondor.

It takes real submit descriptions (parsed by htcondor2) over a small HTTP API, matches jobs to
N slots by request_cpus and request_memory, runs vanilla jobs as process groups and
docker-universe jobs as sibling containers, writes _CONDOR_JOB_AD and _CONDOR_SCRATCH_DIR, stops
jobs with SIGTERM then SIGKILL, and can evict jobs at random, as condor preemption does.
`rhc minicondor serve` runs one; MiniPoolClient talks to it.
"""

from rhc.condor.minipool.client import MiniPoolClient, read_transfer_files
from rhc.condor.minipool.errors import HoldError, MiniPoolError, SubmitFileError
from rhc.condor.minipool.pool import Pool
from rhc.condor.minipool.server import MiniPoolServer
from rhc.condor.minipool.settings import DEFAULT_POOL_URL, PoolSettings

__all__ = [
    "DEFAULT_POOL_URL",
    "HoldError",
    "MiniPoolClient",
    "MiniPoolError",
    "MiniPoolServer",
    "Pool",
    "PoolSettings",
    "SubmitFileError",
    "read_transfer_files",
]
