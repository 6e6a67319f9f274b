# SPDX-License-Identifier: BSD-3-Clause
"""Cutting a fileset into chunks: the unit of work, (dataset, file, entry_start, entry_stop).

Entry counts are read in parallel; files that cannot be used are reported with the reason.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from rhc.errors import ArgumentError, RhcError
from rhc.nanoaod.locations import FileOpenError, describe_read_error, locations, open_file
from rhc.nanoaod.source import is_remote

DEFAULT_CHUNKSIZE = 100_000
DEFAULT_TREE = "Events"
LOCAL_COUNTS_KEPT = 100_000
"""Local files whose entry counts this process remembers (a few hundred bytes each)."""
Fileset = Mapping[str, Sequence[str]] | Sequence[str]
"""Files to analyse: {dataset: [paths or URLs]}, or a plain list (one dataset, "default")."""


@dataclass(frozen=True, order=True)
class Chunk:
    """A slice of one file's tree. Frozen and hashable: its fields are its identity."""

    dataset: str
    file: str
    entry_start: int
    entry_stop: int
    tree: str = DEFAULT_TREE

    @property
    def events(self) -> int:
        return self.entry_stop - self.entry_start

    @property
    def key(self) -> str:
        """A short name for this slice of data, to route it back to a worker that cached it."""
        text = f"{self.file}\0{self.tree}\0{self.entry_start}\0{self.entry_stop}"
        return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class BadFile:
    """A file that cannot be analysed, and why."""

    dataset: str
    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


class BadFilesError(RhcError):
    """Raised when files of a fileset cannot be read, unless bad files are skipped."""

    def __init__(self, bad_files: Sequence[BadFile]) -> None:
        self.bad_files = list(bad_files)
        listed = "\n  ".join(str(bad) for bad in self.bad_files)
        super().__init__(
            f"{len(self.bad_files)} file(s) cannot be analysed:\n  {listed}\n"
            "Fix or remove them, or pass skip_bad_files=True to run without them"
        )


@dataclass(frozen=True)
class Chunking:
    """The chunks of a fileset, and the files left out."""

    chunks: list[Chunk]
    bad_files: list[BadFile]

    @property
    def events(self) -> int:
        return sum(chunk.events for chunk in self.chunks)


def datasets(fileset: Fileset) -> dict[str, list[str]]:
    """The fileset as {dataset: [files]}."""
    if isinstance(fileset, Mapping):
        return {str(name): [str(f) for f in files] for name, files in fileset.items()}
    if isinstance(fileset, str):
        return {"default": [fileset]}
    return {"default": [str(f) for f in fileset]}


def make_chunks(
    fileset: Fileset,
    chunksize: int = DEFAULT_CHUNKSIZE,
    *,
    tree: str = DEFAULT_TREE,
    branches: Iterable[str] = (),
    skip_bad_files: bool = False,
    redirectors: Sequence[str] = (),
    parallel: int = 8,
) -> Chunking:
    """Cut every file into chunks of `chunksize` entries (the last one shorter, none empty).

    Parameters:
      branches: branches every file must have; a file without one is a bad file.
      skip_bad_files: leave unreadable files out (listed in the result) instead of raising.
      redirectors: XRootD redirectors to try a root:// file (or a /store/ name) at, in turn.
      parallel: how many files are opened at once to count their entries.

    Raises:
      BadFilesError: some files are missing, unreadable, or lack the tree or a branch.
    """
    if chunksize < 1:
        raise ArgumentError(f"chunksize must be a positive number of entries, not {chunksize}")
    files = [(name, path) for name, paths in datasets(fileset).items() for path in paths]
    if not files:
        raise ArgumentError(
            "the fileset names no files: give {dataset: [paths or URLs]}, or a list of them"
        )
    needed = tuple(branches)
    with ThreadPoolExecutor(max(1, min(parallel, len(files)))) as pool:
        counts = list(
            pool.map(lambda item: count_entries(item[1], tree, needed, redirectors), files)
        )
    chunks: list[Chunk] = []
    bad: list[BadFile] = []
    for (dataset, path), (entries, problem) in zip(files, counts, strict=True):
        if problem is not None:
            bad.append(BadFile(dataset, path, problem))
            continue
        chunks += [
            Chunk(dataset, path, start, min(start + chunksize, entries), tree)
            for start in range(0, entries, chunksize)
        ]
    if bad and not skip_bad_files:
        raise BadFilesError(bad)
    return Chunking(chunks, bad)


def count_entries(
    path: str, tree: str, branches: Sequence[str] = (), redirectors: Sequence[str] = ()
) -> tuple[int, str | None]:
    """The number of entries of path's tree, or (0, why it cannot be used).

    A local file's answer is remembered for as long as the file stays the same (its inode,
    size and times): a re-run opens none of its files again, where opening one costs
    milliseconds (tens with NanoAOD's thousand branches).
    """
    stamp = _local_stamp(path, redirectors)
    if stamp is None:
        return _count_entries(path, tree, tuple(branches), tuple(redirectors))
    return _count_local_entries(path, stamp, tree, tuple(branches))


def _local_stamp(path: str, redirectors: Sequence[str]) -> tuple[int, ...] | None:
    """What changes when a local file does; None for a remote (or missing) one."""
    if is_remote(path) or locations(path, redirectors) != [path]:
        return None
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


@functools.lru_cache(maxsize=LOCAL_COUNTS_KEPT)
def _count_local_entries(
    path: str, stamp: tuple[int, ...], tree: str, branches: tuple[str, ...]
) -> tuple[int, str | None]:
    return _count_entries(path, tree, branches, ())


def _count_entries(
    path: str, tree: str, branches: tuple[str, ...], redirectors: tuple[str, ...]
) -> tuple[int, str | None]:
    try:
        with open_file(path, redirectors) as root_file:
            if tree not in root_file:
                found = ", ".join(sorted({key.split(";")[0] for key in root_file})) or "nothing"
                return 0, f"no '{tree}' tree (it has: {found})"
            events = root_file[tree]
            missing = [name for name in branches if name not in events]
            if missing:
                return 0, f"no branch {', '.join(map(repr, missing))} in '{tree}'"
            return events.num_entries, None
    except FileOpenError as exc:
        return 0, exc.reason
    except Exception as exc:  # uproot raises many types for corrupt or foreign files
        return 0, describe_read_error(exc)
