# SPDX-License-Identifier: BSD-3-Clause
"""A job's output, error and log files: written and collected inside its scratch directory,
never through a symbolic link.

The pool may run as root while the job (a container's user) owns its scratch directory: a job
that turns `out` or a directory on its way into a link to /etc must not make the pool write or
read there. Every path is walked one component at a time with O_NOFOLLOW, from the scratch
directory down.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from rhc.condor.minipool.errors import HoldError

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_output(scratch: Path, relative: str, *, append: bool = False) -> BinaryIO:
    """Open relative (a path checked by submitfile.confined) inside scratch for writing,
    creating its directories; truncated unless append.

    Raises:
      OSError: a component is a link (ELOOP, ENOTDIR), or anything else the system refuses.
      HoldError: the file is there but not a regular file (a FIFO, a device).
    """
    *parents, name = PurePosixPath(relative).parts
    with _directory(scratch, parents, create=True) as parent:
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        flags |= os.O_APPEND if append else os.O_TRUNC
        fd = os.open(name, flags, 0o600, dir_fd=parent)
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device the job put there
        os.close(fd)
        raise HoldError(f"{relative} in {scratch} is not a regular file")
    return os.fdopen(fd, "ab" if append else "wb")


def collect(scratch: Path, names: Iterable[str], destination: Path) -> list[str]:
    """Copy the regular files among names (relative paths) from scratch to the same paths in
    destination; links, and whatever is missing, are left. Returns the names copied."""
    copied = []
    for relative in dict.fromkeys(names):
        try:
            source = _open_regular(scratch, relative)
        except (OSError, HoldError):
            continue  # never written, or not a plain file: nothing to hand back
        destination.mkdir(mode=0o700, exist_ok=True)
        with source, open_output(destination, relative) as target:
            shutil.copyfileobj(source, target)
        copied.append(relative)
    return copied


def _open_regular(scratch: Path, relative: str) -> BinaryIO:
    *parents, name = PurePosixPath(relative).parts
    with _directory(scratch, parents, create=False) as parent:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # no FIFO blocks it
        fd = os.open(name, flags, dir_fd=parent)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise HoldError(f"{relative} in {scratch} is not a regular file")
    return os.fdopen(fd, "rb")


@contextlib.contextmanager
def _directory(top: Path, parts: list[str], *, create: bool) -> Iterator[int]:
    """A descriptor of top/parts..., reached without following any link."""
    fd = os.open(top, _DIRECTORY)
    try:
        for part in parts:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o700, dir_fd=fd)
            child = os.open(part, _DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)
