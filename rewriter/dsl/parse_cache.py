"""Disk cache of parsed rule files: their syntax trees (rewriter/dsl/ast.py) as plain JSON data (never
pickle: the cache lives in $XDG_CACHE_HOME, and unpickling a planted file there would run its code
during a normal `rewrite`).

Building the LALR parser, parsing the hailo8 rule set and turning lark's trees into syntax trees
costs about 0.3-0.6 s of CPU; a hit skips all three and never imports lark. An entry is named by
the sha256 of the cache version, the grammar, the sources of the code that makes syntax trees
(parser.py, lalr.py, ast.py), lark's version and the text, and holds that key plus the sha256 of
its trees; on reading, the key and digest must match, only syntax-tree classes are built, and every
name and expression text a tree holds must be the rule file's very text at its recorded position.
Anything else (corrupt, truncated, foreign) is reported as a warning and the file is parsed again.
Entries are used only when they and their folder are private to the user (an account that can write
them could as well edit the user's rule files). Any failure to read or write the cache falls back
to parsing.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
import logging
import os
import tempfile
from pathlib import Path

from . import ast as A

CACHE_VERSION = "6-defs"  # [FileScope, RuleDef...] as positional JSON arrays; file-level lets and defs once
log = logging.getLogger("rewriter.rules")
_CLASSES = {
    c.__name__: c
    for c in (A.Pos, A.Name, A.Lit, A.ListE, A.Call, A.Attr, A.Spread, A.ListComp, A.Index, A.Slice, A.Unary, A.Bin)
    + (A.MatchArg, A.AttrItem, A.MatchNode, A.RewriteNode, A.OpVar, A.HostPin, A.RuleDef, A.LetDef, A.FuncDef)
    + (A.FileScope,)
}
_FIELDS = {name: tuple(f.name for f in dataclasses.fields(c)) for name, c in _CLASSES.items()}


def cache_dir() -> Path | None:
    if os.environ.get("REWRITER_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hailo-rewriter" / "rules"


@functools.lru_cache(maxsize=1)
def _code_digest() -> bytes:
    """What else decides the trees a text parses to: this package's parser sources and the lark
    release (its __init__.py, read without importing lark)."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in ("parser.py", "lalr.py", "ast.py", "parse_cache.py"):
        digest.update((here / name).read_bytes())
    spec = importlib.util.find_spec("lark")
    if spec is not None and spec.origin:
        digest.update(Path(spec.origin).read_bytes())
    return digest.digest()


def cache_key(grammar: str, text: str) -> str:
    digest = hashlib.sha256()
    for part in (CACHE_VERSION, grammar, text):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    digest.update(_code_digest())
    return digest.hexdigest()


# ---- syntax trees <-> JSON ------------------------------------------------------------------------
# Positional arrays, decoded by one walk over what json.loads returns (no object_hook, no key per
# field): a node is [class, field values in _FIELDS order...], a Pos [line, col], a list
# ["@l", items...], a dict ["@d", [key, value]...]; names are checked against the rule file as
# each node is built. Against {"@": class, field: ...} objects and a second walk for the check:
# the hailo8 rule set's entries 318 -> 142 KB, decoding and checking them 50 -> 18-27 ms.
_LIST, _DICT = "@l", "@d"


def rules_to_data(x):
    """Syntax trees as the positional arrays above."""
    if type(x) is A.Pos:
        return [x.line, x.col]
    if dataclasses.is_dataclass(x) and type(x).__name__ in _CLASSES:
        name = type(x).__name__
        return [name, *(rules_to_data(getattr(x, k)) for k in _FIELDS[name])]
    if isinstance(x, list):
        return [_LIST, *(rules_to_data(v) for v in x)]
    if isinstance(x, dict):
        return [_DICT, *([k, rules_to_data(v)] for k, v in x.items())]
    if x is None or isinstance(x, (str, bool, int, float)):
        return x
    raise TypeError(f"unexpected {type(x).__name__} in a syntax tree")


class BadEntry(ValueError):
    """A cache entry that is not what this module writes."""


_SIZES = {name: len(fields) + 1 for name, fields in _FIELDS.items()}
_EXPRS = frozenset(name for name, c in _CLASSES.items() if issubclass(c, A.Expr))
_NAMED = frozenset({"RuleDef", "MatchArg", "OpVar", "LetDef", "FuncDef"})


