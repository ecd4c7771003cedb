"""Build the nodes of a rule's `rewrite:` block for one match and splice them into the graph.

Everything is evaluated first (helpers may fail); the graph is only edited once all values exist.
Replaced values keep their gs.Variable (so consumers and graph-output names stay), their old
producer gets a placeholder output and dies if nothing else uses it. `y = x` moves y's consumers
to x; when y is a graph output, x's producer is made to write y (the output's name survives).
A rewrite that would change a replaced value's shape or dtype, or builds a node onnx's inference
rejects, raises RuleError naming the rule and the matched node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx_graphsurgeon as gs

from rewriter.ir import objects
from rewriter.ir.annotations import host_reason, origin_of, pin_to_host, set_origin, tag
from rewriter.ir.edit import detach
from rewriter.ir.opfacts import is_onnx_op

from . import ast as A
from .attrs import coerce
from .errors import RuleError
from .expr import EvalError, Evaluator, truth
from .localshape import InferenceFailed, infer_results
from .names import NameAuthority


@dataclass
class _Planned:
    """A node a rewrite will create, its inputs and outputs as references."""

    op: str
    inputs: list  # refs: ("t", tensor) ("none",) ("const", array, literal) ("new", key)
    attrs: dict  #       ("rep", name)
    outputs: list  # refs: ("new", key) | ("rep", name)
    hint: str = ""  # base for fresh value names
    out_vars: list = field(default_factory=list)


@dataclass
class _Plan:
    """What a rewrite will do: nodes to create, values to alias, host pins."""

    nodes: list[_Planned] = field(default_factory=list)
    aliases: list[tuple[str, tuple]] = field(default_factory=list)  # (replaced name, ref)
    pins: list[tuple[list, str]] = field(default_factory=list)  # ([refs] or [], reason)


@dataclass
class Edit:
    """What a committed rewrite changed in the graph."""

    created: list[gs.Node] = field(default_factory=list)
    removed: list[gs.Node] = field(default_factory=list)
    touched: list[gs.Node] = field(default_factory=list)  # kept-alive producers whose uses changed
    pinned: list[gs.Node] = field(default_factory=list)
    rewired: list[gs.Node] = field(default_factory=list)  # consumers moved by `y = x`

    @property
    def changed(self) -> bool:
        return bool(self.created or self.removed or self.pinned or self.rewired)


def _const_array(v, literal: bool = False) -> np.ndarray:
    """A constant's array. A python float literal stays float64 here: it takes the float type of
    the node it feeds (_literal_dtype) from full precision, float32 only when nothing says otherwise."""
    if isinstance(v, np.ndarray):
        return v
    arr = np.asarray(v)
    if arr.dtype.kind == "f":
        return arr if literal else arr.astype(np.float32)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    return arr


def is_op(name: str, ev: Evaluator, opvars=()) -> bool:
    return name in opvars or (not ev.known(name) and is_onnx_op(name))


def _float_dtype(t):
    dt = t.values.dtype if isinstance(t, gs.Constant) else t.dtype
    try:
        dt = np.dtype(dt)
    except TypeError:
        return None
    return dt if dt.kind == "f" else None


def _reroute(consumer: gs.Node, old: gs.Tensor, new: gs.Tensor) -> None:
    for i, t in enumerate(consumer.inputs):
        if t is old:
            consumer.inputs[i] = new


class Rewriter:
    def __init__(self, rule, ev: Evaluator, names: NameAuthority):
        self.rule, self.ev, self.names = rule, ev, names
        self.opvars = rule.pattern.opvars

    anchor: gs.Node | None = None  # the node being rewritten, for messages

    def _err(self, e, msg: str) -> RuleError:
        at = f" at node '{self.anchor.name}'" if self.anchor is not None else ""
        return RuleError(f"{self.rule.file}:{e.pos.line}:{e.pos.col}: rule {self.rule.name}{at}: {msg}")

    # ---------- phase 1: evaluate
    def plan(self, env: dict) -> _Plan:
        out = _Plan()
        defined: dict[str, object] = {}
        match_values = self.rule.match_values
        self._tmp = 0
        for st in self.rule.defn.rewrite:
            if st.op is None:  # `y = expr`: y now means that value
                ref = self._value(st.value, env, defined, out)
                if isinstance(ref, list):
                    if st.outputs[0] in match_values:
                        raise self._err(st, f"'{st.outputs[0]}' cannot be replaced by a list")
                    defined[st.outputs[0]] = ref
                    continue
                if st.outputs[0] in match_values:
                    out.aliases.append((st.outputs[0], ref))
                defined[st.outputs[0]] = ref
                continue
            ins = self._inputs(st.args, env, defined, out)
            attrs = self._attrs(self._op(st.op, env), st.attrs, env)
            outs = []
            for name in st.outputs:
                ref = ("rep", name) if name in match_values else ("new", name)
                defined[name] = ref
                outs.append(ref)
            out.nodes.append(_Planned(self._op(st.op, env), ins, attrs, outs, st.outputs[0]))
        for pin in self.rule.defn.host:
            reason = self._eval(pin.reason, env)
            refs = [defined.get(v, ("t", env.get(v))) for v in pin.values]
            out.pins.append((refs, str(reason)))
        return out

    def _op(self, name: str, env: dict) -> str:
        return env[name] if name in self.opvars else name

    def _eval(self, e: A.Expr, env: dict):
        try:
            return self.ev.function(e)(env)
        except EvalError as ex:
            raise self._err(e, str(ex)) from None

    def _attrs(self, op: str, items: list, env: dict) -> dict:
        attrs: dict = {}
        for item in items:
            if item.rest is not None:
                attrs.update(env[item.rest])
            else:
                v = self._eval(item.value, env)
                attrs[item.key] = None if v is None else coerce(op, item.key, v)
        return attrs

    def _inputs(self, args: list, env, defined, out) -> list:
        refs = []
        for e in args:
            if isinstance(e, A.Spread):
                got = self._value(e.x, env, defined, out)
                if not isinstance(got, list):
                    raise self._err(e, f"'{e.x.text}' is not a list of values")
                refs.extend(got)
            else:
                got = self._value(e, env, defined, out)
                if isinstance(got, list):
                    raise self._err(e, f"'{e.text}' is a list: spread it with '...'")
                refs.append(got)
        return refs

    def _value(self, e: A.Expr, env, defined, out):
        """A ref for expression `e` (or a list of refs, for a comprehension over values)."""
        if isinstance(e, A.Lit) and e.value is None:
            return ("none",)
        if isinstance(e, A.Name):
            if e.id in defined:
                return defined[e.id]
            v = env[e.id] if e.id in env else self._eval(e, env)
            return self._ref(v, literal=False)
        if isinstance(e, A.Call) and is_op(e.func, self.ev, self.opvars):
            op = self._op(e.func, env)
            ins = self._inputs(e.args, env, defined, out)
            self._tmp += 1
            key = f"__tmp{self._tmp}"
            out.nodes.append(_Planned(op, ins, self._attrs(op, e.attrs or [], env), [("new", key)], op.lower()))
            return ("new", key)
        if isinstance(e, A.ListComp):
            seq = self._eval(e.seq, env)
            try:
                items = list(seq)
            except TypeError:
                raise self._err(e.seq, f"not a list: {seq!r}") from None
            return [self._value(e.item, {**env, e.var: item}, defined, out) for item in items]
        if isinstance(e, A.ListE) and any(
            isinstance(x, A.Call) and is_op(x.func, self.ev, self.opvars) for x in e.items
        ):
            return [self._value(x, env, defined, out) for x in e.items]
        v = self._eval(e, env)
        return self._ref(v, literal=not isinstance(v, np.ndarray))

    @staticmethod
    def _ref(v, literal: bool):
        if isinstance(v, list) and all(isinstance(t, gs.Tensor) for t in v):
            return [("t", t) for t in v]  # a list of values (`...parts`): spread it into an op
        if v is None:
            return ("none",)
        if isinstance(v, gs.Tensor):
            return ("t", v)
        return ("const", _const_array(v, literal), literal)

    # ---------- phase 2: edit the graph
    def commit(self, graph: gs.Graph, env: dict, matched: list[gs.Node], plan: _Plan, graph_outputs: set[int]) -> Edit:
        rule = self.rule.name
        anchor = matched[-1]
        replaced: dict[int, gs.Variable] = {}
        fresh: dict[str, gs.Variable] = {}
        edit = Edit()
        for p in plan.nodes:
            for ref in p.outputs:
                if ref[0] == "rep" and id(env[ref[1]]) not in replaced:
                    self._detach_producer(env[ref[1]], replaced)

        def resolve_out(ref, hint):
            if ref[0] == "rep":
                return env[ref[1]]
            if ref[1] not in fresh:
                fresh[ref[1]] = objects.variable(self.names.fresh(f"{rule}_{hint}"))
            return fresh[ref[1]]

        for p in plan.nodes:
            p.out_vars = [resolve_out(r, p.hint) for r in p.outputs]

        def resolve_in(ref):
            kind = ref[0]
            if kind == "none":
                return None
            if kind == "t":
                return replaced.get(id(ref[1]), ref[1])
            if kind == "const":
                return objects.constant(self.names.fresh(f"{rule}_const"), ref[1])
            if kind == "rep":
                return env[ref[1]]
            return fresh[ref[1]]

        origins, by_op = [], {}
        for n in matched:
            names = origin_of(n)
            origins += names
            by_op.setdefault(n.op, []).extend(names)
        for p in plan.nodes:
            refs = list(p.inputs)
            while refs and refs[-1][0] == "none":
                refs.pop()  # trailing skipped optionals are simply absent
            ins = [
                objects.variable("") if r[0] == "none" else resolve_in(self._literal_dtype(r, p, resolve_in))
                for r in refs
            ]
            attrs = {k: v for k, v in p.attrs.items() if v is not None}
            node = objects.node(p.op, self.names.fresh(f"{rule}_{p.op}"), attrs, ins, p.out_vars)
            tag(node, rule)
            set_origin(node, by_op.get(p.op) or origins)
            graph.nodes.append(node)
            self._infer_and_check(node, anchor)
            edit.created.append(node)
        for name, ref in plan.aliases:
            self._alias(graph, env[name], resolve_in(ref), graph_outputs, replaced, edit, anchor)
        self._remove_dead(matched, graph_outputs, edit)
        self._pins(plan, env, matched, fresh, edit)
        return edit

    def _detach_producer(self, v: gs.Variable, replaced: dict) -> None:
        """The old producer of replaced value v writes a placeholder instead."""
        ph = objects.variable(self.names.fresh(f"{v.name}__old"), v.dtype, v.shape)
        for prod in list(v.inputs):
            for k, o in enumerate(prod.outputs):
                if o is v:
                    prod.outputs[k] = ph
        replaced[id(v)] = ph

    @staticmethod
    def _literal_dtype(ref, p: _Planned, resolve_in):
        """A float literal (`Max(x, 0.0)`) takes the float type of the node's tensor inputs."""
        if ref[0] != "const" or not ref[2] or ref[1].dtype.kind != "f":
            return ref
        for r in p.inputs:
            if r[0] in ("t", "rep"):
                dt = _float_dtype(resolve_in(r))
                if dt is not None:
                    return ("const", ref[1].astype(dt), False)
        return ("const", ref[1].astype(np.float32), False)

    def _where(self, anchor: gs.Node) -> str:
        return f"rule {self.rule.name} ({self.rule.file}:{self.rule.line}) at node '{anchor.name}'"

    def _infer_and_check(self, node: gs.Node, anchor: gs.Node) -> None:
        """Fill new outputs' types; a replaced value (which keeps its old type) must get exactly
        the type the new node computes."""
        try:
            results = infer_results(node)
        except InferenceFailed as exc:
            raise RuleError(f"{self._where(anchor)}: the new {node.op} node is invalid: {exc}") from None
        if results is None:
            return
        for o, got in zip(node.outputs, results):
            if got is None:
                continue
            dtype, shape = got
            if o.shape is not None and o.dtype is not None:
                self._same_type(o, dtype, shape, anchor, f"the new {node.op} node")
                continue
            if o.dtype is None:
                o.dtype = dtype
            if o.shape is None and shape is not None:
                o.shape = list(shape)

    def _same_type(self, v: gs.Variable, dtype, shape, anchor: gs.Node, what: str) -> None:
        old_shape = [d if isinstance(d, (int, np.integer)) else None for d in (v.shape or [])]
        new_shape = [d if isinstance(d, (int, np.integer)) else None for d in (shape or [])]
        if (
            v.shape is not None
            and shape is not None
            and (
                len(old_shape) != len(new_shape)
                or any(a is not None and b is not None and a != b for a, b in zip(old_shape, new_shape))
            )
        ):
            raise RuleError(
                f"{self._where(anchor)}: the rewrite changes the shape of '{v.name}' "
                f"from {list(v.shape)} to {list(shape)} ({what})"
            )
        try:
            same = v.dtype is None or dtype is None or np.dtype(v.dtype) == np.dtype(dtype)
        except TypeError:
            same = True
        if not same:
            raise RuleError(
                f"{self._where(anchor)}: the rewrite changes the dtype of '{v.name}' "
                f"from {np.dtype(v.dtype).name} to {np.dtype(dtype).name} ({what})"
            )

    def _alias(
        self,
        graph: gs.Graph,
        y: gs.Variable,
        src: gs.Tensor,
        graph_outputs: set[int],
        replaced: dict,
        edit: Edit,
        anchor: gs.Node,
    ) -> None:
        """`y = src`: y's consumers read src. A graph output keeps its name: src's producer writes
        y instead; when src cannot be renamed (a graph input or output, a constant), an Identity
        writes y (unless y already is an Identity of src)."""
        if src is None or src is y:
            return
        dtype = src.values.dtype if isinstance(src, gs.Constant) else src.dtype
        shape = list(src.values.shape) if isinstance(src, gs.Constant) else src.shape
        self._same_type(y, dtype, shape, anchor, f"replaced by '{src.name}'")
        if id(y) in graph_outputs:
            inputs = {id(t) for t in graph.inputs}
            if isinstance(src, gs.Constant) or len(src.inputs) != 1 or id(src) in graph_outputs or id(src) in inputs:
                prod = y.inputs[0] if y.inputs else None
                if prod is not None and prod.op == "Identity" and prod.inputs and prod.inputs[0] is src:
                    return
                if id(y) not in replaced:
                    self._detach_producer(y, replaced)
                node = objects.node("Identity", self.names.fresh(f"{self.rule.name}_Identity"), {}, [src], [y])
                tag(node, self.rule.name)
                set_origin(node, origin_of(anchor))
                graph.nodes.append(node)
                edit.created.append(node)
                return
            if id(y) not in replaced:
                self._detach_producer(y, replaced)
            producer = src.inputs[0]
            for consumer in list(src.outputs):
                _reroute(consumer, src, y)
                edit.rewired.append(consumer)
            producer.outputs[producer.outputs.index(src)] = y
            if y.dtype is None:
                y.dtype = src.dtype
            edit.rewired.append(producer)
            return
        for consumer in list(y.outputs):
            _reroute(consumer, y, src)
            edit.rewired.append(consumer)

    def _pins(self, plan: _Plan, env: dict, matched: list[gs.Node], fresh: dict, edit: Edit) -> None:
        for refs, reason in plan.pins:
            if refs:
                nodes = []
                for ref in refs:
                    t = (
                        env[ref[1]]
                        if ref[0] == "rep"
                        else fresh.get(ref[1])
                        if ref[0] == "new"
                        else ref[1]
                        if ref[0] == "t"
                        else None
                    )
                    if isinstance(t, gs.Variable) and t.inputs:
                        nodes.append(t.inputs[0])
            else:
                dead = {id(n) for n in edit.removed}
                nodes = edit.created or [n for n in matched if id(n) not in dead]
            for n in nodes:
                if host_reason(n) != reason:
                    pin_to_host(n, reason)
                    edit.pinned.append(n)

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
                detach(n)
                alive = [m for m in alive if m is not n]  # by identity: list.remove uses Node.__eq__
                edit.removed.append(n)
                edit.touched.extend(producers)
                changed = True


__all__ = ["Edit", "Rewriter", "is_op", "truth"]
