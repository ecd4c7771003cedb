"""Per-segment compile results: the table users read and compile_summary.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from rewriter.plan.atomic import write_json_atomic

SUMMARY_FILE = "compile_summary.json"
STAGES = ("parsed", "optimized", "compiled")
# compiled: built in this run; cached: HEF taken from the HEF cache; done: the plan already had this
# HEF (same compile key and sha256), e.g. when resuming a killed run; retiled: replaced by pieces.
OK_STATUSES = ("compiled", "cached", "done", "retiled")


@dataclass
class SegmentResult:
    segment: str
    model: str
    steps: list
    status: str = "pending"  # pending | queued | running | failed | one of OK_STATUSES
    parsed: bool = False
    optimized: bool = False
    compiled: bool = False
    failed_at: str | None = None  # prepare | parse | optimize | compile | write
    error_type: str | None = None
    error: str | None = None
    log: str | None = None
    hef: str | None = None
    hef_sha256: str | None = None
    compile_key: str | None = None  # HEF cache key of what was (or would be) compiled
    har: str | None = None
    calib_windows: int | None = None
    warnings: list = field(default_factory=list)
    shrink: list = field(default_factory=list)  # re-tiling attempts started from this segment
    parent: str | None = None  # segment this piece was re-tiled from
    seconds: float = 0.0

    @property
    def stage(self) -> str:
        """Last stage reached."""
        reached = [s for s in STAGES if getattr(self, s)]
        return reached[-1] if reached else "none"


@dataclass
class CompileSummary:
    out_dir: str
    hw_arch: str
    results: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.status in OK_STATUSES for r in self.results)

    @property
    def failed(self) -> list:
        return [r for r in self.results if r.status == "failed"]

    def to_dict(self) -> dict:
        rows = []
        for r in self.results:
            row = asdict(r)
            row["stage"] = r.stage
            rows.append(row)
        return {"hw_arch": self.hw_arch, "ok": self.ok, "segments": rows}

    def write(self) -> Path:
        path = Path(self.out_dir) / SUMMARY_FILE
        write_json_atomic(path, self.to_dict())
        return path

    def table(self) -> str:
        def mark(flag):
            return "yes" if flag else "-"

        rows = [("segment", "status", "parsed", "optimized", "compiled", "seconds", "error")]
        for r in self.results:
            if r.status == "retiled":
                err = "retiled into " + ", ".join(r.shrink[-1].get("new_steps", [])) if r.shrink else "retiled"
            elif r.error_type:
                err = f"{r.error_type}: {r.error}".splitlines()[0][:160]
            else:
                err = ""
            rows.append(
                (r.segment, r.status, mark(r.parsed), mark(r.optimized), mark(r.compiled), f"{r.seconds:.1f}", err)
            )
        widths = [max(len(row[i]) for row in rows) for i in range(6)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row[:6], widths)) + "  " + row[6] for row in rows]
        counts = [f"{sum(r.status == s for r in self.results)} {s}" for s in ("compiled", "cached", "done")]
        lines.append(
            ", ".join(counts) + f", {len(self.failed)} failed, "
            f"{sum(r.status == 'retiled' for r in self.results)} re-tiled ({self.hw_arch})"
        )
        return "\n".join(line.rstrip() for line in lines)
