# SPDX-License-Identifier: BSD-3-Clause
"""Local copies of remote files on a worker's scratch disk, within a byte budget: a second run
over the same files reads them from here. The directory is this user's alone: whoever could
write there could swap a cached file for one of their own."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import fsspec

from rhc.errors import ConfigurationError

_BLOCK = 8 * 2**20


class DiskCache:
    """Local copies of remote files (http(s)://, root://, ...), least recently used evicted past
    a byte budget; a file larger than the whole budget is read remotely instead."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.bytes_fetched = 0
        self._checked = False

    def holds(self, url: str) -> bool:
        self._make_private()
        return self._local(url).exists()

    def path(self, url: str) -> Path | None:
        """The local copy of url, fetched on first use; None if it does not fit the budget.

        Raises:
          ConfigurationError: the directory belongs to another user, or others may enter it.
        """
        self._make_private()
        local = self._local(url)
        if local.exists():
            os.utime(local)  # recently used
            return local
        partial = local.with_name(f".{local.name}.{os.getpid()}.part")
        try:
            # block_size=0 streams the whole file in one request: read-ahead blocks would fetch
            # half as much again over HTTP.
            with fsspec.open(url, "rb", block_size=0) as source, open(partial, "wb") as target:
                while block := source.read(_BLOCK):
                    target.write(block)
                    if target.tell() > self.max_bytes:
                        return None
            self.bytes_fetched += partial.stat().st_size
            os.replace(partial, local)
        finally:
            partial.unlink(missing_ok=True)
        self._evict(keep=local)
        return local

    def _local(self, url: str) -> Path:
        name = hashlib.sha256(url.encode()).hexdigest()[:32]
        return self.directory / f"{name}{Path(url.split('?')[0]).suffix}"

    def _make_private(self) -> None:
        """Create the directory for this user alone (0700), or check the one that is there."""
        if self._checked:
            return
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = self.directory.stat()
        if info.st_uid != os.getuid():
            raise ConfigurationError(
                f"the cache directory {self.directory} belongs to uid {info.st_uid}, not to this "
                f"worker (uid {os.getuid()}): give the worker a directory of its own (--cache-dir)"
            )
        if info.st_mode & 0o077:
            raise ConfigurationError(
                f"the cache directory {self.directory} is open to other users (mode "
                f"{info.st_mode & 0o777:04o}): run `chmod 700 {self.directory}`, or give the "
                "worker a directory of its own (--cache-dir)"
            )
        self._checked = True

    def _evict(self, keep: Path) -> None:
        files = sorted(
            (p for p in self.directory.iterdir() if not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
        )
        total = sum(p.stat().st_size for p in files)
        for old in files:
            if total <= self.max_bytes:
                return
            if old != keep:
                total -= old.stat().st_size
                old.unlink(missing_ok=True)


def is_remote(path: str) -> bool:
    """A URL read over the network (not a local path or file://)."""
    return "://" in path and not path.startswith("file://")
