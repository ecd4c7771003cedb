"""Prove rules with z3 over the reals: `rewrite rules verify --prove FILE.rw`.

For each rule, small instances are built as for testing (instances.py: shapes, attributes, op
choices; broadcasting shapes of pinned constants first). On each, the matched subgraph and the
rewrite are evaluated symbolically (symbolic.py): every free input is a vector of real symbols,
every float constant the rule captures is symbolic too unless a `where:` clause or helper it feeds
cannot be encoded (then it keeps the instance's exact value). `where:` clauses on constant values
become assumptions; `value(c) == 1.0` is `c[i] == 1` for every i. Then z3 decides whether some
input makes a root value differ:

* unsat on every instance: `proved` (for all real inputs and symbolic weights, on those shapes);
* sat: `disproved`, with the model as a counter-example (saved as ONNX + .npz, replayed on
  onnxruntime); a changed shape or dtype is disproved without z3;
* anything else (an op outside the fragment, a helper without a symbolic form whose float
  result the answer depends on, an uninterpreted function in a counter-example, a timeout):
  `unknown`, and the rule falls back to randomized testing.

Assumptions: divisors are non-zero and square roots are of non-negative values, as the original
graph needs them to be for a finite result. Shapes are those of the instances.
"""

from __future__ import annotations

import collections
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import z3

from . import ast as A
from .attrs import get_attr
from .driver import apply_rules
from .errors import RuleError
from .expr import _CMP, EvalError, Evaluator, _py, truth
from .instances import InstanceBuilder, Reject
from .names import NameAuthority
from .rewrite import Rewriter
from .rules import RuleSet
from .symbolic import NotEncodable, SymContext, as_term, conjunction, evaluate, exact
from .tensors import const_value
from .verify import _counterexample, _run, describe, save_counterexample

SMALL_DIMS = [1, 2, 3]
SMALL_CHANNELS = [1, 2, 3, 4, 6]


@dataclass
class ProofResult:
    rule: str
    status: str  # "proved" | "disproved" | "unknown"
    detail: str
    instances: int = 0
    counterexample: dict | None = field(default=None, repr=False)

    def __str__(self) -> str:
        label = {"proved": "proved   ", "disproved": "disproved", "unknown": "unknown  "}[self.status]
        extra = " (falls back to testing)" if self.status == "unknown" else ""
        return f"{label} {self.rule}{extra}: {self.detail}" + "".join(
            f"\n           {line}" for line in describe(self.counterexample)
        )


class _Concretize(Exception):
    """These symbolic constants must take their instance values (a clause cannot encode them)."""

    def __init__(self, names: set):
        super().__init__(", ".join(sorted(names)))
        self.names = names


def _is_z3(v) -> bool:
    return isinstance(v, z3.ExprRef) or (isinstance(v, np.ndarray) and v.dtype == object)


