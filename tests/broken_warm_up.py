# SPDX-License-Identifier: BSD-3-Clause
"""A module whose warm-up fails, as a preloaded user module's might."""


def rhc_warm_up() -> None:
    raise RuntimeError("warm-up exploded")
