# SPDX-License-Identifier: BSD-3-Clause
"""A password that never shows. Wrong URLs and passwords, and a Redis gone for good, are in
test_bad_input.py; a Redis restarting or crashing mid-job is in tests/chaos/test_redis.py."""

from __future__ import annotations

from rhc import Manager
from rhc.config import new_secret
from rhc.wire.signing import new_task_key

SECRET = new_secret()
TASK_KEY = new_task_key()


def test_the_password_never_shows_in_reprs_or_logs(redis_server, caplog):
    admin = redis_server.admin
    url = f"redis://{admin.name}:{admin.password}@127.0.0.1:{redis_server.port}"
    manager = Manager(url, secret=SECRET, task_key=TASK_KEY)
    assert redis_server.admin.password not in repr(manager)
    assert redis_server.admin.password not in repr(manager.settings)
    assert SECRET not in repr(manager.settings)
    assert TASK_KEY.split(":")[1] not in repr(manager.settings) + repr(manager)
    assert ":***@" in repr(manager)
    assert redis_server.admin.password not in caplog.text
