"""reshape_pair_is_identity / reshape_triple_is_identity (rules/hailo8/cleanup.rw): a chain of
Squeeze, Unsqueeze, Reshape and Flatten that ends in its input's shape is its input. A squeeze-
excitation block's gate ([N, C, 1, 1] -> Squeeze -> Unsqueeze(-1) -> the layout rules' Unsqueeze)
was such a chain, and a host round trip per block. Also what lets `rules verify` check such rules:
instances mix the ops of several op variables (a Squeeze then an Unsqueeze, not each op after
itself only)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import helper
from util import ints, make_model, rewrite_and_run, torch_export, vi

from rewriter.cli import main


class SEResNet1d:
    """Conv1d stem, two residual blocks each with a squeeze-excitation gate, a Linear head."""

    @staticmethod
    def module(c=32):
        import torch
        import torch.nn.functional as F
        from torch import nn

        class SE(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.fc2 = nn.Linear(c, c // 4), nn.Linear(c // 4, c)

            def forward(self, x):
                return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(-1))))).unsqueeze(-1)

        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv, self.bn, self.se = nn.Conv1d(c, c, 3, padding=1), nn.BatchNorm1d(c), SE()

            def forward(self, x):
                return F.relu(x + self.se(self.bn(self.conv(x))))

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.stem = nn.Conv1d(6, c, 5, padding=2)
                self.blocks = nn.Sequential(Block(), Block())
                self.head = nn.Linear(c, 4)

            def forward(self, x):
                return self.head(self.blocks(self.stem(x)).mean(-1))

        torch.manual_seed(0)
        return Net().eval()


@pytest.mark.parametrize("dynamo", [False, True])
def test_squeeze_excitation_blocks_stay_in_one_hailo_segment(dynamo, tmp_path):
    import torch

    path = torch_export(SEResNet1d.module(), torch.randn(1, 6, 128), tmp_path / "se.onnx", dynamo=dynamo)
    res = rewrite_and_run(path, tmp_path)
    assert len(res.steps_on("hailo")) == 1, res.placement()
    assert res.ops("hailo")["Sigmoid"] == 2 and res.ops("hailo")["Mul"] == 2


def test_a_chain_that_changes_the_shape_stays(tmp_path):
    """Squeeze(axis 2) then Unsqueeze(axis 3): [1, 8, 1, 5] -> [1, 8, 5, 1] is a real reshape."""
    model = make_model(
        [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("Squeeze", ["r", "a2"], ["s"]),
            helper.make_node("Unsqueeze", ["s", "a3"], ["y"]),
        ],
        [vi("x", [1, 8, 1, 5])],
        [vi("y", None)],
        [ints("a2", [2]), ints("a3", [3])],
    )
    res = rewrite_and_run(model, tmp_path)
    assert res.outputs["y"].shape == (1, 8, 5, 1)
    assert {"Squeeze", "Unsqueeze"} <= set(res.ops()) or "Reshape" in res.ops(), res.ops()


def _verify(tmp_path, capsys, text: str) -> dict:
    rule = tmp_path / "r.rw"
    rule.write_text(text)
    main(["rules", "verify", str(rule), "--samples", "40", "--json", "--counterexamples", str(tmp_path / "ce")])
    return {r["rule"]: r for r in json.loads(capsys.readouterr().out)["rules"]}


def _chain_rule(name, ops, where):
    return (
        f"ops S = {{{', '.join(ops)}}}\n"
        f"rule {name}:\n    match:\n        op A in S\n        op B in S\n"
        "        s = A(x, _?)\n        y = B(s, _?)\n"
        f"    where:\n        {where}\n    rewrite:\n        y = x\n"
    )


def test_verify_fails_a_chain_rule_that_also_takes_transposes(tmp_path, capsys):
    """Transpose keeps the shape when it swaps two axes of one size, but not the values."""
    rule = _chain_rule("t", ["Reshape", "Transpose"], "shape(y) == shape(x)")
    got = _verify(tmp_path, capsys, rule)
    assert got["t"]["status"] == "failed", got


def test_verify_tries_a_squeeze_then_an_unsqueeze(tmp_path, capsys):
    """A rule wrong only when the two op variables differ: each op after itself never shows it."""
    got = _verify(tmp_path, capsys, _chain_rule("mixed", ["Squeeze", "Unsqueeze"], "A != B and rank(y) == rank(x)"))
    assert got["mixed"]["status"] == "failed", got


def test_the_rules_verify_on_many_instances(capsys):
    from pathlib import Path

    import rewriter

    path = Path(rewriter.__file__).resolve().parents[1] / "rules" / "hailo8" / "cleanup.rw"
    main(["rules", "verify", str(path), "--samples", "40", "--json"])
    rows = {r["rule"]: r for r in json.loads(capsys.readouterr().out)["rules"]}
    for name in ("reshape_pair_is_identity", "reshape_triple_is_identity"):
        assert rows[name]["status"] == "passed" and rows[name]["instances"] >= 10, rows[name]
    assert np.all([r["status"] == "passed" for r in rows.values()])
