"""The lark side of the rule parser: rule text -> lark tree (LALR + Indenter) -> RuleDef syntax
trees; lark's errors become located RuleSyntaxErrors. Imported only when a rule file is not in
the parse cache (rewriter/dsl/parse_cache.py), so a cached run never loads lark."""

from __future__ import annotations

import ast as pyast
import functools

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.indenter import Indenter

from . import ast as A
from .errors import RuleSyntaxError, located
from .parser import MAX_NESTING, _grammar


class _RuleIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB", "LBRACE"]
    CLOSE_PAREN_types = ["RPAR", "RSQB", "RBRACE"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 4


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(_grammar(), parser="lalr", postlex=_RuleIndenter(), propagate_positions=True, maybe_placeholders=True)


def _pos(x) -> A.Pos:
    if isinstance(x, Token):
        return A.Pos(x.line, x.column)
    return A.Pos(x.line, x.column)


_BINOPS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "mod": "%"}


@v_args(meta=True)
class _ToAst(Transformer):
    def __init__(self, text: str, file: str):
        super().__init__()
        self.text, self.file = text, file
        self.lines = text.splitlines()  # once: per rule it made parsing quadratic in the file size

    def _src(self, meta) -> str:
        return self.text[meta.start_pos : meta.end_pos]

    # ---- expressions
    def name(self, meta, c):
        return A.Name(_pos(meta), str(c[0]), str(c[0]))

    def number(self, meta, c):
        s = str(c[0])
        v = float(s) if any(ch in s for ch in ".eE") else int(s)
        return A.Lit(_pos(meta), s, v)

    def string(self, meta, c):
        return A.Lit(_pos(meta), str(c[0]), pyast.literal_eval(str(c[0])))

    def true(self, meta, c):
        return A.Lit(_pos(meta), "true", True)

    def false(self, meta, c):
        return A.Lit(_pos(meta), "false", False)

    def none(self, meta, c):
        return A.Lit(_pos(meta), "None", None)

    def list(self, meta, c):
        return A.ListE(_pos(meta), self._src(meta), [x for x in c if x is not None])

    def call(self, meta, c):
        attrs = c.pop() if len(c) > 1 and isinstance(c[-1], list) else None
        return A.Call(_pos(meta), self._src(meta), str(c[0]), [x for x in c[1:] if x is not None], attrs)

    def attr(self, meta, c):
        return A.Attr(_pos(meta), self._src(meta), c[0], str(c[1]))

    def spread(self, meta, c):
        return A.Spread(_pos(meta), self._src(meta), c[0])

    def listcomp(self, meta, c):
        return A.ListComp(_pos(meta), self._src(meta), c[0], str(c[1]), c[2])

    def contains(self, meta, c):
        return A.Bin(_pos(meta), self._src(meta), "in", c[0], c[1])

    def not_contains(self, meta, c):
        inner = A.Bin(_pos(meta), self._src(meta), "in", c[0], c[1])
        return A.Unary(_pos(meta), self._src(meta), "not", inner)

    def index(self, meta, c):
        return A.Index(_pos(meta), self._src(meta), c[0], c[1])

    def slice(self, meta, c):
        return A.Slice(_pos(meta), self._src(meta), c[0], c[1], c[2])

    def neg(self, meta, c):
        return A.Unary(_pos(meta), self._src(meta), "-", c[0])

    def not_(self, meta, c):
        return A.Unary(_pos(meta), self._src(meta), "not", c[0])

    def compare(self, meta, c):
        return A.Bin(_pos(meta), self._src(meta), str(c[1]), c[0], c[2])

    def _chain(self, meta, c, op):
        out = c[0]
        for x in c[1:]:
            out = A.Bin(_pos(meta), self._src(meta), op, out, x)
        return out

    def or_(self, meta, c):
        return self._chain(meta, c, "or")

    def and_(self, meta, c):
        return self._chain(meta, c, "and")

    def __default__(self, data, children, meta):
        if data in _BINOPS:
            return A.Bin(_pos(meta), self._src(meta), _BINOPS[data], children[0], children[1])
        return super().__default__(data, children, meta)

    # ---- statements
    def targets(self, meta, c):
        return [(str(t), _pos(t)) for t in c]

    def const_flag(self, meta, c):
        return "const"

    def opt_flag(self, meta, c):
        return "?"

    def marg(self, meta, c):
        return A.MatchArg(str(c[0]), "const" in c[1:], "?" in c[1:], _pos(c[0]))

    def marg_rest(self, meta, c):
        return A.MatchArg(str(c[0]), False, False, _pos(c[0]), rest=True)

    def opset_spread(self, meta, c):
        return ("...", str(c[0]), _pos(c[0]))

    def attr_kv(self, meta, c):
        return A.AttrItem(str(c[0]), c[1], None, _pos(c[0]))

    def attr_rest(self, meta, c):
        return A.AttrItem(None, None, str(c[0]), _pos(c[0]))

    def mattrs(self, meta, c):
        return [x for x in c if x is not None]

    rattrs = mattrs

    def mstmt(self, meta, c):
        targets, op, *rest = c
        attrs = rest.pop() if rest and isinstance(rest[-1], list) else []
        args = [a for a in rest if a is not None]
        return A.MatchNode([t for t, _ in targets], str(op), args, attrs, _pos(meta), _pos(op), [p for _, p in targets])

    def rstmt(self, meta, c):
        targets, value = c
        outs, pos = [t for t, _ in targets], [p for _, p in targets]
        if isinstance(value, A.Call):
            return A.RewriteNode(outs, value.func, value.args, value.attrs or [], _pos(meta), value.pos, pos)
        return A.RewriteNode(outs, None, [], [], _pos(meta), value.pos, pos, value)

    def hoststmt(self, meta, c):
        *names, reason = c
        return A.HostPin([str(n) for n in names if n is not None], reason, _pos(meta))

    def opset_lit(self, meta, c):
        return [t if isinstance(t, tuple) else (str(t), _pos(t)) for t in c]

    def opvar(self, meta, c):
        name, ref = c
        if isinstance(ref, list):
            return A.OpVar(str(name), [_item(x) for x in ref], _pos(name))
        return A.OpVar(str(name), [], _pos(name), str(ref))

    def let_def(self, meta, c):
        return A.LetDef(str(c[0]), c[1], _pos(c[0]))

    def def_def(self, meta, c):
        name, *params, body = c
        params = [t for t in params if t is not None]
        return A.FuncDef(str(name), [str(t) for t in params], body, _pos(name), [_pos(t) for t in params])

    def opset_def(self, meta, c):
        name, ops = c
        return A.OpSetDef(str(name), [_item(x) for x in ops], _pos(name))

    def match_sec(self, meta, c):
        return ("match", c)

    def mspread(self, meta, c):
        return ("...", str(c[0]), _pos(c[0]))

    def pattern_def(self, meta, c):
        name, *lines = c
        return A.PatternDef(str(name), lines, _pos(name))

    def where_sec(self, meta, c):
        return ("where", c)

    def rewrite_sec(self, meta, c):
        return ("rewrite", c)

    def priority(self, meta, c):
        return ("priority", int(str(c[0])))

    def rule_def(self, meta, c):
        name, *parts = c
        sec = {"priority": 0, "where": [], "match": [], "rewrite": []}
        for p in parts:
            if p is not None:
                sec[p[0]] = p[1]
        match = [m for m in sec["match"] if isinstance(m, (A.MatchNode, tuple))]  # tuples: `...NAME` splices
        opvars = {v.name: v for v in sec["match"] if isinstance(v, A.OpVar)}
        rewrite = [r for r in sec["rewrite"] if isinstance(r, A.RewriteNode)]
        host = [h for h in sec["rewrite"] if isinstance(h, A.HostPin)]
        return A.RuleDef(
            str(name),
            sec["priority"],
            match,
            sec["where"],
            rewrite,
            self.file,
            _pos(name),
            _leading_comment(self.lines, name.line),
            opvars,
            host,
        )

    def start(self, meta, c):
        return [r for r in c if r is not None]


