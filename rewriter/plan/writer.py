"""Write a plan folder: segments/*.onnx and plan.json, deterministic and atomic, and validated by
the runtime's own loader before it is swapped in (a plan `rewrite` writes always loads)."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import onnx

from rewriter.plan.atomic import staged_dir, write_json_atomic
from rewriter.plan.counts import plan_counts
from rewriter.plan.steps import PlannedStep, segment_file
from runtime import schema
from runtime.errors import PlanError


class InvalidPlanWritten(RuntimeError):
    """The rewriter made a plan its runtime refuses: a bug (the CLI reports it as an internal error)."""


def write_segment_files(folder: Path, steps: list[PlannedStep]) -> dict[str, dict]:
    """Each distinct segment file once, serialized deterministically and checked by onnx's checker
    (the very bytes written: a model is serialized once). Returns their `files` records, hashed from
    the bytes written (the file's size on disk checked). A second thread writes a file while the next
    one is serialized, checked and hashed here (file writes and hashlib release the GIL; with the
    hashing on the writing thread too, that thread was the slower one and the writer waited for it:
    the ConvTasNet example's 101 files 68-88 -> 50-58 ms)."""
    pending: dict[str, tuple[Future, dict]] = {}
    made: set[Path] = set()  # folders made (one mkdir per folder, not per file)
    with ThreadPoolExecutor(max_workers=1) as pool:
        for step in steps:
            rel = segment_file(step)
            if step.model is not None and rel not in pending:
                data = step.model.SerializeToString(deterministic=True)
                onnx.checker.check_model(data, full_check=True)
                path = folder / rel
                if path.parent not in made:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    made.add(path.parent)
                pending[rel] = (pool.submit(_write, path, data), schema.bytes_entry(data))
        for written, _ in pending.values():
            written.result()
    return {rel: record for rel, (_, record) in pending.items()}


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    size = path.stat().st_size
    if size != len(data):  # a short write nothing reported
        raise InvalidPlanWritten(f"{path.name} holds {size} bytes, {len(data)} were written")


def write_plan_json(folder: Path, doc: dict, known: dict | None = None, validate: bool = True) -> None:
    """Hash the files the steps reference into doc["files"] (`known`: records of files just written
    from memory), refresh `counts`, validate the document with the runtime's schema (unless the
    caller validates the folder right after: `validate=False`), then replace plan.json atomically."""
    folder = Path(folder)
    schema.refresh_files(doc, folder, known)
    if validate:
        schema.parse_spec(doc, folder / "plan.json")
    doc["counts"] = plan_counts(doc)
    write_json_atomic(folder / "plan.json", doc)


def read_plan(folder: Path) -> dict:
    """OUT/plan.json as a dict, after the runtime's schema validation (paths confined, files listed,
    dataflow and declarations consistent): the way every tool reads a plan it is about to edit."""
    path = Path(folder) / "plan.json"
    if not path.is_file():
        raise PlanError(f"{path}: no plan.json here (run the rewriter first)")
    doc, path, _ = schema.read_plan_json(path)
    schema.parse_spec(doc, path)
    return doc


def signature(model: onnx.ModelProto) -> tuple[list, list]:
    """(name, shape) of a model's graph inputs and outputs, symbolic dims as their names (as
    onnxruntime reports them)."""
    inits = {t.name for t in model.graph.initializer}
    dims = lambda v: [
        d.dim_value if d.HasField("dim_value") else d.dim_param
        for d in v.type.tensor_type.shape.dim  # noqa: E731
    ]
    return (
        [(v.name, dims(v)) for v in model.graph.input if v.name not in inits],
        [(v.name, dims(v)) for v in model.graph.output],
    )


def validate_plan_folder(folder: Path, steps: list[PlannedStep] = (), written: dict | None = None) -> None:
    """What `Plan.load` checks, without running anything: schema, confinement, hashes, and that every
    step binds its model's inputs and outputs (runtime.validate); the signatures of the models in
    `steps` (just written from them) are taken from memory, and so are the hashes of the files
    write_segment_files wrote (`written`: their records, hashed from the bytes written)."""
    from runtime.validation import validate

    validate(folder, {segment_file(s): signature(s.model) for s in steps if s.model is not None}, written)


def write_plan(out_dir: Path, doc: dict, steps: list[PlannedStep], after=None) -> None:
    """Writes everything into a staging folder and swaps it in: never a half-written plan.
    `after(stage)` may add to the staged plan (calibration data) before the validation and swap."""
    with staged_dir(Path(out_dir)) as stage:
        (stage / "segments").mkdir()
        written = write_segment_files(stage, steps)
        try:
            write_plan_json(stage, doc, written, validate=False)  # validate_plan_folder below
            if after is not None:
                after(stage)
            # the records stand for the files unless `after` may have touched them since
            validate_plan_folder(stage, steps, written if after is None else None)
        except PlanError as exc:  # the user's input was accepted: a plan that does not load is our bug
            raise InvalidPlanWritten(
                f"the plan made for {Path(out_dir).name} does not pass the runtime's checks: "
                f"{str(exc).replace(str(stage), Path(out_dir).name)}"
            ) from exc
