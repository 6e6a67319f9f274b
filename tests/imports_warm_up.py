# SPDX-License-Identifier: BSD-3-Clause
"""A module that imports another's warm-up hook: preloading it must not run that hook."""

from tests.fixtures import rhc_warm_up

__all__ = ["rhc_warm_up"]
