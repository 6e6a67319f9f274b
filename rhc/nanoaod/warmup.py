# SPDX-License-Identifier: BSD-3-Clause
"""A fresh worker's first analysis, paid when it starts rather than by a user's first run.

The first chunk a process reads and analyses costs it ~50 ms more than the next ones (uproot's
and awkward's lazy imports, first calls and caches): on every cold run, once per worker, before
its first chunk. `rhc worker` preloads rhc.nanoaod, and its task process calls rhc_warm_up()
before it takes tasks, so a pool is warm before anyone waits on it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rhc.nanoaod.chunks import Chunk
from rhc.nanoaod.dimuon import Dimuon
from rhc.nanoaod.generate import generate_physics
from rhc.nanoaod.reading import Reader
from rhc.nanoaod.runner import chunk_task

WARM_UP_EVENTS = 1_000
"""Events of the file analysed once: enough to take every path of reading and filling."""


def rhc_warm_up() -> None:
    """Write a small NanoAOD-shaped file to a temporary directory and analyse it once."""
    with tempfile.TemporaryDirectory(prefix="rhc-warm-up-") as directory:
        path = Path(directory) / "warm-up.root"
        generate_physics(path, WARM_UP_EVENTS, seed=0)
        chunk = Chunk("warm-up", str(path), 0, WARM_UP_EVENTS)
        chunk_task(Dimuon(), None, skip_bad_files=False)(chunk, Reader())
