"""Property: a random conv chain tiled with random limits equals the untiled chain."""
from __future__ import annotations

import shutil

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rewriter.target import TilingLimits

from .tiling_helpers import Chain, assert_plan_matches, check_tile_limits, write_tiled_plan

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def conv_layer(draw, allow_stride=True):
    k = draw(st.integers(1, 5))
    d = draw(st.integers(1, 8)) if k > 1 else 1
    reach = (k - 1) * d
    mode = draw(st.sampled_from(["same", "causal", "valid", "asym"]))
    pads = {"same": (reach // 2, reach - reach // 2), "causal": (reach, 0), "valid": (0, 0),
            "asym": (draw(st.integers(0, reach)), draw(st.integers(0, reach)))}[mode]
    s = draw(st.integers(1, 2)) if allow_stride else 1
    return dict(k=k, d=d, pads=pads, s=s)


@st.composite
def chains(draw):
    c0 = draw(st.integers(1, 40))
    width = draw(st.integers(64, 320))
    chain = Chain(c0, width, seed=draw(st.integers(0, 2**16)))
    for _ in range(draw(st.integers(1, 6))):
        what = draw(st.sampled_from(["conv", "conv", "depthwise", "residual", "chomp", "convT", "affine"]))
        if what == "conv":
            spec = draw(conv_layer())
            w = (chain.w + sum(spec["pads"]) - (spec["k"] - 1) * spec["d"] - 1) // spec["s"] + 1
            if w < 4:
                continue
            chain.conv(draw(st.integers(1, 150)), **spec)
            chain.act(draw(st.sampled_from(["Relu", "PRelu", "Sigmoid"])))
        elif what == "depthwise":
            spec = draw(conv_layer(allow_stride=False))
            if chain.w + sum(spec["pads"]) - (spec["k"] - 1) * spec["d"] < 4:
                continue
            chain.conv(0, depthwise=True, **spec).act("PRelu")
        elif what == "residual":
            spec = draw(conv_layer(allow_stride=False))
            reach = (spec["k"] - 1) * spec["d"]
            causal = draw(st.booleans())
            pads = (reach, 0) if causal else (reach // 2, reach - reach // 2)
            chain.mark("r").conv(chain.c, k=spec["k"], d=spec["d"], pads=pads).act("Relu").add_from("r")
        elif what == "chomp":
            n = draw(st.integers(1, 3))
            if chain.w - n >= 4:
                chain.chomp(n)
        elif what == "convT":
            if chain.w < 200:
                chain.convT(draw(st.integers(1, 100)), k=draw(st.integers(2, 6)), s=draw(st.integers(1, 3)),
                            pads=(draw(st.integers(0, 1)), draw(st.integers(0, 1))))
        else:
            chain.affine()
    if not chain.nodes:
        chain.conv(8, k=3, pads=(1, 1))
    return chain.model()


limits_st = st.builds(lambda c, w: TilingLimits(channels=c, width=w, tile_when_channels_above_at_width=0),
                      st.sampled_from([32, 64, 200]), st.integers(40, 160))


@SETTINGS
@given(model=chains(), limits=limits_st)
def test_random_chain_tiled_equals_untiled(tmp_path, model, limits):
    out = tmp_path / "plan"
    shutil.rmtree(out, ignore_errors=True)
    _, reports = write_tiled_plan(model, limits, out)
    event(f"tiled={reports[0].tiled}")
    assert_plan_matches(model, out)
    check_tile_limits(out, limits)
