"""Native helpers for rule files. Importing this package registers all built-in helpers."""
from .registry import HELPERS, native_helper
from . import bn_fold, folding, layout, padding, permute, scalars  # noqa: F401  (registers helpers)

__all__ = ["HELPERS", "native_helper"]
