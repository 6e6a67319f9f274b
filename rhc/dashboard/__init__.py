# SPDX-License-Identifier: BSD-3-Clause
"""The web dashboard and /metrics: the cluster as people and Prometheus watch it, read from
Redis with the monitor role (`rhc dashboard`)."""