class SymEvaluator(Evaluator):
    """The rule's expressions over symbolic constants: `value(c)` of a symbolic constant is its
    array of symbols, comparisons of symbols are z3 conditions, helpers with a symbolic form get
    object arrays, others get numbers (or refuse: _Concretize)."""

    def __init__(self, helpers, graph_outputs, target, sym: dict, names: dict):
        super().__init__(helpers, graph_outputs, target)
        self.sym, self.names = sym, names  # id(tensor) -> array; id(tensor) -> capture name
        self.inexact = False  # a float result came from a helper's float math
        self.builtins["value"] = self._value
        self.builtins["all"] = lambda v: self._fold(v, True)
        self.builtins["any"] = lambda v: self._fold(v, False)

    def _fold(self, v, every: bool):
        items = list(np.asarray(v, dtype=object).reshape(-1)) if not isinstance(v, z3.ExprRef) else [v]
        if not any(isinstance(i, z3.ExprRef) for i in items):
            return bool(np.all(v)) if every else bool(np.any(v))
        return conjunction(items) if every else z3.Or(*[i for i in items if not isinstance(i, bool)])

    def _value(self, v):
        if isinstance(v, gs.Tensor) and id(v) in self.sym and const_value(v) is not None:
            return self.sym[id(v)]
        c = const_value(v) if isinstance(v, gs.Tensor) else None
        if c is None:
            raise EvalError(f"{getattr(v, 'name', v)!r} is not a constant")
        return c

    def _symbols_in(self, args) -> set:
        return {
            self.names[id(a)]
            for a in args
            if isinstance(a, gs.Tensor)
            and id(a) in self.names
            and self.sym.get(id(a)) is not None
            and self.sym[id(a)].dtype == object
            and any(isinstance(x, z3.ExprRef) and not z3.is_rational_value(x) for x in self.sym[id(a)].reshape(-1))
        }

    def eval(self, e: A.Expr, env: dict):
        if isinstance(e, A.Call) and e.func in self.helpers:
            args = [self.eval(x, env) for x in e.args]
            spec = self.helpers.spec(e.func) if hasattr(self.helpers, "spec") else None
            if spec is not None and spec.symbolic:
                fn = spec.symbolic if callable(spec.symbolic) and spec.symbolic is not True else spec.fn
                vals = [
                    self.sym.get(id(a), a) if isinstance(a, gs.Tensor) and const_value(a) is not None else a
                    for a in args
                ]
                try:
                    return _py(fn(*vals))  # object arrays (symbolic) stay arrays
                except (NotEncodable, _Concretize):
                    raise
                except Exception as ex:
                    raise EvalError(f"{e.text}: {type(ex).__name__}: {ex}") from ex
            symbols = self._symbols_in(args)
            if symbols:
                raise _Concretize(symbols)
            out = super().eval(e, env)
            if isinstance(out, np.ndarray) and out.dtype.kind == "f":
                self.inexact = True
            return out
        if isinstance(e, A.Bin) and e.op in ("and", "or"):
            left, right = self.eval(e.left, env), self.eval(e.right, env)
            if _is_z3(left) or _is_z3(right):
                parts = [self._cond(left), self._cond(right)]
                return z3.And(*parts) if e.op == "and" else z3.Or(*parts)
            return (truth(left) and truth(right)) if e.op == "and" else (truth(left) or truth(right))
        if isinstance(e, A.Unary) and e.op == "not":
            x = self.eval(e.x, env)
            return z3.Not(self._cond(x)) if _is_z3(x) else not truth(x)
        if isinstance(e, A.Bin) and e.op in _CMP:
            left, right = self.eval(e.left, env), self.eval(e.right, env)
            if _is_z3(left) or _is_z3(right):
                return self._compare(e.op, left, right)
            return (
                super().eval(e, env)
                if not isinstance(left, np.ndarray) or left.dtype != object
                else self._compare(e.op, left, right)
            )
        return super().eval(e, env)

    @staticmethod
    def _cond(v):
        if isinstance(v, z3.ExprRef):
            return v
        if isinstance(v, np.ndarray) and v.dtype == object:
            return conjunction(list(v.reshape(-1)))
        return z3.BoolVal(bool(truth(v)))

    @staticmethod
    def _compare(op: str, a, b):
        a = np.asarray(a, dtype=object)
        b = np.asarray(b, dtype=object)
        try:
            pairs = np.broadcast_arrays(a, b)
        except ValueError:
            return op == "!="
        f = {
            "==": lambda x, y: x == y,
            "!=": lambda x, y: x != y,
            "<": lambda x, y: x < y,
            "<=": lambda x, y: x <= y,
            ">": lambda x, y: x > y,
            ">=": lambda x, y: x >= y,
        }[op]
        conds = [f(as_term(x), as_term(y)) for x, y in zip(pairs[0].reshape(-1), pairs[1].reshape(-1))]
        if op == "!=":
            return z3.Or(*conds) if conds else False
        return conjunction(conds)


def _float_const(t) -> bool:
    c = const_value(t) if isinstance(t, gs.Tensor) else None
    return c is not None and np.asarray(c).dtype.kind == "f"


def _node_attrs(node: gs.Node) -> dict:
    out = {}
    for k in list(node.attrs) + ["kernel_shape", "strides", "dilations", "pads"]:
        v = get_attr(node, k)
        if v is not None:
            out[k] = v
    return out


