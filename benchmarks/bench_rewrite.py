"""Whole `rewrite` pipeline (load, passes with the hailo8 rules, partition, extract, tiling) on
generated models of growing size. Reports seconds per stage and microseconds per node.

    python benchmarks/bench_rewrite.py [--sizes 1000 5000 10000] [--shape tcn|alternating]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rewriter.pipeline import RewriteOptions, rewrite  # noqa: E402
from rewriter.target import load_target  # noqa: E402


def tcn_like(nodes: int, channels: int = 16, length: int = 64) -> onnx.ModelProto:
    """Blocks of Conv1d -> BatchNorm1d -> Relu -> Add(residual): 4 nodes a block."""
    rng = np.random.default_rng(0)
    graph_nodes, inits = [], []
    x = "x"
    for b in range(max(1, nodes // 4)):
        w = numpy_helper.from_array(rng.standard_normal((channels, channels, 3)).astype(np.float32) * 0.1, f"w{b}")
        stats = [
            numpy_helper.from_array(v.astype(np.float32), f"bn{b}_{k}")
            for k, v in enumerate(
                [
                    rng.uniform(0.5, 1.5, channels),
                    rng.standard_normal(channels) * 0.1,
                    rng.standard_normal(channels) * 0.1,
                    rng.uniform(0.5, 1.5, channels),
                ]
            )
        ]
        inits += [w, *stats]
        graph_nodes += [
            helper.make_node("Conv", [x, f"w{b}"], [f"c{b}"], pads=[1, 1], kernel_shape=[3]),
            helper.make_node("BatchNormalization", [f"c{b}"] + [s.name for s in stats], [f"n{b}"]),
            helper.make_node("Relu", [f"n{b}"], [f"r{b}"]),
            helper.make_node("Add", [f"r{b}", x], [f"y{b}"]),
        ]
        x = f"y{b}"
    graph = helper.make_graph(
        graph_nodes,
        "tcn_like",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, length])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, channels, length])],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def alternating(nodes: int, channels: int = 16, size: int = 32) -> onnx.ModelProto:
    """Conv (hailo) and Floor (host) alternating: one segment per node, the partitioner's worst case."""
    rng = np.random.default_rng(0)
    graph_nodes, inits, x = [], [], "x"
    for b in range(max(1, nodes // 2)):
        inits.append(
            numpy_helper.from_array(rng.standard_normal((channels, channels, 3, 3)).astype(np.float32), f"w{b}")
        )
        graph_nodes += [
            helper.make_node("Conv", [x, f"w{b}"], [f"c{b}"], pads=[1, 1, 1, 1]),
            helper.make_node("Floor", [f"c{b}"], [f"f{b}"]),
        ]
        x = f"f{b}"
    shape = [1, channels, size, size]
    graph = helper.make_graph(
        graph_nodes,
        "alternating",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


SHAPES = {"tcn": tcn_like, "alternating": alternating}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument(
        "--shape",
        choices=sorted(SHAPES),
        default="tcn",
        help="tcn: Conv1d/BN/ReLU/residual blocks (many rule rewrites); alternating: "
        "Conv/Floor, one segment per node (partitioning and extraction)",
    )
    args = parser.parse_args(argv)
    target = load_target("hailo8")
    rewrite_warm = tcn_like(8)
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm.onnx"
        onnx.save(rewrite_warm, warm)
        rewrite(warm, target, RewriteOptions())  # rule files parsed and cached once
        print(
            f"{'nodes':>7} {'load s':>8} {'passes s':>9} {'partition s':>12} {'extract s':>10} "
            f"{'tiling s':>9} {'total s':>8} {'us/node':>8}"
        )
        for size in args.sizes:
            path = Path(tmp) / f"m{size}.onnx"
            onnx.save(SHAPES[args.shape](size), path)
            start = time.perf_counter()
            result = rewrite(path, target, RewriteOptions())
            total = time.perf_counter() - start
            t = result.timings
            print(
                f"{size:>7} {t['load']:>8.3f} {t['passes']:>9.3f} {t['partition']:>12.3f} "
                f"{t['extract']:>10.3f} {t['tiling']:>9.3f} {total:>8.3f} {total / size * 1e6:>8.0f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
