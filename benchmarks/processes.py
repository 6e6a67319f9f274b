# SPDX-License-Identifier: BSD-3-Clause
"""The processes a benchmark started, read from /proc: their tree and their page faults."""

from __future__ import annotations

import os
from pathlib import Path


def named_stat(pid: int) -> tuple[str, list[str]] | None:
    """A process's command name and the fields of /proc/PID/stat after it (state first); None
    once it exited."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name, _, rest = text[text.index("(") + 1 :].rpartition(")")
    return name, rest.split()


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), None once it exited."""
    found = named_stat(pid)
    return None if found is None else found[1]


def family(pids: list[int]) -> list[int]:
    """The processes and all their descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = stat_fields(int(stat.parent.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def descendants_minor_faults(excluding: str = "redis-server") -> int:
    """Minor page faults so far of every live process this one started, and theirs, but those
    named `excluding`: each is a first touch of a fresh page of memory (workers and their task
    processes, a pool's)."""
    me = os.getpid()
    stats = (named_stat(pid) for pid in family([me]) if pid != me)
    return sum(int(fields[7]) for name, fields in filter(None, stats) if name != excluding)
