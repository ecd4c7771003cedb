"""`rewrite check`: run a plan and its original model on the same inputs and compare outputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from rewriter.errors import UserError
from rewriter.cli.summary import table
from runtime.parity import normalized, random_inputs

FLOAT_MIN_COSINE = 0.99999
QUANTIZED_MIN_COSINE = 0.95  # the deployment contract's INT8 gate


def reference_session(model_path: Path) -> ort.InferenceSession:
    if not model_path.is_file():
        raise UserError(f"no such model file: {model_path}")
    try:
        return ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise UserError(f"onnxruntime cannot load {model_path}: {str(exc).splitlines()[0]}") from exc


def _interface_mismatch(kind: str, plan_specs: list, model_args: list) -> str | None:
    plan = {t.name: t for t in plan_specs}
    model = {a.name: a for a in model_args}
    if set(plan) != set(model):
        return f"its {kind} are {sorted(model)[:8]}, the plan's are {sorted(plan)[:8]}"
    for name, arg in model.items():
        dims = list(arg.shape or [])
        want = plan[name].shape
        if len(dims) != len(want) or any(isinstance(d, int) and d != w for d, w in zip(dims, want)):
            return f"its {kind[:-1]} {name!r} has shape {dims}, the plan's has {list(want)}"
    return None


def check_same_interface(plan, session, model_path: Path) -> None:
    """The reference model must have the plan's inputs and outputs (names and shapes), else the
    comparison means nothing: one clear error instead of onnxruntime's complaint mid-run."""
    for kind, specs, args in (("inputs", plan.inputs, session.get_inputs()),
                              ("outputs", plan.outputs, session.get_outputs())):
        problem = _interface_mismatch(kind, specs, args)
        if problem:
            raise UserError(f"--against {model_path} does not match the plan: {problem} "
                            "(is it the model the plan was made from?)")


def check_plan(args) -> int:
    from runtime.cli_support import load_inputs
    from runtime.parity import compare
    from rewriter.cli.commands import _load_plan
    plan = _load_plan(args.plan, args.backend)
    session = reference_session(args.against)
    check_same_interface(plan, session, args.against)
    quantized = args.backend != "onnxruntime"
    min_cosine = args.min_cosine if args.min_cosine is not None else (
        QUANTIZED_MIN_COSINE if quantized else FLOAT_MIN_COSINE)
    if args.samples < 1:
        raise UserError("--samples must be at least 1")
    rng = np.random.default_rng(args.seed)
    if args.input:
        try:
            batches = [load_inputs(args.input, plan)]
        except ValueError as exc:
            raise UserError(str(exc)) from exc
    else:
        batches = [random_inputs(plan.inputs, rng) for _ in range(args.samples)]
    normalization = plan.spec.doc.get("normalization")
    worst: dict[str, dict] = {}
    names = [o.name for o in session.get_outputs()]
    # quantized backends: also compare every Hailo step's outputs with the float plan's
    float_plan = _load_plan(args.plan, "onnxruntime") if quantized else None
    per_step = {t: s.name for s in plan.steps if s.device == "hailo" for t in s.outputs} if quantized else {}
    step_worst: dict[str, dict] = {}
    for feeds in batches:
        got = plan.run(feeds, keep=list(per_step))
        want = dict(zip(names, session.run(names, normalized(feeds, normalization))))
        _accumulate(worst, compare({n: got[n] for n in names}, want))
        if float_plan is not None:
            ref = float_plan.run(feeds, keep=list(per_step))
            _accumulate(step_worst, compare({t: got[t] for t in per_step}, {t: ref[t] for t in per_step}))
    ok = True
    rows = []
    for name, row in worst.items():
        passed = row["cosine"] >= min_cosine and (quantized or row["max_rel"] <= args.max_rel_error)
        ok &= passed
        rows.append([name, f"{row['cosine']:.7f}", f"{row['max_abs']:.3g}", f"{row['max_rel']:.3g}",
                     "ok" if passed else "FAIL"])
        row["passed"] = passed
    if args.json:
        print(json.dumps({"backend": plan.backend_name, "samples": len(batches), "min_cosine": min_cosine,
                          "outputs": list(worst.values()), "passed": ok,
                          "segments": [{"step": per_step[t], **r} for t, r in step_worst.items()]}, indent=2))
    else:
        print(f"parity of {args.plan} against {args.against} on {len(batches)} input set(s), "
              f"backend {plan.backend_name}; gate cosine >= {min_cosine}"
              + ("" if quantized else f", max rel error <= {args.max_rel_error}"))
        print(table(["output", "cosine", "max abs err", "max rel err", ""], rows))
        if step_worst:
            print(f"per Hailo segment, {plan.backend_name} against float:")
            print(table(["step", "tensor", "cosine", "max abs err"],
                        [[per_step[t], t, f"{r['cosine']:.7f}", f"{r['max_abs']:.3g}"]
                         for t, r in step_worst.items()]))
    return 0 if ok else 1


def _accumulate(worst: dict, rows) -> None:
    """Keep, per output, the worst cosine and errors seen over all input sets."""
    for row in rows:
        acc = worst.setdefault(row.output, row._asdict())
        acc["cosine"] = min(acc["cosine"], row.cosine)
        acc["max_abs"] = max(acc["max_abs"], row.max_abs)
        acc["max_rel"] = max(acc["max_rel"], row.max_rel)
