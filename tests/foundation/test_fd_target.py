"""rewriter.target: built-in and custom targets, and their errors."""

from __future__ import annotations

import pytest
from fd_util import conv_chain_model, drop_op, no_cost_rule, save, target_toml

from rewriter.errors import UserError
from rewriter.pipeline import RewriteOptions, rewrite
from rewriter.target import GROUP_POLICIES, available_targets, load_target


@pytest.mark.parametrize("name", ["hailo8", "hailo8l"])
def test_builtin_targets_load(name):
    target = load_target(name)
    assert target.name == name and target.arch == name
    assert target.segment_opset == 17
    assert target.ranks == (4,)
    assert target.ops["Conv"].groups == "dense_or_depthwise"
    assert target.ops["Conv"].const_inputs == (1, 2)
    assert target.ops["Gemm"].ranks == (2,)
    assert target.ops["Pad"].attrs == {"mode": ["constant"]}
    assert target.roundtrip_macs == 200000
    assert target.tiling.channels is None and target.tiling.width is None and not target.tiling.strict
    assert target.tiling.resources.layer_row_values == 131072 and target.tiling.resources.hef_layers == 96
    assert all(p.is_file() for p in target.rule_files)


def test_available_targets_lists_builtins():
    assert {"hailo8", "hailo8l"} <= set(available_targets())


def test_custom_target_path(tmp_path):
    path = target_toml(tmp_path, edit=lambda t: t.replace('name = "hailo8"', 'name = "mine"', 1))
    target = load_target(str(path))
    assert target.name == "mine" and target.path == path.resolve()


def test_with_tiling_overrides_only_what_is_given():
    target = load_target("hailo8").with_tiling(channels=32)
    assert target.tiling.channels == 32 and target.tiling.width is None and target.tiling.strict
    assert target.with_tiling(width=256).tiling.width == 256


def test_resources_are_checked(tmp_path):
    path = target_toml(tmp_path, edit=lambda t: t.replace("hef_layers = 96", "hef_layers = 0"))
    with pytest.raises(UserError, match="positive"):
        load_target(str(path))
    path = target_toml(tmp_path, edit=lambda t: t.replace("hef_layers = 96", "hef_layerz = 96"))
    with pytest.raises(UserError, match="unknown \\[resources\\] key"):
        load_target(str(path))


def test_unknown_target_lists_builtins():
    with pytest.raises(UserError) as info:
        load_target("hailo9000")
    message = str(info.value)
    assert "hailo9000" in message and "hailo8" in message and "hailo8l" in message


def test_missing_target_file(tmp_path):
    with pytest.raises(UserError, match="no such target file"):
        load_target(str(tmp_path / "nothere.toml"))


def test_malformed_toml_is_user_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\n[ops.Conv\n')
    with pytest.raises(UserError, match="not a valid target file"):
        load_target(str(path))


def test_missing_name_is_user_error(tmp_path):
    path = target_toml(tmp_path, edit=lambda t: t.replace('name = "hailo8"\n', "", 1))
    with pytest.raises(UserError, match="bad target description"):
        load_target(str(path))


def test_bad_group_policy_is_user_error(tmp_path):
    path = target_toml(tmp_path, edit=lambda t: t.replace('groups = "dense_or_depthwise"', 'groups = "some"', 1))
    with pytest.raises(UserError, match="groups") as info:
        load_target(str(path))
    assert all(p in str(info.value) for p in GROUP_POLICIES)


def test_missing_rule_file_is_user_error(tmp_path):
    path = target_toml(tmp_path, edit=lambda t: t.replace("rules = []", 'rules = ["nothere.rw"]', 1))
    with pytest.raises(UserError, match="nothere.rw"):
        load_target(str(path))


def test_edited_target_changes_placement(tmp_path):
    model = save(conv_chain_model(), tmp_path / "m.onnx")
    full = load_target(str(target_toml(tmp_path, "full", edit=no_cost_rule)))
    edited = load_target(str(target_toml(tmp_path, "norelu", edit=lambda t: drop_op("Relu")(no_cost_rule(t)))))
    assert "Relu" in full.ops and "Relu" not in edited.ops

    rows = {r["node"]: r for r in rewrite(model, full, RewriteOptions()).placement_rows()}
    assert all(r["device"] == "hailo" for r in rows.values())

    rows = {r["node"]: r for r in rewrite(model, edited, RewriteOptions()).placement_rows()}
    for row in rows.values():
        if row["op"] == "Relu":
            assert row["device"] == "host" and row["reason"] == "op Relu not in target hailo8", row
        else:
            assert row["device"] == "hailo", row


def test_hailo8l_extends_hailo8():
    h8, h8l = load_target("hailo8"), load_target("hailo8l")
    assert (h8l.name, h8l.arch) == ("hailo8l", "hailo8l")
    assert h8l.ops == h8.ops and h8l.rule_files == h8.rule_files and h8l.tiling == h8.tiling
    assert h8l.compile == h8.compile


def test_extends_overlays_tables_and_excludes_ops(tmp_path):
    child = tmp_path / "mine" / "target.toml"
    child.parent.mkdir()
    child.write_text(
        'extends = "hailo8"\nname = "mine"\nexclude_ops = ["Softmax"]\n'
        "[tiling]\nwidth = 256\n[ops.Conv]\nblock_diagonal_max_groups = 8\n"
    )
    t, base = load_target(str(child)), load_target("hailo8")
    assert t.name == "mine" and t.arch == "hailo8"  # arch inherited
    assert t.tiling.width == 256 and t.tiling.channels == base.tiling.channels
    assert "Softmax" not in t.ops and "Relu" in t.ops
    assert t.ops["Conv"].block_diagonal_max_groups == 8
    assert t.ops["Conv"].groups == base.ops["Conv"].groups  # the rest of [ops.Conv] kept
    assert t.rule_files == base.rule_files  # parent's rule paths still resolve


def test_extends_cycle_and_bad_parent_are_user_errors(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('extends = "b.toml"\nname = "a"\n')
    b.write_text('extends = "a.toml"\nname = "b"\n')
    with pytest.raises(UserError, match="'extends' makes a cycle"):
        load_target(str(a))
    a.write_text('extends = "nosuch"\nname = "a"\n')
    with pytest.raises(UserError, match="unknown target 'nosuch'"):
        load_target(str(a))
