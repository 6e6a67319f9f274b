# SPDX-License-Identifier: BSD-3-Clause
"""Setting values: how each setting's text (an argument, an environment variable, a line of a
config file) becomes its value, or the error that says what is wrong with it."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from rhc import defaults
from rhc.errors import ArgumentError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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


def duration(value: object) -> float:
    """Seconds, from a number of seconds, parts such as 90m, 4h or 1h30m (s, m, h, d), or
    voms-proxy-init's HH:MM."""
    text = str(value).strip().lower()
    hours, colon, minutes = text.partition(":")
    if colon and hours.isdigit() and minutes.isdigit() and len(minutes) == 2:
        return int(hours) * 3600.0 + int(minutes) * 60.0
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(number + unit for number, unit in parts) != text:
            raise ArgumentError(
                f"{value!r} is not a duration: give seconds, or e.g. 90m, 4h, 1h30m, 2d, 12:00"
            ) from None
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if not math.isfinite(seconds) or seconds < 0:
        raise ArgumentError(f"{value!r}: a duration is a finite number of seconds, not negative")
    return seconds


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
    "x509_proxy": str,
    "bearer_token_file": str,
    "dashboard_url": str,
    "xrootd_redirectors": redirectors,
}
