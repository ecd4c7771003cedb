"""plan.json step records for hand-built test plans (tests/runtime, tests/toolchain)."""

from __future__ import annotations


def onnx_step(name: str, inputs, outputs, device: str = "hailo", model: str | None = None, **extra) -> dict:
    """An onnx step running segments/<model, default name>.onnx; `extra` adds fields (calib, hef)."""
    return {
        "name": name,
        "device": device,
        "kind": "onnx",
        "model": f"segments/{model or name}.onnx",
        "inputs": list(inputs),
        "outputs": list(outputs),
        **extra,
    }
