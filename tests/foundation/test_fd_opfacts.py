"""rewriter.ir.opfacts.is_onnx_op answers as onnx.defs.has does (ops of every ONNX domain, names
that are not ops), and asks onnx once per name."""

from __future__ import annotations

import onnx
import pytest

from rewriter.ir import opfacts


@pytest.mark.parametrize("name", ["Conv", "Relu", "LinearClassifier", "Gelu", "NotAnOp", "relu", "", "Unsqueeze"])
def test_answers_as_onnx(name):
    assert opfacts.is_onnx_op(name) == onnx.defs.has(name)


def test_asks_onnx_once_per_name(monkeypatch):
    opfacts.is_onnx_op.cache_clear()
    asked = []
    real = onnx.defs.has
    monkeypatch.setattr(onnx.defs, "has", lambda name: asked.append(name) or real(name))
    assert [opfacts.is_onnx_op(n) for n in ("Conv", "Conv", "Nope", "Conv", "Nope")] == [True, True, False, True, False]
    assert asked == ["Conv", "Nope"]
    opfacts.is_onnx_op.cache_clear()  # the next tests ask the real onnx again
