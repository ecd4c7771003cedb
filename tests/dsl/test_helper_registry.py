"""The helper registry: passed in by the caller, extended by --helpers FILE.py, documented from code."""

from pathlib import Path

import numpy as np
import pytest

from passes.helpers import HELPERS
from rewriter.dsl import HelperRegistry, RuleError, RuleSyntaxError, load_helper_file, parse_rules
from rewriter.dsl.docs import builtins_table, helpers_table

REPO = Path(__file__).resolve().parents[2]
RULE = """
rule scale_twice:
    match:
        y = Mul(x, k: const)
    rewrite:
        y = Mul(x, doubled(k))
"""
HELPER_FILE = '''
import numpy as np
from rewriter.dsl import helper


@helper("doubled", kinds=("const",))
def doubled(k):
    """Twice a constant."""
    return np.asarray(k) * 2


def not_a_helper(x):
    return x
'''


def test_dsl_knows_no_helper_unless_given_one():
    with pytest.raises(RuleSyntaxError, match="unknown function 'doubled'"):
        parse_rules(RULE, "r.rw")
    with pytest.raises(RuleSyntaxError, match="unknown function 'bn_fold_bias'"):
        parse_rules(RULE.replace("doubled(k)", "bn_fold_bias(None, k, k, k, k, 0.1)"), "r.rw")


def test_helper_file_extends_the_target_registry(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(HELPER_FILE)
    registry = load_helper_file(path, HELPERS)
    assert "doubled" in registry and "bn_fold_bias" in registry and "not_a_helper" not in registry
    assert "doubled" not in HELPERS  # the target's registry is not modified
    (rule,) = parse_rules(RULE, "r.rw", registry)
    assert rule.helpers is registry
    np.testing.assert_array_equal(registry["doubled"](np.ones(2)), [2, 2])


@pytest.mark.parametrize(
    "source,message",
    [
        ("x = 1\n", "no function is marked with @helper"),
        ("raise ValueError('boom')\n", "import failed: ValueError: boom"),
        (
            "from rewriter.dsl import helper\n@helper('bn_fold_bias')\ndef f(a):\n    return a\n",
            "native helper 'bn_fold_bias' registered twice",
        ),
    ],
)
def test_bad_helper_files_are_one_line_errors(tmp_path, source, message):
    path = tmp_path / "bad.py"
    path.write_text(source)
    with pytest.raises(RuleError, match=message) as info:
        load_helper_file(path, HELPERS)
    assert "\n" not in str(info.value)


def test_cli_helpers_flag(tmp_path, capsys):
    from rewriter.cli import main

    (tmp_path / "mine.py").write_text(HELPER_FILE)
    (tmp_path / "r.rw").write_text(RULE)
    assert main(["rules", "verify", str(tmp_path / "r.rw"), "--helpers", str(tmp_path / "mine.py")]) == 1
    assert "FAIL scale_twice" in capsys.readouterr().out  # loaded, run, and found wrong
    assert main(["rules", "verify", str(tmp_path / "r.rw")]) == 2
    err = capsys.readouterr().err
    assert "unknown function 'doubled'" in err and "Traceback" not in err
    assert main(["rules", "helpers", "--helpers", str(tmp_path / "mine.py")]) == 0
    assert "| `doubled(k)` | Twice a constant. |" in capsys.readouterr().out


def test_registry_rejects_wrong_kind_declarations():
    with pytest.raises(ValueError, match="kinds"):
        HelperRegistry().register("f", lambda a, b: a, kinds=("const",))


def test_docs_tables_match_the_code():
    """docs/dsl.md embeds both tables; regenerate with `rewrite rules helpers` when this fails."""
    text = (REPO / "docs" / "dsl.md").read_text()
    for marker, table in (("helpers", helpers_table(HELPERS)), ("builtins", builtins_table())):
        body = text.split(f"<!-- {marker}:begin -->\n", 1)[1].split(f"\n<!-- {marker}:end -->", 1)[0]
        assert body == table, f"docs/dsl.md {marker} table is stale"


def test_every_builtin_helper_says_what_it_does():
    assert all(spec.doc for spec in HELPERS.specs()), [s.name for s in HELPERS.specs() if not s.doc]
