"""What a plan costs per inference, from plan.json alone (its `counts` object): distinct HEFs (= DFC
compiles), device calls, host ONNX steps, host stitch operations (tile gathers and scatters, stitch
steps) and the bytes moved between host and device (every device call's inputs and outputs as
float32 host buffers, halos and masks included; over PCIe HailoRT sends them quantized)."""

from __future__ import annotations

import math

import numpy as np


def plan_counts(doc: dict) -> dict:
    tensors = {t["name"]: t for t in doc.get("inputs", [])}
    tensors.update(doc.get("tensors", {}))
    steps = doc.get("steps", [])
    device = [s for s in steps if s.get("device") == "hailo" and s.get("kind", "onnx") == "onnx"]
    moved = gathers = scatters = 0
    for s in device:
        t = s.get("tiles")
        if t is None:
            moved += sum(_bytes(tensors[x]["shape"], tensors[x]["dtype"]) for x in s["inputs"] + s["outputs"])
            continue
        n = t["count"] * tensors[s["inputs"][0]]["shape"][0]  # frames: tiles x batch
        for b in t["inputs"]:
            if "mask" in b:
                moved += n * _bytes([b["mask"]["height"], b["mask"]["width"]], "float32")
                continue
            spec = tensors[b["tensor"]]
            moved += n * _bytes([b["channels"][1] - b["channels"][0], spec["shape"][2], b["width"]], spec["dtype"])
            gathers += 1
        for b in t["outputs"]:
            spec = tensors[b["tensor"]]
            moved += n * _bytes([b["channels"][1] - b["channels"][0], spec["shape"][2], b["width"]], spec["dtype"])
            scatters += 1
    stitch_steps = sum(s.get("kind", "onnx") != "onnx" for s in steps)
    host = sum(s.get("device") == "host" and s.get("kind", "onnx") == "onnx" for s in steps)
    return {
        "distinct_hefs": len({s["model"] for s in device}),
        "device_calls": len(device),
        "host_steps": host,
        "host_stitch_ops": gathers + scatters + stitch_steps,
        "device_bytes": moved,
    }


def _bytes(shape, dtype: str) -> int:
    return math.prod(shape) * np.dtype(dtype).itemsize


def format_counts(counts: dict) -> str:
    mib = counts["device_bytes"] / (1 << 20)
    return (
        f"Per inference: {counts['device_calls']} device calls, {counts['distinct_hefs']} distinct HEFs "
        f"(DFC compiles), {counts['host_steps']} host steps, {counts['host_stitch_ops']} host stitch "
        f"operations, {mib:.1f} MiB moved between host and device"
    )
