# SPDX-License-Identifier: BSD-3-Clause
"""Retrying through a lost Redis: a write Redis may already have run is not run again."""

from __future__ import annotations

import pytest
import redis

from rhc.config import resolve_settings
from rhc.errors import ClientClosedError
from rhc.wire.connection import Reconnector, once


def test_a_write_cut_off_by_a_lost_redis_is_not_sent_again():
    # Given a write whose connection breaks once it is sent (Redis may have run it)
    settings = resolve_settings(redis_url="redis://127.0.0.1:1", secret="s" * 32)
    reconnector = Reconnector(settings, timeout=5.0)
    sent, waited = [], []

    def write() -> str:
        sent.append(1)
        raise redis.ConnectionError("Connection closed by server.")

    # When it is retried through the reconnector as a write to send once
    result = reconnector.call(once(write, then=lambda: waited.append(1)), doing="sending")
    # Then it was sent once; the retry only waited for Redis, and the loss is counted, so
    # that the caller checks what Redis holds
    assert (len(sent), len(waited), result, reconnector.losses) == (1, 1, None, 1)


def test_a_call_whose_client_was_closed_under_it_ends_instead_of_reconnecting():
    # Given a read in progress when its owner closes the client (its socket shut under it)
    settings = resolve_settings(redis_url="redis://127.0.0.1:1", secret="s" * 32)
    reconnector = Reconnector(settings, timeout=5.0)
    calls = []

    def read() -> None:
        calls.append(1)
        reconnector.close()
        raise redis.ConnectionError("Error while reading: Bad file descriptor")

    # Then it raises at once, neither retried nor counted as an outage
    with pytest.raises(ClientClosedError, match="closed while reading"):
        reconnector.call(read, doing="reading")
    assert (len(calls), reconnector.losses) == (1, 0)
    # and later calls raise without trying
    with pytest.raises(ClientClosedError):
        reconnector.call(read, doing="reading")
    assert len(calls) == 1
