# SPDX-License-Identifier: BSD-3-Clause
"""A module whose import kills the importing process (a task process preloading it) until the
file RHC_TEST_STARTS_TO_DIE names counts down to zero: task processes that die while starting."""

import os
import signal
from pathlib import Path

_counter = Path(os.environ["RHC_TEST_STARTS_TO_DIE"])
_left = int(_counter.read_text())
if _left > 0:
    _counter.write_text(str(_left - 1))
    os.kill(os.getpid(), signal.SIGKILL)
