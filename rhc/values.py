# SPDX-License-Identifier: BSD-3-Clause
"""Setting values: how each setting's text (an argument, an environment variable, a line of a
config file) becomes its value, or the error that says what is wrong with it."""

from __future__ import annotations

from collections.abc import Callable

from rhc import defaults
from rhc.errors import ArgumentError


def secret(value: object) -> bytes:
    raw = value if isinstance(value, bytes) else str(value).encode()
    if len(raw) < defaults.MIN_SECRET_BYTES:
        raise ArgumentError(f"a secret needs at least {defaults.MIN_SECRET_BYTES} characters")
    return raw


def certificate(value: object) -> str:
    text = str(value).strip()
    if not text.startswith("-----BEGIN CERTIFICATE-----"):
        raise ArgumentError(
            "must be the PEM text of a CA certificate (-----BEGIN CERTIFICATE----- ...), not a "
            "path: `rhc init --ca FILE` copies one into a config file"
        )
    return text + "\n"


def key_text(prefix: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        text = str(value).strip()
        if not text.startswith(prefix):
            raise ArgumentError(f"must start with {prefix!r} (`rhc init` writes a key pair)")
        return text

    return parse


def positive(kind: Callable[[object], float]) -> Callable[[object], float]:
    def parse(value: object) -> float:
        number = kind(value)
        if number <= 0:
            raise ArgumentError("must be positive")
        return number

    return parse


def redirectors(value: object) -> tuple[str, ...]:
    """A list (config file) or comma-separated text (environment) of root:// URLs."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    found = tuple(str(item).strip() for item in items if str(item).strip())
    wrong = [item for item in found if not item.startswith("root://")]
    if wrong:
        raise ArgumentError(f"redirectors must be root:// URLs, not {', '.join(map(repr, wrong))}")
    return found


PARSERS: dict[str, Callable[[object], object]] = {
    "redis_url": str,
    "redis_username": str,
    "redis_password": str,
    "redis_ca": certificate,
    "secret": secret,
    "task_key": key_text("ed25519-private:"),
    "task_public_key": key_text("ed25519-public:"),
    "previous_task_public_key": key_text("ed25519-public:"),
    "previous_task_public_key_until": positive(float),
    "namespace": str,
    "heartbeat_interval": positive(float),
    "heartbeat_ttl": positive(float),
    "max_attempts": positive(int),
    "max_payload_bytes": positive(int),
    "reconnect_timeout": positive(float),
    "result_ttl": positive(float),
    "worker_config": str,
    "condor_pool": str,
    "pool_token": str,
    "pool_token_file": str,
    "dashboard_url": str,
    "xrootd_redirectors": redirectors,
}
