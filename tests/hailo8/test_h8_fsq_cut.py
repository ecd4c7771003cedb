"""passes/fsq_cut.py: the FSQ quantizer (tanh bound, scale, Round, STE, rescale) is one host step;
--end-node / --start-node cut the graph by hand."""

import sys

import pytest
from util import REPO, assert_hailo_clean, rewrite_and_run

sys.path.insert(0, str(REPO / "examples"))
import fsq_classifier  # noqa: E402

ENCODER_LAST = {"/encoder/encoder.4/Conv", "conv_add_const_fold_Conv"}


def _export(tmp_path, library):
    if library:
        pytest.importorskip("vector_quantize_pytorch", reason="vector-quantize-pytorch not installed")
    return fsq_classifier.export(tmp_path / "fsq.onnx", use_library=library)


def _step_of(res, node_name):
    steps = res.step_of_node(name=node_name)
    assert len(steps) == 1, (node_name, steps)
    return steps[0]


@pytest.mark.parametrize("library", [False, True], ids=["hand", "vector_quantize_pytorch"])
def test_fsq_quantizer_is_one_host_step(library, tmp_path, target):
    path = _export(tmp_path, library)
    res = rewrite_and_run(path, tmp_path, target=target)
    assert_hailo_clean(res)
    assert res.ops("host")["Conv"] == 0 and res.ops("hailo")["Conv"] == 5  # 3 encoder, head conv, FC
    assert res.ops()["Round"] == 1
    quant = [
        n.name
        for seg in res.segments.values()
        for n in seg.graph.node
        if n.name.startswith("/quantizer/") and n.op_type in ("Tanh", "Mul", "Sub", "Round", "Add", "Div")
    ]
    assert {n.split("/")[-1].split("_")[0] for n in quant} >= {"Tanh", "Mul", "Sub", "Round", "Add", "Div"}
    steps = {_step_of(res, n) for n in quant}
    assert len(steps) == 1, steps
    (fsq_step,) = steps
    names = [s["name"] for s in res.doc["steps"]]
    k = names.index(fsq_step)
    assert res.doc["steps"][k]["device"] == "host"
    before, after = res.doc["steps"][k - 1], res.doc["steps"][k + 1]
    assert before["device"] == "hailo" and after["device"] == "hailo"
    # the Hailo segment before the quantizer ends at the encoder's last conv
    last = res.segments[before["name"]].graph.node[-1]
    assert last.op_type == "Conv" and last.name in ENCODER_LAST, last.name
    assert before["outputs"] == res.doc["steps"][k]["inputs"]
    placement = res.placement()
    assert "FSQ" in placement[[n for n in quant if "Round" in n][0]]["reason"]


def test_fsq_default_target_keeps_encoder_on_hailo(tmp_path):
    # with the real roundtrip_macs the small head may go to the host; the encoder and cut stay
    res = rewrite_and_run(_export(tmp_path, False), tmp_path)
    first = res.doc["steps"][0]
    assert first["device"] == "hailo"
    assert res.segments[first["name"]].graph.node[-1].name in ENCODER_LAST
    assert res.ops("hailo")["Round"] == 0 and res.ops("hailo")["Tanh"] == 0


def test_end_node_cuts_by_hand(tmp_path, target):
    path = _export(tmp_path, False)
    res = rewrite_and_run(path, tmp_path, target=target, extra_args=["--end-node", "/encoder/encoder.2/Conv"])
    assert [s["device"] for s in res.doc["steps"]] == ["hailo", "host"]
    hailo_nodes = [n.name for n in res.hailo[0].graph.node]
    assert hailo_nodes[-1] == "/encoder/encoder.2/Conv" and res.ops("hailo")["Conv"] == 2
    assert res.placement()["/encoder/encoder.3/Relu"]["reason"].startswith("cut by")


def test_start_node_cuts_by_hand(tmp_path, target):
    path = _export(tmp_path, False)
    res = rewrite_and_run(path, tmp_path, target=target, extra_args=["--start-node", "/head/head.0/Conv"])
    assert [s["device"] for s in res.doc["steps"]] == ["host", "hailo", "host"]
    assert res.hailo[0].graph.node[0].name == "/head/head.0/Conv"
    assert res.ops("host")["Conv"] == 3


def test_unknown_cut_node_is_a_user_error(tmp_path, capsys):
    from rewriter.cli import main

    path = _export(tmp_path, False)
    assert main([str(path), "--target", "hailo8", "-o", str(tmp_path / "p"), "-q", "--end-node", "no_such_node"]) == 2
    assert "no_such_node" in capsys.readouterr().err
