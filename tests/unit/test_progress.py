"""The progress bar appears only for jobs that last: a notebook's small maps show none."""

from __future__ import annotations

import time

import pytest

from rhc.manager import progress
from rhc.manager.progress import Progress, ProgressBar


def shown(
    capsys: pytest.CaptureFixture, *, enabled: bool = True, running: float = 0.0, done: int = 4
) -> str:
    """What a bar of a 10-task job wrote: shown once at 1 done, then `running` seconds later."""
    bar = ProgressBar(enabled, "j1")
    bar.show(Progress(1, 0, 10))
    time.sleep(running)  # the job's running time itself
    bar.show(Progress(done, 0, 10))
    bar.close()
    return capsys.readouterr().err


def test_a_job_shorter_than_the_delay_shows_no_bar(capsys: pytest.CaptureFixture) -> None:
    assert shown(capsys, done=10) == ""


def test_a_job_that_lasts_shows_its_bar_with_the_time_since_it_started(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bar that appears after 0.05 s, when the job runs past that
    monkeypatch.setattr(progress, "BAR_DELAY", 0.05)
    output = shown(capsys, running=0.06)
    # Then the bar shows the job, how far it got, and a rate over the whole time it ran
    assert "job j1" in output and "4/10" in output
    rate = float(output.rsplit(", ", 1)[1].split("task/s")[0])
    assert rate < 4 / 0.05


def test_a_disabled_bar_never_shows(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "BAR_DELAY", 0.0)
    assert shown(capsys, enabled=False) == ""
