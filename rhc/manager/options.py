# SPDX-License-Identifier: BSD-3-Clause
"""How a job's tasks run and come back: the options remote_map, submit and the NanoAOD runs share,
declared once."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from rhc.errors import ArgumentError


@dataclass(frozen=True)
class JobOptions:
    """The options of a job.

    Parameters:
      timeout: seconds one task may run before it is stopped and counted as a failed attempt.
      retries: how often a task whose process died or timed out is tried again
        (default: max_attempts - 1). A task that raises is not retried.
      reduce: a function merging two results (associative and commutative, e.g.
        operator.add); workers merge first, and one merged value comes back.
      affinity: for each item, a key naming the data it reads (e.g. a chunk of a file), or
        None. An item goes to the worker that last ran its key, whose caches hold the data;
        idle workers still take such items rather than wait.
      return_exceptions: put a TaskError in place of each failed task's result instead of
        raising the first one.

    Raises:
      ArgumentError: an option of the wrong type or out of range.
    """

    timeout: float | None = None
    retries: int | None = None
    reduce: Callable[[object, object], object] | None = None
    affinity: Sequence[str | None] | None = None
    return_exceptions: bool = False

    def __post_init__(self) -> None:
        if self.reduce is not None and not callable(self.reduce):
            raise ArgumentError(f"reduce must be callable, not {type(self.reduce).__name__}")
        if self.timeout is not None and self.timeout <= 0:
            raise ArgumentError(f"timeout must be positive seconds, not {self.timeout!r}")
        if self.retries is not None and self.retries < 0:
            raise ArgumentError(f"retries must be 0 or more, not {self.retries!r}")

    @classmethod
    def parse(cls, options: Mapping[str, object], *, caller: str) -> JobOptions:
        """The options given as keywords to `caller`.

        Raises:
          ArgumentError: an option that does not exist (named, with the ones that do), or a bad
            value.
        """
        check_names(options, cls.names(), caller=caller)
        return cls(**options)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(option.name for option in dataclasses.fields(cls))

    def max_attempts(self, default: int) -> int:
        """How many times a task may crash its process or time out: retries + 1, or default."""
        return default if self.retries is None else self.retries + 1


def check_names(options: Iterable[str], known: Iterable[str], *, caller: str) -> None:
    """Refuse options that `caller` does not have, naming the ones it has.

    Raises:
      ArgumentError: with the unknown options and the known ones.
    """
    known = tuple(known)
    unknown = set(options) - set(known)
    if unknown:
        raise ArgumentError(
            f"{caller}() got unknown option(s) {', '.join(sorted(unknown))}; "
            f"its options are {', '.join(known)}"
        )
