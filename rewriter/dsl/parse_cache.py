"""Disk cache of lark parse trees of rule files, as plain JSON data (never pickle: the cache lives in
$XDG_CACHE_HOME, and unpickling a planted file there would run its code during a normal `rewrite`).

Building the LALR parser and parsing the hailo8 rule set costs about 0.3-0.6 s of CPU; a cache hit
skips both (the tree -> rule transform still runs, from the tree). An entry is named by the sha256 of
the cache version, lark's version, the grammar and the text, and holds that key plus the sha256 of
its tree; on reading, the key and digest must match and every token of the tree must be the very
text at its position in the rule file. Anything else (corrupt, truncated, foreign) is reported as a
warning and the file is parsed again. Entries are used only when they and their folder are private
to the user (an account that can write them could as well edit the user's rule files). Any failure
to read or write the cache falls back to parsing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import lark
from lark import Token, Tree
from lark.tree import Meta

CACHE_VERSION = "3-json"  # DSL v2 syntax trees as JSON
_META = ("line", "column", "end_line", "end_column", "start_pos", "end_pos")
log = logging.getLogger("rewriter.rules")


def cache_dir() -> Path | None:
    if os.environ.get("REWRITER_NO_CACHE"):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hailo-rewriter" / "rules"


def cache_key(grammar: str, text: str) -> str:
    digest = hashlib.sha256()
    for part in (CACHE_VERSION, lark.__version__, grammar, text):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


# ---- tree <-> JSON (iterative: a deep tree must not hit the recursion limit) ----------------------
def tree_to_data(tree: Tree) -> list:
    """["T", data, meta, children] for trees, ["K", type, value, pos...] for tokens, None kept."""

    def node(x):
        if isinstance(x, Tree):
            meta = [getattr(x.meta, k, None) for k in _META] if not x.meta.empty else None
            return ["T", str(x.data), meta, [None] * len(x.children)]
        if isinstance(x, Token):
            return ["K", x.type, str(x), x.start_pos, x.line, x.column, x.end_line, x.end_column, x.end_pos]
        if x is None:
            return None
        raise TypeError(f"unexpected {type(x).__name__} in a parse tree")

    root = node(tree)
    stack = [(tree, root)]
    while stack:
        src, dst = stack.pop()
        for i, child in enumerate(src.children):
            dst[3][i] = node(child)
            if isinstance(child, Tree):
                stack.append((child, dst[3][i]))
    return root


class BadEntry(ValueError):
    """A cache entry that is not what this module writes."""


def data_to_tree(data, text: str) -> Tree:
    """Inverse of tree_to_data; every token must be `text` at its recorded position."""

    def node(x):
        if x is None:
            return None
        if not isinstance(x, list) or not x:
            raise BadEntry("not a tree node")
        if x[0] == "K" and len(x) == 9:
            _, type_, value, start, line, col, end_line, end_col, end = x
            if not (
                isinstance(type_, str)
                and isinstance(value, str)
                and isinstance(start, int)
                and isinstance(end, int)
                and text[start:end] == value
            ):
                raise BadEntry("a token does not match the rule file's text")
            return Token(type_, value, start, line, col, end_line, end_col, end)
        if x[0] == "T" and len(x) == 4 and isinstance(x[1], str) and isinstance(x[3], list):
            meta = Meta()
            if x[2] is not None:
                if not (isinstance(x[2], list) and len(x[2]) == len(_META)):
                    raise BadEntry("bad position record")
                for k, v in zip(_META, x[2]):
                    setattr(meta, k, v)
                meta.empty = False
            return Tree(x[1], [None] * len(x[3]), meta)
        raise BadEntry("not a tree node")

    root = node(data)
    if not isinstance(root, Tree):
        raise BadEntry("the entry holds no tree")
    stack = [(data, root)]
    while stack:
        src, dst = stack.pop()
        for i, child in enumerate(src[3]):
            dst.children[i] = node(child)
            if isinstance(dst.children[i], Tree):
                stack.append((child, dst.children[i]))
    return root


# ---- the cache ------------------------------------------------------------------------------------
def _digest(payload: str) -> str:
    return hashlib.sha256(payload.encode()).hexdigest()


def _private(path: Path) -> bool:
    """Owned by this user and writable by no one else (as ssh demands of its files): entries from
    another account, or in a folder others can write, are not used."""
    st = path.stat()
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _read(path: Path, key: str, text: str) -> Tree | None:
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
            or not isinstance(entry.get("tree"), str)
            or entry.get("sha256") != _digest(entry["tree"])
        ):
            raise BadEntry("key or checksum mismatch")
        return data_to_tree(json.loads(entry["tree"]), text)
    except (ValueError, RecursionError, TypeError) as exc:
        log.warning("warning: rule cache entry %s is corrupt (%s); parsing the rule file again", path, exc)
        return None


def _write(path: Path, key: str, tree: Tree) -> None:
    payload = json.dumps(tree_to_data(tree), separators=(",", ":"))
    entry = json.dumps({"key": key, "sha256": _digest(payload), "tree": payload})
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


def cached_tree(parse, grammar: str, text: str) -> Tree:
    """`parse(text)` (a lark tree) through the cache. Only successful parses are cached."""
    folder = cache_dir()
    if folder is None:
        return parse(text)
    key = cache_key(grammar, text)
    path = folder / f"{key}.json"
    tree = _read(path, key, text)
    if tree is not None:
        return tree
    tree = parse(text)
    try:
        _write(path, key, tree)
    except (OSError, ValueError, TypeError, RecursionError):
        pass  # an optimization only
    return tree
