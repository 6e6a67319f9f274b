# SPDX-License-Identifier: BSD-3-Clause
"""A worker's warm-up of the NanoAOD stack: it runs, and leaves nothing behind."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rhc.nanoaod import rhc_warm_up


def test_the_nanoaod_warm_up_analyses_a_file_and_removes_it(tmp_path, monkeypatch):
    # Given a temporary directory of its own
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # When the warm-up runs (a failure would raise)
    rhc_warm_up()
    # Then the file it wrote is gone
    assert list(Path(tmp_path).iterdir()) == []
