"""Request decoding: every malformed body is a RequestError with a status, a kind and one line."""

import json

import numpy as np
import pytest

from runtime.schema import TensorSpec
from runtime.serve.payload import PayloadCodec, RequestError

WINDOW = TensorSpec("imu_window", (1, 100, 9), "float32")


def codec(inputs=(WINDOW,), outputs=("latent", "motif_scores")):
    return PayloadCodec(list(inputs), {n: n for n in outputs})


def body(doc) -> bytes:
    return json.dumps(doc).encode()


def rejected(c, raw: bytes) -> RequestError:
    with pytest.raises(RequestError) as info:
        c.decode(raw)
    assert "\n" not in info.value.message
    return info.value


def test_unbatched_and_batched_windows():
    x = np.arange(900, dtype=np.float32).reshape(100, 9) / 7
    feeds, batched = codec().decode(body({"x": x.tolist()}))
    assert not batched and feeds["imu_window"].shape == (1, 100, 9) and feeds["imu_window"].dtype == np.float32
    np.testing.assert_array_equal(feeds["imu_window"][0], x)
    feeds, batched = codec().decode(body({"imu_window": x[None].tolist()}))
    assert batched
    np.testing.assert_array_equal(feeds["imu_window"], x[None])


def test_integers_are_accepted_as_floats():
    feeds, _ = codec().decode(body({"x": [[1] * 9] * 100}))
    assert feeds["imu_window"].dtype == np.float32 and feeds["imu_window"].sum() == 900


@pytest.mark.parametrize(
    "raw, kind",
    [
        (b"", "bad_json"),
        (b"not json", "bad_json"),
        (b"\xff\xfe\x00garbage", "bad_json"),
        (b"[1, 2]", "bad_json"),
        (b'{"x": ' + b"[" * 100000 + b"]" * 100000 + b"}", "bad_json"),  # nesting deeper than the parser allows
        (b'{"y": 1}', "bad_field"),
        (b"{}", "bad_field"),
    ],
)
def test_bad_documents(raw, kind):
    assert (rejected(codec(), raw).status, rejected(codec(), raw).kind) == (422, kind)


@pytest.mark.parametrize(
    "value, kind, says",
    [
        ([[0.0] * 9] * 99, "bad_shape", "[99, 9]"),
        ([[0.0] * 8] * 100, "bad_shape", "[100, 8]"),
        ([[[0.0] * 9] * 100] * 2, "bad_shape", "[2, 100, 9]"),
        ([[0.0] * 9] * 99 + [[0.0] * 8], "bad_shape", "unequal"),
        (5, "bad_shape", "[]"),
        ([["a"] * 9] * 100, "bad_value", "strings"),
        ([[True] * 9] * 100, "bad_value", "booleans"),
        ([[None] * 9] * 100, "bad_value", "non-numeric"),
        ([[1e39] * 9] * 100, "bad_value", "beyond float32"),
        ([[10**30] * 9] * 100, "bad_value", "huge integers"),
    ],
)
def test_bad_values(value, kind, says):
    e = rejected(codec(), body({"x": value}))
    assert (e.status, e.kind) == (422, kind)
    assert says in e.message


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_inf_tokens(token):
    raw = body({"x": [[0.0] * 9] * 100}).replace(b"0.0", token.encode(), 1)
    e = rejected(codec(), raw)
    assert (e.status, e.kind) == (422, "bad_value") and token in e.message


def test_x_and_name_together_is_an_error():
    w = [[0.0] * 9] * 100
    assert rejected(codec(), body({"x": w, "imu_window": w})).kind == "bad_field"


def test_multi_input_plan_uses_input_names():
    c = codec([TensorSpec("a", (1, 4), "float32"), TensorSpec("b", (3,), "float32")])
    feeds, _ = c.decode(body({"a": [1, 2, 3, 4], "b": [1, 2, 3]}))
    assert feeds["a"].shape == (1, 4) and feeds["b"].shape == (3,)
    e = rejected(c, body({"x": [1, 2, 3, 4], "b": [1, 2, 3]}))
    assert e.kind == "bad_field" and "'a'" in e.message and "'b'" in e.message  # says what it expects
    assert rejected(c, body({"a": [1, 2, 3, 4]})).kind == "bad_field"


def test_integer_input_rejects_fractions_and_overflow():
    c = codec([TensorSpec("ids", (1, 3), "int32")])
    feeds, _ = c.decode(body({"x": [1, 2, 3]}))
    assert feeds["ids"].dtype == np.int32
    assert rejected(c, body({"x": [1.5, 2, 3]})).kind == "bad_value"
    assert rejected(c, body({"x": [2**40, 2, 3]})).kind == "bad_value"


def test_encode_mirrors_the_request_form():
    c = codec()
    outs = {"latent": np.arange(64, dtype=np.float32)[None], "motif_scores": np.full((1, 12), 0.5, np.float32)}
    un = c.encode(outs, batched=False)
    assert list(un) == ["latent", "motif_scores"] and len(un["latent"]) == 64 and len(un["motif_scores"]) == 12
    assert c.encode(outs, batched=True)["latent"] == [list(range(64))]


def test_encode_renames_outputs_in_plan_order():
    c = PayloadCodec([WINDOW], {"latent_embeddings": "latent", "scores": "motif_scores"})
    doc = c.encode(
        {"scores": np.zeros((1, 12), np.float32), "latent_embeddings": np.ones((1, 64), np.float32)}, batched=False
    )
    assert list(doc) == ["latent", "motif_scores"] and doc["latent"] == [1.0] * 64
