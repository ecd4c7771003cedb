"""Parse and validate plan.json (format in docs/design.md) into plain dataclasses.

Everything that can be checked without running a model is checked here so that `Plan.load`
fails early with a message that names the step. Pure stdlib: no numpy, no onnxruntime.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import PlanError

FORMAT = "hailo-rewriter-plan"
VERSION = 1
STITCH_KINDS = ("slice", "concat", "sum")
KINDS = ("onnx",) + STITCH_KINDS
DEVICES = ("host", "hailo")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple  # ints; None / str / -1 mean "any" (design says static, but be lenient)
    dtype: str

    def shape_matches(self, shape) -> bool:
        if len(shape) != len(self.shape):
            return False
        return all(not isinstance(d, int) or d < 0 or d == s for d, s in zip(self.shape, shape))


@dataclass
class StepSpec:
    name: str
    kind: str
    device: str
    inputs: list[str]
    outputs: list[str]
    raw: dict  # the step's JSON object, for optional fields (axis, start, tile, ...)
    model_path: Path | None = None  # resolved against OUT
    hef_path: Path | None = None
    calib_path: Path | None = None

    @property
    def is_stitch(self) -> bool:
        return self.kind in STITCH_KINDS


@dataclass
class PlanSpec:
    root: Path
    path: Path
    target: str | None
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    steps: list[StepSpec]
    doc: dict = field(repr=False, default_factory=dict)

    @property
    def hailo_steps(self) -> list[StepSpec]:
        return [s for s in self.steps if s.kind == "onnx" and s.device == "hailo"]


def load_spec(out) -> PlanSpec:
    """Read OUT/plan.json (or the given .json path) and validate it."""
    out = Path(out)
    path = out if out.suffix == ".json" and out.is_file() else out / "plan.json"
    if not path.is_file():
        raise PlanError(f"{path}: plan.json not found")
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise PlanError(f"{path}: not valid JSON ({e})") from e
    return parse_spec(doc, path)


def parse_spec(doc, path: Path) -> PlanSpec:
    where = str(path)
    if not isinstance(doc, dict):
        raise PlanError(f"{where}: top level must be a JSON object")
    if doc.get("format") != FORMAT:
        raise PlanError(f"{where}: format is {doc.get('format')!r}, expected {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise PlanError(f"{where}: version {doc.get('version')!r} is not supported (this runtime reads version {VERSION})")
    root = path.parent
    inputs = [_tensor(t, f"{where}: inputs[{i}]") for i, t in enumerate(_list(doc, "inputs", where))]
    outputs = [_tensor(t, f"{where}: outputs[{i}]") for i, t in enumerate(_list(doc, "outputs", where))]
    raw_steps = _list(doc, "steps", where)
    if not raw_steps:
        raise PlanError(f"{where}: plan has no steps")
    steps = [_step(s, i, root, where) for i, s in enumerate(raw_steps)]
    _check_dataflow(inputs, outputs, steps, where)
    return PlanSpec(root=root, path=path, target=doc.get("target"), inputs=inputs, outputs=outputs,
                    steps=steps, doc=doc)


def _list(doc, key, where):
    value = doc.get(key)
    if not isinstance(value, list):
        raise PlanError(f"{where}: '{key}' must be a list")
    return value


def _tensor(t, where) -> TensorSpec:
    if not isinstance(t, dict) or not isinstance(t.get("name"), str):
        raise PlanError(f"{where}: needs a string 'name'")
    shape = t.get("shape")
    if not isinstance(shape, list):
        raise PlanError(f"{where} ({t['name']}): 'shape' must be a list")
    return TensorSpec(t["name"], tuple(shape), str(t.get("dtype", "float32")))


def _step(s, index, root: Path, where) -> StepSpec:
    if not isinstance(s, dict):
        raise PlanError(f"{where}: steps[{index}] must be an object")
    name = s.get("name") or f"steps[{index}]"
    at = f"{where}: step '{name}'"
    kind = s.get("kind", "onnx")
    if kind not in KINDS:
        raise PlanError(f"{at}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
    device = s.get("device", "host")
    if device not in DEVICES:
        raise PlanError(f"{at}: unknown device {device!r} (expected host or hailo)")
    ins, outs = s.get("inputs"), s.get("outputs")
    for key, val in (("inputs", ins), ("outputs", outs)):
        if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
            raise PlanError(f"{at}: '{key}' must be a list of tensor names")
    if not outs:
        raise PlanError(f"{at}: has no outputs")
    step = StepSpec(name=name, kind=kind, device=device, inputs=list(ins), outputs=list(outs), raw=s)
    if kind == "onnx":
        if not isinstance(s.get("model"), str):
            raise PlanError(f"{at}: onnx step needs 'model' (path relative to the plan directory)")
        step.model_path = root / s["model"]
        if not step.model_path.is_file():
            raise PlanError(f"{at}: model file {s['model']!r} not found (looked for {step.model_path})")
        if s.get("hef"):
            step.hef_path = root / s["hef"]  # existence is the backend's business: ORT runs without it
        if s.get("calib"):
            step.calib_path = root / s["calib"]
    else:
        if device != "host":
            raise PlanError(f"{at}: stitch step '{kind}' must run on the host")
        _check_stitch(step, at)
    return step


def _int(s, key, at, minimum=None):
    v = s.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or (minimum is not None and v < minimum):
        raise PlanError(f"{at}: '{key}' must be an integer" + (f" >= {minimum}" if minimum is not None else ""))
    return v


def _check_stitch(step: StepSpec, at):
    s = step.raw
    if len(step.outputs) != 1:
        raise PlanError(f"{at}: {step.kind} step must have exactly one output")
    if not step.inputs:
        raise PlanError(f"{at}: {step.kind} step has no inputs")
    if step.kind == "slice":
        if len(step.inputs) != 1:
            raise PlanError(f"{at}: slice step takes exactly one input")
        _int(s, "axis", at)
        start, end = _int(s, "start", at), _int(s, "end", at)
        if end <= start:
            raise PlanError(f"{at}: slice end ({end}) must be greater than start ({start})")
        pad = s.get("pad")
        if pad is not None and not (isinstance(pad, list) and len(pad) == 2
                                    and all(isinstance(p, int) and p >= 0 for p in pad)):
            raise PlanError(f"{at}: 'pad' must be [left, right] non-negative integers")
    elif step.kind == "concat":
        _int(s, "axis", at)


def _check_dataflow(inputs, outputs, steps, where):
    defined = {}
    for t in inputs:
        if t.name in defined:
            raise PlanError(f"{where}: plan input {t.name!r} listed twice")
        defined[t.name] = "plan input"
    names = set()
    for step in steps:
        if step.name in names:
            raise PlanError(f"{where}: step name {step.name!r} used twice")
        names.add(step.name)
        for t in step.inputs:
            if t not in defined:
                raise PlanError(f"{where}: step '{step.name}' consumes tensor {t!r}, which is neither a plan "
                                f"input nor produced by an earlier step")
        for t in step.outputs:
            if t in defined:
                raise PlanError(f"{where}: step '{step.name}' produces tensor {t!r}, already produced by {defined[t]}")
            defined[t] = f"step '{step.name}'"
    for t in outputs:
        if t.name not in defined:
            raise PlanError(f"{where}: plan output {t.name!r} is not produced by any step")


def last_uses(spec: PlanSpec) -> list[list[str]]:
    """For step i: tensors that can be dropped right after it (last consumer, or unused producer).

    Plan outputs are never dropped. Plan inputs nobody consumes are dropped by the caller.
    """
    keep = {t.name for t in spec.outputs}
    last: dict[str, int] = {}
    for i, step in enumerate(spec.steps):
        for t in step.outputs:
            last[t] = i  # an unconsumed output dies where it is born
        for t in step.inputs:
            last[t] = i
    free: list[list[str]] = [[] for _ in spec.steps]
    for t, i in last.items():
        if t not in keep:
            free[i].append(t)
    return free
