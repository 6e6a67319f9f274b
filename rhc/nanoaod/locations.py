# SPDX-License-Identifier: BSD-3-Clause
"""Where a file is read from, and opening it there: a root:// file (or a CMS logical file name,
/store/...) is tried at each redirector in turn, so one site's outage does not stop a run;
remote files are read through the worker's range cache."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import uproot

from rhc.errors import RhcError
from rhc.nanoaod.rangecache import RangeCache
from rhc.nanoaod.source import RANGE_CACHE_OPTION, CachedSource, is_remote

LOGICAL_PREFIX = "/store/"
"""CMS logical file names: read at a redirector, not on the local disk."""

_XROOTD_STATUS = re.compile(r"\[(FATAL|ERROR)\].*")
_XROOTD_NOT_FOUND = "[3011]"


class FileOpenError(RhcError):
    """Raised when a file cannot be opened at any of its locations; names every attempt."""

    def __init__(self, attempts: Sequence[tuple[str, str]]) -> None:
        self.attempts = list(attempts)
        if len(self.attempts) == 1:
            self.reason = self.attempts[0][1]
        else:
            tried = "; ".join(f"{url}: {why}" for url, why in self.attempts)
            self.reason = f"cannot be opened at any of its {len(self.attempts)} locations ({tried})"
        super().__init__(self.reason)


def locations(path: str, redirectors: Sequence[str] = ()) -> list[str]:
    """The URLs to try for path, in order: path itself, then its file at each redirector (a
    root:// URL's path, or a logical file name)."""
    if path.startswith("root://"):
        file = "/" + urlsplit(path).path.lstrip("/")
        found = [path]
    elif path.startswith(LOGICAL_PREFIX) and redirectors:
        file, found = path, []
    else:
        return [path]
    for redirector in redirectors:
        url = f"{redirector.rstrip('/')}/{file}"
        if url not in found:
            found.append(url)
    return found


def open_file(
    path: str, redirectors: Sequence[str] = (), range_cache: RangeCache | None = None
) -> uproot.ReadOnlyDirectory:
    """The ROOT file at path, opened at the first of its locations that answers; remote files
    read through range_cache (else the worker's, in a task).

    Raises:
      FileOpenError: with the reason at every location tried.
    """
    attempts = []
    for url in locations(path, redirectors):
        try:
            return uproot.open(url, **_options(url, range_cache))
        except FileNotFoundError:
            attempts.append((url, "file not found"))
        except RhcError:
            raise
        except Exception as exc:  # uproot and the XRootD client raise many types
            attempts.append((url, describe_read_error(exc)))
    raise FileOpenError(attempts)


def _options(url: str, range_cache: RangeCache | None) -> dict[str, object]:
    if not is_remote(url):
        return {}
    return {"handler": CachedSource, RANGE_CACHE_OPTION: range_cache}


def describe_read_error(exc: BaseException) -> str:
    """Why a file cannot be read, in one line (the XRootD client's own words for root://)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if said := _XROOTD_STATUS.search(text):
        return "file not found" if _XROOTD_NOT_FOUND in text else f"XRootD: {said.group(0)}"
    if isinstance(exc, OSError) and "expected Chunk" in str(exc):
        return "not a ROOT file, or truncated"
    if isinstance(exc, (ValueError, uproot.deserialization.DeserializationError)):
        return f"corrupt: its ROOT structures do not decode ({type(exc).__name__}: {text})"
    return f"cannot be read ({type(exc).__name__}: {text})"
