"""`rules verify --prove`: z3 proofs over the reals, counter-examples, and the fall-back to testing."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

pytest.importorskip("z3")

from dsl_util import examples, rules  # noqa: E402
from test_verify_edges import CLIP_IS_RELU, MUL_ONE_IS_IDENTITY  # noqa: E402

from rewriter.dsl.prove import prove_rule  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _prove(text, **kw):
    (rule,) = rules(text)
    return prove_rule(rule, **kw)


def test_issue_rules_are_disproved_with_counterexamples(tmp_path):
    clip = _prove(CLIP_IS_RELU, counterexamples=tmp_path)
    assert clip.status == "disproved", str(clip)
    data = np.load(clip.counterexample["data"])
    x = data[onnx.load(clip.counterexample["model"]).graph.input[0].name]
    assert (x > 6).any()  # z3's witness lies above the clip bound ...
    assert not np.allclose(data["expected/y"], data["rewritten/y"])  # ... and onnxruntime agrees
    mul = _prove(MUL_ONE_IS_IDENTITY, counterexamples=tmp_path)
    assert mul.status == "disproved" and "changes the shape of 'y'" in mul.detail, str(mul)
    assert Path(mul.counterexample["model"]).is_file()


def test_documented_examples_are_proved():
    results = {r.name: prove_rule(r) for r in examples()}
    assert {k: v.status for k, v in results.items()} == dict.fromkeys(results, "proved"), results
    assert "constants" in results["fuse_conv_bn"].detail  # BN fold: weights and statistics symbolic


@pytest.mark.parametrize(
    "text",
    [
        # the fold forgets the conv's attributes
        """rule f:
    match:
        c = Conv(x, w: const, b: const?) {...attrs}
        y = BatchNormalization(c, s: const, beta: const, m: const, v: const) {epsilon: eps}
    rewrite:
        y = Conv(x, bn_fold_weight(w, s, v, eps), bn_fold_bias(b, s, beta, m, v, eps)) {group: attrs["group"]}
""",
        # epsilon dropped from the weights
        """rule f:
    match:
        c = Conv(x, w: const, b: const?) {...attrs}
        y = BatchNormalization(c, s: const, beta: const, m: const, v: const) {epsilon: eps}
    rewrite:
        y = Conv(x, bn_fold_weight(w, s, v, 0.0), bn_fold_bias(b, s, beta, m, v, eps)) {...attrs}
""",
        # Mul folded as a division
        """rule f:
    match:
        c = Conv(x, w: const, b: const?) {...attrs}
        y = Mul(c, k: const)
    where:
        uses(c) == 1 and is_channel_const(k, shape(c)[1], rank(c))
    rewrite:
        y = Conv(x, scale_conv_weight(w, k, true), scale_conv_bias(b, k, shape(c)[1], true)) {...attrs}
""",
        # a LeakyRelu that leaks is not a Relu
        """rule f:
    match:
        y = LeakyRelu(x) {alpha: a}
    where:
        a < 0.5
    rewrite:
        y = Relu(x)
""",
        # composed in the wrong order
        """rule f:
    match:
        t = Transpose(x) {perm: p}
        y = Transpose(t) {perm: q}
    rewrite:
        y = Transpose(x) {perm: compose_perm(q, p)}
""",
    ],
)
def test_wrong_rules_are_disproved(text):
    r = _prove(text)
    assert r.status == "disproved", str(r)


def test_uninterpreted_op_difference_is_unknown_not_disproved():
    r = _prove("rule f:\n    match:\n        y = Sigmoid(x)\n    rewrite:\n        y = Tanh(x)\n")
    assert r.status == "unknown" and "uninterpreted" in r.detail


def test_op_outside_the_fragment_is_unknown():
    r = _prove(
        "rule f:\n    match:\n        y = Softmax(x) {axis: a}\n    rewrite:\n        y = Softmax(x) {axis: a}\n"
    )
    assert r.status == "unknown" and "Softmax" in r.detail


def test_cli_proves_or_tests_every_shipped_rule(capsys):
    """The CI check of the README: every hailo8 rule is proved or passes testing."""
    from rewriter.cli import main

    files = sorted(str(p) for p in (REPO / "rules" / "hailo8").glob("*.rw"))
    code = main(["rules", "verify", "--prove", "--json", *files])
    out = capsys.readouterr()
    assert code == 0, out.err
    doc = json.loads(out.out)
    statuses = [r["status"] for r in doc["rules"]]
    assert set(statuses) <= {"proved", "passed"} and len(statuses) >= 35
    assert doc["counts"]["proved"] == statuses.count("proved") >= 35
    print(f"hailo8: {doc['counts']}")


def test_cli_rejects_the_issue_rules(tmp_path, capsys):
    from rewriter.cli import main

    path = tmp_path / "unsound.rw"
    path.write_text(CLIP_IS_RELU + MUL_ONE_IS_IDENTITY)
    for extra in ([], ["--prove"]):
        code = main(["rules", "verify", str(path), "--counterexamples", str(tmp_path / "cx"), *extra])
        out = capsys.readouterr().out
        assert code == 1
        assert out.count("saved: ") == 2 and "clip_0_6_is_relu" in out and "mul_one_is_identity" in out
    assert sorted(p.name for p in (tmp_path / "cx").iterdir()) == [
        "clip_0_6_is_relu.npz",
        "clip_0_6_is_relu.onnx",
        "mul_one_is_identity.npz",
        "mul_one_is_identity.onnx",
    ]


def test_rules_written_in_the_docs_are_sound():
    from passes.helpers import HELPERS
    from rewriter.dsl import parse_rules, verify_rules

    blocks, current = [], None
    for line in (REPO / "docs" / "dsl.md").read_text().splitlines():
        if line.startswith("```"):
            if current is None:
                current = [] if line == "```" else ["<other>"]
            else:
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    blocks = [b for b in blocks if "match:" in b and not b.startswith("<other>")]
    assert blocks
    for block in blocks:
        source = "\n".join(line.split("  <-")[0].rstrip() for line in block.splitlines())
        for rule in parse_rules(source, "dsl.md", HELPERS):
            assert prove_rule(rule).status == "proved", rule.name
            (tested,) = verify_rules([rule], samples=3)
            assert tested.passed, str(tested)
