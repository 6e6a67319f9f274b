# SPDX-License-Identifier: BSD-3-Clause
"""rhc: fan Python functions out to HTCondor workers through one Redis server."""

__version__ = "0.1.0"

from rhc.errors import RhcError, TaskError
from rhc.job import Job
from rhc.manager import Manager
from rhc.results import Progress
from rhc.worker import Worker, get_worker

__all__ = [
    "Job",
    "Manager",
    "Progress",
    "RhcError",
    "TaskError",
    "Worker",
    "__version__",
    "get_worker",
]
