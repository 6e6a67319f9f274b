# SPDX-License-Identifier: BSD-3-Clause
"""Redis connections: TLS verified against the configured CA, clear errors for a wrong URL,
password or certificate, a warning for a plain connection across the network, and
reconnection with backoff."""

from __future__ import annotations

import ipaddress
import logging
import time
import warnings
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

import hiredis
import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from rhc import defaults
from rhc.config import Settings
from rhc.errors import (
    BrokerAuthenticationError,
    BrokerConnectionError,
    BrokerError,
    ClientClosedError,
    PlaintextWarning,
    RhcError,
)
from rhc.urls import url_has_password

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE = (redis.ConnectionError, redis.TimeoutError)
"""Errors after which the same call may succeed once Redis is back."""


def connect(settings: Settings, *, role: str) -> redis.Redis:
    """Open a client and check that Redis answers and accepts the password.

    Raises:
      BrokerAuthenticationError: the password is wrong, or Redis needs one that was not given.
      BrokerConnectionError: nothing answers at the URL, or not as Redis, or its TLS
        certificate is not signed by the configured CA for the URL's host.
    """
    _warn_if_plaintext(settings)
    client = redis.Redis.from_url(
        settings.redis_url,
        username=settings.redis_username or None,
        password=settings.redis_password or None,
        socket_timeout=defaults.DEFAULT_SOCKET_TIMEOUT,
        socket_connect_timeout=5.0,
        socket_keepalive=True,
        # rhc retries whole operations itself (Reconnector); a hidden retry inside redis-py
        # would only stretch the time until a clear error.
        retry=Retry(NoBackoff(), 0),
        client_name=f"rhc-{role}",
        **_tls_options(settings),
    )
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        raise _authentication_error(settings) from exc
    except RETRYABLE as exc:
        raise BrokerConnectionError(
            f"cannot reach Redis at {settings.masked_url}: {str(exc).rstrip('.')}. "
            f"{_unreachable_advice(settings, exc)}"
        ) from exc
    except (redis.InvalidResponse, redis.ResponseError) as exc:  # another service, or a bad URL
        raise BrokerConnectionError(
            f"Redis at {settings.masked_url} cannot be used: {exc}. Check that the URL names a "
            "Redis server: its host, port and database number"
        ) from exc
    return client


def separate(client: redis.Redis) -> redis.Redis:
    """A client with a connection pool of its own to the same server, with the same user, TLS
    and timeouts: closing its connections (to end a blocking read at once, from another
    thread) leaves the original's alone."""
    pool = client.connection_pool
    return redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=pool.connection_class, **pool.connection_kwargs
        )
    )


def _tls_options(settings: Settings) -> dict[str, object]:
    """rediss:// verifies the server's certificate and its name, against redis_ca if given."""
    if urlsplit(settings.redis_url).scheme != "rediss":
        return {}
    return {
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
        "ssl_ca_data": settings.redis_ca,
    }


def _warn_if_plaintext(settings: Settings) -> None:
    """Warn when a password and pickles would cross a network in clear; loopback and a compose
    service name (the stack's own network) are spared. Python shows a warning once per URL."""
    parts = urlsplit(settings.redis_url)
    if parts.scheme != "redis" or _is_local(parts.hostname or ""):
        return
    warnings.warn(
        PlaintextWarning(
            f"Redis at {settings.masked_url} is reached without TLS: its password and every task "
            "and result cross the network in clear. Use rediss:// (see SECURITY.md)"
        ),
        stacklevel=3,
    )


