# SPDX-License-Identifier: BSD-3-Clause
"""Option types the commands share."""

from __future__ import annotations

import click

from rhc.config import CONFIG_FILE_VARIABLE
from rhc.errors import ArgumentError
from rhc.urls import mask_url, url_has_password
from rhc.values import duration


class RedisUrl(click.ParamType):
    """A Redis URL without a password: a command line shows in `ps`, shell histories and
    condor's job ad, so the password lives in the config file only."""

    name = "redis_url"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        url = str(value)
        if url_has_password(url):
            self.fail(
                f"{mask_url(url)}: keep the password off the command line (it shows in `ps` and "
                f"in condor's job ad); put redis_password in the file named by "
                f"{CONFIG_FILE_VARIABLE} (`rhc init` writes one)",
                param,
                ctx,
            )
        return url


REDIS_URL = RedisUrl()


class Duration(click.ParamType):
    """A duration in seconds, written as seconds or with units (90m, 8h, 1h30m, 2d, 12:00)."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        try:
            return duration(value)
        except ArgumentError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()
