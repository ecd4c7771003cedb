"""Errors a user can cause: the CLI prints them as one line and exits non-zero."""


class UserError(Exception):
    """A mistake in what the user gave us (file, flag, model); shown without a traceback."""
