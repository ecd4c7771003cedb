"""The parity gate of `rewrite check`: is a plan's output as close to the original's as float32
allows, and which criterion decided?

Per output, with `scale = max|reference|`:

* **floor**: the plan passes when its max abs error is within the *noise floor*: `--atol`, or
  `NOISE_MARGIN` times how much onnxruntime's result for the original model changes between graph
  optimization levels (all vs none) on the same inputs. Nothing can be judged more precisely than
  the reference reproduces itself: a sigmoid map that peaks at 7e-4 computed from logits of
  magnitude 10 differs from itself by 2e-4 of its own scale (PP-OCRv4 det), which a relative gate
  alone would call a failure. A float16 original is further off its own exact arithmetic: for
  float16 outputs the noise also counts how far it is from itself computed in float32
  (rewriter/ir/widen.py), and the floor adds one float16 ulp at the output's scale, the finest
  difference two float16 results can show. An original with random ops differs from itself on
  a second run: that difference is noise too.
* **relative** (float backends): otherwise it passes when cosine >= the cosine gate and
  max abs error <= `--max-rel-error` x scale.
* **cosine** (quantized backends): otherwise it passes when cosine >= the cosine gate.
"""

from __future__ import annotations

from dataclasses import dataclass

NOISE_MARGIN = 2.0  # the plan may differ from the original by twice what onnxruntime differs from itself


@dataclass(frozen=True)
class Gate:
    min_cosine: float
    max_rel_error: float | None  # None: quantized backend, cosine only
    atol: float = 0.0  # user floor (--atol)

    def floor(self, noise: float, quantum: float = 0.0) -> float:
        """`quantum`: the output type's resolution (one float16 ulp at the output's scale), below
        which two results of that type cannot differ but by rounding."""
        return max(self.atol, NOISE_MARGIN * noise + quantum)

    def judge(self, row: dict, noise: float, quantum: float = 0.0) -> tuple[bool, str]:
        """(passed, the criterion that decided) for one output's worst-case row (cosine, max_abs, max_rel)."""
        floor = self.floor(noise, quantum)
        if row["max_abs"] <= floor:
            return True, "floor"
        if row["cosine"] < self.min_cosine:
            return False, "cosine"
        if self.max_rel_error is not None:
            return row["max_rel"] <= self.max_rel_error, "relative"
        return True, "cosine"

    def describe(self) -> str:
        rel = "" if self.max_rel_error is None else f", max abs error <= {self.max_rel_error:g} x max|reference|"
        floor = f"--atol {self.atol:g} or " if self.atol else ""
        return (
            f"gate cosine >= {self.min_cosine}{rel}; or max abs error within the noise floor "
            f"({floor}{NOISE_MARGIN:g}x onnxruntime's own difference on the original model)"
        )
