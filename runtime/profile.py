"""Per-run timing: where the time of one `Plan.run` went, and a plain-text table of it.

The step rows and the runtime overhead partition the run: every step's wall time (engine call,
layout conversion, binding) is in its row; `overhead_seconds` is what is left (input checks,
dispatch, freeing, output checks and copies). Shares add up to 100%."""

from __future__ import annotations

from dataclasses import dataclass

HOST_ONLY_KINDS = ("slice", "concat", "sum", "view")  # numpy work, no engine call


@dataclass
class StepProfile:
    name: str
    device: str  # the plan's device for the step (host / hailo)
    kind: str  # onnx / view / slice / concat / sum
    seconds: float  # wall time of the whole step (incl. layout conversion, binding)
    backend_seconds: float = 0.0  # part of it inside session.run / cim.run (0 for numpy steps)
    stitch_seconds: float = 0.0  # part of it stitching on the host: a tiled step's gather of the tile
    # windows and scatter of the results (numpy steps: see HOST_ONLY_KINDS)


@dataclass
class RunProfile:
    steps: list[StepProfile]
    total_seconds: float
    backend: str = ""  # backend name used for hailo steps

    @property
    def backend_seconds(self) -> float:
        """Time inside the engines' run calls."""
        return sum(s.backend_seconds for s in self.steps)

    @property
    def stitch_seconds(self) -> float:
        """Host-side stitching, part of the step rows: numpy steps (stitch, views) whole, and the
        gather/scatter inside tiled steps."""
        return sum(s.seconds if s.kind in HOST_ONLY_KINDS else s.stitch_seconds for s in self.steps)

    @property
    def device_seconds(self) -> float:
        """Wall time of the hailo steps (engine call plus host<->device layout work)."""
        return sum(s.seconds for s in self.steps if s.device == "hailo")

    @property
    def overhead_seconds(self) -> float:
        """The runtime's own cost between and around the steps."""
        return max(self.total_seconds - sum(s.seconds for s in self.steps), 0.0)

    def __str__(self) -> str:
        return format_profile(self)


def format_profile(profile: RunProfile, with_backend: bool = True) -> str:
    total = profile.total_seconds or 1e-12
    rows = [
        (s.name, s.device, s.kind, f"{s.seconds * 1e3:.3f}", f"{100 * s.seconds / total:.1f}%") for s in profile.steps
    ]
    head = ("step", "device", "kind", "ms", "share")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    fmt = "  ".join(f"{{:{'>' if i >= 3 else '<'}{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    lines.append("")
    for label, sec in (("runtime overhead", profile.overhead_seconds), ("total", profile.total_seconds)):
        lines.append(f"{label + ':':<18}{sec * 1e3:9.3f} ms  {100 * sec / total:5.1f}%")
    lines.append(
        f"{'of which':<18}engines {profile.backend_seconds * 1e3:.3f} ms, numpy stitching/views "
        f"{profile.stitch_seconds * 1e3:.3f} ms"
    )
    if profile.backend and with_backend:
        lines.append(f"{'backend:':<18}{profile.backend}")
    return "\n".join(lines)
