"""The one exception the runtime raises for bad plans, bad inputs and backend set-up problems."""

from __future__ import annotations


class PlanError(Exception):
    """A plan cannot be loaded or run; the message names the plan file / step / tensor at fault."""


class OptionError(ValueError):
    """A bad option or option file given to a runtime tool (`rewrite serve` / `rewrite bench`)."""
