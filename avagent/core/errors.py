"""Errors a user can act on: reported as one line and exit status 2, never as a traceback."""

from __future__ import annotations


class InputError(Exception):
    """Bad input (a file, a device, an argument): the message says what and why, in one line."""


class ConfigError(InputError):
    """The configuration is invalid: the message names the field and the reason."""
