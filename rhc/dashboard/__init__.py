# SPDX-License-Identifier: BSD-3-Clause
"""The web dashboard and /metrics: the cluster as people and Prometheus watch it, read from
Redis with the monitor role (`rhc dashboard`); Monitor gives a notebook the same data."""

from rhc.dashboard.monitor import Monitor, job_table

__all__ = ["Monitor", "job_table"]
