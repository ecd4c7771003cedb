"""From a PyTorch checkpoint to a serving sidecar: the seed's TCN-VAE encoder with a 12-way motif head.

    python examples/tcn_vae_motifs.py [--out examples/out] [--serve] [--port 9000]

1. builds the encoder (the TCN of examples/tcn_encoder.py, a VAE latent of 64 as mu / logvar, and a
   12-way sigmoid motif head on mu), saves a checkpoint (state_dict + its config) and reloads it
   into a fresh model, as a model owner would;
2. exports a fixed-shape opset-11 ONNX with two outputs, `latent` [1, 64] (mu: no sampling at
   inference) and `motif_scores` [1, 12], and gates PyTorch vs ONNX cosine against the contract
   (0.99 by default; --contract FILE.toml);
3. rewrites it for hailo8 (`rewrite MODEL.onnx --target hailo8`), checks the plan against the
   ONNX (`rewrite check`) and benchmarks it against the deployment contract (`rewrite bench`);
4. with --serve, serves it (`rewrite serve`): POST /infer {"x": [[9 floats] x 100]} answers
   {"latent": [64 floats], "motif_scores": [12 floats]}. It writes OUT/window.json, a request body
   for curl.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # run from a checkout without installing

from tcn_encoder import TemporalBlock  # noqa: E402

from rewriter.cli import main as rewrite  # noqa: E402
from runtime.bench.contract import load_contract  # noqa: E402
from runtime.parity import cosine  # noqa: E402

NAME = "tcn_vae_motifs"
WINDOW = (1, 100, 9)  # [N, T, C] channels-last IMU window, as the sensor delivers it


class TcnVaeMotifs(nn.Module):
    def __init__(self, channels=(9, 64, 128, 256), latent: int = 64, motifs: int = 12):
        super().__init__()
        self.config = {"channels": list(channels), "latent": latent, "motifs": motifs}
        self.network = nn.Sequential(
            *[TemporalBlock(channels[i], channels[i + 1], 2**i) for i in range(len(channels) - 1)]
        )
        self.fc_mu = nn.Linear(channels[-1], latent)
        self.fc_logvar = nn.Linear(channels[-1], latent)
        self.motif_head = nn.Linear(latent, motifs)

    def encode(self, imu_window):
        """(mu, logvar): what training samples the latent from."""
        h = self.network(imu_window.transpose(1, 2)).mean(dim=2)
        return self.fc_mu(h), self.fc_logvar(h)

    def forward(self, imu_window):
        """The deployed graph: latent = mu, and the motif scores in [0, 1]."""
        mu, _ = self.encode(imu_window)
        return mu, torch.sigmoid(self.motif_head(mu))


def save_checkpoint(model: TcnVaeMotifs, path: Path) -> Path:
    torch.save({"config": model.config, "state_dict": model.state_dict()}, path)
    return path


def load_checkpoint(path: Path) -> TcnVaeMotifs:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    cfg = ckpt["config"]
    model = TcnVaeMotifs(tuple(cfg["channels"]), cfg["latent"], cfg["motifs"])
    model.load_state_dict(ckpt["state_dict"])  # strict: every tensor must match
    return model.eval()


def export(model: TcnVaeMotifs, path: Path) -> Path:
    torch.onnx.export(
        model,
        (torch.zeros(WINDOW),),
        str(path),
        input_names=["imu_window"],
        output_names=["latent", "motif_scores"],
        opset_version=11,
        dynamo=False,
    )
    return path


def parity_gate(model: TcnVaeMotifs, onnx_path: Path, min_cosine: float, samples: int = 8) -> float:
    """Worst PyTorch vs ONNX cosine over random windows and outputs; raises below the gate."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    worst = 1.0
    for _ in range(samples):
        x = rng.standard_normal(WINDOW).astype(np.float32)
        with torch.no_grad():
            want = [t.numpy() for t in model(torch.from_numpy(x))]
        got = session.run(["latent", "motif_scores"], {"imu_window": x})
        worst = min([worst] + [cosine(g, w) for g, w in zip(got, want)])
    if worst <= min_cosine:
        raise SystemExit(f"ONNX vs PyTorch cosine {worst:.6f} is not above the gate {min_cosine}")
    return worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--contract", type=Path, help="contract TOML (default: the seed deployment contract)")
    parser.add_argument("--requests", type=int, default=1000, help="windows per bench phase")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--serve", action="store_true", help="serve the plan at the end (Ctrl+C stops)")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    contract = load_contract(args.contract)

    torch.manual_seed(args.seed)
    ckpt = save_checkpoint(TcnVaeMotifs().eval(), args.out / f"{NAME}.pt")
    model = load_checkpoint(ckpt)
    print(f"checkpoint {ckpt} reloaded")
    onnx_path = export(model, args.out / f"{NAME}.onnx")
    worst = parity_gate(model, onnx_path, contract.onnx_vs_pytorch)
    print(f"exported {onnx_path}: ONNX vs PyTorch cosine {worst:.7f} (gate > {contract.onnx_vs_pytorch})")

    plan = args.out / f"{NAME}.plan"
    x = np.random.default_rng(args.seed).standard_normal(WINDOW[1:]).round(5)
    (args.out / "window.json").write_text(json.dumps({"x": x.tolist()}))
    bench = ["bench", str(plan), "--against", str(onnx_path), "--requests", str(args.requests)]
    if args.contract:
        bench += ["--contract", str(args.contract)]
    steps = [
        [str(onnx_path), "--target", "hailo8", "-o", str(plan)],
        ["check", str(plan), "--against", str(onnx_path), "--samples", "5"],
        bench,
    ]
    if args.serve:
        steps.append(["serve", str(plan), "--port", str(args.port)])
    for argv_ in steps:
        print(f"\n$ rewrite {' '.join(argv_)}", flush=True)
        if argv_[0] in ("bench", "serve"):  # own process: its peak RSS is the plan's, not this script's torch
            path = os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))
            code = subprocess.run(
                [sys.executable, "-m", "rewriter.cli", *argv_], env={**os.environ, "PYTHONPATH": path}
            ).returncode
        else:
            code = rewrite(argv_)
        if code:
            return code
    if not args.serve:
        print(
            f"\nserve it:  rewrite serve {plan} --port {args.port}\n"
            f"call it:   curl -s -d @{args.out / 'window.json'} http://127.0.0.1:{args.port}/infer"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
