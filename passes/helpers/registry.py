"""The registry of the built-in helpers the target's rule files call by name.

The rule DSL itself knows no helpers: rewriter/rules_pass.py and `rewrite rules ...` pass this
registry (plus any `--helpers FILE.py`) to the rule loader and driver.
"""

from __future__ import annotations

from collections.abc import Callable

from rewriter.dsl.helpers import HelperRegistry, helper

HELPERS = HelperRegistry()


def native_helper(name: str, *, kinds=None, symbolic=None):
    """Register `fn` under `name` for use in rule `where:` and `rewrite:` sections.

    Helpers receive numpy arrays (constants), python scalars/lists (attributes) or None (missing
    optional inputs) and return numpy arrays or scalars. They must never mutate their arguments:
    initializers may be shared by several nodes. `kinds` declares what each positional argument
    must be ("value", "const", "attr", "any"), checked when a rule file loads; `symbolic` gives the
    prover a twin (True: the function works unchanged on object arrays of symbolic numbers).
    """

    def deco(fn: Callable) -> Callable:
        marked = helper(name, kinds=kinds, symbolic=symbolic)(fn)
        HELPERS.add(marked.__rule_helper__)
        return marked

    return deco
