"""Stitch steps (slice / concat / sum) against numpy references, buffer reuse and aliasing."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rt_helpers import affine_model, rand, write_plan

from runtime import Plan, PlanError
from runtime.schema import StepSpec
from runtime.stitch import make_stitch


def ref_slice(x, axis, start, end):
    """Zero-extended x on `axis`, then [start, end)."""
    n = x.shape[axis]
    left, right = max(0, -start), max(0, end - n)
    widths = [(0, 0)] * x.ndim
    widths[axis] = (left, right)
    xp = np.pad(x, widths)
    return np.take(xp, np.arange(start + left, end + left), axis=axis)


def op(kind, inputs=("x",), **raw):
    raw.update(kind=kind)
    return make_stitch(StepSpec("st", kind, "host", list(inputs), ["y"], raw))


def test_slice_halo_zero_pad_both_edges():
    x = rand(1, 3, 2, 10)
    s = op("slice", axis=3, start=-2, end=12)  # halo of 2 beyond each edge
    y = s.run([x])[0]
    assert y.shape == (1, 3, 2, 14)
    np.testing.assert_array_equal(y, ref_slice(x, 3, -2, 12))
    assert not y[..., :2].any() and not y[..., -2:].any()
    # Reused buffer: a second call with other data must not leave stale values in the pads.
    x2 = rand(1, 3, 2, 10, seed=5)
    y2 = s.run([x2])[0]
    assert y2 is y  # same buffer, by design
    np.testing.assert_array_equal(y2, ref_slice(x2, 3, -2, 12))


def test_slice_interior_is_a_view_and_pad_checked():
    x = rand(1, 4, 1, 16)
    y = op("slice", axis=3, start=3, end=9, pad=[0, 0]).run([x])[0]
    assert np.shares_memory(y, x)
    np.testing.assert_array_equal(y, x[..., 3:9])
    y = op("slice", axis=-1, start=12, end=20, pad=[0, 4]).run([x])[0]  # explicit pad that agrees
    np.testing.assert_array_equal(y, ref_slice(x, 3, 12, 20))
    with pytest.raises(PlanError, match="step 'st' .*pad \\[1, 0\\] disagrees"):
        op("slice", axis=3, start=0, end=4, pad=[1, 0]).run([x])
    with pytest.raises(PlanError, match="does not overlap"):
        op("slice", axis=3, start=20, end=24).run([x])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 12), start=st.integers(-5, 11), width=st.integers(1, 10), axis=st.integers(0, 2))
def test_slice_matches_reference(n, start, width, axis):
    shape = [2, 3, 4]
    shape[axis] = n
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) + 1
    end = start + width
    if end <= 0 or start >= n:
        return  # no overlap: rejected, tested above
    np.testing.assert_array_equal(
        op("slice", axis=axis, start=start, end=end).run([x])[0], ref_slice(x, axis, start, end)
    )


def test_concat_and_sum_exact():
    a, b, c = rand(1, 2, 5, seed=1), rand(1, 3, 5, seed=2), rand(1, 1, 5, seed=3)
    cat = op("concat", ["a", "b", "c"], axis=1)
    y = cat.run([a, b, c])[0]
    np.testing.assert_array_equal(y, np.concatenate([a, b, c], axis=1))
    y2 = cat.run([c, b, a])[0]
    assert y2 is y
    np.testing.assert_array_equal(y2, np.concatenate([c, b, a], axis=1))
    p, q, r = rand(1, 4, 3, seed=4), rand(1, 4, 3, seed=5), rand(1, 4, 3, seed=6)
    sm = op("sum", ["p", "q", "r"])
    np.testing.assert_array_equal(sm.run([p, q, r])[0], (p + q) + r)
    with pytest.raises(PlanError, match="cannot add"):
        sm.run([p, rand(1, 5, 3)])
    with pytest.raises(PlanError, match="cannot concatenate"):
        cat.run([a, rand(1, 2, 6)])


def tiled_plan(tmp_path):
    """x [1,2,1,12] -> 3 overlapping temporal tiles (halo 1) -> same 'tile' model -> crop -> concat."""
    affine_model(tmp_path / "tile.onnx", [1, 2, 1, 6], 3.0, 0.5)
    steps = []
    for i in range(3):
        s, e = 4 * i - 1, 4 * i + 5  # 4 wide + halo 1 each side: [-1,5), [3,9), [7,13)
        steps.append(
            {
                "name": f"cut{i}",
                "kind": "slice",
                "inputs": ["x"],
                "outputs": [f"in{i}"],
                "axis": 3,
                "start": s,
                "end": e,
            }
        )
        steps.append(
            {
                "name": f"tile{i}",
                "device": "hailo",
                "kind": "onnx",
                "model": "tile.onnx",
                "inputs": [f"in{i}"],
                "outputs": [f"out{i}"],
            }
        )
        steps.append(
            {
                "name": f"crop{i}",
                "kind": "slice",
                "inputs": [f"out{i}"],
                "outputs": [f"c{i}"],
                "axis": 3,
                "start": 1,
                "end": 5,
            }
        )
    steps.append({"name": "join", "kind": "concat", "inputs": ["c0", "c1", "c2"], "outputs": ["y"], "axis": 3})
    steps.append({"name": "res", "kind": "sum", "inputs": ["y", "x"], "outputs": ["z"]})
    write_plan(tmp_path, [("x", [1, 2, 1, 12])], [("y", [1, 2, 1, 12]), ("z", [1, 2, 1, 12])], steps)
    return Plan.load(tmp_path)


def test_tiled_plan_end_to_end(tmp_path):
    plan = tiled_plan(tmp_path)
    assert len(plan._host.sessions) == 1
    x = rand(1, 2, 1, 12)
    out = plan.run({"x": x}, keep=["in0", "c2"], profile=True)
    ref_y = x * 3.0 + 0.5
    np.testing.assert_allclose(out["y"], ref_y, rtol=1e-6)
    np.testing.assert_allclose(out["z"], ref_y + x, rtol=1e-6)
    np.testing.assert_array_equal(out["in0"], ref_slice(x, 3, -1, 5))
    prof = plan.last_profile
    assert [s.kind for s in prof.steps].count("slice") == 6
    assert prof.stitch_seconds > 0
    stitched = sum(s.seconds for s in prof.steps if s.kind != "onnx")
    assert prof.stitch_seconds == pytest.approx(stitched)


def test_outputs_do_not_alias_reused_buffers(tmp_path):
    plan = tiled_plan(tmp_path)
    x1, x2 = rand(1, 2, 1, 12, seed=1), rand(1, 2, 1, 12, seed=2)
    o1 = plan.run({"x": x1}, keep=["in0", "in1"])
    snapshot = {k: v.copy() for k, v in o1.items()}
    bufs = [b for op in plan._ops for b in op.runner.buffers()]
    assert bufs, "the plan should own reusable stitch buffers"
    for v in o1.values():
        assert not any(np.shares_memory(v, b) for b in bufs)
    o2 = plan.run({"x": x2}, keep=["in0", "in1"])
    for k in o1:  # the second run must not have written into the first run's results
        np.testing.assert_array_equal(o1[k], snapshot[k])
    assert not np.array_equal(o1["y"], o2["y"])
    # Unpadded slice of a plan input is a view of the caller's array, not of a runtime buffer.
    np.testing.assert_array_equal(o2["in1"], x2[..., 3:9])
