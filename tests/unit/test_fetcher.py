# SPDX-License-Identifier: BSD-3-Clause
"""The fetcher thread: how long its reads wait, as a worker goes idle and gets work again."""

from __future__ import annotations

import threading

from rhc import defaults
from rhc.worker.fetcher import Fetcher

ENTRY = (object(), "its verdict")
"""What a read gives: an entry with what was checked of it."""


def test_an_idle_worker_reads_in_longer_blocks_and_a_task_brings_the_short_ones_back():
    # Given a fetcher whose reads find nothing 6 times, then a task entry, then nothing
    replies = [[]] * 6 + [[ENTRY]] + [[]] * 2
    blocks: list[float] = []
    replied, release, woken = threading.Event(), threading.Event(), threading.Event()

    def read(block: float) -> list:
        blocks.append(block)
        if len(blocks) <= len(replies):
            return replies[len(blocks) - 1]
        replied.set()
        release.wait(10)
        return []

    fetcher = Fetcher(read, woken.set)
    fetcher.start()
    # When it is asked for an entry, and once it has one, for the next
    fetcher.want()
    entry = None
    while entry is None:
        assert woken.wait(10), "the fetcher never woke its worker"
        woken.clear()
        entry = fetcher.take()
    fetcher.want()
    assert replied.wait(10), "the fetcher stopped reading"
    fetcher.stop()
    release.set()
    fetcher.join(10)
    # Then its first IDLE_FLUSH_READS reads wait the short block and the next ones the long
    # block, until the task entry: the reads after it wait the short block again
    short, long = defaults.DEFAULT_READ_BLOCK, defaults.IDLE_READ_BLOCK
    idle = defaults.IDLE_FLUSH_READS
    assert entry is ENTRY and long > short
    assert blocks == [short] * idle + [long] * (7 - idle) + [short] * 3


def test_a_parked_worker_is_handed_its_entry_before_it_is_woken_and_not_after_unparking():
    # Given a fetcher whose reads each give an entry when let through
    let_through, woken = threading.Semaphore(0), threading.Event()
    taken: list[tuple[object, bool]] = []

    def read(block: float) -> list:
        let_through.acquire()
        return [ENTRY]

    fetcher = Fetcher(read, woken.set)
    fetcher.start()

    def take() -> None:  # what the worker's _fill does: take what is in hand
        taken.append((fetcher.take(), woken.is_set()))

    # When its worker is parked while a read gives an entry
    with fetcher.parked(take):
        fetcher.want()
        let_through.release()
        assert woken.wait(10), "the fetcher never woke its worker"
    # Then take() had it, from the fetcher's thread, before the wake
    assert taken == [(ENTRY, False)]
    # And once unparked, the next entry waits in hand for the worker to take it
    woken.clear()
    fetcher.want()
    let_through.release()
    assert woken.wait(10), "the fetcher never woke its worker"
    assert fetcher.take() is ENTRY and len(taken) == 1
    fetcher.stop()
    fetcher.join(10)
