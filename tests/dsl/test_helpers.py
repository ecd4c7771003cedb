"""Native helpers: registration and BN folding numerics (Conv of any rank, ConvTranspose)."""

import numpy as np
import pytest
from dsl_util import assert_same, model, rewrite, rules, weights

from passes.helpers import HELPERS, native_helper

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'


def test_registry():
    assert {"bn_fold_weight", "bn_fold_bias", "bn_fold_weight_convtranspose"} <= set(HELPERS)
    with pytest.raises(ValueError):
        native_helper("bn_fold_bias")(lambda *a: None)


def test_fold_does_not_mutate_and_keeps_dtype():
    w = np.ones([2, 1, 3], np.float32)
    s, v = np.array([2.0, 3.0], np.float32), np.array([1.0, 4.0], np.float32)
    out = HELPERS["bn_fold_weight"](w, s, v, 0.0)
    assert out.dtype == np.float32 and np.all(w == 1)
    np.testing.assert_allclose(out[:, 0, 0], [2.0, 1.5])
    b = HELPERS["bn_fold_bias"](None, s, np.zeros(2, np.float32), np.ones(2, np.float32), v, 0.0)
    np.testing.assert_allclose(b, [-2.0, -1.5])


@pytest.mark.parametrize("group", [1, 2])
def test_convtranspose_bn_fold(group):
    text = """
rule fuse_convtranspose_bn:
    match:
        c = ConvTranspose(x, w: const, b: const?) {...attrs}
        y = BatchNormalization(c, s: const, beta: const, m: const, v: const) {epsilon: eps}
    where:
        uses(c) == 1
    rewrite:
        y = ConvTranspose(x, bn_fold_weight_convtranspose(w, s, v, eps), bn_fold_bias(b, s, beta, m, v, eps)) {...attrs}
"""
    w = weights(7, w=[4, 6 // group, 3, 3], b=[6], s=[6], beta=[6], mean=[6], var=[6])
    m = model(
        HEAD
        + f"""
    g (float[1,4,5,5] x) => (float[1,6,?,?] y) {{
      c = ConvTranspose<group={group}, strides=[2,2]>(x, w, b)
      y = BatchNormalization(c, s, beta, mean, var)
    }}""",
        w,
    )
    out, events, _ = rewrite(m, rules(text))
    assert len(events) == 1
    assert_same(m, out)
