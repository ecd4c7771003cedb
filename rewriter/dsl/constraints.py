"""Constraints on a rule's instances, solved before the random search of instances.py.

Two sources:

* the `where:` clauses: the top-level conjunction is split at `and`, an `or` contributes one of
  its branches (drawn per instance), and simple comparisons of a *term* with a literal become
  requirements:
      name == LIT            an attribute capture takes that value (`al == 1.0`, `ax == [2]`)
      b == None              an optional input is left out
      value(a) == LIT        a constant takes exactly that value (`value(a) == [2, 3]`)
      rank(x) OP LIT         the allowed ranks of x (`rank(z) < 3`)
      shape(x)[i] == LIT     dimension i of x is pinned
      dtype(x) == LIT        the element type of x
      name in [LIT, ...]     one of the listed values (`ax in [[2], [-1]]`)
      all(e), all([e, ..])   the same as e, or e and ...: `all` does not hide requirements
  anything else (`uses(c) == 1`, helper predicates, `not ...`) is left to the random search and
  the rule's own matcher.
* op semantics of the pattern: Squeeze/Unsqueeze with a known axes constant relate the ranks of
  their input and output and pin squeezed dims to 1; same-shape ops (activations, BN...) carry
  ranks and pins from output to input; Gemm wants a rank-2 input; value-moving ops carry value
  requirements (Div divisor nonzero, Pow/Sqrt/Log operand positive) back to the free inputs;
  free inputs that meet in a Concat or a binary op (possibly through squeezes / activations) form
  a shape group, so their shapes can be drawn compatible.

Requirements are hints to the generator: an instance that still does not satisfy the rule is
discarded by verify exactly as before, so nothing here can make a wrong rule pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import ast as A
from .expr import EvalError, Evaluator, compare

MAX_RANK = 6
_FLIP = {"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}
_CMPS = set(_FLIP)

# ops whose output has the shape of input 0 (and whose input 0 is the data)
SAME_SHAPE = {
    "Relu",
    "Sigmoid",
    "Tanh",
    "Elu",
    "Selu",
    "HardSigmoid",
    "HardSwish",
    "LeakyRelu",
    "Softplus",
    "Softsign",
    "Abs",
    "Neg",
    "Exp",
    "Log",
    "Sqrt",
    "Reciprocal",
    "Erf",
    "Gelu",
    "Clip",
    "PRelu",
    "BatchNormalization",
    "InstanceNormalization",
    "Identity",
    "Cast",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Sin",
    "Cos",
    "Softmax",
    "LogSoftmax",
    "Mish",
    "ThresholdedRelu",
    "Celu",
    "Not",
}
# ops that only move / copy values of input 0 (value requirements pass through them)
VALUE_MOVING = {
    "Squeeze",
    "Unsqueeze",
    "Reshape",
    "Transpose",
    "Identity",
    "Flatten",
    "Slice",
    "Expand",
    "Tile",
    "Concat",
    "MaxPool",
    "Relu6",
}
# (op, input slot) -> requirement on the values of that input
VALUE_SLOTS = {
    ("Div", 1): "nonzero",
    ("Pow", 0): "positive",
    ("Sqrt", 0): "positive",
    ("Log", 0): "positive",
    ("Reciprocal", 0): "nonzero",
    ("BatchNormalization", 4): "positive",
}


@dataclass
class Plan:
    attrs: dict = field(default_factory=dict)  # capture name -> required attribute value
    values: dict = field(default_factory=dict)  # const capture -> required numpy value
    absent: set = field(default_factory=set)  # optional inputs required to be missing
    ranks: dict = field(default_factory=dict)  # value name -> set of allowed ranks
    dims: dict = field(default_factory=dict)  # value name -> {index: size}
    slots: dict = field(default_factory=dict)  # value name -> "positive" | "nonzero" | "integer"
    groups: dict = field(default_factory=dict)  # free value -> group id (compatible shapes)
    concat_groups: set = field(default_factory=set)  # group ids that meet in a Concat
    dtypes: dict = field(default_factory=dict)  # value name -> numpy dtype name

    def rank_set(self, name: str):
        """Allowed ranks (a non-empty set) or None when unconstrained / unsatisfiable here."""
        s = self.ranks.get(name)
        return s if s else None

    def known_rank(self, name: str):
        s = self.rank_set(name)
        return next(iter(s)) if s and len(s) == 1 else None

    def pins(self, name: str, rank: int) -> dict[int, int]:
        out = {}
        for i, d in self.dims.get(name, {}).items():
            j = i + rank if i < 0 else i
            if 0 <= j < rank:
                out[j] = d
        return out


_LIT_EV = Evaluator({})


def _literal(e: A.Expr):
    """The value of a name-free expression, or raise EvalError."""
    for sub in A.walk(e):
        if isinstance(sub, (A.Name, A.Call)):
            raise EvalError("not a literal")
    return _LIT_EV.eval(e, {})


def _conjuncts(e: A.Expr, rng):
    if isinstance(e, A.Bin) and e.op == "and":
        yield from _conjuncts(e.left, rng)
        yield from _conjuncts(e.right, rng)
    elif isinstance(e, A.Bin) and e.op == "or":
        yield from _conjuncts(e.left if rng.random() < 0.5 else e.right, rng)
    elif isinstance(e, A.Call) and e.func == "all" and len(e.args) == 1:
        arg = e.args[0]  # all(a == b) holds as a == b does; all([p, q]) as p and q
        for item in arg.items if isinstance(arg, A.ListE) else [arg]:
            yield from _conjuncts(item, rng)
    elif isinstance(e, A.Bin) and e.op == "in" and isinstance(e.right, A.ListE) and e.right.items:
        item = e.right.items[int(rng.integers(len(e.right.items)))]  # one of the listed values
        yield A.Bin(e.pos, e.text, "==", e.left, item)
    else:
        yield e


def _as_array(v):
    arr = np.asarray(v)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32)
    return None


def _add_atom(plan: Plan, e: A.Expr, value_names: set):
    if not (isinstance(e, A.Bin) and e.op in _CMPS):
        return
    for term, lit_e, op in ((e.left, e.right, e.op), (e.right, e.left, _FLIP[e.op])):
        try:
            lit = _literal(lit_e)
        except EvalError:
            continue
        if isinstance(term, A.Name):
            if op != "==":
                return
            if term.id in value_names:
                if lit is None:
                    plan.absent.add(term.id)
            else:
                plan.attrs.setdefault(term.id, lit)
            return
        if isinstance(term, A.Call) and len(term.args) == 1 and isinstance(term.args[0], A.Name):
            name = term.args[0].id
            if term.func == "value" and op == "==":
                arr = _as_array(lit)
                if arr is not None:
                    plan.values.setdefault(name, arr)
            elif term.func == "rank" and isinstance(lit, (int, float)):
                ok = {r for r in range(MAX_RANK + 1) if compare(op, r, lit)}
                plan.ranks[name] = plan.ranks.get(name, ok) & ok
            elif term.func == "dtype" and op == "==" and isinstance(lit, str):
                plan.dtypes.setdefault(name, lit)
            return
        if (
            isinstance(term, A.Index)
            and isinstance(term.obj, A.Call)
            and term.obj.func == "shape"
            and len(term.obj.args) == 1
            and isinstance(term.obj.args[0], A.Name)
            and op == "=="
            and isinstance(lit, int)
        ):
            try:
                i = int(_literal(term.index))
            except (EvalError, TypeError, ValueError):
                return
            plan.dims.setdefault(term.obj.args[0].id, {}).setdefault(i, lit)
            return
        return


def _set_rank(plan: Plan, name: str, r: int) -> bool:
    if name == "_" or r < 0:
        return False
    cur = plan.ranks.get(name)
    if cur is not None and len(cur) == 1:
        return False
    plan.ranks[name] = {r} if cur is None or r in cur else set()
    return True


def _axes(plan: Plan, pn: A.MatchNode):
    if pn.op in ("Squeeze", "Unsqueeze") and len(pn.args) > 1 and pn.args[1].name in plan.values:
        return [int(a) for a in np.atleast_1d(plan.values[pn.args[1].name]).tolist()]
    return None


def _propagate(plan: Plan, nodes: list[A.MatchNode]):
    """Ranks and pinned dims through Squeeze/Unsqueeze/same-shape ops, to a fixed point."""
    for _ in range(2 * len(nodes) + 1):
        changed = False
        for pn in nodes:
            if not pn.args or not pn.outputs or pn.args[0].name == "_":
                continue
            x, y = pn.args[0].name, pn.outputs[0]
            rx, ry = plan.known_rank(x), plan.known_rank(y)
            if pn.op == "Gemm" and rx is None:
                changed |= _set_rank(plan, x, 2)
            if pn.op in ("Gemm", "Flatten") and ry is None:
                changed |= _set_rank(plan, y, 2)
            if pn.op in SAME_SHAPE:
                if rx is None and ry is not None:
                    changed |= _set_rank(plan, x, ry)
                elif ry is None and rx is not None:
                    changed |= _set_rank(plan, y, rx)
                for i, d in plan.dims.get(y, {}).items():
                    if i not in plan.dims.get(x, {}):
                        plan.dims.setdefault(x, {})[i] = d
                        changed = True
                continue
            axes = _axes(plan, pn)
            if axes is None:
                continue
            n = len(axes)
            if pn.op == "Squeeze":
                if rx is None and ry is not None:
                    changed |= _set_rank(plan, x, ry + n)
                elif ry is None and rx is not None:
                    changed |= _set_rank(plan, y, rx - n)
                rx = plan.known_rank(x)
                if rx is None:
                    continue
                sq = sorted({a + rx if a < 0 else a for a in axes})
                keep = [i for i in range(rx) if i not in sq]
                want = {i: 1 for i in sq}
                for i, d in plan.pins(y, len(keep)).items():
                    want[keep[i]] = d
            else:  # Unsqueeze
                if ry is None and rx is not None:
                    changed |= _set_rank(plan, y, rx + n)
                elif rx is None and ry is not None:
                    changed |= _set_rank(plan, x, ry - n)
                ry = plan.known_rank(y)
                if ry is None:
                    continue
                ins = {a + ry if a < 0 else a for a in axes}
                keep = [i for i in range(ry) if i not in ins]
                want = {keep.index(i): d for i, d in plan.pins(y, ry).items() if i in keep}
            have = plan.dims.setdefault(x, {})
            for i, d in want.items():
                if i not in have:
                    have[i] = d
                    changed = True
        if not changed:
            break


def _source(name: str, producer: dict, nodes, moving: set) -> str:
    """Follow input 0 back through `moving` pattern ops to the value it comes from."""
    seen = set()
    while name in producer and name not in seen:
        seen.add(name)
        pn = nodes[producer[name]]
        if pn.op not in moving or not pn.args:
            return name
        name = pn.args[0].name
    return name


def solve(rule, rng, nodes: list[A.MatchNode] | None = None) -> Plan:
    """One draw of requirements (an `or` picks one of its branches). `nodes` are the pattern's
    nodes with op variables resolved to this instance's ops (default: the pattern as written)."""
    plan = Plan()
    nodes = rule.defn.match if nodes is None else nodes
    value_names = {a.name for n in nodes for a in n.args} | {o for n in nodes for o in n.outputs}
    for clause in rule.defn.where:
        for atom in _conjuncts(clause, rng):
            _add_atom(plan, atom, value_names)
    _propagate(plan, nodes)
    producer = {o: i for i, n in enumerate(nodes) for o in n.outputs if o != "_"}
    # value requirements: carried back to the free value through value-moving ops
    for pn in nodes:
        for j, a in enumerate(pn.args):
            slot = VALUE_SLOTS.get((pn.op, j))
            if slot and a.name != "_":
                src = _source(a.name, producer, nodes, VALUE_MOVING)
                if src not in producer:
                    plan.slots.setdefault(src, slot)
                elif pn.op == "Pow" and len(pn.args) > 1:
                    # the base may be negative or zero: keep the exponent a small natural number
                    plan.slots.setdefault(pn.args[1].name, "integer")
    # shape groups: free values that meet in a Concat / binary op
    shape_moving = SAME_SHAPE | {"Squeeze", "Unsqueeze"}
    parent: dict[str, str] = {}

    def find(v):
        while parent.setdefault(v, v) != v:
            v = parent[v]
        return v

    concat_roots = []
    for pn in nodes:
        if pn.op != "Concat" and pn.op not in ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean"):
            continue
        srcs = [_source(a.name, producer, nodes, shape_moving) for a in pn.args if a.name != "_"]
        srcs = [s for s in srcs if s not in producer]
        for s in srcs[1:]:
            parent[find(s)] = find(srcs[0])
        if pn.op == "Concat" and srcs:
            concat_roots.append(srcs[0])
    for v in list(parent):
        plan.groups[v] = find(v)
    plan.concat_groups = {find(v) for v in concat_roots}
    return plan
