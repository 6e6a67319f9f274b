# SPDX-License-Identifier: BSD-3-Clause
"""Errors of the mini pool; all derive from rhc.errors.RhcError."""

from __future__ import annotations

from rhc.errors import RhcError


class MiniPoolError(RhcError):
    """Raised when the mini pool refuses a request, or cannot be reached."""


class SubmitFileError(MiniPoolError):
    """Raised when a submit description asks for something the mini pool cannot run."""


class HoldError(MiniPoolError):
    """Raised when a matched job cannot start (executable or image missing): the job is Held."""
