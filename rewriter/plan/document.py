"""The plan document (plan.json as a dict, format in runtime/schema.py): I/O specs, the `tensors`
table every step output is declared in, the `files` manifest, and the steps."""

from __future__ import annotations

from pathlib import Path

import onnx

from rewriter.ir.dtypes import dtype_name
from rewriter.plan.counts import plan_counts
from rewriter.plan.steps import PlannedStep, step_entry
from runtime import schema


def value_spec(value: onnx.ValueInfoProto) -> dict:
    ttype = value.type.tensor_type
    return {
        "name": value.name,
        "shape": [d.dim_value for d in ttype.shape.dim],
        "dtype": dtype_name(onnx.helper.tensor_dtype_to_np_dtype(ttype.elem_type)),
    }


def _with_values(model: onnx.ModelProto, values: dict) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.graph.input.extend(values.get(v.name, v) for v in model.graph.input)
    copy.graph.output.extend(values.get(v.name, v) for v in model.graph.output)
    copy.graph.initializer.extend(onnx.TensorProto(name=t.name) for t in model.graph.initializer)
    return copy


def declare_tensors(inputs: list[dict], entries: list[dict], model_of, strict: bool = True) -> dict:
    """`tensors` for plan.json: the shape and dtype of every tensor a step produces. Onnx steps bind
    their outputs positionally to `model_of(entry)`'s graph outputs; stitch steps follow the same
    shape rule the runtime validates with (schema.stitch_output_shape). strict=False skips steps
    that cannot be declared (a hand-built plan meant to be invalid)."""
    known = {t["name"]: {"shape": list(t["shape"]), "dtype": t["dtype"]} for t in inputs}
    table = {}
    for entry in entries:
        if not strict:
            try:
                table.update(declare_tensors(list_specs(known), [entry], model_of))
                known.update(table)
            except Exception:  # noqa: BLE001 - lenient mode: leave it undeclared
                pass
            continue
        if entry.get("kind", "onnx") == "onnx" and "tiles" in entry:
            batch = known[entry["inputs"][0]]["shape"][0]
            for name, spec in tiled_outputs(entry, model_of(entry), batch).items():
                table[name] = known[name] = spec
        elif entry.get("kind", "onnx") == "onnx":
            graph_outputs = model_of(entry).graph.output
            specs = [value_spec(v) for v in graph_outputs]
            for name, spec in zip(entry["outputs"], specs):
                table[name] = known[name] = {"shape": spec["shape"], "dtype": spec["dtype"]}
        else:
            ins = [known[t] for t in entry["inputs"]]
            step = schema.StepSpec(entry["name"], entry["kind"], "host", entry["inputs"], entry["outputs"], entry)
            shape = schema.stitch_output_shape(step, [tuple(t["shape"]) for t in ins], entry["name"])
            table[entry["outputs"][0]] = known[entry["outputs"][0]] = {"shape": list(shape), "dtype": ins[0]["dtype"]}
    return table


def tiled_outputs(entry: dict, model: onnx.ModelProto, batch: int) -> dict[str, dict]:
    """The whole tensors a tiled step writes: [batch of its inputs, channels covered, H, length]."""
    out: dict[str, dict] = {}
    for b, v in zip(entry["tiles"]["outputs"], model.graph.output):
        spec = value_spec(v)
        got = out.setdefault(b["tensor"], {"shape": [batch, 0, spec["shape"][2], b["length"]], "dtype": spec["dtype"]})
        got["shape"][1] = max(got["shape"][1], b["channels"][1])
    return {name: out[name] for name in entry["outputs"]}


def list_specs(known: dict) -> list[dict]:
    return [{"name": name, **spec} for name, spec in known.items()]


def plan_document(
    target_name: str,
    source: Path,
    original: onnx.ModelProto,
    steps: list[PlannedStep],
    extra: dict | None = None,
    pinned: onnx.ModelProto | None = None,
    source_entry: dict | None = None,
) -> dict:
    """`original` gives the I/O names and order; `pinned` (the normalized model, same names) the
    static shapes, since the original may have dynamic dims. `source_entry`: the source file's
    {"sha256", "bytes"} when the caller has hashed it already. `files` is filled in when the plan
    is written (rewriter/plan/writer.py)."""
    inits = {t.name for t in original.graph.initializer}
    if pinned is not None:
        static = {v.name: v for v in list(pinned.graph.input) + list(pinned.graph.output)}
        inits |= {v.name for v in original.graph.input} - static.keys()  # frozen: constants now
        original = _with_values(original, static)
    inputs = [value_spec(v) for v in original.graph.input if v.name not in inits]
    doc = {
        "format": schema.FORMAT,
        "version": schema.VERSION,
        "target": target_name,
        "source": {"model": source.name, **(source_entry or schema.file_entry(source))},
        "inputs": inputs,
        "outputs": [value_spec(v) for v in original.graph.output],
    }
    doc.update(extra or {})
    entries = [step_entry(step) for step in steps]
    models = {id(e): s.model for e, s in zip(entries, steps)}
    doc["tensors"] = declare_tensors(inputs, entries, lambda e: models[id(e)])
    doc["files"] = {}
    doc["steps"] = entries
    doc["counts"] = plan_counts(doc)
    return doc


def finalize(doc: dict, root: Path, strict: bool = True) -> dict:
    """Complete a hand-built plan document in place: `tensors` from the segment files on disk under
    `root` and the stitch rules, `files` from their hashes. For plans built outside the pipeline."""
    root = Path(root)
    cache: dict[str, onnx.ModelProto] = {}

    def model_of(entry):
        rel = entry["model"]
        if rel not in cache:
            cache[rel] = onnx.load(str(root / rel), load_external_data=False)
        return cache[rel]

    doc["tensors"] = declare_tensors(doc["inputs"], doc["steps"], model_of, strict)
    schema.refresh_files(doc, root)
    return doc
