"""Consecutive host ONNX steps become one: a tiled segment's host stage (a gLN's centring, say)
usually sits right before the next partition host segment. One session instead of two: faster
`Plan.load`, one call less per inference."""

from __future__ import annotations

from rewriter.ir.build import make_model
from rewriter.plan.steps import PlannedStep


def _mergeable(step: PlannedStep) -> bool:
    return (
        step.device == "host"
        and step.model is not None
        and step.extra.get("kind", "onnx") == "onnx"
        and "view" not in step.extra
    )


def _join(a: PlannedStep, b: PlannedStep, needed: set[str]) -> PlannedStep:
    ma, mb = a.model, b.model
    made = set(a.outputs)
    inputs = list(a.inputs) + [x for x in b.inputs if x not in made and x not in a.inputs]
    outputs = [y for y in a.outputs + b.outputs if y in needed]
    values = {
        v.name: v for m in (ma, mb) for v in list(m.graph.input) + list(m.graph.output) + list(m.graph.value_info)
    }
    inits = {t.name: t for m in (ma, mb) for t in m.graph.initializer}
    internal = (set(a.outputs) | set(b.outputs)) - set(outputs)
    model = make_model(
        list(ma.graph.node) + list(mb.graph.node),
        a.name,
        [values[x] for x in inputs],
        [values[y] for y in outputs],
        list(inits.values()),
        [v for n, v in values.items() if n in internal or (n not in inputs and n not in outputs and n not in inits)],
        opset_imports=list(ma.opset_import),
        producer_name=ma.producer_name,
        ir_version=max(ma.ir_version, mb.ir_version),
    )
    extra = {"nodes": a.extra.get("nodes", 0) + b.extra.get("nodes", 0)}
    if "macs" in a.extra or "macs" in b.extra:
        extra["macs"] = a.extra.get("macs", 0) + b.extra.get("macs", 0)
    rules = sorted(set(a.extra.get("rules", [])) | set(b.extra.get("rules", [])))
    if rules:
        extra["rules"] = rules
    return PlannedStep(a.name, "host", inputs, outputs, model, extra)


def merge_host_steps(steps: list[PlannedStep], plan_outputs: list[str]) -> list[PlannedStep]:
    later: list[set[str]] = [set() for _ in steps]  # tensors read by steps after position i
    acc = set(plan_outputs)
    for i in range(len(steps) - 1, -1, -1):
        later[i] = set(acc)
        acc |= set(steps[i].inputs)
    out: list[PlannedStep] = []
    for i, step in enumerate(steps):
        prev = out[-1] if out else None
        if (
            prev is not None
            and _mergeable(prev)
            and _mergeable(step)
            and list(prev.model.opset_import) == list(step.model.opset_import)
        ):
            out[-1] = _join(prev, step, later[i])
        else:
            out.append(step)
    return out
