"""The benchmark's task functions, in an importable module rather than in __main__.

Every system then pickles them by reference and its workers import them, as a user's own module
would be: rhc workers and dask workers find this file through PYTHONPATH (the benchmarks set
it), so no system pays for pickling code by value and all of them send the same few bytes per
task.
"""

import time

SLEEP_SECONDS = 0.01


def noop(x):
    """The cheapest possible task: what remains is the system's own overhead per task."""
    return x


def sleep(x, seconds=SLEEP_SECONDS):
    """A task of `seconds` (10 ms by default) that times itself: efficiency = time in tasks /
    (wall time * workers), as the original tool's plot_timeflow measured it, whatever
    time.sleep overshoots here."""
    started = time.perf_counter()
    time.sleep(seconds)
    return x, time.perf_counter() - started
