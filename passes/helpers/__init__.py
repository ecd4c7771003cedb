"""Native helpers for rule files. Importing this package registers all built-in helpers."""

from . import bn_fold, folding, layout, padding, permute, scalars  # noqa: F401  (registers helpers)
from .registry import HELPERS, native_helper

__all__ = ["HELPERS", "native_helper", "helpers_with"]


def helpers_with(helper_files=()):
    """The built-in helpers plus each `--helpers FILE.py` (a user error when one cannot load)."""
    from rewriter.dsl import RuleError, load_helper_file
    from rewriter.errors import UserError

    registry = HELPERS
    for path in helper_files:
        try:
            registry = load_helper_file(path, registry)
        except RuleError as exc:
            raise UserError(str(exc)) from exc
    return registry
