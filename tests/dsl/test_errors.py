"""Load-time errors: file:line:col, the source line and a caret under the culprit."""

import pytest
from dsl_util import DATA

from rewriter.dsl import RuleSyntaxError, load_rule_files, parse_rules

GOOD = """rule ok:
    match:
        y = Relu(x)
    rewrite:
        y = Sigmoid(x)
"""


def _err(text: str) -> RuleSyntaxError:
    with pytest.raises(RuleSyntaxError) as ei:
        parse_rules(text, "bad.rw")
    return ei.value


def _caret_col(err: RuleSyntaxError) -> int:
    lines = str(err).splitlines()
    assert len(lines) == 3
    return lines[2].index("^") + 1


def test_syntax_error_points_at_token():
    e = _err(GOOD.replace("y = Relu(x)", "y = Relu(x))"))
    head = str(e).splitlines()[0]
    assert head.startswith("bad.rw:3:20: unexpected ')'")
    assert str(e).splitlines()[1] == "        y = Relu(x))"
    assert _caret_col(e) == 20


def test_bad_character():
    e = _err(GOOD.replace("Relu(x)", "Relu(x $)"))
    assert (e.line, e.col) == (3, 20) and "unexpected character '$'" in e.message


def test_missing_section_is_reported():
    e = _err("rule r:\n    match:\n        y = Relu(x)\n")
    assert e.file == "bad.rw" and (e.line, e.col) == (3, 20)
    assert "expected one of: rewrite, where" in e.message


def test_unknown_op():
    e = _err(GOOD.replace("Sigmoid", "Sigmoyd"))
    assert (e.line, e.col) == (5, 13) and "unknown ONNX op 'Sigmoyd'" in e.message
    assert _caret_col(e) == 13


def test_unknown_helper():
    text = GOOD.replace("Sigmoid(x)", "Sigmoid(frobnicate(x))")
    e = _err(text)
    assert (e.line, e.col) == (5, 21) and "frobnicate" in e.message


def test_unbound_name_in_where_and_rewrite():
    e = _err(GOOD.replace("    rewrite:", "    where:\n        rank(z) == 4\n    rewrite:"))
    assert (e.line, e.col) == (5, 14) and "'z' is not bound" in e.message
    e = _err(GOOD.replace("Sigmoid(x)", "Sigmoid(q)"))
    assert (e.line, e.col) == (5, 21) and "'q' is not bound" in e.message


def test_root_must_be_assigned():
    e = _err(GOOD.replace("y = Sigmoid(x)", "z = Sigmoid(x)"))
    assert "does not assign the replaced root value 'y'" in e.message and e.line == 1


def test_cannot_reassign_pattern_input():
    e = _err(GOOD.replace("y = Sigmoid(x)", "y = Sigmoid(x)\n        x = Relu(y)"))
    assert "'x' is an input of the pattern" in e.message


def test_duplicate_rule_names(tmp_path):
    e = _err(GOOD + "\n" + GOOD)
    assert "duplicate rule name 'ok'" in e.message and e.line == 7
    a, b = tmp_path / "a.rw", tmp_path / "b.rw"
    a.write_text(GOOD)
    b.write_text(GOOD)
    with pytest.raises(RuleSyntaxError, match=r"b\.rw:1:6: duplicate rule name 'ok'"):
        load_rule_files([a, b])


def test_bad_indentation():
    e = _err(GOOD.replace("        y = Relu(x)\n", "        y = Relu(x)\n      q = Relu(y)\n"))
    assert e.file == "bad.rw" and "indent" in e.message


def test_disconnected_pattern():
    e = _err(GOOD.replace("        y = Relu(x)", "        q = Relu(p)\n        y = Relu(x)"))
    assert "not connected" in e.message and e.line == 3


def test_example_file_loads():
    from passes.helpers import HELPERS

    assert len(load_rule_files([DATA / "examples.rw"], HELPERS)) == 3
