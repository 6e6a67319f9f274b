# SPDX-License-Identifier: BSD-3-Clause
"""The task timeline: efficiency and summary from hand-made spans, and the figure it draws."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from rhc.nanoaod.timeline import TaskSpan, efficiency, plot_timeflow, summarize

T0 = 1_700_000_000.0


def _two_workers() -> list[TaskSpan]:
    # w1 runs 0-2 s and 3-5 s (a 1 s gap); w2 runs 1-5 s. Wall time is 0-5 s.
    return [
        TaskSpan("w2", T0 + 1.0, T0 + 5.0, events=400),
        TaskSpan("w1", T0 + 3.0, T0 + 5.0, events=200),
        TaskSpan("w1", T0 + 0.0, T0 + 2.0, events=400),
    ]


def test_efficiency_is_busy_time_over_wall_time_times_workers():
    # Given 2 + 2 + 4 = 8 busy seconds over 5 wall seconds on 2 workers
    spans = _two_workers()

    # Then the efficiency is 8 / (5 * 2)
    assert efficiency(spans) == pytest.approx(0.8)


def test_one_worker_busy_all_the_time_is_fully_efficient():
    spans = [TaskSpan("w", T0, T0 + 1.0), TaskSpan("w", T0 + 1.0, T0 + 3.0)]

    assert efficiency(spans) == pytest.approx(1.0)


def test_efficiency_of_no_tasks_is_an_error():
    with pytest.raises(ValueError, match="no task spans"):
        efficiency([])
    with pytest.raises(ValueError, match="no task spans"):
        summarize(iter(()))


def test_a_task_cannot_finish_before_it_starts():
    with pytest.raises(ValueError, match="finished"):
        TaskSpan("w", T0 + 1.0, T0)


def test_summary_holds_the_figures_of_merit():
    summary = summarize(_two_workers())

    assert summary.workers == 2
    assert summary.tasks == 3
    assert summary.wall_seconds == pytest.approx(5.0)
    assert summary.efficiency == pytest.approx(0.8)
    assert summary.mean_task_seconds == pytest.approx(8.0 / 3)
    assert summary.events == 1000
    assert summary.events_per_second == pytest.approx(200.0)


def test_mean_gap_is_over_consecutive_tasks_of_the_same_worker():
    # Given w1 waits 1 s then 3 s between its tasks, and w2 runs a single task
    spans = [
        TaskSpan("w1", T0 + 0.0, T0 + 1.0),
        TaskSpan("w1", T0 + 2.0, T0 + 3.0),
        TaskSpan("w1", T0 + 6.0, T0 + 7.0),
        TaskSpan("w2", T0 + 0.5, T0 + 1.5),
    ]

    # Then the gap before w2's task (which starts after w1's first) is not counted
    assert summarize(spans).mean_gap_seconds == pytest.approx(2.0)


def test_mean_gap_is_zero_when_no_worker_ran_two_tasks():
    spans = [TaskSpan("w1", T0, T0 + 1.0), TaskSpan("w2", T0, T0 + 2.0)]

    assert summarize(spans).mean_gap_seconds == 0.0


def test_the_summary_prints_like_the_original_title():
    text = str(summarize(_two_workers()))

    assert text == (
        "efficiency (filled/total) = 80.0%, mean task time = 2666.7 ms, "
        "mean intertask time = 1000.0 ms"
    )


def test_plot_timeflow_writes_a_png_with_the_summary_in_its_title(tmp_path):
    # Given three tasks on two workers
    path = tmp_path / "timeflow.png"

    # When the timeline is plotted to a file
    figure, summary = plot_timeflow(_two_workers(), path, title="dimuon mass")

    # Then a real PNG is written
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5_000
    # And the title shows the efficiency as the summary prints it
    assert summary == summarize(_two_workers())
    assert isinstance(figure, Figure)
    (ax,) = figure.axes
    assert "dimuon mass" in ax.get_title()
    assert str(summary) in ax.get_title()
    assert "80.0%" in ax.get_title()


def test_plot_timeflow_draws_one_bar_per_task_and_one_row_per_worker_by_name():
    figure, _ = plot_timeflow(_two_workers())

    (ax,) = figure.axes
    bars = ax.patches
    assert len(bars) == 3
    assert [label.get_text() for label in ax.get_yticklabels()] == ["w1", "w2"]
    # Bars are drawn worker by worker, each worker's tasks in order; x is seconds since start
    assert [(bar.get_x(), bar.get_width()) for bar in bars] == [
        pytest.approx((0.0, 2.0)),
        pytest.approx((3.0, 2.0)),
        pytest.approx((1.0, 4.0)),
    ]
    assert [bar.get_y() + bar.get_height() / 2 for bar in bars] == pytest.approx([0, 0, 1])


def test_plot_timeflow_draws_on_given_axes(tmp_path):
    # Given axes in a subfigure of a caller's figure
    outer = Figure()
    ax = outer.subfigures(1, 2)[1].add_subplot()

    # When the timeline is drawn there and saved
    figure, summary = plot_timeflow(_two_workers(), tmp_path / "t.png", ax=ax)

    # Then the caller's whole figure is returned and saved
    assert figure is outer
    assert ax.get_title() == str(summary)
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
