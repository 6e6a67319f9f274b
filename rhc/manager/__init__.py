# SPDX-License-Identifier: BSD-3-Clause
"""The notebook side: the Manager, the jobs it sends and collects, and the one Broker through
which it talks to Redis. Dispatch, batching and results are plain logic without Redis."""

from rhc.manager.job import Job
from rhc.manager.manager import Manager
from rhc.manager.options import JobOptions, check_names
from rhc.manager.progress import Progress

__all__ = ["Job", "JobOptions", "Manager", "Progress", "check_names"]
