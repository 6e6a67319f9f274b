# SPDX-License-Identifier: BSD-3-Clause
"""Grid credentials that go with worker jobs: an x509 proxy and a WLCG bearer token file.

Each travels as a file sent with the job, never as a value in its arguments or environment
(the job ad shows those to anyone with `condor_q -l`). At submit a credential must be its
owner's alone, as grid clients demand of a proxy (owned by the user, no access for group or
others), and stay valid as long as the workers are meant to run; on the execute node the job
points X509_USER_PROXY or BEARER_TOKEN_FILE at its own copy, 0600 in its scratch directory.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509

from rhc.errors import RhcError

_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_NEW_TOKEN = "get a fresh token (htgettoken, oidc-token)"


class CredentialError(RhcError):
    """Raised when a credential cannot go with a job: unreadable, not its owner's alone, not a
    credential, or expiring too soon; what to do is in the message."""


@dataclass(frozen=True)
class Credential:
    """A credential checked for submission: what it is, its file, and when it expires (UTC;
    None for a token that does not say)."""

    kind: str
    path: Path
    expires: datetime | None

    def describe(self, now: datetime) -> str:
        """One line for the submitter: which file goes, and until when it is valid."""
        if self.expires is None:
            return f"{self.kind} {self.path}: sent with each job (it names no expiry)"
        left = _span((self.expires - now).total_seconds())
        return f"{self.kind} {self.path}: valid until {utc(self.expires)} ({left} from now)"


def check_proxy(path: Path, *, lifetime: float, now: datetime) -> Credential:
    """The x509 proxy in path, if it may go with jobs that run for lifetime seconds from now.

    A proxy file is a PEM chain: the proxy certificate, its key, then the certificates that
    issued it. The chain is only as valid as its first certificate to expire.

    Raises:
      CredentialError: unreadable, not the user's alone, not a proxy, or expiring too soon.
    """
    data = read_private(path, "x509 proxy")
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CredentialError(
            f"x509 proxy {path} holds no PEM certificate: make a proxy with "
            "`voms-proxy-init --voms <your VO>`"
        ) from None
    if not _PRIVATE_KEY.search(data):
        raise CredentialError(
            f"x509 proxy {path} holds no private key: it is a certificate, not a proxy; make "
            "one with `voms-proxy-init --voms <your VO>`"
        )
    proxy = Credential("x509 proxy", path, min(cert.not_valid_after_utc for cert in chain))
    hours = max(12, math.ceil(lifetime / 3600) + 1)
    _check_lifetime(proxy, lifetime, now, f"`voms-proxy-init --voms <your VO> --valid {hours}:00`")
    return proxy


def check_token(path: Path, *, lifetime: float, now: datetime) -> Credential:
    """The bearer token file path, if it may go with jobs that run for lifetime seconds from
    now. A JWT's `exp` is read (not verified: only the issuer's keys could); an opaque token
    names no expiry and is sent as it is.

    Raises:
      CredentialError: unreadable, not the user's alone, empty, or expiring too soon.
    """
    token = Credential("bearer token file", path, token_expiry(read_token(path)))
    _check_lifetime(token, lifetime, now, _NEW_TOKEN)
    return token


def read_token(path: Path) -> str:
    """The token a bearer token file holds (the WLCG convention: the file's text, stripped).

    Raises:
      CredentialError: unreadable, not the user's alone, not text, empty, or more than a token.
    """
    data = read_private(path, "bearer token file")
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise CredentialError(f"bearer token file {path} is not a token: it is not text") from None
    if not token:
        raise CredentialError(f"bearer token file {path} is empty: {_NEW_TOKEN} into it")
    if len(token.split()) > 1:
        raise CredentialError(f"bearer token file {path} must hold one token and nothing else")
    return token


def token_expiry(token: str) -> datetime | None:
    """When a JWT says it expires (its payload's `exp`, read without verifying), or None for a
    token that is not a JWT or names no expiry."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        expires = payload["exp"] if isinstance(payload, dict) else None
        if isinstance(expires, bool) or not isinstance(expires, int | float):
            return None
        return datetime.fromtimestamp(expires, timezone.utc)
    except (ValueError, KeyError, OverflowError, OSError):  # not base64 or JSON, no exp, far off
        return None


def read_private(path: Path, what: str) -> bytes:
    """The content of a credential file that is its owner's alone: a regular file (a link is
    followed, and judged by the file it names), owned by this user, mode 0600 or 0400.

    Raises:
      CredentialError: what is wrong, and what to do.
    """
    try:  # O_NONBLOCK: a FIFO planted at the path must not hang the submit
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise CredentialError(f"{what} {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)  # of the file opened, so that it cannot be swapped after the check
        if not stat.S_ISREG(info.st_mode):
            raise CredentialError(f"{what} {path} is not a regular file")
        if info.st_uid != os.getuid():
            raise CredentialError(
                f"{what} {path} belongs to uid {info.st_uid}, not to you (uid {os.getuid()}): "
                "send a credential of your own (through a link, the file it names counts)"
            )
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CredentialError(
                f"{what} {path} is open to others (mode {stat.S_IMODE(info.st_mode):04o}); a "
                f"credential must be its owner's alone, as grid clients demand: `chmod 600 {path}`"
            )
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)


def job_token_file(name: Path) -> Path:
    """On the execute node: the absolute path of the bearer token file the job carries (name is
    relative to the directory the job starts in, its scratch), made 0600 there.

    Raises:
      CredentialError: the file did not arrive, or is empty.
    """
    path = name.absolute()
    try:
        path.chmod(0o600)  # condor's file transfer keeps modes: the copy is the job's alone
        token = path.read_bytes().strip()
    except OSError as exc:
        raise CredentialError(
            f"bearer token file {path}: {exc.strerror} (was it sent with the job?)"
        ) from None
    if not token:
        raise CredentialError(f"bearer token file {path} is empty")
    return path


def utc(moment: datetime) -> str:
    """A moment as people read it in messages: 2026-12-02 14:05:09 UTC."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _check_lifetime(credential: Credential, lifetime: float, now: datetime, renew: str) -> None:
    expires, name = credential.expires, f"{credential.kind} {credential.path}"
    if expires is None:
        return
    if expires <= now:
        ago = _span((now - expires).total_seconds())
        raise CredentialError(f"{name} expired at {utc(expires)} ({ago} ago): {renew}")
    if expires < now + timedelta(seconds=lifetime):
        raise CredentialError(
            f"{name} expires at {utc(expires)}, in {_span((expires - now).total_seconds())}, "
            f"before the workers' lifetime (--lifetime {_span(lifetime)}) is over: {renew}, or "
            "pass a shorter --lifetime"
        )


def _span(seconds: float) -> str:
    """A duration in its two largest units: 3d 4h, 2h 5m, 45s."""
    left, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
    return " ".join(parts[:2])
