"""NCHW <-> HailoRT host layout: values, contiguity, and no copy when the transpose is a reshape."""

import numpy as np
import pytest
from rt_helpers import rand

from runtime import PlanError
from runtime.layout import channels_last_shape, from_host, to_host


@pytest.mark.parametrize(
    "shape,host,copy",
    [
        ((1, 3, 4, 5), (4, 5, 3), True),
        ((1, 1, 4, 5), (4, 5, 1), False),  # C == 1
        ((1, 6, 1, 1), (1, 1, 6), False),  # H == W == 1
        ((1, 1, 1, 7), (1, 7, 1), False),  # [1,1,1,T]
        ((1, 3, 1, 7), (1, 7, 3), True),  # H == 1 alone still reorders C and W
        ((1, 6), (6,), False),  # dense
        ((1, 4, 9), (9, 4), True),  # 1-D feature map
    ],
)
def test_round_trip_and_copy_rules(shape, host, copy):
    x = rand(*shape)
    assert channels_last_shape(shape) == host
    h = to_host(x, host)
    assert h.shape == host and h.dtype == np.float32 and h.flags.c_contiguous
    ref = np.moveaxis(x[0], 0, -1) if x.ndim > 2 else x[0]
    np.testing.assert_array_equal(h, ref)
    assert np.shares_memory(h, x) is not copy
    back = from_host(h, shape)
    assert back.shape == shape and back.flags.c_contiguous
    np.testing.assert_array_equal(back, x)
    assert np.shares_memory(back, h) is not copy


def test_to_host_handles_views_and_dtypes():
    big = rand(1, 1, 4, 10)
    view = big[..., 2:7]  # non-contiguous even though C == 1
    h = to_host(view, (4, 5, 1))
    assert h.flags.c_contiguous
    np.testing.assert_array_equal(h[..., 0], view[0, 0])
    h = to_host(rand(1, 2, 3, 3).astype(np.float64), (3, 3, 2))
    assert h.dtype == np.float32
    # HEF shapes may flatten differently (e.g. dense head given (1, 1, C)): only the size must agree.
    np.testing.assert_array_equal(to_host(rand(1, 6), (1, 1, 6)).ravel(), rand(1, 6).ravel())
    with pytest.raises(PlanError, match="does not fit"):
        to_host(rand(1, 2, 3, 3), (3, 3, 3))
    with pytest.raises(PlanError, match="does not fit"):
        from_host(np.zeros((3, 3, 3), np.float32), (1, 2, 3, 3))
