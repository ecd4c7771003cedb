"""Registry of native helpers that rule files call by name."""
from __future__ import annotations

from collections.abc import Callable

HELPERS: dict[str, Callable] = {}


def native_helper(name: str):
    """Register `fn` under `name` for use in rule `where:` and `rewrite:` sections.

    Helpers receive numpy arrays (constants), python scalars/lists (attributes) or None (missing
    optional inputs) and return numpy arrays or scalars. They must never mutate their arguments:
    initializers may be shared by several nodes.
    """
    def deco(fn: Callable) -> Callable:
        if name in HELPERS and HELPERS[name] is not fn:
            raise ValueError(f"native helper {name!r} registered twice")
        HELPERS[name] = fn
        return fn
    return deco
