# SPDX-License-Identifier: BSD-3-Clause
"""Reading a chunk's branches through the worker's caches: decompressed arrays stay in memory,
the byte ranges read from remote files stay on local disk. What had to be read from storage is
counted."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Sequence

import awkward as ak
import uproot

from rhc.errors import NotInWorkerError, RhcError
from rhc.nanoaod.chunks import Chunk
from rhc.nanoaod.locations import FileOpenError, describe_read_error, open_file
from rhc.nanoaod.rangecache import RangeCache
from rhc.nanoaod.source import worker_range_cache
from rhc.worker import MemoryCache, get_worker

_OPEN_TREES = 8
_READER = "rhc.nanoaod.reader"


class FileReadError(RhcError):
    """Raised when a chunk's file cannot be read: gone, corrupt, or missing a branch."""

    def __init__(self, chunk: Chunk, reason: str) -> None:
        super().__init__(f"{chunk.file}: {reason}")
        self.chunk = chunk
        self.reason = reason


class Reader:
    """Reads chunks for one process. Without caches (outside a worker) it reads every time."""

    def __init__(self, memory: MemoryCache | None = None, ranges: RangeCache | None = None) -> None:
        self._memory = memory
        self._ranges = ranges
        self._trees: OrderedDict[tuple[str, str], uproot.TTree] = OrderedDict()

    def read(
        self, chunk: Chunk, branches: Sequence[str], redirectors: Sequence[str] = ()
    ) -> tuple[ak.Array, int]:
        """The chunk's branches as one record array (fields named as the branches), and the
        bytes read from storage for them (0 when all came from the caches).

        Parameters:
          redirectors: XRootD redirectors to try a root:// file (or a /store/ name) at, in turn.

        Raises:
          FileReadError: the file cannot be opened or lacks a branch.
        """
        arrays = {}
        missing = []
        for branch in branches:
            cached = self._memory.get(_key(chunk, branch)) if self._memory is not None else None
            if cached is None:
                missing.append(branch)
            else:
                arrays[branch] = cached
        read_bytes = 0
        if missing:
            fresh, read_bytes = self._read_storage(chunk, missing, redirectors)
            for branch, array in fresh.items():
                arrays[branch] = array
                if self._memory is not None:
                    self._memory[_key(chunk, branch)] = array
        return ak.zip({branch: arrays[branch] for branch in branches}, depth_limit=1), read_bytes

    def available(
        self, chunk: Chunk, branches: Sequence[str], redirectors: Sequence[str] = ()
    ) -> tuple[str, ...]:
        """Those of `branches` that the chunk's tree has: a processor's optional branches.

        Raises:
          FileReadError: the file cannot be opened.
        """
        tree = self._tree(chunk, redirectors)
        return tuple(name for name in branches if name in tree)

    def _read_storage(
        self, chunk: Chunk, branches: list[str], redirectors: Sequence[str]
    ) -> tuple[dict, int]:
        tree = self._tree(chunk, redirectors)
        absent = [name for name in branches if name not in tree]
        if absent:
            listed = ", ".join(map(repr, absent))
            raise FileReadError(chunk, f"no branch {listed} in '{chunk.tree}'")
        source = tree.file.source
        before = source.num_requested_bytes
        # Only the memory cache keeps arrays, within its budget: uproot's own would keep up to
        # 100 MB of them per open file beside it (8 files open: 800 MB nobody counts).
        try:
            arrays = tree.arrays(
                branches,
                entry_start=chunk.entry_start,
                entry_stop=chunk.entry_stop,
                how=dict,
                array_cache=None,
            )
        except Exception as exc:  # corrupt baskets and lost servers surface as many types
            self._forget(chunk)  # a retry opens it again, at another redirector if need be
            where = "" if source.file_path == chunk.file else f" (read at {source.file_path})"
            raise FileReadError(chunk, describe_read_error(exc) + where) from exc
        return arrays, source.num_requested_bytes - before

    def _tree(self, chunk: Chunk, redirectors: Sequence[str]) -> uproot.TTree:
        """The chunk's tree, kept open: parsing a NanoAOD tree's ~1,600 branches takes ~0.1 s."""
        key = (chunk.file, chunk.tree)
        tree = self._trees.get(key)
        if tree is not None:
            self._trees.move_to_end(key)
            return tree
        try:
            root_file = open_file(chunk.file, redirectors, self._ranges)
        except FileOpenError as exc:
            raise FileReadError(chunk, exc.reason) from exc
        try:
            tree = root_file[chunk.tree]
        except uproot.KeyInFileError as exc:
            root_file.close()
            raise FileReadError(chunk, f"no '{chunk.tree}' tree") from exc
        self._trees[key] = tree
        if len(self._trees) > _OPEN_TREES:
            _, oldest = self._trees.popitem(last=False)
            with contextlib.suppress(Exception):
                oldest.file.close()
        return tree

    def _forget(self, chunk: Chunk) -> None:
        tree = self._trees.pop((chunk.file, chunk.tree), None)
        if tree is not None:
            with contextlib.suppress(Exception):
                tree.file.close()


def current_reader() -> Reader:
    """The reader of the worker running this task (its caches outlive tasks), or a reader
    without caches outside a worker."""
    try:
        worker = get_worker()
    except NotInWorkerError:
        return Reader()
    reader = worker.local.get(_READER)
    if reader is None:
        reader = worker.local[_READER] = Reader(worker.cache, worker_range_cache())
    return reader


def read(chunk: Chunk, branches: Sequence[str], redirectors: Sequence[str] = ()) -> ak.Array:
    """A chunk's branches, through the worker's caches: for processors that take the chunk."""
    events, _ = current_reader().read(chunk, branches, redirectors)
    return events


def _key(chunk: Chunk, branch: str) -> tuple:
    return ("branch", chunk.file, chunk.tree, chunk.entry_start, chunk.entry_stop, branch)
