"""Exceptions a user can cause and fix. The CLI prints them as one line and exits 2."""

from __future__ import annotations


class TrialforgeError(Exception):
    """Base of every error that is the user's to fix (bad spec, unknown id, missing data)."""

    exit_code = 2


class SpecError(TrialforgeError):
    """A sweep spec, or an override of it, is invalid. The message names the field and the fix."""


class NotFoundError(TrialforgeError):
    """A sweep, model or run that the user named does not exist."""


class SweepFailedError(TrialforgeError):
    """A sweep ran but produced no usable trial (every trial failed or diverged)."""

    exit_code = 1


class DataError(TrialforgeError):
    """The data a spec points at is missing or unusable (raised before any trial starts)."""
