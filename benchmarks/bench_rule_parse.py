"""Parsing rule files: CPU seconds and microseconds per rule for generated files of growing size
(linear is the goal: 20,000 rules once took 317 s), and the hailo8 rule set cold (no cache) and
through the parse cache.

    python benchmarks/bench_rule_parse.py [--sizes 1000 5000 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RULE = """# rule number {i}: a comment block, as real rule files have
rule r{i} priority 1:
    match:
        y = Relu(x)
    where:
        uses(x) == 1 and not false
    rewrite:
        y = Relu(x)

"""


def timed(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    args = ap.parse_args()
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="bench-rule-cache-")
    from rewriter.dsl import lalr, load_rule_files, parse_rules

    lalr._lark()  # built once, outside the per-size figures
    for n in args.sizes:
        text = "".join(RULE.format(i=i) for i in range(n))
        os.environ["REWRITER_NO_CACHE"] = "1"
        seconds = timed(lambda text=text: parse_rules(text, "generated.rw"))
        print(f"{n:>6} rules: {seconds:7.2f} s CPU  {seconds / n * 1e6:6.0f} us/rule")
    from passes.helpers import helpers_with

    helpers = helpers_with()  # the native helpers the hailo8 rules call
    files = sorted((ROOT / "rules" / "hailo8").glob("*.rw"))
    lalr._lark.cache_clear()
    cold = timed(lambda: load_rule_files(files, helpers))
    os.environ.pop("REWRITER_NO_CACHE")
    timed(lambda: load_rule_files(files, helpers))  # fills the cache
    lalr._lark.cache_clear()
    hit = timed(lambda: load_rule_files(files, helpers))
    print(f"hailo8 rules: {cold:.3f} s CPU cold (parser built, no cache), {hit:.3f} s through the cache")


if __name__ == "__main__":
    main()