def _item(x):
    """An op-set item: an op name, or ("...", SET, pos) to splice a named set in."""
    return x[0] if len(x) == 2 else x


def _leading_comment(lines: list[str], line: int) -> str | None:
    """The `#` comment block right above line `line` (1-based), joined into one line."""
    got: list[str] = []
    i = line - 2
    while i >= 0 and lines[i].strip().startswith("#"):
        got.insert(0, lines[i].strip().lstrip("#").strip())
        i -= 1
    return " ".join(g for g in got if g) or None


def _terminal_text(name: str) -> str:
    """'REWRITE' -> 'rewrite', 'LPAR' -> '(' ; regex terminals keep their name."""
    for t in _lark().terminals:
        if t.name == name and t.pattern.type == "str":
            return t.pattern.value
    return name


def parse_items(src: str, filename: str) -> list:
    """The file's top-level items (rules, `let` and `ops` definitions), op sets not yet resolved."""
    return _ToAst(src, filename).transform(_parse_tree(src, filename))


def _check_nesting(tree: Tree, filename: str, src: str) -> None:
    """Refuse trees deeper than MAX_NESTING (iteratively: the check itself must not recurse)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise RuleSyntaxError(
                f"expression nested more than {MAX_NESTING} levels deep",
                filename,
                getattr(node.meta, "line", 1),
                getattr(node.meta, "column", 1),
            )
        stack.extend((c, depth + 1) for c in node.children if isinstance(c, Tree))


def _parse_tree(src: str, filename: str) -> Tree:
    try:
        tree = _lark().parse(src)
    except UnexpectedInput as e:
        line, col = getattr(e, "line", 0) or 0, getattr(e, "column", 0) or 0
        unclosed = _unclosed_bracket(src, line, col) if line > 0 else None
        if unclosed is not None:
            open_line, end = unclosed
            raise located(
                "unexpected end of line: a bracket opened on this line is not closed", filename, src, open_line, end
            ) from None
        if isinstance(e, UnexpectedToken):
            tok = e.token
            if tok.type == "$END":
                line, col = len(src.splitlines()), 1
                msg = "unexpected end of file"
            elif tok.type in ("_INDENT", "_DEDENT", "_NL"):
                msg = "unexpected indentation or line break"
            else:
                msg = f"unexpected {str(tok)!r}"
            want = sorted(_terminal_text(x) for x in e.expected if not x.startswith("_") and x != "$END")
            if want:
                msg += f" (expected one of: {', '.join(want[:8])})"
        elif isinstance(e, UnexpectedCharacters):
            msg = f"unexpected character {src[e.pos_in_stream]!r}"
        else:
            msg = str(e).splitlines()[0]
        raise located(msg, filename, src, line, col) from None
    except Exception as e:  # noqa: BLE001  (lark's Indenter raises plain errors on a bad dedent)
        raise located(f"bad indentation: {e}", filename, src, _dedent_line(src), 1) from None
    _check_nesting(tree, filename, src)
    return tree


def _unclosed_bracket(src: str, line: int, col: int) -> tuple[int, int] | None:
    """Position (line, col) of the end of the line holding a bracket still open before
    (line, col), when that bracket was opened on an earlier line; else None. Newlines inside
    brackets are not line breaks, so lark reports a missing `)` on the next line."""
    lines = src.splitlines()
    stack: list[tuple[int, int]] = []
    for i in range(min(line, len(lines))):
        text = lines[i] if i < line - 1 else lines[i][: max(col - 1, 0)]
        quote = None
        for j, ch in enumerate(text):
            if quote:
                quote = None if ch == quote else quote
            elif ch in "\"'":
                quote = ch
            elif ch == "#":
                break
            elif ch in "([{":
                stack.append((i + 1, j + 1))
            elif ch in ")]}" and stack:
                stack.pop()
    if stack and stack[-1][0] < line:
        opened = stack[-1][0]
        return opened, len(lines[opened - 1].split("#")[0].rstrip()) + 1
    return None


def _dedent_line(src: str) -> int:
    """First line whose indentation matches no enclosing block (what the Indenter rejects)."""
    stack = [0]
    depth = 0
    for i, text in enumerate(src.splitlines(), 1):
        body = text.split("#")[0]
        if not body.strip():
            continue
        indent = len(text) - len(text.lstrip(" \t"))
        if depth:  # inside brackets: continuation lines do not count
            depth += sum(body.count(c) for c in "([{") - sum(body.count(c) for c in ")]}")
            continue
        if indent > stack[-1]:
            stack.append(indent)
        else:
            while indent < stack[-1]:
                stack.pop()
            if indent != stack[-1]:
                return i
        depth = max(0, sum(body.count(c) for c in "([{") - sum(body.count(c) for c in ")]}"))
    return 1
