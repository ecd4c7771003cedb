"""`rewrite rules list|verify`: what rules exist, and whether they preserve results."""
from __future__ import annotations

import sys
from pathlib import Path

from rewriter.errors import UserError
from rewriter.cli.summary import table
from rewriter.target import load_target


def rule_files(args) -> list[Path]:
    """Files named on the command line, else the target's (hailo8 by default)."""
    for path in args.files:
        if not path.is_file():
            raise UserError(f"no such rule file: {path}")
    files = list(args.files)
    if args.target or not files:
        files = list(load_target(args.target or "hailo8").rule_files) + files
    return files


def rules_command(args) -> int:
    from rewriter.dsl import list_rules, load_rule_files, verify_rules
    files = rule_files(args)
    if args.rules_verb == "list":
        rows = [[name, f"{Path(file).name}:{line}", summary] for name, file, line, summary in list_rules(files)]
        print(table(["rule", "file", "summary"], rows))
        return 0
    if args.samples < 1:
        raise UserError("--samples must be at least 1")
    rules = load_rule_files(files)
    failed = 0
    for result in verify_rules(rules, samples=args.samples, seed=args.seed):
        print(result, flush=True)
        failed += not result.passed
    total = len(list(rules))
    print(f"{total - failed} passed, {failed} failed", file=sys.stdout)
    return 1 if failed else 0
