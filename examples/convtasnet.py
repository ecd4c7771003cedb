"""ConvTasNet-style separator (Luo & Mesgarani 2019), exported as ONNX for the tiling demo.

    python examples/convtasnet.py -o convtasnet.onnx [--samples 16000] [--plan OUT [--strict]]

Defaults are asteroid's ConvTasNet: 512 filters (kernel 16, stride 8), 128 bottleneck, 512 hidden,
128 skip channels, 8 blocks x 3 repeats, gLN, PReLU, 2 sources. Each block returns a residual
(added to its input) and a skip output (summed over all blocks: the masks come from the sum).
Convs are nn.Conv2d with (1, k) kernels (time on W, H = 1) so every segment is rank 4 already;
--conv1d builds the same network with nn.Conv1d for the Conv1d->Conv2d rewrite. Global layer
norm (mean/var over C and T) is written out with explicit ops: it lands on the host.
--plan OUT also writes the plan with the hailo8 target's resource model (--strict: 64-channel
blocks, width 512) and checks its parity.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


class GlobalLayerNorm(nn.Module):
    """gLN: normalize over channels and time together, then per-channel affine."""

    def __init__(self, channels: int, rank: int, eps: float = 1e-8):
        super().__init__()
        shape = (1, channels) + (1,) * (rank - 2)
        self.gamma = nn.Parameter(1 + 0.1 * torch.randn(shape))
        self.beta = nn.Parameter(0.1 * torch.randn(shape))
        self.dims, self.eps = tuple(range(1, rank)), eps

    def forward(self, x):
        mean = x.mean(dim=self.dims, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=self.dims, keepdim=True)
        return self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta


def _conv(conv1d: bool, cin, cout, k, **kw):
    if conv1d:
        return nn.Conv1d(cin, cout, k, **kw)
    kw = {key: ((0, v) if key == "padding" else (1, v)) for key, v in kw.items() if key != "groups"} | (
        {"groups": kw["groups"]} if "groups" in kw else {}
    )
    return nn.Conv2d(cin, cout, (1, k), **kw)


class TCNBlock(nn.Module):
    def __init__(self, b: int, h: int, s: int, p: int, dilation: int, conv1d: bool):
        super().__init__()
        rank = 3 if conv1d else 4
        self.net = nn.Sequential(
            _conv(conv1d, b, h, 1),
            nn.PReLU(h),
            GlobalLayerNorm(h, rank),
            _conv(conv1d, h, h, p, dilation=dilation, padding=dilation * (p - 1) // 2, groups=h),
            nn.PReLU(h),
            GlobalLayerNorm(h, rank),
        )
        self.res = _conv(conv1d, h, b, 1)
        self.skip = _conv(conv1d, h, s, 1)

    def forward(self, x):
        y = self.net(x)
        return x + self.res(y), self.skip(y)


class ConvTasNet(nn.Module):
    def __init__(self, n=512, l=16, b=128, h=512, s=128, p=3, x=8, r=3, speakers=2, conv1d=False):
        super().__init__()
        rank = 3 if conv1d else 4
        self.encoder = _conv(conv1d, 1, n, l, stride=l // 2, bias=False)
        self.norm = GlobalLayerNorm(n, rank)
        self.bottleneck = _conv(conv1d, n, b, 1)
        self.tcn = nn.ModuleList([TCNBlock(b, h, s, p, 2**i, conv1d) for _ in range(r) for i in range(x)])
        self.prelu = nn.PReLU(s)
        self.masks = nn.ModuleList([_conv(conv1d, s, n, 1) for _ in range(speakers)])
        deconv = (
            nn.ConvTranspose1d(n, 1, l, stride=l // 2, bias=False)
            if conv1d
            else nn.ConvTranspose2d(n, 1, (1, l), stride=(1, l // 2), bias=False)
        )
        self.decoder = deconv

    def forward(self, wav):
        e = torch.relu(self.encoder(wav))
        x = self.bottleneck(self.norm(e))
        skips = 0
        for block in self.tcn:
            x, skip = block(x)
            skips = skips + skip
        y = self.prelu(skips)
        return torch.cat([self.decoder(e * torch.sigmoid(m(y))) for m in self.masks], dim=1)


SMALL = dict(n=96, b=96, h=160, s=64, x=4, r=1)  # fast tests


def export(path: Path, samples: int = 16000, conv1d: bool = False, seed: int = 0, **sizes) -> Path:
    torch.manual_seed(seed)
    model = ConvTasNet(conv1d=conv1d, **sizes).eval()
    wav = torch.randn((1, 1, samples) if conv1d else (1, 1, 1, samples))
    with torch.no_grad():
        torch.onnx.export(
            model, (wav,), str(path), input_names=["mixture"], output_names=["sources"], opset_version=17, dynamo=False
        )
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=Path("convtasnet.onnx"))
    ap.add_argument("--samples", type=int, default=16000)
    ap.add_argument("--conv1d", action="store_true", help="nn.Conv1d layers (rank 3)")
    ap.add_argument("--small", action="store_true", help="N=B=96, H=160, S=64, 4 blocks x 1 (fast tests)")
    ap.add_argument("--plan", type=Path, help="also write the plan here and check its parity")
    ap.add_argument("--strict", action="store_true", help="the plan with --tile-channels 64 --tile-width 512")
    args = ap.parse_args(argv)
    sizes = SMALL if args.small else {}
    export(args.output, args.samples, args.conv1d, **sizes)
    print(f"wrote {args.output}")
    if args.plan:
        from rewriter.cli import main as rewrite_main
        from rewriter.cli.summary import placement_summary
        from rewriter.pipeline import RewriteOptions, rewrite_to_plan
        from rewriter.target import load_target

        target = load_target("hailo8").with_tiling(*((64, 512) if args.strict else (None, None)))
        _, doc, _ = rewrite_to_plan(args.output, args.plan, target, RewriteOptions())
        print(placement_summary(doc).split("Sent to host")[0])
        return rewrite_main(["check", str(args.plan), "--against", str(args.output), "--samples", "2"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
