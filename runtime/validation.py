"""Plan validation without running anything: what `Plan.load` checks, usable by the writer too
(`rewrite` validates every plan it writes with this very code). Needs onnxruntime only to read the
signature of a model the caller does not already know, so a writer that knows them all never loads it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .errors import PlanError
from .schema import PlanSpec, StepSpec, load_spec
from .tiles import check_tiled_binding


def check_binding(
    step: StepSpec, input_names: list, output_names: list, output_shapes=None, tensors: dict | None = None
) -> None:
    """A step binds its tensors positionally to its model's graph inputs/outputs: the counts must
    agree (and, where the model's output shapes are static, they must be the declared ones)."""
    for what, bound, graph in (("inputs", step.inputs, input_names), ("outputs", step.outputs, output_names)):
        if len(bound) != len(graph):
            raise PlanError(
                f"step '{step.name}': binds {len(bound)} {what} {bound} but "
                f"{step.raw['model']} has {len(graph)} graph {what} {graph}"
            )
    for name, shape in zip(step.outputs, output_shapes or ()):
        want = tensors[name].shape
        if all(isinstance(d, int) for d in shape) and tuple(shape) != want:
            raise PlanError(
                f"step '{step.name}': {step.raw['model']} makes {list(shape)} for {name!r}, "
                f"plan.json declares {list(want)}"
            )


def validate(out, known: dict | None = None, written: dict | None = None) -> PlanSpec:
    """Everything `Plan.load` checks before running, without keeping sessions: the schema (paths
    confined, files hashed, dataflow, stitch shapes) and every onnx step's binding to its model.
    `known` {model path relative to the plan: (inputs, outputs) as [(name, shape)]}: signatures the
    caller already has (the writer, of the models it just wrote); every other model is read.
    `written` {path relative to the plan: {"sha256", "bytes"}}: records of files the caller has just
    written, hashed from the bytes it wrote (PlanSpec.verify_file); the others are read and hashed."""
    spec = load_spec(out)
    known, written = known or {}, written or {}
    paths = [spec.resolve(spec.root / rel) for rel in known]
    # the bytes on disk are those plan.json lists: a file just written is a stat and a comparison
    # (here: handing 100 of those to a thread cost more GIL hand-offs than the checks), the others
    # are read and hashed by two threads (reads and hashlib release the GIL)
    reads = []
    for path, rel in zip(paths, known):
        if rel in written:
            spec.verify_file(path, written[rel])
        else:
            reads.append(path)
    if reads:
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(spec.verify_file, reads))
    signatures = dict(zip(paths, known.values()))
    for step in spec.steps:
        if step.kind != "onnx":
            continue
        key = step.model_path
        if key not in signatures:
            from .backends.ort_backend import read_signature  # onnxruntime, only for unknown models

            signatures[key] = read_signature(key, spec.read_file)
        ins, outs = signatures[key]
        if step.tiles is not None:
            check_tiled_binding(step, ins, outs, spec.tensors)
        else:
            check_binding(step, [n for n, _ in ins], [n for n, _ in outs], [s for _, s in outs], spec.tensors)
    return spec
