# SPDX-License-Identifier: BSD-3-Clause
"""The example job: a few maps on whatever cluster RHC_CONFIG_FILE describes (`make run-local`)."""

import operator
import time

from rhc import Manager


def slow_square(x: int) -> int:
    time.sleep(0.01)
    return x * x


def main() -> None:
    manager = Manager()
    print(manager)
    print(manager.workers())
    print("squares:", manager.remote_map(lambda x: x**2, range(10), progress=False))

    started = time.perf_counter()
    total = manager.remote_map(slow_square, range(400), reduce=operator.add)
    elapsed = time.perf_counter() - started
    workers = len(manager.workers())
    print(
        f"sum of 400 squares, 10 ms each: {total} in {elapsed:.2f} s "
        f"({400 * 0.01 / (elapsed * workers):.0%} of {workers} workers busy)"
    )
    assert total == sum(x * x for x in range(400))

    started = time.perf_counter()
    results = manager.remote_map(operator.neg, range(100_000))
    elapsed = time.perf_counter() - started
    print(f"100,000 tiny tasks in {elapsed:.2f} s ({100_000 / elapsed:,.0f} tasks/s)")
    assert results == [-x for x in range(100_000)]


if __name__ == "__main__":
    main()
