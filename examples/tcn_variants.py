"""TCN variants for the Hailo-8 rewriter tests and demos.

(a) `WeightNormTCN`: weight-normalized Conv1d blocks with causal left padding computed from the
    input's shape, so the legacy exporter writes the padding as Shape / ConstantOfShape / Concat /
    Pad chains (what many real TCN exports look like), plus chomp-free causal convs.
(b) `BatchNormTCN`: Conv1d -> BatchNorm1d -> ReLU blocks with residual 1x1 convs and a linear head.

    python examples/tcn_variants.py weightnorm out.onnx
    python examples/tcn_variants.py batchnorm out.onnx
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    from torch.nn.utils.parametrizations import weight_norm
except ImportError:  # older torch
    from torch.nn.utils import weight_norm


class CausalConv1d(nn.Module):
    """Conv1d with (k - 1) * d zeros on the left, the amount derived from the traced shape."""

    def __init__(self, cin, cout, k, dilation, dynamic_pad=True):
        super().__init__()
        self.conv = weight_norm(nn.Conv1d(cin, cout, k, dilation=dilation))
        self.pad = (k - 1) * dilation
        self.dynamic_pad = dynamic_pad
        self.const_pad = nn.ConstantPad1d((self.pad, 0), 0.0)

    def forward(self, x):
        if not self.dynamic_pad:
            return self.conv(self.const_pad(x))
        # x.shape[-1] * 0 + pad: a traced (shape-dependent) value, so the exporter emits the pads
        # as a Shape -> ... -> ConstantOfShape / Concat chain feeding Pad, not a constant
        pad = x.shape[-1] * 0 + self.pad
        return self.conv(F.pad(x, [pad, 0]))


class WeightNormBlock(nn.Module):
    def __init__(self, cin, cout, k, dilation, dynamic_pad=True):
        super().__init__()
        self.c1 = CausalConv1d(cin, cout, k, dilation, dynamic_pad)
        self.c2 = CausalConv1d(cout, cout, k, dilation, dynamic_pad)
        self.down = nn.Conv1d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = torch.relu(self.c2(torch.relu(self.c1(x))))
        return torch.relu(h + (x if self.down is None else self.down(x)))


class WeightNormTCN(nn.Module):
    def __init__(self, cin=6, channels=(8, 12), k=3, out=5, dynamic_pad=True):
        super().__init__()
        blocks, c = [], cin
        for i, ch in enumerate(channels):
            blocks.append(WeightNormBlock(c, ch, k, 2**i, dynamic_pad))
            c = ch
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, out)

    def forward(self, x):
        h = self.blocks(x)
        return self.fc(F.adaptive_avg_pool1d(h, 1).squeeze(-1))


class BatchNormBlock(nn.Module):
    def __init__(self, cin, cout, k, dilation):
        super().__init__()
        pad = (k - 1) * dilation
        self.conv1 = nn.Conv1d(cin, cout, k, padding=pad, dilation=dilation)
        self.bn1 = nn.BatchNorm1d(cout)
        self.conv2 = nn.Conv1d(cout, cout, k, padding=pad, dilation=dilation)
        self.bn2 = nn.BatchNorm1d(cout)
        self.chomp = pad
        self.down = nn.Conv1d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x))[:, :, : -self.chomp])
        h = torch.relu(self.bn2(self.conv2(h))[:, :, : -self.chomp])
        return torch.relu(h + (x if self.down is None else self.down(x)))


class BatchNormTCN(nn.Module):
    def __init__(self, cin=6, channels=(8, 12, 12), k=3, out=5):
        super().__init__()
        blocks, c = [], cin
        for i, ch in enumerate(channels):
            blocks.append(BatchNormBlock(c, ch, k, 2**i))
            c = ch
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, out)
        with torch.no_grad():  # non-trivial running statistics
            for m in self.modules():
                if isinstance(m, nn.BatchNorm1d):
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.5, 0.5)

    def forward(self, x):
        return self.fc(self.blocks(x).mean(-1))


VARIANTS = {"weightnorm": WeightNormTCN, "batchnorm": BatchNormTCN}


def export(
    variant: str, path, length: int = 32, seed: int = 0, keep_batchnorm: bool = True, dynamic_pad: bool = True
) -> Path:
    """Export a variant (opset 17, legacy exporter). keep_batchnorm disables the exporter's constant
    folding so BatchNormalization nodes reach the rewriter, as in models exported that way;
    dynamic_pad (weightnorm) writes the causal pads as shape-derived chains instead of constants."""
    torch.manual_seed(seed)
    model = (WeightNormTCN(dynamic_pad=dynamic_pad) if variant == "weightnorm" else VARIANTS[variant]()).eval()
    x = torch.randn(
        1, model.blocks[0].c1.conv.in_channels if variant == "weightnorm" else model.blocks[0].conv1.in_channels, length
    )
    kwargs = {"do_constant_folding": False} if keep_batchnorm and variant == "batchnorm" else {}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, x, str(path), dynamo=False, opset_version=17, input_names=["x"], output_names=["y"], **kwargs
        )
    return Path(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("variant", choices=sorted(VARIANTS))
    p.add_argument("out", type=Path)
    p.add_argument("--length", type=int, default=32)
    args = p.parse_args()
    print(export(args.variant, args.out, args.length))


if __name__ == "__main__":
    main()
