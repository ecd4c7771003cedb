"""Random small ONNX models that instantiate a rule's match pattern (for verify_rules).

A random search over a small space: ranks 3-4 (sometimes 2), dims/channels from small sets,
attributes from per-op pools (plus literals the where-clauses compare captures with). Before the
search, simple where-clause constraints and op semantics are solved (constraints.py): required
attribute values and constants, allowed ranks, pinned dims, value requirements (positive /
nonzero / integral) and groups of inputs that need compatible shapes. Invalid draws are filtered
by onnx shape inference, onnxruntime, and the rule's own matcher.

Values are drawn in three regimes, so a rule that only holds for small values fails: "normal"
(standard normal), "wide" (the same scaled by 1e2..1e4) and "boundary" (the constants the rule
mentions, their float neighbours, zeros, negatives). Constants that feed a broadcasting op are
drawn in shapes that broadcast the other operand to a larger shape too; the element type of an
instance is float32, float64 or float16 unless the rule pins it (`dtype(x) == "float32"`). Op
variables take each op of their set in turn (`op_assignments`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import onnx
from onnx import helper, numpy_helper

from rewriter.ir.opfacts import is_onnx_op

from . import ast as A
from .attrs import OPSET, attr_types
from .constraints import SAME_SHAPE, Plan, solve
from .expr import EvalError, Evaluator

DIMS = [1, 2, 3, 4, 5, 7, 8]
CHANNELS = [1, 2, 3, 4, 6, 8, 12]
_ELEMENTWISE2 = {
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Max",
    "Min",
    "Sum",
    "Mean",
    "Equal",
    "Greater",
    "Less",
    "GreaterOrEqual",
    "LessOrEqual",
    "Where",
    "And",
    "Or",
}
_CONVLIKE = {"Conv", "ConvTranspose"}
_POOLS = {"MaxPool", "AveragePool", "LpPool"}
# ops whose inputs broadcast against each other (a constant operand may enlarge the result)
_BROADCASTING = _ELEMENTWISE2 | {"PRelu"}
REGIMES = ("normal", "wide", "boundary")
_DTYPES = [np.float32] * 8 + [np.float64, np.float16]
_SIMPLE_POOLS = {  # attribute pools for ops without a special generator
    "LeakyRelu": {"alpha": [0.0, 0.01, 0.1, 0.2, 1.0]},
    "Elu": {"alpha": [0.5, 1.0]},
    "Selu": {},
    "HardSigmoid": {"alpha": [0.2, 1 / 6], "beta": [0.5]},
    "BatchNormalization": {"epsilon": [1e-5, 1e-3, 0.1]},
    "InstanceNormalization": {"epsilon": [1e-5, 1e-3]},
    "Pad": {"mode": ["constant", "reflect", "edge"]},
    "Gelu": {"approximate": ["none", "tanh"]},
}


class Reject(Exception):
    """This random draw is not a valid instance; try another."""


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _max_inputs(op: str) -> int:
    s = onnx.defs.get_schema(op, OPSET) if is_onnx_op(op) else None
    return s.max_input if s is not None else 1 << 30


def _is_float_name(name: str) -> bool:
    try:
        return np.dtype(name).kind == "f"
    except TypeError:
        return False


_FLIP = {"==": "==", "<": ">", ">": "<", "<=": ">=", ">=": "<="}


def where_hints(rule) -> dict[str, list]:
    """Literals that where-clauses compare captures with (`a == 0.0` -> a: [0.0])."""
    hints: dict[str, list] = {}
    ev = Evaluator({})
    for clause in rule.defn.where:
        for e in A.walk(clause):
            if isinstance(e, A.Bin) and e.op in ("==", "<=", ">=", "<", ">"):
                for name, lit, op in ((e.left, e.right, e.op), (e.right, e.left, _FLIP[e.op])):
                    if isinstance(name, A.Name):
                        try:
                            v = ev.eval(lit, {})
                        except EvalError:
                            continue
                        if isinstance(v, (int, float)) and not isinstance(v, bool):
                            step = 1 if isinstance(v, int) else 0.5  # a value that satisfies it
                            v = v + step if op == ">" else v - step if op == "<" else v
                        hints.setdefault(name.id, []).append(v)
    return hints


def boundary_values(rule) -> list[float]:
    """The numbers a rule mentions (where-clause and attribute literals, file constants), their
    float32 neighbours, negations, doubles and +-1 offsets, plus 0, -0, +-1: where rules break."""
    nums: set[float] = {0.0, 1.0}
    exprs = list(rule.defn.where) + [it.value for n in rule.defn.match for it in n.attrs if it.value is not None]
    for e in exprs:
        for sub in A.walk(e):
            if isinstance(sub, A.Lit) and isinstance(sub.value, (int, float)) and not isinstance(sub.value, bool):
                nums.add(float(sub.value))
    for v in rule.pattern.consts.values():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            nums.add(float(v))
    out: set[float] = set()
    for c in nums:
        f = np.float32(c)
        for v in (
            f,
            np.nextafter(f, np.float32(np.inf)),
            np.nextafter(f, np.float32(-np.inf)),
            -f,
            2 * f,
            f + 1,
            f - 1,
        ):
            if np.isfinite(v):
                out.add(float(v))
    out.add(-0.0)
    return sorted(out)


def producer_hints(rule) -> list[str]:
    """Ops a where-clause wants values produced by (`"Squeeze" in [producer(p) for p in parts]`)."""
    ops = []
    for clause in rule.defn.where:
        subs = list(A.walk(clause))
        if any(isinstance(e, A.Call) and e.func == "producer" for e in subs):
            ops += [e.value for e in subs if isinstance(e, A.Lit) and isinstance(e.value, str) and is_onnx_op(e.value)]
    return list(dict.fromkeys(ops))


class InstanceBuilder:
    def __init__(self, rule, rng: np.random.Generator, dims=None, channels=None):
        self.rule, self.rng = rule, rng
        self.hints = where_hints(rule)
        self.dims, self.channels = list(dims or DIMS), list(channels or CHANNELS)
        self.boundary = boundary_values(rule)
        self.producers = producer_hints(rule)
        self.opvars = {k: sorted(v) for k, v in rule.pattern.opvars.items()}
        self.attempt = -1
        # `y = x` rewrites behave differently on graph outputs and inputs: exercise both
        self.aliases = any(st.op is None for st in rule.defn.rewrite)
        used = set().union(*rule.pattern.node_ops)
        self.spare_op = next(op for op in ("Neg", "Abs", "Softsign", "Sin") if op not in used)

    def op_assignments(self) -> list[dict]:
        """Op variable -> op choices that together use every op of every set at least once; with
        several variables, every combination while there are at most 64 (a Squeeze then an
        Unsqueeze, not only each op after itself)."""
        if not self.opvars:
            return [{}]
        keys, sets = list(self.opvars), list(self.opvars.values())
        if len(keys) > 1 and math.prod(len(v) for v in sets) <= 64:
            return [dict(zip(keys, combo)) for combo in itertools.product(*sets)]
        n = max(len(v) for v in sets)
        return [{k: v[i % len(v)] for k, v in self.opvars.items()} for i in range(n)]

    @staticmethod
    def _topo(nodes: list[A.MatchNode]) -> list[int]:
        produced = {o: i for i, n in enumerate(nodes) for o in n.outputs if o != "_"}
        order, done = [], set()

        def visit(i, stack=()):
            if i in done:
                return
            if i in stack:
                raise Reject("cyclic pattern")
            for a in nodes[i].args:
                if a.name in produced:
                    visit(produced[a.name], stack + (i,))
            done.add(i)
            order.append(i)

        for i in range(len(nodes)):
            visit(i)
        return order

    def choice(self, xs):
        return xs[int(self.rng.integers(len(xs)))]

    def _resolve(self, ops: dict) -> list[A.MatchNode]:
        """The pattern with op variables replaced by this instance's ops and each `...parts`
        input expanded into 1-3 separate inputs."""
        out = []
        self.rest_parts: dict[str, list[str]] = {}
        for pn in self.rule.defn.match:
            args = list(pn.args)
            if args and args[-1].rest:
                rest = args.pop()
                k = int(self.rng.integers(1, 4))
                names = [f"{rest.name}__{j}" for j in range(k)]
                self.rest_parts[rest.name] = names
                args += [A.MatchArg(nm, False, False, rest.pos) for nm in names]
            out.append(dataclasses.replace(pn, op=ops.get(pn.op, pn.op), args=args))
        return out

    # ------------------------------------------------------------------ build
    def build(self, regime: str = "normal", ops: dict | None = None) -> tuple[onnx.ModelProto, dict]:
        """One random instance: (model, feeds). `ops` assigns the rule's op variables (default:
        random); `regime` is how values are drawn (REGIMES)."""
        rng = self.rng
        self.attempt += 1
        self.rank = self.choice([2, 3, 3, 4, 4, 4])
        self.regime = regime
        ops = dict(ops) if ops is not None else {k: self.choice(v) for k, v in self.opvars.items()}
        self.plan: Plan = solve(self.rule, rng, None)
        for k in self.opvars:  # `where: U == "Relu"` pins an op variable
            if isinstance(self.plan.attrs.get(k), str) and self.plan.attrs[k] in self.opvars[k]:
                ops[k] = self.plan.attrs[k]
        self.ops = ops
        self.resolved = self._resolve(ops)
        self.index = {id(n): i for i, n in enumerate(self.resolved)}
        self.plan = solve(self.rule, rng, self.resolved)
        pinned = [np.dtype(d) for d in self.plan.dtypes.values() if _is_float_name(d)]
        self.dtype = pinned[0].type if pinned else self.choice(_DTYPES)
        self.order = self._topo(self.resolved)
        self.group_shapes: dict[str, list[int]] = {}
        self._anon_outs: list[str] = []
        self.shapes: dict[str, list[int]] = {}
        self.dtypes: dict[str, int] = {}
        self.inputs, self.inits, self.nodes, self.feeds = [], [], [], {}
        self.attr_env: dict = {}
        self._k = itertools.count()
        self._hinted = {
            nm
            for names in self.rest_parts.values()
            for j, nm in enumerate(names)
            if self.producers and (j == 0 or rng.random() < 0.5)
        }
        nodes = self.resolved
        consumed = set()
        for i in self.order:
            pn = nodes[i]
            consumed.update(a.name for a in pn.args)
            try:
                self._add_node(pn)
            except (IndexError, ValueError, KeyError, ZeroDivisionError) as e:  # a draw the op cannot take
                raise Reject(f"no {pn.op} instance for these shapes ({type(e).__name__})") from None
        outs = [o for n in nodes for o in n.outputs if o != "_" and o not in consumed]
        if self.aliases and rng.random() < 0.5:  # the replaced values read by a node, not outputs
            for o in outs[:]:
                if self.dtypes[o] in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE):
                    self.nodes.append(helper.make_node(self.spare_op, [o], [f"{o}__read"]))
                    self._infer([f"{o}__read"])
                    outs[outs.index(o)] = f"{o}__read"
        outs += [o for o in self._anon_outs if o not in outs]
        graph = helper.make_graph(
            self.nodes,
            "instance",
            self.inputs,
            [helper.make_tensor_value_info(o, self.dtypes[o], self.shapes[o]) for o in outs],
            self.inits,
        )
        # shapes of interior values too: rules may ask shape() of them (as after rewriter.ir.load)
        graph.value_info.extend(
            helper.make_tensor_value_info(o, self.dtypes[o], self.shapes[o])
            for n in self.nodes
            for o in n.output
            if o and o not in outs
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        return model, self.feeds

    def _draw(self, shape, const: bool, slot: str, dtype) -> np.ndarray:
        """Random values for a new free value or constant, by regime and value requirement."""
        rng = self.rng
        if slot == "integer":  # exponents of a base that may be <= 0: finite results
            return rng.integers(0, 4, size=shape).astype(dtype)
        data = rng.standard_normal(shape)
        if const:
            data = data * 0.5
        if self.regime == "wide":  # large inputs; constants and float16 stay in range of products
            small = np.dtype(dtype) == np.float16
            data = data * self.choice([1e1, 1e2] if small else [1e2, 1e3, 1e4] if not const else [1e1, 1e2])
        elif self.regime == "boundary":
            pool = np.asarray(self.boundary)
            if slot == "positive":  # divisors, variances: the boundary values well away from 0
                pool = pool[pool >= 0.5]
            elif slot == "nonzero":
                pool = pool[np.abs(pool) >= 0.5]
            if pool.size:
                picks = pool[rng.integers(pool.size, size=shape)] if shape else pool[rng.integers(pool.size)]
                data = np.where(rng.random(shape) < 0.7, picks, data)
        if slot == "positive":
            data = np.abs(data) + 0.5 if self.regime != "boundary" else np.where(data > 0, data, np.abs(data) + 0.5)
        elif slot == "nonzero":
            data = np.where(data == 0, 0.5, np.sign(data) * (np.abs(data) + (0.5 if self.regime != "boundary" else 0)))
            data = np.where(data == 0, 0.5, data)
        return np.asarray(data).astype(dtype)

    def _name(self, base: str) -> str:
        return f"{base}__{next(self._k)}"

    def _new_value(self, name: str, shape, const: bool, dtype=None, data=None, slot=""):
        shape = [int(d) for d in shape]
        slot = slot or self.plan.slots.get(name, "")
        dtype = self.dtype if dtype is None else dtype
        if data is None:
            data = self._draw(shape, const, slot, dtype)
        data = np.asarray(data)
        if data.dtype.kind == "f" and name not in self.plan.dtypes:
            data = data.astype(self.dtype)  # the instance's float type, for generated data too
        elif name in self.plan.dtypes:
            data = data.astype(np.dtype(self.plan.dtypes[name]))
        if const or data.dtype.kind in "iub":
            self.inits.append(numpy_helper.from_array(data, name))
        else:
            self.inputs.append(
                helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(data.dtype), list(data.shape))
            )
            self.feeds[name] = data
        self.shapes[name] = list(data.shape)
        self.dtypes[name] = helper.np_dtype_to_tensor_dtype(data.dtype)
        return name

    def _data_shape(self, rank: int | None = None) -> list[int]:
        rank = self.rank if rank is None else rank
        if rank <= 1:
            return [self.choice(self.dims) for _ in range(rank)]
        batch = self.choice([1, 1, 1, 2])
        if rank == 2:
            return [batch, self.choice(self.channels + self.dims)]
        return [batch, self.choice(self.channels)] + [self.choice(self.dims) for _ in range(rank - 2)]

    def _pin(self, name: str, shape: list[int]) -> list[int]:
        """Apply the dims the plan pins (`shape(x)[2] == 1`, squeezed axes)."""
        shape = list(shape)
        for i, d in self.plan.pins(name, len(shape)).items():
            shape[i] = d
        return shape

    def _free_shape(self, name: str, pn: A.MatchNode) -> list[int]:
        """Shape of a free (graph input / initializer) value that is input 0 of `pn`."""
        op, plan = pn.op, self.plan
        rs = plan.rank_set(name)
        pool = [2] if op in ("Gemm",) else [3, 4, 4] if op in _CONVLIKE | _POOLS else None
        if rs:
            r = self.choice([x for x in (pool or [2, 3, 3, 4, 4, 4]) if x in rs] or sorted(rs))
        else:
            r = self.choice(pool) if pool and self.rank not in pool else self.rank
        group = plan.groups.get(name)
        prev = self.group_shapes.get(group)
        if prev is not None and len(prev) == r:
            shape = list(prev)
            if group in plan.concat_groups and self.rng.random() < 0.3 and r:
                i = int(self.rng.integers(r))
                shape[i] = self.choice([1, 2, 3, 4])
        else:
            shape = self._data_shape(r)
        shape = self._pin(name, shape)
        if op == "Squeeze" and not (len(pn.args) > 1 and pn.args[1].name in plan.values) and shape and 1 not in shape:
            shape[int(self.rng.integers(len(shape)))] = 1
        if group is not None and group not in self.group_shapes:
            self.group_shapes[group] = list(shape)
        return shape

    def _bcast_shape(self, ref: list[int], name: str, copy_p: float = 0.7) -> list[int]:
        """A shape broadcasting against `ref` (a suffix of it with some 1s), of an allowed rank."""
        rs = self.plan.rank_set(name)
        if not rs and self.rng.random() < copy_p:
            return self._pin(name, list(ref))
        r = self.choice(sorted(rs)) if rs else self.choice(list(range(len(ref) + 1)))
        base = (
            list(ref[len(ref) - r :])
            if r <= len(ref)
            else [self.choice([1, 2]) for _ in range(r - len(ref))] + list(ref)
        )
        shape = [1 if self.rng.random() < 0.3 else d for d in base]
        return self._pin(name, shape)

    def _broadcast_variant(self, data: np.ndarray, ref: list[int]) -> np.ndarray:
        """A constant the rule pins (`value(c) == 1.0`) in one of the shapes it could have next to
        an operand of shape `ref`, taken in turn: ones that enlarge the result come first."""
        ref = list(ref)
        cands = [[2] + ref, list(data.shape), [], ref, [1] * (len(ref) + 1)]
        ones = [i for i, d in enumerate(ref) if d == 1]
        if ones:
            cands.insert(1, [3 if i == ones[0] else d for i, d in enumerate(ref)])
        shape = cands[self.attempt % len(cands)]
        if data.size == 1:
            return np.full(shape, data.reshape(-1)[0], data.dtype)
        try:
            if list(np.broadcast_shapes(data.shape, tuple(shape))) == list(shape):
                return np.broadcast_to(data, shape).copy()
        except ValueError:
            pass
        return data

    def _produced(self, name: str, shape: list[int], op: str | None = None) -> str:
        """Value `name` of `shape` computed by an op a where-clause asks for (producer(p) == ...)."""
        op = op or self.choice(self.producers)
        if op == "Squeeze" and shape:
            axis = min(2, len(shape))  # [N, C, T] <- [N, C, 1, T]
            src = self._new_value(self._name(f"{name}_src"), shape[:axis] + [1] + shape[axis:], False)
            axes = self._new_value(self._name(f"{name}_axes"), [1], True, data=np.array([axis], np.int64))
            self.nodes.append(helper.make_node("Squeeze", [src, axes], [name]))
        elif op in SAME_SHAPE and op not in ("Clip", "PRelu", "BatchNormalization", "InstanceNormalization"):
            src = self._new_value(self._name(f"{name}_src"), shape, False)
            self.nodes.append(helper.make_node(op, [src], [name]))
        else:
            return self._new_value(name, shape, False)
        self._infer([name])
        return name

    def _attr_pick(self, op: str, pn: A.MatchNode, key: str, pool: list):
        """Value for attribute `key`: the pattern literal, a where-hint, or a pool draw."""
        for it in pn.attrs:
            if it.key == key:
                if not isinstance(it.value, A.Name):
                    return self.rule.pattern.literals[(self.index[id(pn)], key)]
                if it.value.id in self.plan.attrs:  # `where: name == literal`
                    return self.plan.attrs[it.value.id]
                hint = self.hints.get(it.value.id)
                if hint and self.rng.random() < 0.5:
                    return self.choice(hint)
        return self.choice(pool) if pool else None

    def _add_node(self, pn: A.MatchNode):
        op, rng = pn.op, self.rng
        names: list[str | None] = []
        # input 0 first: other inputs and attributes depend on its shape
        args = list(pn.args)

        plan = self.plan

        def value_for(j: int, gen):
            a = args[j]
            if a.name in self.shapes:
                return a.name
            if a.name in plan.values:  # `where: value(a) == literal`
                data = plan.values[a.name]
                ref = (
                    self.shapes.get(names[0])
                    if j and names and names[0]
                    else next((self.shapes[b.name] for b in args if b.name in self.shapes), None)
                )
                if op in _BROADCASTING and ref is not None and data.dtype.kind == "f":
                    data = self._broadcast_variant(data, ref)
                return self._new_value(a.name, data.shape, True, data=data)
            if a.optional and (a.name in plan.absent or j >= _max_inputs(op) or rng.random() < 0.4):
                return None
            name = self._name("any") if a.name == "_" else a.name
            shape, kw = gen(j)
            if shape is None:
                if a.optional:
                    return None
                raise Reject(f"no generator for input {j} of {op}")
            if name in self._hinted:
                return self._produced(name, shape)
            if self.aliases and not a.const and not kw and rng.random() < 0.4:
                return self._produced(name, shape, self.spare_op)  # a computed, not a graph, input
            return self._new_value(name, shape, a.const, **kw)

        # a free first input next to an already-built one takes its shape (binary ops, Concat)
        known = [self.shapes[a.name] for a in args[1:] if a.name in self.shapes]

        def first(j):
            name = args[0].name
            if known and op not in _CONVLIKE | _POOLS:
                if op in _ELEMENTWISE2:
                    return self._bcast_shape(known[0], name, copy_p=0.8), {}
                return self._pin(name, list(known[0])), {}
            return self._free_shape(name, pn), {}

        x0 = value_for(0, first) if args else None
        xs = self.shapes.get(x0) if x0 else None
        if xs is not None and len(xs) != self.rank:
            self.rank = len(xs)
        attrs, gen = self._op_setup(op, pn, xs)
        names.append(x0)
        for j in range(1, len(args)):
            names.append(value_for(j, gen))
        while names and names[-1] is None:
            names.pop()
        outs = []
        for o in pn.outputs:
            outs.append(self._name("out") if o == "_" else o)
        self._anon_outs += [o for o, p in zip(outs, pn.outputs) if p == "_"]
        node = helper.make_node(
            op,
            [n or "" for n in names],
            outs,
            name=f"{op}_{self.index[id(pn)]}",
            **{k: v for k, v in attrs.items() if v is not None},
        )
        self.nodes.append(node)
        self._infer(outs)

    def _infer(self, outs: list[str]):
        g = helper.make_graph(self.nodes, "partial", self.inputs, [], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = 8
        try:
            inf = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        except Exception as e:  # noqa: BLE001  (onnx raises several types from C++)
            raise Reject(f"shape inference failed: {str(e).splitlines()[0][:200]}") from None
        got = {vi.name: vi for vi in inf.graph.value_info}
        for o in outs:
            vi = got.get(o)
            if vi is None or not vi.type.tensor_type.HasField("shape"):
                raise Reject(f"no inferred shape for {o}")
            dims = vi.type.tensor_type.shape.dim
            if any(not d.HasField("dim_value") for d in dims):
                raise Reject(f"dynamic shape for {o}")
            self.shapes[o] = [d.dim_value for d in dims]
            self.dtypes[o] = vi.type.tensor_type.elem_type

    # ------------------------------------------------------------------ per-op knowledge
    def _op_setup(self, op: str, pn: A.MatchNode, xs):
        """Attributes for the node and a generator (slot -> (shape, kwargs)) for its inputs."""
        rng, pick = self.rng, self._attr_pick
        r = len(xs) if xs else self.rank
        same = lambda j: (list(xs), {})  # noqa: E731
        attrs: dict = {}
        if op in _CONVLIKE or op in _POOLS:
            n = r - 2
            if n < 1:
                raise Reject(f"{op} needs rank >= 3")
            C = xs[1]
            k = pick(op, pn, "kernel_shape", [[self.choice([1, 2, 3]) for _ in range(n)]])
            if k is None or len(k) != n:
                k = [self.choice([1, 2, 3]) for _ in range(n)]
            strides = pick(op, pn, "strides", [[1] * n, [self.choice([1, 2]) for _ in range(n)]])
            pads = pick(op, pn, "pads", [[0] * 2 * n, [int(rng.integers(0, kk)) if kk > 1 else 0 for kk in k] * 2])
            attrs.update(strides=strides, pads=pads)
            if op != "AveragePool":
                attrs["dilations"] = pick(op, pn, "dilations", [[1] * n, [self.choice([1, 2]) for _ in range(n)]])
            if op in _POOLS:
                attrs["kernel_shape"] = k
                attrs["ceil_mode"] = pick(op, pn, "ceil_mode", [0, 0, 1])
                if op == "AveragePool":
                    attrs["count_include_pad"] = pick(op, pn, "count_include_pad", [0, 1])
                if op == "MaxPool":
                    attrs["dilations"] = pick(op, pn, "dilations", [[1] * n])
                return self._explicit(attrs, op, pn), (lambda j: (None, {}))
            g = pick(op, pn, "group", _divisors(C))
            if g is None or C % g:
                raise Reject(f"group {g} does not divide {C} channels")
            M = g * self.choice([1, 2, 3]) if self.rng.random() < 0.7 else C
            if M % g:
                M = g
            attrs["group"] = g
            if op == "Conv":
                wshape = [M, C // g] + list(k)
            else:
                wshape = [C, M // g] + list(k)
                attrs["output_padding"] = pick(op, pn, "output_padding", [[0] * n])
            if self.rng.random() < 0.5 and not any(it.key == "kernel_shape" for it in pn.attrs):
                k_attr = None
            else:
                k_attr = list(k)
            attrs["kernel_shape"] = k_attr
            return self._explicit(attrs, op, pn), (
                lambda j: (wshape, {}) if j == 1 else ([M], {}) if j == 2 else (None, {})
            )
        if op in ("BatchNormalization", "InstanceNormalization"):
            attrs["epsilon"] = pick(op, pn, "epsilon", _SIMPLE_POOLS[op]["epsilon"])
            if op == "BatchNormalization" and r < 2:
                raise Reject("BatchNormalization needs rank >= 2")
            return self._explicit(attrs, op, pn), (lambda j: ([xs[1]], {"slot": "positive"} if j == 4 else {}))
        if op == "PRelu":
            return self._explicit(attrs, op, pn), lambda j: (self.choice([[xs[1]] + [1] * (r - 2), [1], list(xs)]), {})
        if op in _ELEMENTWISE2:

            def other(j):
                name = pn.args[j].name
                cands = [
                    list(xs),
                    list(xs),
                    [1],
                    [],
                    [xs[1]] + [1] * (r - 2) if r >= 2 else list(xs),
                    [2] + list(xs),
                ]  # enlarges the result: a rewrite must keep that shape
                rs = self.plan.rank_set(name)
                if rs:
                    cands = [c for c in cands if len(c) in rs] + [self._bcast_shape(xs, name)]
                shape = self._pin(name, self.choice(cands))
                return shape, ({"slot": "nonzero"} if op == "Div" and j == 1 else {})

            return self._explicit(attrs, op, pn), other
        if op == "MatMul":
            return {}, lambda j: ([xs[-1], self.choice(self.dims)], {})
        if op == "Gemm":
            if r != 2:
                raise Reject("Gemm needs rank 2")
            ta = pick(op, pn, "transA", [0, 0, 1])
            tb = pick(op, pn, "transB", [0, 1])
            M, K = (xs[1], xs[0]) if ta else (xs[0], xs[1])
            N = self.choice(self.dims)
            attrs.update(
                transA=ta, transB=tb, alpha=pick(op, pn, "alpha", [1.0, 0.5]), beta=pick(op, pn, "beta", [1.0, 0.5])
            )

            def gemm(j):  # B consistent with transB and the features of A; C broadcasts
                if j == 1:
                    return ([N, K] if tb else [K, N]), {}
                return self.choice([[N], [N], [1, N], [], [1], [M, N], [M, 1]]), {}

            return self._explicit(attrs, op, pn), gemm
        if op == "Reshape":
            total = int(np.prod(xs))
            cands = [[xs[0], -1], [-1], [0, -1], list(reversed(xs)), [xs[0], xs[1], -1], [total]]
            factor = next((f for f in (2, 3) if r >= 2 and xs[1] % f == 0 and xs[1] > f), None)
            if factor:  # channels split in groups (channel shuffles, grouped norms), and merged back
                cands.append([xs[0], factor, xs[1] // factor, *xs[2:]])
            if r >= 3:
                cands.append([xs[0], xs[1] * xs[2], *xs[3:]])
            if r >= 2:  # one group (GroupNorm(1, C) as InstanceNormalization), and back to an earlier shape
                cands.append([xs[0], 1, -1])
                cands += [s for s in self.shapes.values() if int(np.prod(s)) == total and list(s) != list(xs)][:2]
            ranks = self.plan.rank_set(pn.outputs[0])  # `rank(y) == 5` in the where clause
            cands = [c for c in cands if len(c) in ranks] or cands if ranks else cands
            shape = self.choice(cands)
            return {}, lambda j: ([len(shape)], {"data": np.array(shape, np.int64)})
        if op in ("Unsqueeze", "Squeeze"):
            if op == "Unsqueeze":
                axes = [int(rng.integers(-(r + 1), r + 1))]
            elif len(pn.args) > 1 and pn.args[1].name in self.plan.values:
                axes = []  # the plan's value is used
            else:
                ones = [i for i, d in enumerate(xs) if d == 1]
                if not ones:
                    raise Reject("no size-1 axis to squeeze")
                axes = [self.choice(ones)]
                if rng.random() < 0.5:  # counted from the end, as dynamo writes it
                    axes = [axes[0] - r]
            return {}, lambda j: ([1], {"data": np.array(axes, np.int64)})
        if op == "Transpose":
            perm = pick(op, pn, "perm", [list(rng.permutation(r).tolist())])
            return self._explicit({"perm": perm}, op, pn), lambda j: (None, {})
        if op == "Concat":
            axis = pick(op, pn, "axis", list(range(-r, r)))
            if axis is None or not -r <= axis < r:
                raise Reject("bad concat axis")

            def part(j):
                s = list(xs)
                s[axis] = self.choice([1, 2, 3])
                return s, {}

            return {"axis": axis}, part
        if op == "Slice":
            ax = int(rng.integers(0, r))
            d = xs[ax]
            start = int(rng.integers(0, d))
            end = int(rng.integers(start + 1, d + 1))
            vals = {1: [start], 2: [end], 3: [ax - r if rng.random() < 0.3 else ax], 4: [self.choice([1, 1, 2])]}
            return {}, lambda j: ([1], {"data": np.array(vals[j], np.int64)})
        if op in ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL2"):
            axes = sorted(set(int(a) for a in rng.choice(r, size=int(rng.integers(1, r + 1)))))
            if rng.random() < 0.3:
                axes = [a - r for a in axes]
            keep = pick(op, pn, "keepdims", [0, 1])
            if op == "ReduceSum":
                return self._explicit({"keepdims": keep}, op, pn), lambda j: (
                    [len(axes)],
                    {"data": np.array(axes, np.int64)},
                )
            ax = pick(op, pn, "axes", [axes, axes, axes, None])  # None: reduce all
            return self._explicit({"keepdims": keep, "axes": ax}, op, pn), lambda j: (None, {})
        if op == "Pad":
            mode = pick(op, pn, "mode", _SIMPLE_POOLS["Pad"]["mode"])
            padded = {a for a in range(2, r) if rng.random() < 0.6}  # often one spatial axis only
            pads = [int(rng.integers(0, 3)) if i % r in padded else 0 for i in range(2 * r)]

            def padgen(j):
                if j == 1:
                    return [2 * r], {"data": np.array(pads, np.int64)}
                if j == 2:
                    return [], {"data": np.array(self.choice([0.0, 1.5]), np.float32)}
                return None, {}

            return self._explicit({"mode": mode}, op, pn), padgen
        if op == "Resize":  # along the last axis (time, W): scales or sizes, whichever the rule keeps
            mode = pick(op, pn, "mode", ["nearest", "linear"])
            ctm = pick(
                op,
                pn,
                "coordinate_transformation_mode",
                ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"],
            )
            factor = self.choice([2.0, 3.0, 0.5])
            given = {
                1: np.zeros(0, np.float32),  # roi: read by tf_crop_and_resize only
                2: np.array([1.0] * (r - 1) + [factor], np.float32),
                3: np.array(list(xs[:-1]) + [max(1, int(xs[-1] * factor))], np.int64),
            }

            def resized(j):
                return ([int(given[j].size)], {"data": given[j]}) if j in given else (None, {})

            return self._explicit({"mode": mode, "coordinate_transformation_mode": ctm}, op, pn), resized
        if op == "Cast":  # half the draws to the input's own type (a no-op Cast), the rest elsewhere
            own = self.dtypes.get(pn.args[0].name) if pn.args else None
            pool = [own, own] if own is not None else []
            pool += [onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE]
            pool += [onnx.TensorProto.INT32, onnx.TensorProto.INT64, onnx.TensorProto.BOOL]
            return {"to": pick(op, pn, "to", pool)}, same
        if op == "Clip":
            lo, hi = self.choice([-1.0, 0.0]), self.choice([1.0, 6.0])
            return {}, lambda j: ([], {"data": np.array(lo if j == 1 else hi, np.float32)})
        if op == "Flatten":
            return self._explicit({"axis": pick(op, pn, "axis", list(range(0, r + 1)))}, op, pn), lambda j: (None, {})
        if op == "Softmax":
            return self._explicit({"axis": pick(op, pn, "axis", list(range(-r, r)))}, op, pn), lambda j: (None, {})
        # generic: sample pooled / hinted / schema-typed values for captured attributes
        pools = dict(_SIMPLE_POOLS.get(op, {}))
        for it in pn.attrs:
            if it.key and it.key not in pools:
                pools[it.key] = self._typed_pool(op, it.key)
        for key, pool in pools.items():
            attrs[key] = pick(op, pn, key, pool)
        return self._explicit(attrs, op, pn), same

    def _typed_pool(self, op: str, key: str) -> list:
        t = attr_types(op).get(key)
        Ap = onnx.AttributeProto
        return {
            Ap.INT: [0, 1, 2],
            Ap.FLOAT: [0.0, 0.5, 1.0],
            Ap.INTS: [[0], [1]],
            Ap.FLOATS: [[0.5]],
            Ap.STRING: [],
        }.get(t, [])

    def _explicit(self, attrs: dict, op: str, pn: A.MatchNode) -> dict:
        """Sometimes leave default-valued attributes out, to exercise schema defaults."""
        out = {}
        fixed = {it.key for it in pn.attrs if it.key}
        for k, v in attrs.items():
            if v is None:
                continue
            default_like = (
                (isinstance(v, list) and k in ("strides", "dilations") and all(x == 1 for x in v))
                or (isinstance(v, list) and k in ("pads", "output_padding") and not any(v))
                or (k in ("group",) and v == 1)
                or (k in ("transA", "transB") and v == 0)
            )
            if default_like and k not in fixed and self.rng.random() < 0.5:
                continue
            out[k] = v
        return out
