"""File-level functions of a rule file, `def NAME(params) = expr`: their checks and their expansion.

A call of a def is replaced by the def's body, each parameter replaced by the argument's expression
(rule expressions have no side effects, so that is the call's value). The expansion happens before
a rule is checked and compiled, so everything after the parser (the load checks, the matcher,
`rules verify` and the prover, traces) sees plain expressions. A body sees its parameters, the
file's `let`s and `target`, and calls helpers, builtins and the defs above it: a rule's bindings
reach it only as arguments, and its comprehension variables are renamed where an argument or a
binding of the rule has the same name (nothing is captured either way).
"""

from __future__ import annotations

import re
from dataclasses import replace

from rewriter.ir.opfacts import is_onnx_op

from . import ast as A


def check_defs(defs: dict[str, A.FuncDef], lets: dict, reserved: set, builtins, helpers, err) -> None:
    """Names, parameters and body names of each def; `err(pos, msg)` makes the located error."""
    order = {name: i for i, name in enumerate(defs)}
    for name, d in defs.items():
        if name in reserved or name in builtins or name in helpers or is_onnx_op(name):
            what = "an ONNX op" if is_onnx_op(name) else "reserved" if name in reserved else "a builtin or helper"
            raise err(d.pos, f"def '{name}': the name is {what}; pick another")
        seen: set[str] = set()
        for p, pos in zip(d.params, d.param_pos):
            if p in seen:
                raise err(pos, f"def '{name}': parameter '{p}' is listed twice")
            if p in reserved or p in lets:
                raise err(
                    pos, f"def '{name}': parameter '{p}' has the name of a {'let' if p in lets else 'reserved name'}"
                )
            seen.add(p)
        _check_body(d, d.body, set(d.params) | set(lets) | set(reserved), defs, order, err)


def _check_body(d: A.FuncDef, e: A.Expr, scope: set, defs: dict, order: dict, err) -> None:
    if isinstance(e, A.Name) and e.id not in scope:
        raise err(
            e.pos,
            f"def '{d.name}': name '{e.id}' is not one of its parameters or a let "
            "(a def sees its parameters, the file's lets and target; pass a rule's values as arguments)",
        )
    if isinstance(e, A.ListComp):
        if e.var in d.params:
            raise err(e.pos, f"def '{d.name}': comprehension variable '{e.var}' hides a parameter")
        _check_body(d, e.seq, scope, defs, order, err)
        _check_body(d, e.item, scope | {e.var}, defs, order, err)
        return
    if isinstance(e, A.Call) and e.func in defs:
        if e.func == d.name:
            raise err(e.pos, f"def '{d.name}' calls itself")
        if order[e.func] > order[d.name]:
            raise err(e.pos, f"def '{d.name}' calls '{e.func}', defined below it (a def calls only the defs above it)")
        _check_arity(e, defs[e.func], err)
    for k in A.children(e):
        _check_body(d, k, scope, defs, order, err)


def _check_arity(call: A.Call, d: A.FuncDef, err) -> None:
    if len(call.args) != len(d.params) or call.attrs or any(isinstance(a, A.Spread) for a in call.args):
        raise err(call.pos, f"'{d.name}' takes {len(d.params)} argument(s) ({', '.join(d.params)}), got {call.text}")


def expand(e: A.Expr, defs: dict[str, A.FuncDef], taken: set, err) -> A.Expr:
    """e with every call of a def replaced by its body; `taken`: the names the rule binds (a body's
    comprehension variable is renamed rather than hide one of them). e itself when it calls none."""
    if isinstance(e, A.Call) and e.func in defs:
        d = defs[e.func]
        _check_arity(e, d, err)
        args = [expand(a, defs, taken, err) for a in e.args]
        avoid = set(taken) | {n.id for a in args for n in A.walk(a) if isinstance(n, A.Name)}
        body = _substitute(d.body, dict(zip(d.params, args)), avoid)
        body = expand(body, defs, taken, err)  # the defs the body calls (all above it: this ends)
        return replace(body, pos=e.pos, text=e.text)  # messages show the call as written
    return A.map_children(e, lambda k: expand(k, defs, taken, err))


def _substitute(e: A.Expr, env: dict, avoid: set) -> A.Expr:
    """e with the parameters in `env` replaced by their arguments; a comprehension variable named
    in `avoid` (an argument's or the rule's name) is renamed first, so nothing is captured."""
    if isinstance(e, A.Name):
        return env.get(e.id, e)
    rename: dict = {}
    if isinstance(e, A.ListComp) and e.var in avoid:
        used = avoid | {n.id for n in A.walk(e.item) if isinstance(n, A.Name)}
        k = 1
        while f"{e.var}_{k}" in used:
            k += 1
        rename = {e.var: A.Name(e.pos, f"{e.var}_{k}", f"{e.var}_{k}")}
    text = e.text
    for names in (rename, env):  # texts (for traces and messages) read as the expanded tree
        if names:
            text = _retext(text, names)
    e = replace(e, text=text)
    if isinstance(e, A.ListComp):
        item = _substitute(e.item, rename, set()) if rename else e.item
        var = rename[e.var].id if rename else e.var
        return replace(e, item=_substitute(item, env, avoid), var=var, seq=_substitute(e.seq, env, avoid))
    return A.map_children(e, lambda k: _substitute(k, env, avoid))


def _retext(text: str, env: dict) -> str:
    """`text` with each parameter name (a whole word outside string literals) spelled as its argument."""
    pattern = re.compile(r"(\"[^\"]*\"|'[^']*')|\b(" + "|".join(map(re.escape, env)) + r")\b")
    return pattern.sub(lambda m: m.group(1) or env[m.group(2)].text, text)


def expand_rule(d: A.RuleDef, taken: set, err) -> None:
    """Expand the def calls of every expression of rule `d` in place (a rewrite line `y = f(x)`
    of a def f is a value line by now, as for helpers)."""

    def each(e: A.Expr) -> A.Expr:
        return expand(e, d.defs, taken, err)

    d.where = [each(w) for w in d.where]
    for st in d.rewrite:
        if st.value is not None:
            st.value = each(st.value)
        st.args = [each(a) for a in st.args]
        st.attrs = A.map_attr_values(st.attrs, each)
    for h in d.host:
        h.reason = each(h.reason)
    for node in d.match:
        node.attrs = A.map_attr_values(node.attrs, each)
