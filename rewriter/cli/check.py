"""`rewrite check`: run a plan and its original model on the same inputs and compare outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from rewriter.cli.gate import Gate
from rewriter.cli.summary import table
from rewriter.errors import UserError
from rewriter.ir.opfacts import RANDOM_OPS
from rewriter.ir.scope import proto_subgraphs
from runtime.parity import normalized, random_inputs

FLOAT_MIN_COSINE = 0.99999
QUANTIZED_MIN_COSINE = 0.95  # the deployment contract's INT8 gate


def with_frozen(feeds: dict, frozen: list | None) -> dict:
    """Inputs the plan was built with `--freeze` are constants in the plan; the original takes them."""
    extra = {f["name"]: np.asarray(f["value"], f["dtype"]).reshape(f["shape"]) for f in frozen or []}
    return {**feeds, **extra}


def reference_session(model_path: Path, optimized: bool = True) -> ort.InferenceSession:
    if not model_path.is_file():
        raise UserError(f"no such model file: {model_path}")
    options = ort.SessionOptions()
    if not optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise UserError(f"onnxruntime cannot load {model_path}: {str(exc).splitlines()[0]}") from exc


def narrow_float_reference(model: onnx.ModelProto, model_path: Path) -> ort.InferenceSession | None:
    """The original computed in float32 behind its own inputs and outputs (rewriter/ir/widen.py),
    when it computes anything in float16/bfloat16: how far it is from its own exact arithmetic is
    part of its noise (a rewrite for a float32 target computes those parts in float32). None when
    it has no narrow floats, or cannot be widened or run so. `model`: read without external data."""
    from rewriter.ir.widen import NARROW_FLOATS, float_types_in, widened

    narrow = float_types_in(model, NARROW_FLOATS, nodes=True)
    if not narrow:
        return None
    try:
        full = onnx.load(str(model_path))  # with its external data: the weights are widened
        wide = widened(full, frozenset(narrow), onnx.TensorProto.FLOAT, keep_interface=True)
        return ort.InferenceSession(wide.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - NotWidened, onnxruntime's refusal: the original's noise alone
        return None


def random_ops(model: onnx.ModelProto) -> list[str]:
    """The random ops of a model (in its bodies too): every run of it draws anew."""
    found = []
    for g in _graphs(model.graph):
        found += [n.op_type for n in g.node if n.op_type in RANDOM_OPS]
    return sorted(set(found))


def _graphs(g: onnx.GraphProto):
    yield g
    for node in g.node:
        for body in proto_subgraphs(node):
            yield from _graphs(body)


def _ulp(value: np.ndarray, scale: float) -> float:
    """One unit in the last place of `value`'s float type at magnitude `scale`."""
    return float(np.spacing(np.asarray(scale, value.dtype)))


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


def check_same_interface(plan, session, model_path: Path, frozen: set[str] = frozenset()) -> None:
    """The reference model must have the plan's inputs and outputs (names and shapes), else the
    comparison means nothing: one clear error instead of onnxruntime's complaint mid-run. Inputs
    the plan was built with `--freeze` are constants in the plan, inputs of the reference only."""
    model_inputs = [a for a in session.get_inputs() if a.name not in frozen]
    for kind, specs, args in (("inputs", plan.inputs, model_inputs), ("outputs", plan.outputs, session.get_outputs())):
        problem = _interface_mismatch(kind, specs, args)
        if problem:
            raise UserError(
                f"--against {model_path} does not match the plan: {problem} (is it the model the plan was made from?)"
            )


