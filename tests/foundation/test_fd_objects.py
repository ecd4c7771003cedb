"""rewriter.ir.objects makes the very objects gs's constructors make."""

from collections import OrderedDict

import numpy as np
import onnx_graphsurgeon as gs
import pytest
from onnx_graphsurgeon.util.misc import SynchronizedList

from rewriter.ir import objects


def _shape_of(obj) -> list:
    """(attribute, kind, value or linked ids) in order: what distinguishes two gs objects."""
    out = []
    for key, value in vars(obj).items():
        if isinstance(value, SynchronizedList):
            out.append((key, type(value), value.field_name, value.parent_obj is obj, [id(x) for x in value]))
        else:
            out.append((key, type(value), value))
    return out


@pytest.mark.parametrize(
    "args", [("t",), ("t", np.float32, [1, 4, "T"]), ("", None, None), ("t", np.dtype("int64"), [])]
)
def test_a_variable_is_gs_variable(args):
    mine, theirs = objects.variable(*args), gs.Variable(*args)
    assert type(mine) is gs.Variable
    assert _shape_of(mine) == _shape_of(theirs)
    assert mine.is_empty() == theirs.is_empty()


def test_a_node_is_gs_node_and_links_its_tensors_as_gs_does():
    made = {}
    for how, make_var, make_node in (("gs", gs.Variable, gs.Node), ("ours", objects.variable, objects.node)):
        # tensors of its own for each: gs unlinks by equality, and the two nodes are equal
        x, w = gs.Variable("x", np.float32, [1, 2]), gs.Constant("w", np.ones(2, np.float32))
        y, z = make_var("y"), make_var("z")
        attrs = OrderedDict(axis=1)
        # x read twice: two links to the node, as a value used twice must have
        made[how] = (make_node("Concat", "n", attrs, [x, w, x], [y, z], "ai.onnx"), y, z, x, w)
    (mine, my_y, my_z, x, w), (theirs, their_y, _, their_x, _) = made["ours"], made["gs"]
    assert type(mine) is gs.Node
    assert [k for k, *_ in _shape_of(mine)] == [k for k, *_ in _shape_of(theirs)]
    assert (mine.op, mine.name, mine.attrs, mine.domain) == (theirs.op, theirs.name, theirs.attrs, theirs.domain)
    assert list(mine.inputs) == [x, w, x] and [t.name for t in mine.outputs] == ["y", "z"]
    assert sum(n is mine for n in x.outputs) == 2 and sum(n is theirs for n in their_x.outputs) == 2
    assert sum(n is mine for n in w.outputs) == 1
    assert list(my_y.inputs) == [mine] and list(their_y.inputs) == [theirs]
    assert list(my_z.inputs) == [mine]
    # gs's own edits keep both sides in step afterwards
    mine.inputs[1] = x
    assert not any(n is mine for n in w.outputs) and sum(n is mine for n in x.outputs) == 3
    mine.outputs.clear()
    assert not my_y.inputs and not my_z.inputs


def test_a_node_without_tensors_and_its_default_domain():
    mine, theirs = objects.node("Constant", "c", {}, [], []), gs.Node("Constant", "c", {}, [], [])
    assert _shape_of(mine)[:3] == _shape_of(theirs)[:3]
    assert mine.domain is None and not mine.inputs and not mine.outputs
    mine.outputs.append(objects.variable("v"))
    assert mine.outputs[0].inputs[0] is mine


@pytest.mark.parametrize("values", [np.arange(6, dtype=np.float32).reshape(2, 3), np.array(2, np.int64), np.zeros(0)])
def test_a_constant_is_gs_constant(values):
    mine, theirs = objects.constant("c", values), gs.Constant("c", values)
    assert type(mine) is gs.Constant
    assert _shape_of(mine) == _shape_of(theirs)
    assert mine.values is values and mine.shape == theirs.shape and mine.dtype == theirs.dtype
    assert mine.export_dtype == theirs.export_dtype
    consumer = objects.node("Identity", "i", {}, [mine], [objects.variable("o")])
    assert mine.outputs[0] is consumer and not mine.inputs


def test_a_constant_of_anything_but_an_array_is_refused():
    with pytest.raises(TypeError, match="numpy array"):
        objects.constant("c", [1, 2])


# -- lazy constants: RawValues loads what gs's LazyValues loads, with one copy fewer
RAW_CASES = [
    (np.float32, [4, 3, 5]),
    (np.float16, [2, 7]),
    (np.float64, [3]),
    (np.int64, [2, 2]),
    (np.int8, [9]),
    (np.uint8, [1, 4]),
    (np.bool_, [6]),
    (np.float32, []),  # a scalar
    (np.float32, [0, 3]),  # empty
]


def _tensor_proto(dtype, dims, raw: bool):
    from onnx import numpy_helper

    rng = np.random.default_rng(len(dims))
    values = (rng.standard_normal(dims) * 50).astype(dtype)
    proto = numpy_helper.from_array(values, name="w")
    if not raw:  # the typed field (float_data, int64_data, ...) instead of raw_data
        from onnx import helper

        proto = helper.make_tensor("w", proto.data_type, dims, values.flatten().tolist(), raw=False)
    return proto, values


@pytest.mark.parametrize("raw", [True, False], ids=["raw_data", "typed_field"])
@pytest.mark.parametrize(("dtype", "dims"), RAW_CASES, ids=[f"{np.dtype(d).name}{s}" for d, s in RAW_CASES])
def test_lazy_constant_loads_what_gs_loads(dtype, dims, raw):
    from onnx_graphsurgeon.ir.tensor import LazyValues

    proto, values = _tensor_proto(dtype, dims, raw)
    const = objects.lazy_constant(proto, np.dtype(dtype))
    assert isinstance(const._values, LazyValues) and const.shape == list(dims)  # gs reads it as its own
    got, want = const.values, LazyValues(proto).load()
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, values)


def test_raw_values_are_one_read_only_copy():
    """A raw_data weight is a view of the bytes protobuf hands out; writing into it (which would
    change the weight for every node that reads it) raises instead."""
    proto, _ = _tensor_proto(np.float32, [8, 4], raw=True)
    values = objects.lazy_constant(proto, np.dtype(np.float32)).values
    base = values
    while isinstance(base, np.ndarray):
        base = base.base
    assert not values.flags.writeable and isinstance(base, bytes)
    with pytest.raises(ValueError, match="read-only"):
        values[0, 0] = 1.0
    assert objects.lazy_constant(proto, np.dtype(np.float32)).values is not values  # each load its own


def test_a_malformed_raw_tensor_fails_as_gs_fails():
    from onnx_graphsurgeon.ir.tensor import LazyValues

    proto, _ = _tensor_proto(np.float32, [8, 4], raw=True)
    proto.raw_data = proto.raw_data[:-4]  # one value short
    with pytest.raises(ValueError) as ours:
        _ = objects.lazy_constant(proto, np.dtype(np.float32)).values
    with pytest.raises(ValueError) as theirs:
        LazyValues(proto).load()
    assert str(ours.value) == str(theirs.value)
