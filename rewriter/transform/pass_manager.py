"""Ordered, named passes repeated to a fixed point, with per-pass statistics and a debug check."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import onnx
import onnx_graphsurgeon as gs

from rewriter.errors import UserError


@dataclass
class PassContext:
    """What passes may read besides the graph: the target, options, and a log for --explain."""

    target: object = None
    options: dict = field(default_factory=dict)
    #: graph.nodes is in topological order as the pass starts (set by the manager)
    sorted: bool = False


class Pass:
    """A graph transformation. `run` edits the graph in place and returns the names of the nodes it
    changed or created (empty when it changed nothing, which is what ends the fixed-point loop)."""

    name = "pass"
    #: run once (False) or take part in the fixed-point loop (True)
    repeat = True
    #: a second run on a graph this pass itself left is a no-op (it runs to its own fixed point);
    #: the manager then skips it until another pass changes the graph
    idempotent = False
    #: `run` always leaves graph.nodes in topological order (the manager then tells the next pass,
    #: through ctx.sorted, that it need not sort again)
    leaves_sorted = False

    def run(self, graph: gs.Graph, ctx: PassContext) -> list[str]:
        raise NotImplementedError


@dataclass
class PassStat:
    """What one run of a pass did: its name, the fixpoint round, the nodes it changed, its time."""

    name: str
    round: int
    changed: list[str]
    seconds: float


class PassError(UserError):
    """A pass left the graph invalid; names the pass and the ones that ran before it."""


class PassManager:
    def __init__(self, passes: list[Pass], max_rounds: int = 8, debug: bool = False):
        self.passes = list(passes)
        self.max_rounds = max_rounds
        self.debug = debug
        self.stats: list[PassStat] = []
        self._version = 0  # bumped whenever a pass changes the graph
        self._seen: dict[int, int] = {}  # id(pass) -> graph version its last run left
        self._sorted_at: int | None = None  # graph version a leaves_sorted pass last left

    def run(self, graph: gs.Graph, ctx: PassContext | None = None) -> gs.Graph:
        ctx = ctx or PassContext()
        once = [p for p in self.passes if not p.repeat]
        looped = [p for p in self.passes if p.repeat]
        for p in once:
            self._run_one(p, graph, ctx, 0)
        for rnd in range(1, self.max_rounds + 1):
            changed = False
            for p in looped:
                changed |= bool(self._run_one(p, graph, ctx, rnd))
            if not changed:
                return graph
        raise PassError(
            f"passes did not reach a fixed point in {self.max_rounds} rounds; "
            f"still changing: {', '.join(s.name for s in self.stats[-len(looped) :] if s.changed)}"
        )

    def _run_one(self, p: Pass, graph: gs.Graph, ctx: PassContext, rnd: int) -> list[str]:
        if p.idempotent and self._seen.get(id(p)) == self._version:
            return []
        start = time.perf_counter()
        ctx.sorted = self._sorted_at == self._version
        try:
            changed = p.run(graph, ctx) or []
        except PassError:
            raise
        except Exception as exc:
            raise PassError(f"pass {p.name!r} failed: {type(exc).__name__}: {exc}{self._before()}") from exc
        self.stats.append(PassStat(p.name, rnd, list(changed), time.perf_counter() - start))
        self._version += bool(changed)
        self._seen[id(p)] = self._version
        if p.leaves_sorted:
            self._sorted_at = self._version
        if self.debug:
            self._check(p, graph)
        return changed

    def _before(self) -> str:
        ran = list(dict.fromkeys(s.name for s in self.stats))
        return f" (after: {', '.join(ran)})" if ran else ""

    def _check(self, p: Pass, graph: gs.Graph) -> None:
        """Debug mode: onnx checker + strict shape inference after every pass."""
        try:
            model = gs.export_onnx(graph.copy().cleanup().toposort(), do_type_check=False)
            onnx.checker.check_model(model, full_check=False)
            onnx.shape_inference.infer_shapes(model, strict_mode=True, check_type=True)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PassError(f"pass {p.name!r} broke the graph: {first}{self._before()}") from exc

    def summary(self) -> list[dict]:
        """Per pass: rounds run, nodes changed, seconds (machine-readable)."""
        rows: dict[str, dict] = {}
        for s in self.stats:
            row = rows.setdefault(s.name, {"pass": s.name, "runs": 0, "changed": 0, "seconds": 0.0})
            row["runs"] += 1
            row["changed"] += len(s.changed)
            row["seconds"] += s.seconds
        return list(rows.values())

    def explain(self) -> list[str]:
        """Lines for --explain: which pass changed which nodes, in order."""
        lines = []
        for s in self.stats:
            if s.changed:
                shown = ", ".join(s.changed[:12]) + (f", ... (+{len(s.changed) - 12})" if len(s.changed) > 12 else "")
                lines.append(f"[round {s.round}] {s.name}: {len(s.changed)} node(s): {shown}")
        return lines