class _Instance:
    """One concrete instance of a rule and its symbolic evaluation."""

    def __init__(self, rule, graph: gs.Graph, anchor, env: dict, matched: list, target):
        self.rule, self.graph, self.anchor, self.env, self.matched = rule, graph, anchor, env, matched
        self.target = target
        self.graph_outputs = {id(t) for t in graph.outputs}
        self.captures = {k: v for k, v in env.items() if isinstance(v, gs.Tensor)}

    def symbolic_consts(self) -> set:
        return {k for k, v in self.captures.items() if _float_const(v)}

    def run(self, ctx: SymContext, symbolic: set):
        """(original root arrays, rewritten root arrays, evaluator)."""
        sym: dict[int, np.ndarray] = {}
        names = {id(v): k for k, v in self.captures.items()}
        produced = {id(o) for n in self.matched for o in n.outputs}
        for n in self.matched:
            for t in n.inputs:
                if not t.name or id(t) in sym or id(t) in produced:
                    continue
                c = const_value(t)
                label = names.get(id(t), t.name)
                if c is None:
                    sym[id(t)] = ctx.array(label, t.shape)
                elif np.asarray(c).dtype.kind == "f":
                    sym[id(t)] = ctx.array(label, c.shape) if label in symbolic else exact(c)
                else:
                    sym[id(t)] = np.asarray(c)
        for n in _topo(self.matched):
            ins = [sym[id(t)] if t.name else None for t in n.inputs]
            outs = evaluate(n.op, ins, _node_attrs(n), len(n.outputs))
            for o, v in zip(n.outputs, outs):
                if v is not None:
                    sym[id(o)] = v
        ev = SymEvaluator(self.rule.helpers, self.graph_outputs, self.target, sym, names)
        for clause in self.rule.defn.where:
            v = ev.eval(clause, self.env)
            if _is_z3(v):
                ctx.constraints.append(ev._cond(v))
            elif not truth(v):
                raise NotEncodable(f"where '{clause.text}' does not hold symbolically")
        roots = [self.env[r] for r in self.rule.roots]
        before = [sym[id(r)] for r in roots]
        rw = Rewriter(self.rule, ev, NameAuthority(self.graph))
        rw.anchor = self.anchor
        plan = rw.plan(self.env)
        vals: dict = {}

        def value(ref):
            kind = ref[0]
            if kind == "none":
                return None
            if kind == "t":
                if id(ref[1]) not in sym:
                    raise NotEncodable(f"the rewrite reads '{ref[1].name}', outside the match")
                return sym[id(ref[1])]
            if kind == "const":
                arr = ref[1]
                return arr if arr.dtype == object else exact(arr) if arr.dtype.kind == "f" else arr
            return vals[ref]

        for p in plan.nodes:
            outs = evaluate(p.op, [value(r) for r in p.inputs], p.attrs, len(p.outputs))
            for r, v in zip(p.outputs, outs):
                vals[r] = v
        new = {name: vals[("rep", name)] for name in self.rule.roots if ("rep", name) in vals}
        for name, ref in plan.aliases:
            new[name] = value(ref)
        after = [new.get(name, b) for name, b in zip(self.rule.roots, before)]
        return before, after, ev


def _topo(nodes: list) -> list:
    made = {id(o): n for n in nodes for o in n.outputs}
    order, done = [], set()

    def visit(n):
        if id(n) in done:
            return
        done.add(id(n))
        for t in n.inputs:
            if id(t) in made:
                visit(made[id(t)])
        order.append(n)

    for n in nodes:
        visit(n)
    return order


def _decide(ctx: SymContext, before, after, timeout_ms: int):
    """("proved" | "disproved" | "unknown", detail, z3 model or None)."""
    for b, a in zip(before, after):
        if a is None or np.shape(a) != np.shape(b):
            change = f"the rewrite changes a shape from {list(np.shape(b))} to {list(np.shape(a))}"
            return "disproved", change, None
    diffs = []
    for b, a in zip(before, after):
        for x, y in zip(np.asarray(b).reshape(-1), np.asarray(a).reshape(-1)):
            x, y = as_term(x), as_term(y)
            if x.eq(y):
                continue
            if z3.simplify(x - y, som=True, arith_lhs=False).eq(z3.RealVal(0)):
                continue
            diffs.append(x != y)
    if not diffs:
        return "proved", "", None
    solver = z3.Solver()
    solver.set("timeout", int(timeout_ms))
    solver.add(*ctx.constraints)
    solver.add(z3.Or(*diffs))
    got = solver.check()
    if got == z3.unsat:
        return "proved", "", None
    if got == z3.sat:
        return "disproved", "", solver.model()
    return "unknown", f"z3 gave no answer ({solver.reason_unknown()})", None


