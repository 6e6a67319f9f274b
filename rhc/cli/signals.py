# SPDX-License-Identifier: BSD-3-Clause
"""Waiting in the foreground until a person stops a command (Ctrl-C) or a supervisor does."""

from __future__ import annotations

import signal


def serve_until_interrupted() -> int:
    """Block until SIGINT or SIGTERM; the exit code to end with."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        return 0
