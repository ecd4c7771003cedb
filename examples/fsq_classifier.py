"""A Conv2d encoder -> FSQ quantizer -> Conv2d classifier head, exported to ONNX.

FSQ (finite scalar quantization, Mentzer et al. 2023): per channel, z -> tanh bound -> scale to
(L - 1) / 2 -> round with a straight-through estimator `z + (round(z) - z).detach()` -> divide by
the half width L // 2. Round is not a Hailo-8 op: the rewriter's heads.rw rules keep the quantizer
on the host as one step, so the plan is hailo (encoder) -> host (FSQ) -> hailo (head).

`HandFSQ` mirrors vector_quantize_pytorch.FSQ.bound / round_ste; `build(use_library=True)` uses
that package's FSQ when it is installed (pip install vector-quantize-pytorch).

    python examples/fsq_classifier.py out.onnx [--library]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch
import torch.nn as nn

LEVELS = [8, 5, 5, 5]
DIM = len(LEVELS)  # FSQ code dimension: one per level


def round_ste(z: torch.Tensor) -> torch.Tensor:
    """Round with a straight-through gradient."""
    return z + (z.round() - z).detach()


class HandFSQ(nn.Module):
    """FSQ over the channel axis of [N, D, H, W] (D = len(levels)), as vector_quantize_pytorch
    computes it: bound(z) = tanh(z + shift) * half_l - offset; round_ste(bound(z)) / half_width."""

    def __init__(self, levels=LEVELS, eps: float = 1e-3):
        super().__init__()
        lv = torch.tensor(levels, dtype=torch.float32)
        half_l = (lv - 1) * (1 + eps) / 2
        offset = torch.where(lv % 2 == 0, 0.5, 0.0)
        shape = (1, len(levels), 1, 1)
        self.register_buffer("half_l", half_l.view(shape))
        self.register_buffer("offset", offset.view(shape))
        self.register_buffer("shift", torch.atanh(offset / half_l).view(shape))
        self.register_buffer("half_width", (lv // 2).view(shape))

    def forward(self, z):
        bounded = torch.tanh(z + self.shift) * self.half_l - self.offset
        return round_ste(bounded) / self.half_width


class LibraryFSQ(nn.Module):
    """vector_quantize_pytorch.FSQ on [N, D, H, W], returning only the codes."""

    def __init__(self, levels=LEVELS):
        super().__init__()
        from vector_quantize_pytorch import FSQ

        self.fsq = FSQ(levels=list(levels))

    def forward(self, z):
        codes, _ = self.fsq(z)
        return codes


class FsqClassifier(nn.Module):
    def __init__(self, quantizer: nn.Module, in_ch=3, width=16, dim=DIM, classes=10):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(in_ch, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, dim, 1),
        )
        self.quantizer = quantizer
        self.head = nn.Sequential(
            nn.Conv2d(dim, width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(width, classes),
        )

    def forward(self, x):
        return self.head(self.quantizer(self.encoder(x)))


def build(use_library: bool = False, seed: int = 0) -> FsqClassifier:
    torch.manual_seed(seed)
    quantizer = LibraryFSQ() if use_library else HandFSQ()
    model = FsqClassifier(quantizer).eval()
    with torch.no_grad():  # spread the latent so several FSQ levels are used
        model.encoder[-1].weight.mul_(4.0)
    return model


def export(path, use_library: bool = False, shape=(1, 3, 16, 16), seed: int = 0) -> Path:
    model = build(use_library, seed)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            torch.randn(*shape),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["image"],
            output_names=["logits"],
        )
    return Path(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--library", action="store_true", help="use vector_quantize_pytorch's FSQ")
    args = p.parse_args()
    print(export(args.out, args.library))


if __name__ == "__main__":
    main()
