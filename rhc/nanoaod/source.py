# SPDX-License-Identifier: BSD-3-Clause
"""An uproot source that reads remote files (http(s)://, root://) through a worker's range
cache: the byte ranges uproot asks for are served from local disk when a task read them before,
and fetched from the server (in uproot's coalesced requests) and kept when not.

    uproot.open(url, handler=CachedSource)            # in a task: the worker's cache
    uproot.open(url, handler=CachedSource, range_cache=RangeCache(directory, max_bytes))

It is also what a coffea processor run through rhc reads with: call coffea's Runner with
`uproot_options={"handler": CachedSource}`. Local files are read as uproot
reads them, without the cache.
"""

from __future__ import annotations

import queue

import uproot
import uproot.source.chunk
import uproot.source.fsspec

from rhc.errors import ConfigurationError, NotInWorkerError
from rhc.nanoaod.rangecache import RangeCache
from rhc.worker import get_worker

RANGE_CACHE_OPTION = "range_cache"
"""The uproot.open option naming the RangeCache to read through (else the worker's)."""
_WORKER_CACHE = "rhc.nanoaod.range_cache"

_XROOTD_DEFAULTS = {"ConnectionWindow": 120, "ConnectionRetry": 5, "RequestTimeout": 1800}
_XROOTD_LIMITS = {"ConnectionWindow": 10, "ConnectionRetry": 1, "RequestTimeout": 300}
"""XRootD's client waits up to 5 x 120 s for a server that refuses connections, and 30 min for an
answer: a down redirector would stall a run, not move it to the next. Settings a site made
itself (XRD_* variables) are kept."""


def worker_range_cache() -> RangeCache | None:
    """The range cache of the worker running this task (shared by its task processes through
    the disk), or None outside a worker."""
    try:
        worker = get_worker()
    except NotInWorkerError:
        return None
    cache = worker.local.get(_WORKER_CACHE)
    if cache is None:
        cache = worker.local[_WORKER_CACHE] = RangeCache(worker.cache_dir, worker.disk_cache_bytes)
    return cache


def is_remote(path: str) -> bool:
    """A URL read over the network (not a local path or file://)."""
    return "://" in path and not path.startswith("file://")


def limit_xrootd_waits() -> None:
    """Cut the XRootD client's waits for this process to _XROOTD_LIMITS, where XRD_* variables
    left XRootD's defaults.

    Raises:
      ConfigurationError: the XRootD client is not installed.
    """
    try:
        from XRootD.client import EnvGetInt, EnvPutInt
    except ImportError as exc:
        raise ConfigurationError(
            "reading root:// needs the XRootD client: pip install 'rhc[xrootd]' (the xrootd "
            "and fsspec-xrootd packages)"
        ) from exc
    for name, limit in _XROOTD_LIMITS.items():
        if EnvGetInt(name) == _XROOTD_DEFAULTS[name]:
            EnvPutInt(name, limit)


class CachedSource(uproot.source.chunk.Source):
    """Reads through a RangeCache what uproot's fsspec source would read from the server.

    Its counters (num_requested_bytes, ...) count what went to the server: cache hits cost
    nothing there.
    """

    def __init__(self, file_path: str, **options: object) -> None:
        super().__init__()
        cache = options.pop(RANGE_CACHE_OPTION, None)
        if file_path.startswith("root://"):
            limit_xrootd_waits()
        if not is_remote(file_path):  # a local file is read where it is
            cache = None
        elif cache is None:
            cache = worker_range_cache()
        self._cache = cache
        self._server = uproot.source.fsspec.FSSpecSource(file_path, **options)
        self._file_path = file_path
        self._size: int | None = None

    @property
    def closed(self) -> bool:
        return self._server.closed

    @property
    def num_bytes(self) -> int:
        if self._size is None:
            self._size = self._server.num_bytes
        return self._size

    def chunk(self, start: int, stop: int) -> uproot.source.chunk.Chunk:
        return self._read([(start, stop)])[0]

    def chunks(
        self, ranges: list[tuple[int, int]], notifications: queue.Queue
    ) -> list[uproot.source.chunk.Chunk]:
        chunks = self._read(ranges)
        for chunk in chunks:
            notifications.put(chunk)
        return chunks

    def _read(self, ranges: list[tuple[int, int]]) -> list[uproot.source.chunk.Chunk]:
        """Every range as a filled chunk: from the cache where it holds them, the rest from the
        server in one request."""
        found: dict[tuple[int, int], bytes] = {}
        if self._cache is not None:
            found = self._cache.get_many(self._file_path, self.num_bytes, ranges)
        missing = sorted({span for span in ranges if span not in found})
        if missing:
            found.update(self._fetch(missing))
        return [uproot.source.chunk.Chunk.wrap(self, found[span], span[0]) for span in ranges]

    def _fetch(self, ranges: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        if len(ranges) == 1:  # one request, whose errors (e.g. file not found) raise as such
            fetched = [self._server.chunk(*ranges[0])]
        else:
            fetched = self._server.chunks(ranges, queue.Queue())
        self._num_requests += 1
        self._num_requested_chunks += len(ranges)
        self._num_requested_bytes += sum(stop - start for start, stop in ranges)
        data = {}
        for chunk in fetched:
            chunk.wait(insist=False)  # the last range may reach past the end of the file
            data[chunk.start, chunk.stop] = got = bytes(chunk.raw_data)
            if self._cache is not None:
                self._cache.put(self._file_path, self.num_bytes, chunk.start, got)
        return data

    def __enter__(self) -> CachedSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.__exit__(*exc_info)
