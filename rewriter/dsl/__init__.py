"""Rule DSL: parse `.rw` rule files, match them on onnx-graphsurgeon graphs, rewrite, verify."""

from .driver import RewriteEvent, apply_rules
from .errors import RuleError, RuleSyntaxError
from .helpers import HelperRegistry, helper, load_helper_file
from .rules import Rule, RuleSet, list_rules, load_rule_files, parse_rules
from .trace import Tracer, trace_rule

__all__ = [
    "load_rule_files",
    "parse_rules",
    "RuleSet",
    "Rule",
    "apply_rules",
    "RewriteEvent",
    "RuleSyntaxError",
    "RuleError",
    "verify_rules",
    "trace_rule",
    "Tracer",
    "list_rules",
    "HelperRegistry",
    "helper",
    "load_helper_file",
]


def __getattr__(name: str):
    """verify_rules on first use: it needs onnxruntime, which rewriting never does."""
    if name == "verify_rules":
        from .verify import verify_rules

        return verify_rules
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
