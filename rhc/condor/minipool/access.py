# SPDX-License-Identifier: BSD-3-Clause
"""Who may talk to the mini pool: the holder of its token, through a name the pool serves.

The token lives in a 0600 file that `rhc minicondor serve --token-file` reads, or writes with a
fresh token the first time; clients read it through the pool_token(_file) setting. The Host
header must name the pool as it was told it is reached, so that a web page cannot reach it
through a DNS name that resolves to loopback (DNS rebinding).
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

from rhc.condor.minipool.errors import MiniPoolError

LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")
"""Names a pool always answers to: a client on its own host."""


def load_token(path: Path) -> str:
    """The token in path; a fresh one written there (mode 0600) if the file does not exist.

    Raises:
      MiniPoolError: the file cannot be read or written, is empty, or others may read it.
    """
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32) + "\n")
        mode = stat.S_IMODE(path.stat().st_mode)
        token = path.read_text().strip()
    except OSError as exc:
        raise MiniPoolError(f"token file {path}: {exc.strerror or exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MiniPoolError(f"token file {path} is readable by others ({mode:04o}): chmod 600 it")
    if not token:
        raise MiniPoolError(f"token file {path} is empty: delete it, and the pool writes one")
    return token


def token_matches(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries the token (`Bearer TOKEN`), compared in
    constant time."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def host_names(names: Iterable[str], port: int) -> frozenset[str]:
    """The Host header values a pool on port accepts: each name, with or without the port."""
    accepted = set()
    for name in (*LOCAL_NAMES, *names):
        accepted |= {name.lower(), f"{name.lower()}:{port}"}
    return frozenset(accepted)
