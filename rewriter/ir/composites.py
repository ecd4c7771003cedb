"""Composites: subgraphs a target accepts as a whole although it does not accept one of their ops
alone (the DFC maps GELU written with Erf; no source says it maps Erf by itself). A target names
them on the op (`within = "gelu"` in target.toml); placement asks here whether a node is part of one."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import onnx_graphsurgeon as gs


def _const(tensor: gs.Tensor) -> float | None:
    """The value of a one-value constant, else None."""
    if isinstance(tensor, gs.Constant) and np.asarray(tensor.values).size == 1:
        return float(np.asarray(tensor.values).ravel()[0])
    return None


def _operands(node: gs.Node, tensor: gs.Tensor) -> list[gs.Tensor]:
    """node's inputs other than `tensor`."""
    return [t for t in node.inputs if t is not tensor]


def _near(value: float | None, want: float) -> bool:
    return value is not None and math.isclose(value, want, rel_tol=1e-5)


def is_gelu_erf(node: gs.Node) -> bool:
    """`node` is the Erf of x * 0.5 * (1 + erf(x / sqrt(2))), in the forms exporters write: the
    scaling as Div(x, sqrt 2) or Mul(x, 1/sqrt 2); the halving applied to the product, to the
    (1 + erf) term or to x."""
    if node.op != "Erf" or not node.inputs[0].inputs:
        return False
    scale = node.inputs[0].inputs[0]
    if len(scale.inputs) != 2:
        return False
    if scale.op == "Div" and _near(_const(scale.inputs[1]), math.sqrt(2)):
        x = scale.inputs[0]
    elif scale.op == "Mul" and any(_near(_const(t), 1 / math.sqrt(2)) for t in scale.inputs):
        x = next((t for t in scale.inputs if _const(t) is None), None)
    else:
        return False
    users = node.outputs[0].outputs
    if len(users) != 1 or users[0].op != "Add" or not _near(_const(_operands(users[0], node.outputs[0])[0]), 1.0):
        return False
    term = users[0].outputs[0]  # 1 + erf(x / sqrt 2)
    return any(_times_half_x(m, term, x) for m in term.outputs if m.op == "Mul")


def _times_half_x(mul: gs.Node, term: gs.Tensor, x: gs.Tensor) -> bool:
    """mul multiplies `term` by x and by 0.5, in one of the three orders."""
    (other,) = _operands(mul, term) or [None]
    if other is None:
        return False
    nexts = [n for n in mul.outputs[0].outputs if n.op == "Mul"]
    if other is x:  # (x * term) * 0.5
        return any(any(_near(_const(t), 0.5) for t in n.inputs) for n in nexts)
    if _near(_const(other), 0.5):  # x * (term * 0.5)
        return any(x in n.inputs for n in nexts)
    half_x = other.inputs[0] if other.inputs else None  # (x * 0.5) * term
    return (
        half_x is not None
        and half_x.op == "Mul"
        and x in half_x.inputs
        and any(_near(_const(t), 0.5) for t in half_x.inputs)
    )


COMPOSITES: dict[str, Callable[[gs.Node], bool]] = {"gelu": is_gelu_erf}