def data_to_rules(payload: str, text: str) -> list:
    """Inverse of rules_to_data (from its JSON text), checked while it is built: anything
    rules_to_data does not write is a BadEntry (only syntax-tree classes, each with exactly its
    fields), and every name and expression text must be the rule file's `text` at its recorded
    position."""
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    lines = len(starts)

    def at(pos, word) -> None:
        if not (
            type(pos) is A.Pos
            and 1 <= pos.line < lines
            and pos.col >= 1
            and type(word) is str
            and word
            and text.startswith(word, starts[pos.line - 1] + pos.col - 1)
        ):
            raise BadEntry("a name does not match the rule file's text")

    def each_at(positions, words) -> None:
        """Names listed in source order (a def's parameters, a node's outputs): each at its place."""
        if type(positions) is not list or type(words) is not list or len(positions) != len(words):
            raise BadEntry("bad name positions")
        last = (0, 0)
        for pos, word in zip(positions, words):
            at(pos, word)
            if (pos.line, pos.col) <= last:  # reordered: the same names, another meaning
                raise BadEntry("names out of source order")
            last = (pos.line, pos.col)

    def check(name: str, node) -> None:
        if name in _EXPRS:
            at(node.pos, node.text)
        elif name in _NAMED:
            at(node.pos, node.name)
            if name == "FuncDef":
                each_at(node.param_pos, node.params)
        elif name == "AttrItem":
            at(node.pos, node.key if node.key is not None else node.rest)
        elif name in ("MatchNode", "RewriteNode"):
            if name == "MatchNode":
                at(node.op_pos, node.op)
            each_at(node.output_pos, node.outputs)

    def build(x):
        if type(x) is not list:
            if x is None or type(x) in (str, bool, int, float):
                return x
            raise BadEntry("not a syntax tree value")
        if not x:
            raise BadEntry("an empty array")
        head = x[0]
        if head == _LIST:
            return [build(v) for v in x[1:]]
        if head == _DICT:
            if not all(type(it) is list and len(it) == 2 and type(it[0]) is str for it in x[1:]):
                raise BadEntry("bad mapping")
            return {k: build(v) for k, v in x[1:]}
        if type(head) is int:
            if len(x) != 2 or type(x[1]) is not int:
                raise BadEntry("bad position")
            return A.Pos(head, x[1])
        if type(head) is not str or _SIZES.get(head) != len(x):
            raise BadEntry("not a syntax tree node")
        node = _CLASSES[head](*[build(v) for v in x[1:]])
        check(head, node)
        return node

    return build(json.loads(payload))


# ---- the cache ------------------------------------------------------------------------------------
def _digest(payload: str) -> str:
    return hashlib.sha256(payload.encode()).hexdigest()


def _private(path: Path) -> bool:
    """Owned by this user and writable by no one else (as ssh demands of its files): entries from
    another account, or in a folder others can write, are not used."""
    st = path.stat()
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _read(path: Path, key: str, text: str, filename: str) -> list | None:
    try:
        if not path.exists():
            return None
        if not (_private(path) and _private(path.parent)):
            log.warning("warning: rule cache entry %s is not private to this user; parsing the rule file again", path)
            return None
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("warning: rule cache entry %s is unreadable (%s); parsing the rule file again", path, exc)
        return None
    try:
        entry = json.loads(raw)
        if (
            not isinstance(entry, dict)
            or entry.get("key") != key
            or not isinstance(entry.get("rules"), str)
            or entry.get("sha256") != _digest(entry["rules"])
        ):
            raise BadEntry("key or checksum mismatch")
        rules = data_to_rules(entry["rules"], text)
        if not (
            isinstance(rules, list)
            and rules
            and isinstance(rules[0], A.FileScope)
            and all(isinstance(r, A.RuleDef) for r in rules[1:])
        ):
            raise BadEntry("the entry holds no rules")
    except (ValueError, RecursionError, TypeError) as exc:
        log.warning("warning: rule cache entry %s is corrupt (%s); parsing the rule file again", path, exc)
        return None
    for rule in rules[1:]:
        rule.file = filename  # the key is the text's: the same text in another file is the same rules
    return rules


def _write(path: Path, key: str, rules: list) -> None:
    payload = json.dumps(rules_to_data(rules), separators=(",", ":"))
    entry = json.dumps({"key": key, "sha256": _digest(payload), "rules": payload})
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not _private(path.parent):
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(entry)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cached_rules(parse, grammar: str, text: str, filename: str) -> list:
    """`parse(text)` (the file's FileScope, then its RuleDefs) through the cache. Only successful
    parses are cached."""
    folder = cache_dir()
    if folder is None:
        return parse(text)
    key = cache_key(grammar, text)
    path = folder / f"{key}.json"
    rules = _read(path, key, text, filename)
    if rules is not None:
        return rules
    rules = parse(text)
    try:
        _write(path, key, rules)
    except (OSError, ValueError, TypeError, RecursionError):
        pass  # an optimization only
    return rules
