# SPDX-License-Identifier: BSD-3-Clause
"""Running rhc workers on HTCondor: submit descriptions, schedulers, and the mini pool."""
