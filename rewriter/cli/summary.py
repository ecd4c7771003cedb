"""Human-readable summaries: what runs where and why."""

from __future__ import annotations

from collections import Counter

from rewriter.plan.counts import format_counts, plan_counts


def _si(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(n)


def _names(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", +{len(names) - limit}" if len(names) > limit else "")


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*map(str, row)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def placement_summary(doc: dict, host_limit: int = 40) -> str:
    """The table `rewrite` and `rewrite inspect` print, from a plan document: one row per partition
    segment (a tiled segment is one row; its tiles and stitch steps are summarized below)."""
    segments = doc.get("segments") or [
        {k: s.get(k, 0) for k in ("name", "device", "nodes", "macs", "inputs", "outputs")} for s in doc["steps"]
    ]
    hailo = [s for s in segments if s["device"] == "hailo"]
    rows = [
        [
            s["name"],
            s["device"] + (" (tiled)" if s.get("tiled") else ""),
            s.get("nodes", ""),
            _si(s.get("macs", 0)),
            _names(s["inputs"]),
            _names(s["outputs"]),
        ]
        for s in segments
    ]
    total_macs = sum(s.get("macs", 0) for s in segments) or 1
    share = sum(s.get("macs", 0) for s in hailo) / total_macs
    out = [
        f"Placement for target {doc['target']}: {len(segments)} segments, {len(hailo)} on hailo "
        f"({share:.1%} of MACs); {len(doc['steps'])} plan steps",
        table(["segment", "device", "nodes", "MACs", "inputs", "outputs"], rows),
    ]
    tiled = [s for s in segments if s.get("tiled")]
    if tiled:
        out.append("Tiled segments (each device stage: one HEF, its time tiles in one batched device call):")
        rows = []
        for s in tiled:
            info = s["tiled"]
            device = [st for st in info["stages"] if st["kind"] == "device"]
            shapes = [
                f"{st['tiles']}x{st['tile_width']}" + (f"/{st['block']}ch" if st.get("block") else "") for st in device
            ]
            rows.append(
                [
                    s["name"],
                    len(device),
                    info["host_steps"],
                    _names(sorted(set(shapes)), 3),
                    max([st.get("halo") or 0 for st in device] or [0]),
                ]
            )
        out.append(table(["segment", "device stages", "host steps", "tiles x width[/channel block]", "max halo"], rows))
    out.append(format_counts(doc.get("counts") or plan_counts(doc)))
    widening = doc.get("widening")
    if widening:
        out.append(widening_line(widening))
    host = [r for r in doc.get("placement", []) if r["device"] == "host"]
    causes = doc.get("causes")
    if host and causes is not None:
        out.append(
            f"Sent to host ({len(host)} nodes), by cause; round trips: Hailo segments the cause adds (negative: saved)"
        )
        rows = [[c["cause"], c["nodes"], c["round_trips"], _names(c["examples"], 2)] for c in causes]
        headers = ["cause", "nodes", "round trips", "e.g."]
        origin = {r["node"]: r.get("origin") or [r["node"]] for r in host}
        if any(r.get("origin") and r["origin"] != [r["node"]] for r in host):  # rule-made: the model's names too
            headers.append("source nodes")
            for row, c in zip(rows, causes):
                row.append(_names(list(dict.fromkeys(o for n in c["examples"] for o in origin.get(n, [n]))), 2))
        out.append(table(headers, rows))
    elif host:
        out.append(f"Sent to host ({len(host)} nodes):")
        if any(r.get("origin") for r in host[:host_limit]):  # rule-made nodes: the model's names too
            rows = [
                [r["node"], _names(r.get("origin") or [r["node"]], 2), r["op"], r["reason"]] for r in host[:host_limit]
            ]
            out.append(table(["node", "source nodes", "op", "why"], rows))
        else:
            rows = [[r["node"], r["op"], r["reason"]] for r in host[:host_limit]]
            out.append(table(["node", "op", "why"], rows))
        if len(host) > host_limit:
            counts = Counter(r["reason"].split(" (")[0] for r in host[host_limit:])
            out.append(
                f"... and {len(host) - host_limit} more: "
                + "; ".join(f"{n} x {why}" for why, n in counts.most_common(5))
            )
    return "\n".join(out)


def widening_line(record: dict) -> str:
    """What became of the model's float16/bfloat16 values (rewriter/ir/widen.py)."""
    if "widened" in record:
        types = "/".join(record["widened"])
        return (
            f"Computed in {record['to']}: the model's {types} values (exactly widened; its inputs and outputs "
            f"stay {types}, converted at the edges); --keep-float16 keeps them"
        )
    return f"Kept in {'/'.join(record['kept'])} (not widened: {record['reason']})"


def pass_summary(manager) -> str:
    rows = [[r["pass"], r["runs"], r["changed"], f"{r['seconds'] * 1000:.1f}"] for r in manager.summary()]
    return table(["pass", "runs", "nodes changed", "ms"], rows)
