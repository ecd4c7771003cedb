"""onnxruntime's warnings kept off the user's terminal while onnx-graphsurgeon folds constants.

gs evaluates what it cannot fold itself with onnxruntime sessions, and onnxruntime's graph code warns
on stderr about the models gs builds for that (`Error merging shape info ...`: 184 lines on swin_t).
They are about our internal models, not the user's. Lowering onnxruntime's log level needs the
module, and importing it for that costs 100 ms and a thread in every conversion that folds nothing
through it; so when it is not imported yet, `quiet_onnxruntime()` lowers the level the moment gs
imports it (an import hook that waits for that one module, removed on leaving the block).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import sys

MODULE = "onnxruntime"
ERROR = 3  # onnxruntime's severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal


def _lower(module) -> None:
    try:
        module.set_default_logger_severity(ERROR)
    except Exception:  # noqa: BLE001 - an onnxruntime without it: its warnings stay, nothing breaks
        pass


@contextlib.contextmanager
def quiet_onnxruntime():
    """Within the block, onnxruntime logs errors only: at once if it is imported, else as soon as
    something imports it. The level stays lowered afterwards (it is process-wide in onnxruntime)."""
    if MODULE in sys.modules:
        _lower(sys.modules[MODULE])
        yield
        return
    hook = _AfterImport()
    sys.meta_path.insert(0, hook)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(hook)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds onnxruntime as the finders after it would, and has its loader lower the log level
    right after the module has run."""

    def find_spec(self, fullname, path, target=None):
        if fullname != MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenLower(spec.loader)
        return spec


class _ThenLower(importlib.abc.Loader):
    """The module's own loader, then _lower. While the module runs it sees its own loader."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self.loader  # the module knows its own loader
        self.loader.exec_module(module)
        _lower(module)


__all__ = ["quiet_onnxruntime"]
