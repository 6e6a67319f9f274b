# SPDX-License-Identifier: BSD-3-Clause
"""Retrying through a lost Redis: a write Redis may already have run is not run again."""

from __future__ import annotations

import redis

from rhc.config import resolve_settings
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
