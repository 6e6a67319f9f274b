# SPDX-License-Identifier: BSD-3-Clause
"""Redis ACL roles: what each kind of client may send, and which keys and channels of which
namespace it may touch. The lists are the commands rhc's own code sends (the Lua scripts' too:
Redis checks every command a script runs against its caller's rules); nothing else is granted.

  manager   the notebook side of one namespace: all its keys, PUBLISH on its control channel
  worker    the workers of one namespace: task streams, worker and job keys, functions read-only,
            the marks of batches run add-only (a selector), SUBSCRIBE on its control channel,
            the activity people watch (rhc.wire.activity); no affinity, statistics or job list
  monitor   `rhc status` and the dashboard: read-only, every namespace
  admin     the operator's (the stack's healthcheck, the tests' inspection): everything

The default user is off; no role but admin has CONFIG, FLUSHALL, KEYS, SCAN, MONITOR, DEBUG,
SHUTDOWN or ACL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rhc.wire.keys import Keys

MANAGER, WORKER, MONITOR, ADMIN = "manager", "worker", "monitor", "admin"
ROLES = (MANAGER, WORKER, MONITOR, ADMIN)

_CONNECTION = ("ping", "client|setname", "multi", "exec", "discard")
"""What every client sends: a liveness check, its name, transactions (pipelines). (redis-py
also tries CLIENT SETINFO, which Redis 7.0 lacks; refused, it goes on without.)"""

_SCRIPTS = ("evalsha", "script|load")
"""Running the scripts of rhc.wire.scripts: by digest, loading them when Redis has not."""

_SCRIPT_COMMANDS = (
    "xack",
    "xadd",
    "xdel",
    "xrange",
    "pexpire",
    "exists",
    "hincrby",
    "hincrbyfloat",
    "del",
)
"""What the scripts themselves run."""

_STATUS = ("info", "xinfo|groups", "xrevrange", "zrevrange")
"""What reading a snapshot of a namespace (`rhc status`, rhc.dashboard.snapshot) adds to a
manager's commands."""

_COMMANDS = {
    MANAGER: (
        *_CONNECTION,
        *_SCRIPTS,
        *_SCRIPT_COMMANDS,
        *_STATUS,
        "get",
        "set",
        "expire",
        "hget",
        "hgetall",
        "hmget",
        "hset",
        "hsetnx",
        "xlen",
        "xpending",
        "xread",
        "zadd",
        "zrange",
        "zrem",
        "zremrangebyrank",
        "zscore",
        "publish",
    ),
    WORKER: (
        *_CONNECTION,
        *_SCRIPTS,
        *_SCRIPT_COMMANDS,
        "get",
        "set",
        "hget",
        "hgetall",
        "hkeys",
        "hmget",
        "hset",
        "hdel",
        "mget",
        "sadd",
        "srem",
        "smembers",
        "xgroup|create",
        "xgroup|delconsumer",
        "xinfo|consumers",
        "xpending",
        "xreadgroup",
        "subscribe",
        "unsubscribe",
    ),
    MONITOR: (
        "ping",
        "client|setname",
        "info",
        "get",
        "hget",
        "hgetall",
        "hmget",
        "xlen",
        "xpending",
        "xrange",
        "zrange",
        "zscore",
        *_STATUS,
    ),
}


@dataclass(frozen=True)
class User:
    """An ACL user: its name, its password (shown nowhere), and its role's rules."""

    name: str
    password: str

    def __repr__(self) -> str:
        return f"User({self.name!r})"


def user_name(role: str, namespace: str | None = None) -> str:
    """How a role's user is named: manager-<namespace>, worker-<namespace>, monitor, admin."""
    return f"{role}-{namespace}" if role in (MANAGER, WORKER) else role


def rules(role: str, namespace: str | None = None) -> list[str]:
    """The ACL rules of a role (for ACL SETUSER, or a line of an ACL file), without the
    password.

    Raises:
      KeyError: an unknown role.
    """
    if role == ADMIN:
        return ["on", "~*", "&*", "+@all"]
    commands = [f"+{command}" for command in _COMMANDS[role]]
    if role == MONITOR:
        return ["on", "resetchannels", "%R~rhc:*", "-@all", *commands]
    keys = Keys(namespace)
    grants = {
        MANAGER: [f"~{keys.prefix}*"],
        WORKER: [
            f"%R~{keys.function('*')}",
            f"~{keys.task_stream('*')}",
            f"~{keys.prefix}worker:*",
            f"~{keys.workers}",
            f"~{keys.reaper_lock}",
            f"~{keys.job('*')}",
            *(f"~{key}" for key in (keys.counters, keys.failures, keys.departures)),
        ],
    }[role]
    granted = ["on", "resetchannels", f"&{keys.control}", *grants, "-@all", *commands]
    if role == WORKER:
        # The marks of batches run: workers add and read them (ACK_AND_STORE), never change
        # them. A script's declared keys must all be granted by one selector, hence the second.
        ran = f"~{keys.ran('*')}"
        granted += [f"({ran} +hsetnx +hexists +hget)", f"({' '.join(grants)} {ran} +evalsha)"]
    return granted


def acl_line(user: User, role: str, namespace: str | None = None) -> str:
    """A line of an ACL file: the password only as its SHA-256, so the file reveals none."""
    digest = hashlib.sha256(user.password.encode()).hexdigest()
    return " ".join(["user", user.name, "reset", *rules(role, namespace), f"#{digest}"])
