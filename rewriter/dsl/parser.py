"""Rule text -> RuleDef syntax trees (lark LALR + Indenter); lark errors become RuleSyntaxError."""
from __future__ import annotations

import ast as pyast
import functools
import gc
from pathlib import Path

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.indenter import Indenter

from . import ast as A
from .errors import RuleError, RuleSyntaxError, located
from .parse_cache import cached_tree


class _RuleIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB", "LBRACE"]
    CLOSE_PAREN_types = ["RPAR", "RSQB", "RBRACE"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 4


@functools.lru_cache(maxsize=1)
def _grammar() -> str:
    return (Path(__file__).parent / "grammar.lark").read_text()


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(_grammar(), parser="lalr", postlex=_RuleIndenter(), propagate_positions=True,
                maybe_placeholders=True)


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
        return self.text[meta.start_pos:meta.end_pos]

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
        return A.Call(_pos(meta), self._src(meta), str(c[0]), [x for x in c[1:] if x is not None])

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
        return A.MatchNode([t for t, _ in targets], str(op), args, attrs, _pos(meta), _pos(op))

    def rstmt(self, meta, c):
        targets, op, *rest = c
        attrs = rest.pop() if rest and isinstance(rest[-1], list) else []
        args = [a for a in rest if a is not None]
        return A.RewriteNode([t for t, _ in targets], str(op), args, attrs, _pos(meta), _pos(op),
                             [p for _, p in targets])

    def match_sec(self, meta, c):
        return ("match", c)

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
        return A.RuleDef(str(name), sec["priority"], sec["match"], sec["where"], sec["rewrite"],
                         self.file, _pos(name), _leading_comment(self.lines, name.line))

    def start(self, meta, c):
        return [r for r in c if r is not None]


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


MAX_NESTING = 200  # tree depth: real rules stay near 10, and the stages after parsing recurse


def read_rule_file(path: Path) -> str:
    """A rule file's text; unreadable or not UTF-8 is a one-line rule error."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise RuleError(f"cannot read rule file {path}: {e.strerror or e}") from e
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise RuleSyntaxError(f"not UTF-8 text (byte 0x{data[e.start]:02x}); rule files are UTF-8",
                              str(path), line, col) from None


def parse_text(text: str, filename: str = "<string>") -> list[A.RuleDef]:
    """Parse rule text into RuleDefs (the lark tree through the disk cache); raise RuleSyntaxError
    on bad syntax."""
    src = text if text.endswith("\n") else text + "\n"
    paused = gc.isenabled()
    gc.disable()  # the trees hold no cycles to collect; full collections made big files superlinear
    try:
        tree = cached_tree(lambda s: _parse_tree(s, filename), _grammar(), src)
        return _ToAst(src, filename).transform(tree)
    finally:
        if paused:
            gc.enable()


def _check_nesting(tree: Tree, filename: str, src: str) -> None:
    """Refuse trees deeper than MAX_NESTING (iteratively: the check itself must not recurse)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise RuleSyntaxError(f"expression nested more than {MAX_NESTING} levels deep", filename,
                                  getattr(node.meta, "line", 1), getattr(node.meta, "column", 1))
        stack.extend((c, depth + 1) for c in node.children if isinstance(c, Tree))


def _parse_tree(src: str, filename: str) -> Tree:
    try:
        tree = _lark().parse(src)
    except UnexpectedInput as e:
        line, col = getattr(e, "line", 0) or 0, getattr(e, "column", 0) or 0
        if isinstance(e, UnexpectedToken):
            tok = e.token
            if tok.type == "$END":
                line, col = len(src.splitlines()), 1
                msg = "unexpected end of file"
            elif tok.type in ("_INDENT", "_DEDENT", "_NL"):
                msg = "unexpected indentation or line break"
            else:
                msg = f"unexpected {str(tok)!r}"
            want = sorted(_terminal_text(x) for x in e.expected
                          if not x.startswith("_") and x != "$END")
            if want:
                msg += f" (expected one of: {', '.join(want[:8])})"
        elif isinstance(e, UnexpectedCharacters):
            msg = f"unexpected character {src[e.pos_in_stream]!r}"
        else:
            msg = str(e).splitlines()[0]
        raise located(msg, filename, src, line, col) from None
    except Exception as e:  # Indenter errors (inconsistent dedent)
        raise located(f"bad indentation: {e}", filename, src, 1, 1) from None
    _check_nesting(tree, filename, src)
    return tree
