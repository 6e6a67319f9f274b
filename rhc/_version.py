# SPDX-License-Identifier: BSD-3-Clause
"""The version of rhc: one line, read by the package, the image builds and the compose stack."""

__version__ = "0.1.0"
