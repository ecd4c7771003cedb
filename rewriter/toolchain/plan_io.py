"""Plan access for the toolchain: read and validate plan.json with the runtime's schema, group its
hailo steps into distinct compile units, and update it atomically (hashes refreshed, re-validated)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rewriter.plan.writer import read_plan, write_plan_json
from runtime import schema
from runtime.errors import PlanError

PLAN_FILE = "plan.json"

__all__ = ["PlanError", "Segment", "load_plan", "write_plan", "hailo_segments", "update_model_steps"]


@dataclass
class Segment:
    """One distinct hailo model file and the plan steps that run it (tiles may share a model)."""

    name: str  # model file stem: names the .hef, .har, log and DFC network
    model: str  # path relative to the plan dir
    steps: list = field(default_factory=list)  # step names, plan order
    calibs: list = field(default_factory=list)  # distinct calib paths of those steps, plan order


def load_plan(out_dir) -> dict:
    """plan.json as a dict, after the runtime's validation (paths confined, files listed...), and
    the files a Hailo step compiles from (segment model, calibration) checked against their sha256 in
    `files`: the DFC must compile what the rewriter wrote, not a file swapped in since."""
    out_dir = Path(out_dir)
    plan = read_plan(out_dir)
    spec = schema.parse_spec(plan, out_dir / PLAN_FILE)
    for step in spec.hailo_steps:
        for path in (step.model_path, step.calib_path):  # a HEF that fails its hash is compiled again
            if path is not None and path.is_file():
                spec.verify_file(path)
    return plan


def write_plan(out_dir, plan: dict) -> None:
    write_plan_json(Path(out_dir), plan)


def is_hailo_step(step: dict) -> bool:
    return step.get("device") == "hailo" and step.get("kind", "onnx") == "onnx"


def hailo_segments(plan: dict, only_steps=None) -> list[Segment]:
    """Distinct hailo models in first-use order; `only_steps` restricts to those step names."""
    by_model: dict[str, Segment] = {}
    for step in plan.get("steps", []):
        if not is_hailo_step(step) or (only_steps is not None and step.get("name") not in only_steps):
            continue
        model = step["model"]
        seg = by_model.get(model)
        if seg is None:
            seg = by_model[model] = Segment(name=Path(model).stem, model=model)
        seg.steps.append(step["name"])
        calib = step.get("calib")
        if calib and calib not in seg.calibs:
            seg.calibs.append(calib)
    names = [s.name for s in by_model.values()]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise PlanError(f"hailo models with the same file stem {sorted(dupes)}: their .hef files would collide")
    return list(by_model.values())


def update_model_steps(out_dir, model: str, fields: dict, drop=()) -> int:
    """Set `fields` (and remove `drop`) on every step that uses `model`; returns how many.
    Re-reads plan.json first because a re-tiling hook may have rewritten it meanwhile."""
    plan = load_plan(out_dir)
    count = 0
    for step in plan.get("steps", []):
        if step.get("model") == model and is_hailo_step(step):
            for key in drop:
                step.pop(key, None)
            step.update(fields)
            count += 1
    write_plan(out_dir, plan)
    return count