def _model_value(model, term) -> float:
    v = model.eval(term, model_completion=True)
    if z3.is_rational_value(v):
        return float(Fraction(v.as_fraction()))
    if z3.is_algebraic_value(v):
        return float(Fraction(v.approx(20).as_fraction()))
    return 0.0


def prove_rule(
    rule,
    target=None,
    instances: int = 3,
    seed: int = 0,
    timeout_ms: int = 20000,
    counterexamples: str | Path | None = None,
) -> ProofResult:
    """Prove, disprove or give up on one rule; see the module docstring."""
    if rule.pins_only:
        return ProofResult(rule.name, "proved", "host pins only: values unchanged")
    rng = np.random.default_rng(seed)
    builder = InstanceBuilder(rule, rng, dims=SMALL_DIMS, channels=SMALL_CHANNELS)
    assignments = builder.op_assignments()
    want = max(instances, len(assignments))
    built = [0] * len(assignments)
    reasons: collections.Counter = collections.Counter()
    done, weights, functions = 0, False, False
    for attempt in range(want * 40):
        if done >= want:
            break
        pick = min(range(len(assignments)), key=lambda i: (built[i], (i - attempt) % len(assignments)))
        ops = assignments[pick]
        try:
            model, feeds = builder.build("normal", ops)
            onnx.checker.check_model(model)
            _run(model, feeds)  # an instance onnxruntime cannot run is not a valid one
        except Reject as e:
            reasons[str(e)] += 1
            continue
        except Exception as e:  # noqa: BLE001 - onnx checker / onnxruntime refused the draw
            reasons[f"invalid model: {str(e).strip().splitlines()[0][:200] if str(e).strip() else e}"] += 1
            continue
        graph = gs.import_onnx(model)
        found = _find_match(rule, graph, target)
        if found is None:
            reasons["the rule does not fire"] += 1
            continue
        try:  # one concrete rewrite must keep every shape and type (the driver checks)
            _rewrite_once(rule, model, target)
        except RuleError as e:
            cx = _counterexample(model, feeds, ops)
            _save(cx, counterexamples, rule.name)
            return ProofResult(rule.name, "disproved", _what(e), done + 1, cx)
        inst = _Instance(rule, graph, *found, target)
        symbolic = inst.symbolic_consts()
        while True:
            ctx = SymContext()
            try:
                with ctx.active():
                    before, after, ev = inst.run(ctx, symbolic)
                    status, detail, zmodel = _decide(ctx, before, after, timeout_ms)
                break
            except _Concretize as c:
                symbolic -= c.names
            except (NotEncodable, EvalError, RuleError) as e:
                return ProofResult(rule.name, "unknown", str(e), done)
            except Exception as e:  # noqa: BLE001 - a gap in the symbolic semantics: say so, test instead
                return ProofResult(rule.name, "unknown", f"symbolic evaluation failed: {type(e).__name__}: {e}", done)
        if status == "unknown":
            return ProofResult(rule.name, "unknown", detail, done)
        if status == "disproved":
            if zmodel is None:
                cx = _counterexample(model, feeds, ops)
                _save(cx, counterexamples, rule.name)
                return ProofResult(rule.name, "disproved", detail, done + 1, cx)
            if ctx.used_uninterpreted or ev.inexact:
                why = "an uninterpreted op" if ctx.used_uninterpreted else "a helper's float result"
                return ProofResult(rule.name, "unknown", f"z3 found a difference that depends on {why}", done)
            cx = _replay(rule, model, feeds, ops, inst, zmodel, target)
            _save(cx, counterexamples, rule.name)
            return ProofResult(rule.name, "disproved", "a real input where the rewrite differs", done + 1, cx)
        done += 1
        built[pick] += 1
        weights |= bool(symbolic)
        functions |= ctx.used_uninterpreted
    if done == 0:
        top = reasons.most_common(1)[0][0] if reasons else "no attempts"
        return ProofResult(rule.name, "unknown", f"could not build an instance: {top}")
    what = "all real inputs" + (" and constants" if weights else "")
    extra = ", any function for the uninterpreted ops" if functions else ""
    return ProofResult(rule.name, "proved", f"{what}{extra}, on {done} instance shape(s)", done)


