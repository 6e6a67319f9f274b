# SPDX-License-Identifier: BSD-3-Clause
"""Redis URLs and the passwords they may carry: masked for messages and logs, stripped for
command lines, detected to refuse them where they must not be."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def mask_url(url: str) -> str:
    """Return url with its password replaced by ***."""
    return _with_password(url, "***")


def strip_password(url: str) -> str:
    """Return url without its password: what may go on a command line."""
    return _with_password(url, None)


def url_has_password(url: str) -> bool:
    """A password before the host, or (as redis-py also reads it) in the query string."""
    parts = urlsplit(url)
    return parts.password is not None or any(
        key == "password" for key, _ in parse_qsl(parts.query, keep_blank_values=True)
    )


def _with_password(url: str, password: str | None) -> str:
    """url with every password in it replaced by `password`, or removed if that is None."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")  # hostport keeps IPv6 brackets
        user = userinfo.split(":", 1)[0]
        if password is not None:
            netloc = f"{user}:{password}@{hostport}"
        else:
            netloc = f"{user}@{hostport}" if user else hostport
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "password" for key, _ in query):
        kept = [(key, value) for key, value in query if key != "password"]
        if password is not None:
            kept.append(("password", password))
        query = kept
    return urlunsplit(
        (parts.scheme, netloc, parts.path, urlencode(query, safe="*"), parts.fragment)
    )
