"""The deployment contract: defaults from ../shared/HAILO.md ("The seed deployment contract"),
overridden key by key from a TOML file (examples/contract.toml documents every key)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import OptionError

QUANTIZED_BACKENDS = ("hailo", "emulate-int8")


@dataclass(frozen=True)
class Contract:
    p95_ms: float = 50.0  # [latency] single-stream p95 per window, end to end
    windows_per_s: float = 20.0  # [throughput] sustained, under concurrent clients
    rss_mb: float = 512.0  # [memory] peak resident memory (bench process / server)
    onnx_vs_pytorch: float = 0.99  # [parity] needs PyTorch: applied by examples/tcn_vae_motifs.py
    hailo_vs_onnx: float = 0.95  # [parity] quantized plan (hailo / emulate-int8) vs --against
    plan_vs_onnx: float = 0.99999  # [parity] float plan (onnxruntime) vs --against: the rewrite is exact
    p95_ratio_vs_onnx: float = 1.2  # [runtime] plan p95 / bare 1-thread onnxruntime p95 on --against

    def cosine_gate(self, backend: str) -> tuple[str, float]:
        return (
            ("hailo_vs_onnx", self.hailo_vs_onnx)
            if backend in QUANTIZED_BACKENDS
            else ("plan_vs_onnx", self.plan_vs_onnx)
        )


SECTIONS = {
    "latency": ("p95_ms",),
    "throughput": ("windows_per_s",),
    "memory": ("rss_mb",),
    "parity": ("onnx_vs_pytorch", "hailo_vs_onnx", "plan_vs_onnx"),
    "runtime": ("p95_ratio_vs_onnx",),
}


def load_contract(path: Path | None) -> Contract:
    """Contract() updated with the file's keys; unknown sections or keys are errors (typos would
    otherwise silently keep a default). A value of 0 switches that gate off."""
    if path is None:
        return Contract()
    try:
        doc = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise OptionError(f"--contract: no such file {path}") from None
    except (OSError, ValueError) as e:
        raise OptionError(f"--contract: cannot read {path}: {e}") from e
    values = {}
    for section, table in doc.items():
        if section not in SECTIONS or not isinstance(table, dict):
            raise OptionError(f"--contract {path}: unknown section [{section}] (expected {', '.join(SECTIONS)})")
        for key, value in table.items():
            if key not in SECTIONS[section]:
                raise OptionError(
                    f"--contract {path}: unknown key {key!r} in [{section}] (expected {', '.join(SECTIONS[section])})"
                )
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise OptionError(f"--contract {path}: [{section}] {key} must be a number >= 0, got {value!r}")
            values[key] = float(value)
    return Contract(**values)


@dataclass(frozen=True)
class Gate:
    name: str
    value: float
    op: str  # "<", "<=", ">="
    limit: float
    unit: str = ""

    @property
    def passed(self) -> bool:
        return {"<": self.value < self.limit, "<=": self.value <= self.limit, ">=": self.value >= self.limit}[self.op]


def gates(contract: Contract, result: dict) -> list[Gate]:
    """The gates that apply to a bench result (a gate whose limit is 0, or whose figure was not
    measured, is left out)."""
    headline = [
        ("p95 latency", "p95_ms", "<", contract.p95_ms, "ms"),
        ("throughput", "windows_per_s", ">=", contract.windows_per_s, "windows/s"),
        ("peak RSS", "rss_mb", "<", contract.rss_mb, "MB"),
    ]  # rss_mb is None if a --url server hides it
    out = [
        Gate(name, result[key], op, limit, unit)
        for name, key, op, limit, unit in headline
        if result.get(key) is not None
    ]
    if result.get("cosine"):
        key, limit = contract.cosine_gate(result["backend"])
        out.append(Gate(f"cosine vs ONNX ({key})", min(result["cosine"].values()), ">=", limit))
    ratio = (result.get("overhead") or {}).get("p95_ratio")
    if ratio is not None:
        out.append(Gate("p95 / bare onnxruntime p95", ratio, "<=", contract.p95_ratio_vs_onnx, "x"))
    out = [g for g in out if g.limit != 0]  # 0 in the contract file: not gated
    if result.get("failed_requests") is not None:  # not a contract figure: any failed request fails the bench
        out.append(Gate("failed requests", result["failed_requests"], "<=", 0))
    return out
