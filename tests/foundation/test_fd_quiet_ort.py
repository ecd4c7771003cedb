"""Constant folding keeps onnxruntime's warnings about gs's internal models off the user's terminal
(rewriter/ir/quiet_ort.py), also on the first fold of a process, which imports onnxruntime; a fold
that needs no onnxruntime does not import it; the import hook leaves sys.meta_path as it was and
onnxruntime with its own loader. Each case runs in a fresh interpreter (the import is the point)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from fd_util import conv_chain_model, save
from onnx import TensorProto, helper, numpy_helper


def warning_model() -> onnx.ModelProto:
    """A constant bias (Add, Gather, Reshape of initializers: onnxruntime folds it) whose stale
    value_info makes onnxruntime warn ("Error merging shape info") when gs folds it."""
    inits = [
        numpy_helper.from_array(np.arange(4, dtype=np.float32), "c1"),
        numpy_helper.from_array(np.ones(4, np.float32), "c2"),
        numpy_helper.from_array(np.array([0, 2, 1, 3], np.int64), "idx"),
        numpy_helper.from_array(np.array([1, 4, 1, 1], np.int64), "shape"),
    ]
    nodes = [
        helper.make_node("Add", ["c1", "c2"], ["s"]),
        helper.make_node("Gather", ["s", "idx"], ["g"]),
        helper.make_node("Reshape", ["g", "shape"], ["bias"]),
        helper.make_node("Add", ["x", "bias"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        inits,
        value_info=[helper.make_tensor_value_info("g", TensorProto.FLOAT, [5])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def warns(tmp_path_factory) -> str:
    return str(save(warning_model(), tmp_path_factory.mktemp("quiet_ort") / "warn.onnx"))


def run(code: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_the_model_does_make_onnxruntime_warn(warns):
    """What is kept quiet: onnxruntime left at its own level warns on this model's folding."""
    code = (
        "import onnx_graphsurgeon as gs, onnx\n"
        f"g = gs.import_onnx(onnx.load({warns!r}))\n"
        "g.fold_constants(error_ok=True)\n"
    )
    assert "MergeShapeInfo" in run(code).stderr


def test_the_first_fold_of_a_process_is_quiet_and_leaves_no_trace(warns, tmp_path):
    out = tmp_path / "out.plan"
    code = (
        "import sys, contextlib, io\n"
        "from rewriter.cli.main import main\n"
        "before = list(sys.meta_path)\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main([{warns!r}, '-o', {str(out)!r}, '-q']) == 0\n"
        "ort = sys.modules['onnxruntime']  # gs imported it to fold\n"
        "assert sys.meta_path == before, sys.meta_path\n"
        "assert type(ort.__loader__).__name__ == type(ort.__spec__.loader).__name__ == 'SourceFileLoader'\n"
    )
    proc = run(code)
    assert "onnxruntime" not in proc.stderr and "MergeShapeInfo" not in proc.stderr, proc.stderr
    assert (out / "plan.json").is_file()


def test_the_block_imports_nothing_itself(tmp_path):
    """A fold that needs no onnxruntime (gs folds it alone) must not pay 100 ms to import it."""
    model = save(conv_chain_model(), tmp_path / "m.onnx")
    code = (
        "import sys\n"
        "from rewriter.ir.quiet_ort import quiet_onnxruntime\n"
        "before = list(sys.meta_path)\n"
        "with quiet_onnxruntime():\n"
        "    import onnx\n"
        "assert sys.meta_path == before\n"
        "from pathlib import Path\n"
        "from rewriter.ir.load import load_graph\n"
        f"load_graph(Path({str(model)!r}), {{}})\n"
        "print('onnxruntime' in sys.modules)\n"
    )
    assert run(code).stdout.strip() == "False"
