"""`rewrite cache list [--json]` and `rewrite cache prune [--older-than DAYS] [--max-size SIZE] [--all]`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from .hef_cache import CACHE_ENV, HefCache, parse_size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="cache_verb", required=True)
    ls = sub.add_parser("list", help="entries, least recently used first")
    ls.add_argument("--json", action="store_true", help="machine-readable list on stdout")
    pr = sub.add_parser("prune", help="remove entries")
    pr.add_argument("--older-than", type=float, metavar="DAYS", help="entries not used for DAYS days")
    pr.add_argument("--max-size", metavar="SIZE", help="least recently used first, down to SIZE (e.g. 20G)")
    pr.add_argument("--all", action="store_true", help="every entry")
    for q in (ls, pr):
        q.add_argument(
            "--cache", metavar="DIR", help=f"cache folder (default ${CACHE_ENV} or ~/.cache/hailo-rewriter/hef)"
        )


def _size(n: int) -> str:
    for unit in ("B", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n}"


def _row(e) -> dict:
    m = e.meta
    return {
        "key": e.key,
        "segment": m.get("segment"),
        "hw_arch": m.get("hw_arch"),
        "dfc_version": m.get("dfc_version"),
        "hef_size": m.get("hef_size"),
        "size": e.size,
        "created": m.get("created"),
        "last_used": e.last_used,
        "path": str(e.path),
        "valid": bool(m.get("hef_sha256")),
    }


def _fail(msg: str) -> int:
    print(f"rewrite cache: {msg}", file=sys.stderr)
    return 2


def run(args) -> int:
    cache = HefCache(args.cache)
    if args.cache_verb == "list":
        entries = sorted(cache.entries(), key=lambda e: e.last_used)
        if args.json:
            print(json.dumps({"root": str(cache.root), "entries": [_row(e) for e in entries]}, indent=2))
            return 0
        for e in entries:
            r = _row(e)
            used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
            print(
                f"{e.key[:16]}  {r['segment'] or '?':<24} {r['hw_arch'] or '?':<8} {_size(e.size):>7}  "
                f"used {used}  {r['dfc_version'] or '(no metadata)'}"
            )
        print(f"{len(entries)} entries, {_size(sum(e.size for e in entries))} in {cache.root}")
        return 0
    if args.older_than is None and args.max_size is None and not args.all:
        return _fail("prune needs --older-than DAYS, --max-size SIZE or --all")
    if args.older_than is not None and args.older_than < 0:
        return _fail("--older-than must be >= 0 days")
    try:
        max_size = parse_size(args.max_size) if args.max_size is not None else None
    except ValueError as exc:
        return _fail(f"--max-size: {exc}")
    removed = cache.prune(args.older_than, max_size, everything=args.all)
    left = cache.entries()
    print(
        f"removed {len(removed)} entries ({_size(sum(e.size for e in removed))}); "
        f"{len(left)} left ({_size(sum(e.size for e in left))}) in {cache.root}"
    )
    return 0