def _is_local(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost" or "." not in host


def _unreachable_advice(settings: Settings, exc: Exception) -> str:
    if "certificate verify failed" in str(exc):
        return (
            "Its TLS certificate was not accepted: it is not signed by the CA in redis_ca (the "
            "one generated for this server: the stack's, or `rhc redis setup`'s), or it is not "
            "for the URL's host. Put that CA's PEM text in redis_ca (`rhc init --ca FILE`)"
        )
    advice = (
        "Check the URL (argument, RHC_REDIS_URL or the config file) and that the server is running"
    )
    if urlsplit(settings.redis_url).scheme == "rediss":  # TLS a plain Redis never answers
        advice += (
            "; rediss:// connects with TLS: for a server without TLS on that port, use redis://"
        )
    else:  # a TLS-only server closes a plain connection
        advice += "; a server that speaks only TLS needs rediss://"
    return advice


def _authentication_error(settings: Settings) -> BrokerAuthenticationError:
    user = f"user {settings.redis_username!r}" if settings.redis_username else "the default user"
    if settings.redis_password or url_has_password(settings.redis_url):
        advice = (
            f"the password was refused for {user}: check redis_password and redis_username "
            "(or the URL's password)"
        )
    else:
        advice = "it requires a password: set redis_password in the config file"
    return BrokerAuthenticationError(f"Redis at {settings.masked_url}: {advice}")


class Reconnector:
    """Retries an operation through connection loss, with backoff, for a bounded time.

    ``losses`` counts the outages survived, so callers can re-check state Redis may have lost;
    ``advice`` ends the error raised when Redis stays away or the client is closed: what the
    caller can do then.
    """

    def __init__(self, settings: Settings, timeout: float, *, advice: str = "") -> None:
        self._settings = settings
        self._timeout = timeout
        self._advice = advice
        self.closed = False
        self.losses = 0

    def close(self) -> None:
        """Calls from now on raise ClientClosedError, and so does one that loses its connection
        meanwhile (its owner closing the client under it): that is not an outage to wait out."""
        self.closed = True

    def call(self, operation: Callable[[], T], *, doing: str) -> T:
        """Run operation, retrying while Redis is unreachable.

        Raises:
          BrokerAuthenticationError: Redis came back but refuses the password.
          BrokerError: Redis is full and refuses writes.
          BrokerConnectionError: Redis stayed unreachable for the whole timeout.
        """
        deadline = None
        delay = 0.05
        while True:
            if self.closed:
                raise self._closed_error(doing)
            try:
                result = operation()
            except redis.AuthenticationError as exc:
                raise _authentication_error(self._settings) from exc
            except redis.OutOfMemoryError as exc:
                # Not its text: for a pipeline it quotes every command, payloads included.
                raise BrokerError(
                    f"Redis at {self._settings.masked_url} is full (maxmemory reached) and "
                    f"refused a write while {doing}: raise its maxmemory, free memory in it, or "
                    "lower result_ttl so that finished jobs expire sooner"
                ) from exc
            except RETRYABLE as exc:
                if self.closed:
                    raise self._closed_error(doing) from exc
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._timeout
                    self.losses += 1
                    log.warning(
                        "lost Redis at %s while %s (%s); reconnecting for up to %.0f s",
                        self._settings.masked_url,
                        doing,
                        exc,
                        self._timeout,
                    )
                if now >= deadline:
                    raise BrokerConnectionError(
                        f"lost Redis at {self._settings.masked_url} while {doing}, and it did not "
                        f"come back within {self._timeout:.0f} s ({exc}){self._advice}"
                    ) from exc
                time.sleep(min(delay, deadline - now))
                delay = min(delay * 2, 2.0)
                continue
            if deadline is not None:
                log.warning("Redis at %s is back", self._settings.masked_url)
            return result

    def _closed_error(self, doing: str) -> ClientClosedError:
        return ClientClosedError(
            f"the client of Redis at {self._settings.masked_url} was closed while {doing}"
            f"{self._advice}"
        )


def once(operation: Callable[[], T], *, then: Callable[[], T]) -> Callable[[], T]:
    """operation on the first call; `then` on the calls after it, which a Reconnector makes
    only after the one before lost its connection.

    For operations that must not simply be repeated when Redis went away in their midst: it may
    have run them before the connection broke. Writes (sending tasks twice would queue them
    twice) then only wait for Redis to be back, and the loss it counts (Reconnector.losses) tells
    the caller to check what Redis holds and write what it lost; a read asks for what the lost
    one may have been given."""
    calls = 0

    def call() -> T:
        nonlocal calls
        calls += 1
        return operation() if calls == 1 else then()

    return call


def overlapped(
    client: redis.Redis, commands: list[tuple], meanwhile: Callable[[], T]
) -> tuple[T, list]:
    """Send commands, call meanwhile() while Redis answers them, then read their replies as
    Redis sent them (no redis-py reply callbacks): work as long as the round trip then costs no
    time of its own. hiredis packs them, in a tenth of redis-py's own Python (11 commands: 7 µs
    instead of 48 here): this is the way of every task of a small map.

    Raises:
      redis.RedisError: as a pipeline of the commands would (the connection is dropped: its
        replies were not all read).
    """
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_packed_command([b"".join(map(hiredis.pack_command, commands))])
        done = meanwhile()
        replies = [connection.read_response() for _ in commands]
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)
    return done, replies


def execute(pipeline: redis.client.Pipeline) -> list:
    """pipeline.execute() the way of overlapped(): for pipelines whose replies are plain
    values, or read by no one; without a transaction (no MULTI/EXEC is sent)."""
    if pipeline.transaction:
        raise RhcError("execute() sends no MULTI/EXEC: use pipeline.execute()")
    commands = [args for args, _ in pipeline.command_stack]
    pipeline.reset()
    return overlapped(pipeline, commands, _nothing)[1]


def command(client: redis.Redis, *args: object) -> object:
    """One command the way of overlapped(): its reply as Redis sent it."""
    return overlapped(client, [args], _nothing)[1][0]


def _nothing() -> None:
    return None


def read_streams(
    client: redis.Redis,
    streams: dict[str, bytes | str],
    *,
    count: int,
    block: int | None,
    group: tuple[str, str] | None = None,
) -> list[tuple[bytes, list[tuple[bytes, dict]]]]:
    """XREAD, or XREADGROUP as group = (group, consumer), the way of overlapped(); as redis-py
    returns them: per stream, (entry id, fields), no fields for an entry deleted since.

    Parameters:
      block: milliseconds to wait for an entry; None: do not wait.
    """
    read = ("XREADGROUP", "GROUP", *group) if group else ("XREAD",)
    wait = () if block is None else ("BLOCK", block)
    reply = command(client, *read, "COUNT", count, *wait, "STREAMS", *streams, *streams.values())
    # a map (RESP3) or pairs (RESP2); nothing, when the wait ended empty
    found = reply.items() if isinstance(reply, dict) else reply or []
    return [(stream, [(id_, _fields(flat)) for id_, flat in entries]) for stream, entries in found]


def _fields(flat: list | None) -> dict:
    return {} if flat is None else dict(zip(flat[::2], flat[1::2], strict=True))


def run_script(client: redis.Redis, script: Script, keys: list, args: list) -> object:
    """script(keys, args) the way of overlapped(), loading it again if Redis lost it (a
    restart)."""
    evalsha = ("EVALSHA", script.sha, len(keys), *keys, *args)
    try:
        return command(client, *evalsha)
    except redis.exceptions.NoScriptError:
        client.script_load(script.script)
        return command(client, *evalsha)
