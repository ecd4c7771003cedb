"""Find the Hailo SDK module and classify its failures (no hard dependency on it)."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import sys

from rewriter.errors import UserError

MISSING_MESSAGE = (
    "hailo_sdk_client (Hailo Dataflow Compiler) is not installed: it ships from Hailo's developer "
    "zone; run inside Hailo's AI Software Suite container, or use `rewrite compile OUT --emit-script` "
    "to get a compile.sh for it"
)
DEFAULT_SDK_MODULE = "hailo_sdk_client"
# The distribution that provides a module, for a version without importing it (the DFC wheel is
# hailo_dataflow_compiler-<version>-*.whl). Other modules: their __version__, read in a probe process.
KNOWN_DISTRIBUTIONS = {"hailo_sdk_client": ("hailo-dataflow-compiler",)}
# Testing hook: name a module that provides the hailo_sdk_client API (the tests' recording stand-in).
SDK_MODULE_ENV = "HAILO_REWRITER_SDK_MODULE"


class ToolchainMissing(UserError):
    """The Dataflow Compiler cannot be imported here."""


def sdk_module_name(explicit: str | None = None) -> str:
    """--sdk-module, else $HAILO_REWRITER_SDK_MODULE, else hailo_sdk_client."""
    return explicit or os.environ.get(SDK_MODULE_ENV) or DEFAULT_SDK_MODULE


def import_sdk(module_name: str = DEFAULT_SDK_MODULE):
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        if module_name == DEFAULT_SDK_MODULE:
            raise ToolchainMissing(MISSING_MESSAGE) from exc
        raise ToolchainMissing(f"SDK module {module_name!r} cannot be imported: {exc}") from exc


def load_sdk(sdk=None):
    """Return `sdk` if given (tests inject a stand-in), else import hailo_sdk_client lazily."""
    return sdk if sdk is not None else import_sdk(DEFAULT_SDK_MODULE)


def distribution_version(module_name: str) -> str | None:
    """Version of the installed distribution that provides `module_name`, without importing it
    (importing the DFC loads TensorFlow: seconds)."""
    top = module_name.split(".")[0]
    for dist in KNOWN_DISTRIBUTIONS.get(top, ()):
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def sdk_version(module_name: str = DEFAULT_SDK_MODULE) -> str:
    """The DFC version string that goes into every HEF cache key: the known providing distribution's
    name and version, else the module's name and __version__ (imported). Raises ToolchainMissing."""
    found = distribution_version(module_name)
    if found:
        return found
    module = import_sdk(module_name)
    version = getattr(module, "__version__", None)
    if not version:
        raise ToolchainMissing(
            f"SDK module {module_name!r} has no __version__ and no package metadata: "
            "cannot key the HEF cache on its version"
        )
    return f"{module_name} {version}"


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


if __name__ == "__main__":  # the version probe: `python -m rewriter.toolchain.sdk MODULE` (imports only MODULE)
    try:
        print(json.dumps({"version": sdk_version(sys.argv[1])}))
    except ToolchainMissing as exc:
        print(json.dumps({"error": str(exc)}))
