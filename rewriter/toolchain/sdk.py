"""Find the Hailo SDK module and classify its failures (no hard dependency on it)."""
from __future__ import annotations

import importlib

from rewriter.errors import UserError

MISSING_MESSAGE = (
    "hailo_sdk_client (Hailo Dataflow Compiler) is not installed: it ships from Hailo's developer "
    "zone; run inside Hailo's AI Software Suite container, or use `rewrite compile OUT --emit-script` "
    "to get a compile.sh for it"
)


class ToolchainMissing(UserError):
    """The Dataflow Compiler cannot be imported here."""


def load_sdk(sdk=None):
    """Return `sdk` if given (tests inject a stand-in), else import hailo_sdk_client lazily."""
    if sdk is not None:
        return sdk
    try:
        return importlib.import_module("hailo_sdk_client")
    except ImportError as exc:
        raise ToolchainMissing(MISSING_MESSAGE) from exc


def _chain(exc: BaseException):
    # The DFC wraps backend errors; look through __cause__/__context__ too.
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_allocator_failure(exc: BaseException) -> bool:
    """True for the allocator/mapping failures that a narrower segment can fix (HAILO.md field reports)."""
    for e in _chain(exc):
        if any(c.__name__ == "BackendAllocatorException" for c in type(e).__mro__):
            return True
        msg = str(e).lower()
        if "agent infeasible" in msg or "mapping failed" in msg:
            return True
        if "timeout" in msg and ("mapping" in msg or "allocat" in msg):
            return True
    return False
