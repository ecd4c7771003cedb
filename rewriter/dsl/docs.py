"""Reference tables of the rule language, generated from the code: the builtins of `where:` /
rewrite expressions and the helpers of a registry (docs/dsl.md embeds them; a test compares)."""

from __future__ import annotations

from .expr import BUILTINS
from .helpers import HelperRegistry, markdown_table


def helpers_table(registry: HelperRegistry) -> str:
    return markdown_table(registry)


def builtins_table() -> str:
    rows = ["| builtin | arguments | meaning |", "|---|---|---|"]
    for name, (lo, hi, kinds, meaning) in BUILTINS.items():
        count = str(lo) if lo == hi else f"{lo}+" if hi is None else f"{lo}-{hi}"
        what = ", ".join(kinds) if kinds else "numbers or lists"
        rows.append(f"| `{name}` | {count} ({what}) | {meaning} |")
    return "\n".join(rows)


def replace_section(text: str, marker: str, body: str) -> str:
    """Replace what lies between `<!-- marker:begin -->` and `<!-- marker:end -->`."""
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    return f"{head}{begin}\n{body}\n{end}{tail}"
