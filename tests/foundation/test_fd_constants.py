"""rewriter/ir/constants.py: initializers as numpy arrays, converted when first read."""

import numpy as np
import pytest
from onnx import numpy_helper

from rewriter.ir.constants import ConstantArrays


def test_converted_on_first_read_only():
    protos = {"w": numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")}
    consts = ConstantArrays(protos)
    assert "w" in consts and "x" not in consts and len(consts) == 1
    assert type(dict.__getitem__(consts, "w")).__name__ == "_Unread"  # nothing converted yet
    np.testing.assert_array_equal(consts["w"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert consts["w"] is consts["w"]  # converted once, then kept
    assert [k for k, _ in consts.items()] == ["w"] and consts.values()[0] is consts["w"]
    assert consts.get("x") is None and consts.get("x", 7) == 7
    np.testing.assert_array_equal(consts.get("w"), consts["w"])
    with pytest.raises(KeyError):
        consts["x"]


def test_stored_values_are_constants_too():
    consts = ConstantArrays({})
    consts["c"] = np.array([1, 2])  # a Constant node's value
    assert "c" in consts and consts.get("c").tolist() == [1, 2]
