"""Benchmark the rule driver on chain / residual graphs of 1k, 10k and 50k nodes.

Usage: python benchmarks/bench_driver.py [sizes...]
Prints nodes, seconds and microseconds per node; growth should be close to linear.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import onnx_graphsurgeon as gs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from passes.helpers import HELPERS  # noqa: E402
from rewriter.dsl import RuleSet, apply_rules, load_rule_files  # noqa: E402


def build(n_nodes: int, residual: bool, seed: int = 0) -> gs.Graph:
    """Blocks of Conv+BN+Relu+Relu (4 nodes), with an Add skip every 4th block if residual."""
    rng = np.random.default_rng(seed)
    C = 4
    x = gs.Variable("x", np.float32, [1, C, 8, 8])
    cur, nodes, k = x, [], 0
    skip = cur
    while len(nodes) < n_nodes:

        def var(name, k=k):
            return gs.Variable(f"{name}{k}", np.float32, [1, C, 8, 8])

        w = gs.Constant(f"w{k}", rng.standard_normal([C, C, 3, 3]).astype(np.float32))
        bn = [
            gs.Constant(f"{p}{k}", (np.abs(rng.standard_normal(C)) + 0.5).astype(np.float32))
            for p in ("s", "b", "m", "v")
        ]
        c, y, r1, r2 = var("c"), var("bn"), var("r"), var("rr")
        nodes += [
            gs.Node("Conv", f"conv{k}", {"pads": [1, 1, 1, 1]}, [cur, w], [c]),
            gs.Node("BatchNormalization", f"bn{k}", {}, [c] + bn, [y]),
            gs.Node("Relu", f"relu{k}", {}, [y], [r1]),
            gs.Node("Relu", f"relu2_{k}", {}, [r1], [r2]),
        ]
        cur = r2
        if residual and k % 4 == 3:
            s = var("add")
            nodes.append(gs.Node("Add", f"add{k}", {}, [cur, skip], [s]))
            cur = skip = s
        k += 1
    cur.name = "y"
    return gs.Graph(nodes=nodes, inputs=[x], outputs=[cur], opset=17)


def main(sizes=(1000, 10000, 50000)) -> None:
    rules = load_rule_files([ROOT / "tests/dsl/data/examples.rw"], HELPERS)
    target = sorted((ROOT / "rules/hailo8").glob("*.rw"))
    if target:  # target rules win on name clashes with the examples
        extra = load_rule_files(target, HELPERS)
        rules = RuleSet([r for r in rules if r.name not in extra.names()] + list(extra))
    print(f"rules: {len(rules)} ({len(target)} target file(s))")
    print(f"{'graph':>9} {'nodes':>7} {'rewrites':>8} {'seconds':>8} {'us/node':>8}")
    for residual in (False, True):
        for n in sizes:
            g = build(n, residual)
            nodes = len(g.nodes)
            t0 = time.perf_counter()
            events = apply_rules(g, rules)
            dt = time.perf_counter() - t0
            kind = "residual" if residual else "chain"
            print(f"{kind:>9} {nodes:>7} {len(events):>8} {dt:>8.3f} {dt / nodes * 1e6:>8.1f}")


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or (1000, 10000, 50000))
