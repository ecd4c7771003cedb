"""Facts about ONNX ops that several stages need, defined once: op classes (elementwise, layout,
spatial) and what kind of convolution a node is. Placement, group splitting, tiling, the FSQ cut
and layout views all ask here."""

from __future__ import annotations

import functools

import onnx


@functools.cache
def is_onnx_op(name: str) -> bool:
    """onnx.defs.has(name): an operator of some ONNX domain. Remembered: onnx answers in about
    20 us (it looks through every domain), and the rule compiler and every rewrite ask again."""
    return onnx.defs.has(name)


CONV_OPS = frozenset({"Conv", "ConvTranspose"})
POOL_OPS = frozenset({"MaxPool", "AveragePool"})
SPATIAL_OPS = CONV_OPS | POOL_OPS  # sliding windows over H/W
UNARY_ELEMENTWISE = frozenset(
    {
        "Relu",
        "LeakyRelu",
        "Sigmoid",
        "Tanh",
        "Elu",
        "Selu",
        "HardSigmoid",
        "HardSwish",
        "Clip",
        "Abs",
        "Neg",
        "Sqrt",
        "Exp",
        "Log",
        "Softplus",
        "Softsign",
        "Erf",
        "Gelu",
        "Identity",
        "Celu",
        "Mish",
        "Sin",
        "Cos",
        "Reciprocal",
        "Floor",
        "Ceil",
        "Round",
        "Sign",
    }
)
BINARY_ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "PRelu"})
LAYOUT_OPS = frozenset({"Transpose", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Identity"})
PASSTHROUGH_OPS = frozenset({"Identity", "Dropout"})
# Ops whose output changes on every run: never folded into constants, always on the host.
RANDOM_OPS = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Bernoulli", "Multinomial"}
)

DENSE, DEPTHWISE, GROUPED = "dense", "depthwise", "grouped"


def conv_kind(op: str, group: int, channels_in: int) -> str:
    """dense (group 1), depthwise (a Conv with one input channel per group: group == C_in, any
    depth multiplier C_out / C_in), or grouped (anything else with group > 1)."""
    if group == 1:
        return DENSE
    return DEPTHWISE if op == "Conv" and group == channels_in else GROUPED


def depth_multiplier(channels_in: int, channels_out: int) -> int:
    """Output channels per input channel of a depthwise conv (1: channel-wise)."""
    return channels_out // channels_in


def node_conv_kind(node) -> str:
    """conv_kind of an onnx-graphsurgeon Conv/ConvTranspose node (input shape must be known)."""
    return conv_kind(node.op, int(node.attrs.get("group", 1)), node.inputs[0].shape[1])
