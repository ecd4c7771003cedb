"""Build the seed project's TCN encoder in PyTorch, export it, rewrite it for Hailo-8 and run the plan.

Architecture (as the field's exported encoder): input [1, 100, 9] channels-last IMU window;
three residual blocks 9->64->128->256 of two Conv1d (kernel 3, dilation 1, 2, 4) with causal
padding and a "chomp" slice, ReLU, a 1x1 downsample conv on the residual; global average pooling;
Linear 256->64.

    python examples/tcn_encoder.py [--out examples/out]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rewriter.cli import main as rewrite  # noqa: E402


class Chomp(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x):
        return x[:, :, : -self.size]


class TemporalBlock(nn.Module):
    def __init__(self, cin: int, cout: int, dilation: int, kernel: int = 3):
        super().__init__()
        pad = (kernel - 1) * dilation
        self.net = nn.Sequential(
            nn.Conv1d(cin, cout, kernel, padding=pad, dilation=dilation),
            Chomp(pad),
            nn.ReLU(),
            nn.Conv1d(cout, cout, kernel, padding=pad, dilation=dilation),
            Chomp(pad),
            nn.ReLU(),
        )
        self.downsample = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.net(x) + self.downsample(x))


class TcnEncoder(nn.Module):
    def __init__(self, channels=(9, 64, 128, 256), latent: int = 64):
        super().__init__()
        self.network = nn.Sequential(
            *[TemporalBlock(channels[i], channels[i + 1], 2**i) for i in range(len(channels) - 1)]
        )
        self.fc_mu = nn.Linear(channels[-1], latent)

    def forward(self, imu_window):  # [N, T, C] channels-last, as the sensor delivers
        h = self.network(imu_window.transpose(1, 2))
        return self.fc_mu(h.mean(dim=2))


def export(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = TcnEncoder().eval()
    torch.onnx.export(
        model,
        (torch.randn(1, 100, 9),),
        str(path),
        input_names=["imu_window"],
        output_names=["latent_embeddings"],
        opset_version=17,
        dynamo=False,
    )
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "examples" / "out")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    model = export(args.out / "tcn_encoder.onnx")
    plan = args.out / "tcn_encoder.plan"
    print(f"exported {model}")
    steps = [
        [str(model), "--target", "hailo8", "-o", str(plan)],
        ["check", str(plan), "--against", str(model), "--samples", "5"],
    ]
    x = np.random.default_rng(0).standard_normal((1, 100, 9)).astype(np.float32)
    np.save(args.out / "window.npy", x)
    steps.append(["run", str(plan), "--input", f"imu_window={args.out / 'window.npy'}", "--profile"])
    for argv_ in steps:
        print(f"\n$ rewrite {' '.join(argv_)}", flush=True)
        code = rewrite(argv_)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
