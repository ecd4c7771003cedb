"""Build the nodes of a rule's `rewrite:` block for one match and splice them into the graph.

Everything is evaluated first (helpers may fail); the graph is only edited once all values exist.
Replaced values keep their gs.Variable (so consumers and graph-output names stay), their old
producer gets a placeholder output and dies if nothing else uses it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from rewriter.ir.annotations import tag

from . import ast as A
from .attrs import coerce
from .errors import RuleError
from .expr import EvalError, Evaluator
from .localshape import infer_node
from .names import NameAuthority


@dataclass
class _Planned:
    op: str
    inputs: list          # refs: ("t", tensor) ("none",) ("const", array) ("new", key) ("rep", name)
    attrs: dict
    outputs: list         # refs: ("new", key) | ("rep", name)
    hint: str = ""        # base for fresh value names


@dataclass
class Edit:
    created: list[gs.Node] = field(default_factory=list)
    removed: list[gs.Node] = field(default_factory=list)
    touched: list[gs.Node] = field(default_factory=list)  # kept-alive producers whose uses changed


def _const_array(v) -> np.ndarray:
    if isinstance(v, np.ndarray):
        return v
    arr = np.asarray(v)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    return arr


def is_op(name: str, ev: Evaluator) -> bool:
    return not ev.known(name) and onnx.defs.has(name)


class Rewriter:
    def __init__(self, rule, ev: Evaluator, names: NameAuthority):
        self.rule, self.ev, self.names = rule, ev, names

    def _err(self, e: A.Expr | A.RewriteNode, msg: str) -> RuleError:
        return RuleError(f"{self.rule.file}:{e.pos.line}:{e.pos.col}: rule {self.rule.name}: {msg}")

    # ---------- phase 1: evaluate
    def plan(self, env: dict) -> list[_Planned]:
        out: list[_Planned] = []
        defined: dict[str, tuple] = {}
        match_values = self.rule.match_values
        self._tmp = 0
        for st in self.rule.defn.rewrite:
            ins = [self._arg(e, env, defined, out) for e in st.args]
            attrs: dict = {}
            for item in st.attrs:
                if item.rest is not None:
                    attrs.update(env[item.rest])
                else:
                    try:
                        v = self.ev.eval(item.value, env)
                    except EvalError as ex:
                        raise self._err(item.value, str(ex)) from None
                    attrs[item.key] = None if v is None else coerce(st.op, item.key, v)
            outs = []
            for name in st.outputs:
                ref = ("rep", name) if name in match_values else ("new", name)
                defined[name] = ref
                outs.append(ref)
            out.append(_Planned(st.op, ins, attrs, outs, st.outputs[0]))
        return out

    def _arg(self, e: A.Expr, env, defined, out) -> tuple:
        if isinstance(e, A.Lit) and e.value is None:
            return ("none",)
        if isinstance(e, A.Name):
            if e.id in defined:
                return defined[e.id]
            v = env[e.id]
            if v is None:
                return ("none",)
            if isinstance(v, gs.Tensor):
                return ("t", v)
            return ("const", _const_array(v))
        if isinstance(e, A.Call) and is_op(e.func, self.ev):
            ins = [self._arg(a, env, defined, out) for a in e.args]
            self._tmp += 1
            key = f"__tmp{self._tmp}"
            out.append(_Planned(e.func, ins, {}, [("new", key)], e.func.lower()))
            return ("new", key)
        try:
            v = self.ev.eval(e, env)
        except EvalError as ex:
            raise self._err(e, str(ex)) from None
        if v is None:
            return ("none",)
        if isinstance(v, gs.Tensor):
            return ("t", v)
        return ("const", _const_array(v))

    # ---------- phase 2: edit the graph
    def commit(self, graph: gs.Graph, env: dict, matched: list[gs.Node], plan: list[_Planned],
               graph_outputs: set[int]) -> Edit:
        rule = self.rule.name
        replaced: dict[int, gs.Variable] = {}
        for p in plan:
            for ref in p.outputs:
                if ref[0] == "rep" and id(env[ref[1]]) not in replaced:
                    v = env[ref[1]]
                    ph = gs.Variable(self.names.fresh(f"{v.name}__old"), v.dtype, v.shape)
                    for prod in list(v.inputs):
                        for k, o in enumerate(prod.outputs):
                            if o is v:
                                prod.outputs[k] = ph
                    replaced[id(v)] = ph
        fresh: dict[str, gs.Variable] = {}

        def resolve_out(ref):
            if ref[0] == "rep":
                return env[ref[1]]
            if ref[1] not in fresh:
                fresh[ref[1]] = gs.Variable(self.names.fresh(f"{rule}_{p.hint}"))
            return fresh[ref[1]]

        for p in plan:
            p.out_vars = [resolve_out(r) for r in p.outputs]

        def resolve_in(ref):
            kind = ref[0]
            if kind == "none":
                return None
            if kind == "t":
                return replaced.get(id(ref[1]), ref[1])
            if kind == "const":
                return gs.Constant(self.names.fresh(f"{rule}_const"), ref[1])
            if kind == "rep":
                return env[ref[1]]
            return fresh[ref[1]]

        edit = Edit()
        for p in plan:
            ins = [resolve_in(r) for r in p.inputs]
            while ins and ins[-1] is None:
                ins.pop()  # trailing skipped optionals are simply absent
            ins = [gs.Variable.empty() if t is None else t for t in ins]
            attrs = {k: v for k, v in p.attrs.items() if v is not None}
            node = gs.Node(p.op, self.names.fresh(f"{rule}_{p.op}"), attrs, ins, p.out_vars)
            tag(node, rule)
            graph.nodes.append(node)
            if any(o.shape is None or o.dtype is None for o in p.out_vars):
                infer_node(node)
            edit.created.append(node)
        self._remove_dead(matched, graph_outputs, edit)
        return edit

    @staticmethod
    def _remove_dead(matched: list[gs.Node], graph_outputs: set[int], edit: Edit) -> None:
        """Drop matched nodes none of whose outputs is consumed or a graph output. Nodes whose
        outputs are still used outside the match stay alive."""
        alive = list(matched)
        changed = True
        while changed:
            changed = False
            for n in list(alive):
                if any(o.outputs or id(o) in graph_outputs for o in n.outputs):
                    continue
                producers = [t.inputs[0] for t in n.inputs if t.inputs]
                n.inputs.clear()
                n.outputs.clear()
                alive.remove(n)
                edit.removed.append(n)
                edit.touched.extend(producers)
                changed = True
