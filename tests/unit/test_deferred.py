"""Writes held back from a caller reach Redis in order, and whoever reads them waits for them."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import pytest

from rhc.errors import BrokerError
from rhc.manager.deferred import DeferredWrites


class Pipe:
    """What a pipeline records of the writes handed to it."""

    def __init__(self, sent: list[list[str]]) -> None:
        self.commands: list[str] = []
        sent.append(self.commands)


def writer(sent: list[list[str]], fail_first: bool = False):
    failures = [fail_first]

    def send(writes) -> None:
        pipe = Pipe(sent)
        for write in writes:
            write(pipe)
        if failures.pop(0) if failures else False:
            raise BrokerError("Redis is unreachable")

    return send


def command(name: str):
    return lambda pipe: pipe.commands.append(name)


def test_writes_go_in_order_and_wait_returns_once_they_went() -> None:
    sent: list[list[str]] = []
    deferred = DeferredWrites(writer(sent))
    for name in ("finish a", "deliver a", "finish b"):
        deferred.add(command(name))
    deferred.wait()
    assert [name for pipe in sent for name in pipe] == ["finish a", "deliver a", "finish b"]
    deferred.close()


def test_writes_added_together_share_one_round_trip() -> None:
    sent: list[list[str]] = []
    deferred = DeferredWrites(writer(sent))
    for number in range(20):
        deferred.add(command(f"finish {number}"))
    deferred.close()
    assert len(sent) < 20 and sum(map(len, sent)) == 20


def test_close_sends_what_is_held_back_and_a_later_write_still_goes() -> None:
    sent: list[list[str]] = []
    others = set(threading.enumerate())  # other managers' writers, in this process
    deferred = DeferredWrites(writer(sent))
    deferred.add(command("finish a"))
    deferred.close()
    assert sent == [["finish a"]]
    deferred.add(command("finish b"))
    deferred.wait()
    assert sent[-1] == ["finish b"]
    deferred.close()
    assert not [t for t in set(threading.enumerate()) - others if t.name == "rhc-writes"]


def test_a_failed_round_trip_is_logged_and_the_writes_after_it_still_go(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent: list[list[str]] = []
    deferred = DeferredWrites(writer(sent, fail_first=True))
    deferred.add(command("finish a"))
    with caplog.at_level(logging.WARNING):
        deferred.wait()
    deferred.add(command("finish b"))
    deferred.close()
    assert "could not record 1 finished job(s) in Redis: Redis is unreachable" in caplog.text
    assert sent[-1] == ["finish b"]


def test_an_exiting_process_waits_for_a_lost_redis_only_a_moment() -> None:
    # Given a process whose held-back write cannot reach Redis (it would wait its whole
    # reconnect timeout), cut short to 0.2 s at exit
    script = """
import threading, time
from rhc.manager import deferred
deferred.AT_EXIT = 0.2
stuck = threading.Event()
writes = deferred.DeferredWrites(lambda writes: stuck.wait())
writes.add(lambda pipe: None)
"""
    # When it exits, Then it does, without waiting for the write
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    assert time.monotonic() - started < 10
