"""Errors a user can cause: the CLI prints them as one line and exits non-zero."""


class UserError(Exception):
    """A mistake in what the user gave us (file, flag, model, rule, plan); shown without a traceback.
    Subclasses: rule errors (rewriter.dsl.errors), pass errors, a missing toolchain. The runtime's
    PlanError (runtime/errors.py, which cannot import the compiler) is mapped alongside it."""


COMPILER_MODULES = ("onnx", "onnx_graphsurgeon", "lark")


def missing_compiler(exc: ImportError) -> UserError | None:
    """A compiler dependency absent from a runtime-only install, as a one-line user error."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if name in COMPILER_MODULES:
        return UserError(
            f"this command needs the compiler's dependencies ({name} is not installed): "
            "pip install 'hailo-rewriter[compiler]'"
        )
    return None
