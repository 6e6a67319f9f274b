# SPDX-License-Identifier: BSD-3-Clause
"""What a worker does before its first task: importing what tasks need, and warming it up."""

from __future__ import annotations

from tests import fixtures


def test_a_preloaded_module_is_warmed_up_before_the_first_task(cluster):
    # Given a worker that preloads a module with an rhc_warm_up() hook
    cluster.start_workers(1, options=lambda name: ["--preload", "tests.fixtures"])
    # When its first task looks
    with cluster.manager() as manager:
        warmed = manager.submit(fixtures.was_warmed_up, [0]).results(timeout=30)
    # Then the hook had run in its task process before it
    assert warmed == [True]


def test_a_failing_warm_up_is_logged_and_the_worker_serves(cluster):
    # Given a worker whose preloaded module's warm-up raises
    cluster.start_workers(1, options=lambda name: ["--preload", "tests.broken_warm_up"])
    # When it is given tasks, then it runs them, and its log says what failed
    with cluster.manager() as manager:
        assert manager.remote_map(fixtures.square, [3], progress=False) == [9]
    log = cluster.log("w0")
    assert "the warm-up of tests.broken_warm_up failed" in log
    assert "RuntimeError: warm-up exploded" in log


def test_a_warm_up_hook_imported_from_elsewhere_is_not_run(cluster):
    # Given a worker that preloads a module which merely imports another module's hook
    cluster.start_workers(1, options=lambda name: ["--preload", "tests.imports_warm_up"])
    # When its first task looks, then the hook did not run
    with cluster.manager() as manager:
        assert manager.submit(fixtures.was_warmed_up, [0]).results(timeout=30) == [False]