def _what(e: RuleError) -> str:
    """A driver error without its `rule R (file:line) at node 'N': ` prefix."""
    text = str(e)
    at = text.find(" at node '")
    end = text.find("': ", at) if at >= 0 else -1
    return text[end + 3 :] if end >= 0 else text


def _rewrite_once(rule, model: onnx.ModelProto, target) -> None:
    graph = gs.import_onnx(model)
    node, env, matched = _find_match(rule, graph, target)
    outputs = {id(t) for t in graph.outputs}
    rw = Rewriter(rule, Evaluator(rule.helpers, outputs, target), NameAuthority(graph))
    rw.anchor = node
    rw.commit(graph, env, matched, rw.plan(env), outputs)


def _find_match(rule, graph: gs.Graph, target):
    ev = Evaluator(rule.helpers, {id(t) for t in graph.outputs}, target)
    for node in graph.nodes:
        if node.op in rule.anchor_ops:
            got = rule.pattern.match(node, ev)
            if got is not None:
                return node, got[0], got[1]
    return None


def _replay(rule, model, feeds, ops, inst: _Instance, zmodel, target) -> dict:
    """The z3 model as a concrete instance: inputs and symbolic constants take its values."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    new_feeds = {}
    for name, arr in feeds.items():
        label = next((k for k, v in inst.captures.items() if v.name == name), name)
        vals = np.empty(np.shape(arr))
        for idx in np.ndindex(*vals.shape):
            key = f"{label}[{','.join(map(str, idx))}]" if idx else label
            vals[idx] = _model_value(zmodel, z3.Real(key))
        new_feeds[name] = vals.astype(np.asarray(arr).dtype)
    for init in model.graph.initializer:
        label = next((k for k, v in inst.captures.items() if v.name == init.name), None)
        arr = onnx.numpy_helper.to_array(init)
        if label is None or arr.dtype.kind != "f":
            continue
        vals = np.empty(arr.shape)
        for idx in np.ndindex(*arr.shape):
            key = f"{label}[{','.join(map(str, idx))}]" if idx else label
            if any(str(d) == key for d in zmodel.decls()):
                vals[idx] = _model_value(zmodel, z3.Real(key))
            else:
                vals[idx] = arr[idx]
        init.CopyFrom(onnx.numpy_helper.from_array(vals.astype(arr.dtype), init.name))
    worst, ref, got = "", None, None
    try:
        ref = _run(model, new_feeds)
        g = gs.import_onnx(model)
        apply_rules(g, RuleSet([rule]), target=target)
        out = gs.export_onnx(g)
        out.opset_import[0].version = model.opset_import[0].version
        got = _run(out, new_feeds)
        pairs = [
            f"{o.name}: max |before - after| = {float(np.max(np.abs(a.astype(float) - b.astype(float)))):.6g}"
            for o, a, b in zip(model.graph.output, ref, got)
        ]
        worst = "; ".join(pairs) + " on onnxruntime"
    except Exception as e:  # noqa: BLE001 - the counter-example is over the reals; floats may not show it
        worst = f"(not replayed on onnxruntime: {str(e).splitlines()[0][:120]})"
    inputs = ", ".join(
        f"{k} = {np.array2string(np.asarray(v).reshape(-1)[:8], precision=6)}" for k, v in new_feeds.items()
    )
    return _counterexample(model, new_feeds, ops, ref, got, f"{inputs}; {worst}")


def _save(cx: dict, folder, rule: str) -> None:
    folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="rule-cx-"))
    save_counterexample(cx, folder, rule)


def prove_rules(rules, target=None, **kw) -> list[ProofResult]:
    with np.errstate(all="ignore"):
        return [prove_rule(r, target, **kw) for r in rules]
