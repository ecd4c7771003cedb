"""`rewrite rules list|verify|helpers`: what rules and helpers exist, and whether rules preserve
results (randomized testing; with --prove, a z3 proof first)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import textwrap
from pathlib import Path

from rewriter.cli.summary import table
from rewriter.errors import UserError
from rewriter.target import load_target

LIST_WIDTH = 100  # `rules list` fits a 100-column terminal


def rule_files(args) -> list[Path]:
    """Files named on the command line, else the target's (hailo8 by default)."""
    for path in args.files:
        if not path.is_file():
            raise UserError(f"no such rule file: {path}")
    files = list(args.files)
    if args.target or not files:
        files = list(load_target(args.target or "hailo8").rule_files) + files
    return files


def rules_table(listed, width: int = LIST_WIDTH) -> str:
    """`rules list`: name, file:line, and the summary wrapped so that a line stays within `width`
    columns (the summary gets at least 30)."""
    rows = [[name, f"{Path(file).name}:{line}", " ".join(summary.split())] for name, file, line, summary in listed]
    room = max(30, width - 4 - max((len(r[0]) for r in rows), default=4) - max((len(r[1]) for r in rows), default=4))
    wrapped = []
    for name, where, summary in rows:
        parts = textwrap.wrap(summary, room, break_on_hyphens=False) or [""]  # "channels-first" stays one word
        wrapped += [[name, where, parts[0]], *[["", "", more] for more in parts[1:]]]
    return table(["rule", "file", "summary"], wrapped)


def rules_command(args) -> int:
    from passes.helpers import helpers_with

    helpers = helpers_with(getattr(args, "helpers", []))
    if args.rules_verb == "helpers":
        from rewriter.dsl.docs import builtins_table, helpers_table

        print(helpers_table(helpers))
        print()
        print(builtins_table())
        return 0
    from rewriter.dsl import list_rules, load_rule_files

    files = rule_files(args)
    if args.rules_verb == "list":
        print(rules_table(list_rules(files, helpers)))
        return 0
    if args.samples < 1:
        raise UserError("--samples must be at least 1")
    rules = load_rule_files(files, helpers)
    target = load_target(args.target or "hailo8")
    if args.counterexamples is None:  # one folder per run, made only when something fails
        args.counterexamples = Path(tempfile.gettempdir()) / f"rewrite-verify-{os.getpid()}"
    return _verify(args, rules, target)


def _verify(args, rules, target) -> int:
    from rewriter.dsl.verify import verify_rule

    prove = None
    if args.prove:
        try:
            from rewriter.dsl.prove import prove_rule as prove
        except ImportError as exc:  # z3-solver is an optional dependency
            raise UserError("--prove needs z3 (pip install 'hailo-rewriter[prove]' or z3-solver)") from exc
    out = sys.stderr if args.json else sys.stdout
    records, counts = [], {"proved": 0, "disproved": 0, "passed": 0, "failed": 0}
    for i, rule in enumerate(rules):
        record = {"rule": rule.name, "file": rule.file, "line": rule.line}
        indent = ""
        if prove is not None:
            proof = prove(rule, target, seed=args.seed + i, counterexamples=args.counterexamples)
            print(proof, file=out, flush=True)
            if proof.status != "unknown":
                record.update(status=proof.status, detail=proof.detail, instances=proof.instances)
                _files(record, proof.counterexample)
                counts[proof.status] += 1
                records.append(record)
                continue
            record["proof"] = {"status": "unknown", "detail": proof.detail}
            indent = " " * 11
        result = verify_rule(rule, args.samples, args.seed + i, target=target, counterexamples=args.counterexamples)
        print(indent + str(result).replace("\n", "\n" + indent), file=out, flush=True)
        status = "passed" if result.passed else "failed"
        counts[status] += 1
        record.update(status=status, detail=result.message, instances=result.instances)
        _files(record, result.counterexample)
        records.append(record)
    tested = f"{counts['passed']} passed, {counts['failed']} failed"
    if prove is not None:
        print(
            f"{counts['proved']} proved, {counts['disproved']} disproved, "
            f"{counts['passed'] + counts['failed']} unknown and tested: {tested}",
            file=out,
        )
    else:
        print(tested, file=out)
    if args.json:
        print(json.dumps({"rules": records, "counts": counts}, indent=2))
    return 1 if counts["disproved"] or counts["failed"] else 0


def _files(record: dict, cx: dict | None) -> None:
    if cx and cx.get("model"):
        record["counterexample"] = {"model": cx["model"], "data": cx["data"]}
