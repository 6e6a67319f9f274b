# SPDX-License-Identifier: BSD-3-Clause
"""Option types the commands share."""

from __future__ import annotations

import click

from rhc.config import CONFIG_FILE_VARIABLE
from rhc.urls import mask_url, url_has_password


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
