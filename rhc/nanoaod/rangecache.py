# SPDX-License-Identifier: BSD-3-Clause
"""The byte ranges a worker read from remote files, kept on its scratch disk within a byte
budget: an analysis reads a few percent of a NanoAOD file, so only those bytes are kept, never
whole-file copies. A worker's task processes share it: each range is a file of its own, written
whole and renamed into place. The directory is this user's alone: whoever could write there
could swap cached bytes for their own."""

from __future__ import annotations

import bisect
import hashlib
import os
import shutil
from pathlib import Path

from rhc.errors import ConfigurationError

_EVICT_EVERY = 0.05
"""Check the budget after this fraction of it was written by this process."""


class RangeCache:
    """Byte ranges of remote files on local disk; the files least recently used are evicted
    (all their ranges at once) past `max_bytes`."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._index: dict[Path, list[tuple[int, int]]] = {}
        self._written_since_check = 0
        self._checked = False

    def get(self, url: str, size: int, start: int, stop: int) -> bytes | None:
        """Bytes [start, stop) of the file at url (of `size` bytes), if a stored range holds them
        (fewer when the range reaches the end of the file); None otherwise."""
        return self.get_many(url, size, [(start, stop)]).get((start, stop))

    def get_many(
        self, url: str, size: int, spans: list[tuple[int, int]]
    ) -> dict[tuple[int, int], bytes]:
        """The bytes of those spans (start, stop) of the file at url that stored ranges hold.
        The folder is listed at most once (ranges other processes stored), not once per miss."""
        folder = self._folder(url, size)
        covering = {span: self._covering(folder, *span, size) for span in spans}
        if None in covering.values():
            self._index[folder] = _listed(folder)
            covering = {span: self._covering(folder, *span, size) for span in spans}
        found = {}
        for (start, stop), stored in covering.items():
            if stored is None:
                continue
            first, last = stored
            try:
                data = (folder / _name(first, last)).read_bytes()
            except FileNotFoundError:  # evicted by another process meanwhile
                self._index.pop(folder, None)
                continue
            found[start, stop] = data[start - first : stop - first]
        if found:
            os.utime(folder)  # recently used
        return found

    def put(self, url: str, size: int, start: int, data: bytes) -> None:
        """Keep bytes read from url at offset start; a range larger than the budget is not kept."""
        if len(data) > self.max_bytes:
            return
        folder = self._folder(url, size)
        folder.mkdir(mode=0o700, exist_ok=True)
        stop = start + len(data)
        partial = folder / f".{_name(start, stop)}.{os.getpid()}"
        try:
            partial.write_bytes(data)
            os.replace(partial, folder / _name(start, stop))
        except FileNotFoundError:  # another process evicted the folder meanwhile
            return
        bisect.insort(self._index.setdefault(folder, []), (start, stop))
        self._written_since_check += len(data)
        if self._written_since_check > _EVICT_EVERY * self.max_bytes:
            self._written_since_check = 0
            self.evict(keep=folder)

    def evict(self, keep: Path | None = None) -> None:
        """Remove the least recently used files' ranges until the rest fit the budget."""
        folders = sorted(
            (entry for entry in os.scandir(self.directory) if entry.is_dir()),
            key=lambda entry: entry.stat().st_mtime,
        )
        sizes = {Path(entry.path): _bytes_in(Path(entry.path)) for entry in folders}
        total = sum(sizes.values())
        for folder, size in sizes.items():
            if total <= self.max_bytes:
                return
            if folder != keep:
                shutil.rmtree(folder, ignore_errors=True)  # another process may be at it too
                self._index.pop(folder, None)
                total -= size

    def _folder(self, url: str, size: int) -> Path:
        """The folder of one file's ranges: a file replaced by one of another size is another."""
        self._make_private()
        name = hashlib.sha256(f"{url}\0{size}".encode()).hexdigest()[:32]
        return self.directory / name

    def _covering(self, folder: Path, start: int, stop: int, size: int) -> tuple[int, int] | None:
        """The stored range holding [start, stop), from the index of the folder's ranges."""
        ranges = self._index.get(folder, [])
        at = bisect.bisect_right(ranges, (start, float("inf")))
        for first, last in reversed(ranges[:at]):
            if first <= start and (last >= stop or last == size):
                return first, last
        return None

    def _make_private(self) -> None:
        """Create the directory for this user alone (0700), or check the one that is there.

        Raises:
          ConfigurationError: the directory belongs to another user, or others may enter it.
        """
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


def _name(start: int, stop: int) -> str:
    return f"{start}-{stop}"


def _listed(folder: Path) -> list[tuple[int, int]]:
    try:
        names = [name for name in os.listdir(folder) if not name.startswith(".")]
    except FileNotFoundError:
        return []
    return sorted(tuple(map(int, name.split("-"))) for name in names)  # type: ignore[misc]


def _bytes_in(folder: Path) -> int:
    try:
        return sum(entry.stat().st_size for entry in os.scandir(folder))
    except FileNotFoundError:  # evicted by another process
        return 0
