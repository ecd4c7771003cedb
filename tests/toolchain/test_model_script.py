"""Model script text from the target's [compile] settings."""

import pytest

from rewriter.toolchain.model_script import LOW_CALIB_WARNING, build_model_script


def test_defaults_match_model_zoo_commands():
    text, warnings = build_model_script(n_calib=1100)
    assert text.splitlines() == [
        "model_optimization_flavor(optimization_level=2, compression_level=0, batch_size=8)",
        "model_optimization_config(calibration, batch_size=8, calibset_size=1024)",
        "performance_param(compiler_optimization_level=max)",
        "allocator_param(timeout=25m)",
        "resources_param(strategy=greedy, max_compute_utilization=0.8, max_memory_utilization=0.8)",
    ]
    assert warnings == []


def test_settings_extra_and_user_script_in_order():
    settings = {
        "optimization_level": 4,
        "compression_level": 1,
        "calibration_batch_size": 16,
        "calibset_size": 2048,
        "compiler_optimization_level": 1,
        "allocator_timeout": "2h",
        "resources": {"max_compute_utilization": 0.6},
        "extra": ["quantization_param({conv*}, precision_mode=a16_w16)"],
    }
    text, _ = build_model_script(settings, n_calib=4096, user_script="context_switch_param(mode=enabled)\n")
    lines = text.splitlines()
    assert lines[0] == "model_optimization_flavor(optimization_level=4, compression_level=1, batch_size=16)"
    assert lines[1] == "model_optimization_config(calibration, batch_size=16, calibset_size=2048)"
    assert lines[2] == "performance_param(compiler_optimization_level=1)"
    assert lines[3] == "allocator_param(timeout=2h)"
    assert lines[4] == "resources_param(strategy=greedy, max_compute_utilization=0.6, max_memory_utilization=0.8)"
    assert lines[5:] == ["quantization_param({conv*}, precision_mode=a16_w16)", "context_switch_param(mode=enabled)"]


def test_none_drops_a_command():
    text, _ = build_model_script({"allocator_timeout": None, "resources": None})
    assert "allocator_param" not in text and "resources_param" not in text


def test_fewer_than_1024_samples_warns():
    _, warnings = build_model_script(n_calib=1000)
    assert len(warnings) == 1 and LOW_CALIB_WARNING in warnings[0] and "1000" in warnings[0]
    _, warnings = build_model_script({"optimization_level": 0}, n_calib=10)
    assert not any(LOW_CALIB_WARNING in w for w in warnings)  # already level 0: nothing is lost
    _, warnings = build_model_script({"calibset_size": 2048}, n_calib=1500)
    assert warnings == ["calibset_size=2048 but only 1500 samples are available"]


def test_unknown_key_warns_and_bad_values_raise():
    _, warnings = build_model_script({"optimisation_level": 2})
    assert "unknown [compile] setting 'optimisation_level'" in warnings[0]
    with pytest.raises(ValueError, match="optimization_level"):
        build_model_script({"optimization_level": 7})
    with pytest.raises(ValueError, match="not a plain token"):
        build_model_script({"allocator_timeout": "25m)\nallocator_param(x"})
