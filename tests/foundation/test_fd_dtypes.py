"""rewriter.ir.dtypes.dtype_name: numpy's name of a dtype however it is given, str() of what numpy
does not know, and worked out once per dtype."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from rewriter.ir import dtypes


@pytest.mark.parametrize(
    "given, name",
    [
        (np.float32, "float32"),
        (np.dtype("float16"), "float16"),
        ("int64", "int64"),
        (np.bool_, "bool"),
        (ml_dtypes.bfloat16, "bfloat16"),
        (16, "16"),  # an onnx type code numpy cannot read as a dtype
    ],
)
def test_names(given, name):
    assert dtypes.dtype_name(given) == name


def test_unhashable_descriptions_are_named_too():
    assert dtypes.dtype_name([("a", "<f4")]) == np.dtype([("a", "<f4")]).name


def test_each_dtype_is_worked_out_once():
    dtypes._remembered.cache_clear()
    for _ in range(5):
        dtypes.dtype_name(np.float32)
    info = dtypes._remembered.cache_info()
    assert (info.misses, info.hits) == (1, 4)
