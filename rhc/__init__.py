# SPDX-License-Identifier: BSD-3-Clause
"""rhc: fan Python functions out to HTCondor workers through one Redis server.

The package face: what a notebook and a task need. The parts live in subpackages (see README,
"Where things are"): wire, manager, worker, nanoaod, condor, cli.
"""

from rhc._version import __version__
from rhc.errors import RhcError, TaskError
from rhc.manager import Job, JobOptions, Manager, Progress
from rhc.worker import Worker, get_worker

__all__ = [
    "Job",
    "JobOptions",
    "Manager",
    "Progress",
    "RhcError",
    "TaskError",
    "Worker",
    "__version__",
    "get_worker",
]
