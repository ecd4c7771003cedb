"""The DSL's comparison takes shortcuts for plain ints/strings/bools, None, and small int arrays
against int lists; each must agree with the general path, reached by handing the same values in
another form (numpy scalars, tuples) that skips the shortcuts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rewriter.dsl.expr import EvalError, compare

VALUES = [
    None, 0, 1, 2, -1, True, False, "a", "", "Round", 2.0, 1e-9,
    [2], [1, 2], [2, 2], [], [None], [2.0],
    np.array([2]), np.array([1, 2]), np.array([2, 2]), np.array([2], np.uint8), np.array([True]),
    np.array([2.0]), np.array(2), np.array([[2]]), np.int64(2), np.float32(2.0),
]  # fmt: skip
OPS = ["==", "!=", "<", "<=", ">", ">="]


def _general(v):
    """The same value in a form no shortcut takes (the general path converts it back)."""
    if isinstance(v, bool):
        return np.bool_(v)
    if isinstance(v, int):
        return np.int64(v)
    if isinstance(v, str):
        return np.str_(v)
    if isinstance(v, list):
        return tuple(v)
    return v


def _outcome(op, a, b):
    try:
        return compare(op, a, b)
    except EvalError:
        return "error"


@pytest.mark.parametrize("op", OPS)
def test_shortcuts_agree_with_the_general_path(op):
    checked = 0
    for a, b in itertools.product(VALUES, repeat=2):
        if a is None and b is None:
            continue  # no other form of None: identity decides it either way
        for ga, gb in ((_general(a), b), (a, _general(b)), (_general(a), _general(b))):
            assert _outcome(op, a, b) == _outcome(op, ga, gb), (op, a, b, ga, gb)
            checked += 1
    assert checked > 2000


def test_the_shortcut_answers_themselves():
    assert compare("==", np.array([2]), [2]) and not compare("!=", np.array([2]), [2])
    assert not compare("==", np.array([1, 2]), [2, 1]) and compare("!=", np.array([1, 2]), [2, 1])
    assert compare("==", np.array([2, 2]), [2])  # broadcasting, as numpy compares (general path)
    assert compare("==", "FSQ", "FSQ") and not compare("==", "FSQ", None) and compare("!=", None, "FSQ")
    assert compare("==", None, None) and compare("<", 1, 2) and not compare(">=", "a", "b")
