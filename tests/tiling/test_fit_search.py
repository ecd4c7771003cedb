"""The tile-width search: a gallop from a linear guess, then a bisection, finds the width plain
bisection finds (every monotone predicate, every guess), in few probes when the guess is right;
and fit() picks the same tiling with it as with plain bisection on stages of every kind."""

from __future__ import annotations

import pytest

from rewriter.target import Resources, TilingLimits
from rewriter.tiling import fit as fit_module
from rewriter.tiling.fit import _last_fitting, fit
from rewriter.tiling.graph import SegGraph
from rewriter.tiling.stages import form

from .tiling_helpers import Chain


def _bisect(fits, lo: int, hi: int, guess: int) -> int:
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


@pytest.mark.parametrize("hi", [1, 2, 3, 7, 16, 33])
def test_every_threshold_and_guess_gives_the_bisection_answer(hi):
    for last in range(1, hi + 1):  # fits(k) holds for k <= last
        for guess in range(-1, hi + 3):  # guesses outside [1, hi] are clamped
            probes = []

            def fits(k, last=last, probes=probes):
                assert 1 <= k <= hi
                probes.append(k)
                return k <= last

            assert _last_fitting(fits, 1, hi, guess) == _bisect(lambda k, last=last: k <= last, 1, hi, guess) == last
            if guess == last:
                assert len(probes) <= 2  # the guess, and the one after it (when there is one)


def test_a_near_guess_takes_fewer_probes_than_bisection():
    count = {"gallop": 0, "bisect": 0}

    def counting(key):
        def fits(k):
            count[key] += 1
            return k <= 700

        return fits

    assert _last_fitting(counting("gallop"), 1, 2000, 695) == _bisect(counting("bisect"), 1, 2000, 695) == 700
    assert count["gallop"] < count["bisect"]


def _stages():
    chains = [
        Chain(16, 2000).conv(256, k=3, pads=(1, 1)).act().conv(256, k=1, pads=(0, 0)),
        Chain(8, 1500).conv(64, k=5, d=2, pads=(4, 4)).act().conv(512, k=3, pads=(1, 1)),
        Chain(8, 999).conv(128, k=4, s=2, pads=(1, 1)).act().conv(128, k=3, pads=(1, 1)),
        Chain(8, 640).convT(64, k=4, s=2, pads=(1, 1)).act().conv(256, k=3, pads=(1, 1)),
        Chain(32, 3000).conv(32, k=3, pads=(1, 1), depthwise=True).conv(512, k=1, pads=(0, 0)),
    ]
    for chain in chains:
        g = SegGraph(chain.model())
        yield g, form(g)


@pytest.mark.parametrize(
    "limits",
    [
        TilingLimits(),
        TilingLimits(channels=64, width=64),
        TilingLimits(channels=64, width=512),
        TilingLimits(resources=Resources(layer_row_values=10_000)),
        TilingLimits(resources=Resources(layer_row_values=3_000, min_tile_width=8)),
    ],
)
def test_fit_picks_what_plain_bisection_picks(limits, monkeypatch):
    tried = 0
    for g, stages in _stages():
        for st in stages:
            if st.kind != "tile":
                continue
            ours = fit(g, st, limits)
            with monkeypatch.context() as patch:
                patch.setattr(fit_module, "_last_fitting", _bisect)
                theirs = fit(g, st, limits)
            assert (ours is None) == (theirs is None)
            if ours is not None:
                assert (ours.block, ours.geo.tw, ours.geo.count, ours.geo.iv) == (
                    theirs.block,
                    theirs.geo.tw,
                    theirs.geo.count,
                    theirs.geo.iv,
                )
                tried += ours.geo.count > 1
    assert tried >= 2  # some stages were really tiled
