"""Per-run timing: where the time of one `Plan.run` went, and a plain-text table of it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StepProfile:
    name: str
    device: str          # the plan's device for the step (host / hailo)
    kind: str            # onnx / slice / concat / sum
    seconds: float       # wall time of the whole step (incl. layout conversion, binding)
    backend_seconds: float = 0.0  # part of it inside session.run / cim.run (0 for stitch steps)
    stitch_seconds: float = 0.0   # part of it stitching on the host (all of a stitch step; a tiled
                                  # step's gather of the tile windows and scatter of the results)


@dataclass
class RunProfile:
    steps: list[StepProfile]
    total_seconds: float
    backend_seconds: float   # sum of time inside the engines' run calls
    stitch_seconds: float    # sum of the steps' stitching (stitch steps, tiled steps' gather/scatter)
    backend: str = ""        # backend name used for hailo steps

    @property
    def overhead_seconds(self) -> float:
        """Everything that is neither engine time nor stitching: the runtime's own cost."""
        return self.total_seconds - self.backend_seconds - self.stitch_seconds


def format_profile(profile: RunProfile) -> str:
    total = profile.total_seconds or 1e-12
    rows = [(s.name, s.device, s.kind, f"{s.seconds * 1e3:.3f}", f"{100 * s.seconds / total:.1f}%")
            for s in profile.steps]
    head = ("step", "device", "kind", "ms", "share")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    fmt = "  ".join(f"{{:{'>' if i >= 3 else '<'}{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    lines.append("")
    for label, sec in (("stitching", profile.stitch_seconds), ("runtime overhead", profile.overhead_seconds),
                       ("total", profile.total_seconds)):
        lines.append(f"{label + ':':<18}{sec * 1e3:9.3f} ms  {100 * sec / total:5.1f}%")
    if profile.backend:
        lines.append(f"{'backend:':<18}{profile.backend}")
    return "\n".join(lines)