def check_plan(args) -> int:
    from rewriter.cli.commands import _load_plan
    from runtime.cli_support import load_inputs
    from runtime.parity import compare

    plan = _load_plan(args.plan, args.backend)
    session = reference_session(args.against)
    doc = plan.spec.doc
    normalization, frozen = doc.get("normalization"), doc.get("frozen")
    check_same_interface(plan, session, args.against, {f["name"] for f in frozen or []})
    unoptimized = reference_session(args.against, optimized=False)  # the reference's own noise
    model = onnx.load(str(args.against), load_external_data=False)
    widened = narrow_float_reference(model, args.against)  # and a float16 original's own rounding
    randoms = random_ops(model)  # and the draws of a random original: it differs from itself run to run
    quantized = args.backend != "onnxruntime"
    min_cosine = (
        args.min_cosine if args.min_cosine is not None else (QUANTIZED_MIN_COSINE if quantized else FLOAT_MIN_COSINE)
    )
    if args.samples < 1:
        raise UserError("--samples must be at least 1")
    if args.atol < 0:
        raise UserError("--atol must not be negative")
    gate = Gate(min_cosine, None if quantized else args.max_rel_error, args.atol)
    rng = np.random.default_rng(args.seed)
    if args.input:
        try:
            batches = [load_inputs(args.input, plan)]
        except ValueError as exc:
            raise UserError(str(exc)) from exc
    else:
        batches = [random_inputs(plan.inputs, rng) for _ in range(args.samples)]
    worst: dict[str, dict] = {}
    noise: dict[str, float] = {}
    quantum: dict[str, float] = {}  # float16 outputs: one ulp at the output's scale
    names = [o.name for o in session.get_outputs()]
    # quantized backends: also compare every Hailo step's outputs with the float plan's
    float_plan = _load_plan(args.plan, "onnxruntime") if quantized else None
    per_step = {t: s.name for s in plan.steps if s.device == "hailo" for t in s.outputs} if quantized else {}
    step_worst: dict[str, dict] = {}
    for feeds in batches:
        got = plan.run(feeds, keep=list(per_step))
        reference_feeds = with_frozen(normalized(feeds, normalization), frozen)
        want = dict(zip(names, session.run(names, reference_feeds)))
        plain = dict(zip(names, unoptimized.run(names, reference_feeds)))
        rows = compare(plain, want)
        if widened is not None:
            rows += compare(dict(zip(names, widened.run(names, reference_feeds))), want)
        if randoms:
            rows += compare(dict(zip(names, session.run(names, reference_feeds))), want)
        for n in (n for n in names if want[n].dtype == np.float16 and want[n].size):
            scale = float(np.max(np.abs(want[n].astype(np.float32))))
            quantum[n] = max(quantum.get(n, 0.0), _ulp(want[n], scale))
        for row in rows:
            noise[row.output] = max(noise.get(row.output, 0.0), row.max_abs)
        _accumulate(worst, compare({n: got[n] for n in names}, want))
        if float_plan is not None:
            ref = float_plan.run(feeds, keep=list(per_step))
            _accumulate(step_worst, compare({t: got[t] for t in per_step}, {t: ref[t] for t in per_step}))
    ok = True
    rows = []
    for name, row in worst.items():
        passed, criterion = gate.judge(row, noise[name], quantum.get(name, 0.0))
        ok &= passed
        rows.append(
            [
                name,
                f"{row['cosine']:.7f}",
                f"{row['max_abs']:.3g}",
                f"{row['max_rel']:.3g}",
                f"{gate.floor(noise[name], quantum.get(name, 0.0)):.3g}",
                f"{'ok' if passed else 'FAIL'} ({criterion})",
            ]
        )
        floor = gate.floor(noise[name], quantum.get(name, 0.0))
        row.update(passed=passed, decided_by=criterion, reference_noise=noise[name], floor=floor)
    if args.json:
        print(
            json.dumps(
                {
                    "backend": plan.backend_name,
                    "samples": len(batches),
                    "min_cosine": min_cosine,
                    "max_rel_error": gate.max_rel_error,
                    "atol": gate.atol,
                    "outputs": list(worst.values()),
                    "passed": ok,
                    "segments": [{"step": per_step[t], **r} for t, r in step_worst.items()],
                },
                indent=2,
            )
        )
    else:
        print(
            f"parity of {args.plan} against {args.against} on {len(batches)} input set(s), "
            f"backend {plan.backend_name}; {gate.describe()}"
            + (
                "; the original computes in float16: its noise includes its own rounding (against itself "
                "computed in float32)"
                if widened is not None
                else ""
            )
            + ("; a float16 output's floor adds one float16 ulp at its scale" if quantum else "")
            + (
                f"; the original draws random numbers ({', '.join(randoms)}): its difference from itself "
                "on a second run is part of its noise"
                if randoms
                else ""
            )
        )
        print(table(["output", "cosine", "max abs err", "max rel err", "noise floor", "verdict"], rows))
        if step_worst:
            print(f"per Hailo segment, {plan.backend_name} against float:")
            print(
                table(
                    ["step", "tensor", "cosine", "max abs err"],
                    [[per_step[t], t, f"{r['cosine']:.7f}", f"{r['max_abs']:.3g}"] for t, r in step_worst.items()],
                )
            )
    return 0 if ok else 1


def _accumulate(worst: dict, rows) -> None:
    """Keep, per output, the worst cosine and errors seen over all input sets."""
    for row in rows:
        acc = worst.setdefault(row.output, row._asdict())
        acc["cosine"] = min(acc["cosine"], row.cosine)
        acc["max_abs"] = max(acc["max_abs"], row.max_abs)
        acc["max_rel"] = max(acc["max_rel"], row.max_rel)
