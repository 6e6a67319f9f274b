# SPDX-License-Identifier: BSD-3-Clause
"""The `rhc` command, one module per command (group): worker, status, init, local, condor,
minicondor, nanoaod. Each stays thin: it parses options and calls the part that does the work.
Nothing in rhc but rhc/__main__.py imports this package; main.main is the entry point."""
