"""The rule parse cache is data, not code: a planted pickle never runs, a corrupt or forged entry is
parsed again with a warning, a hit gives exactly the rules a fresh parse gives. Hostile rule files
(not UTF-8, 20,000 nested `not`) are one-line errors."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import pytest

from passes.helpers import helpers_with
from rewriter.dsl import RuleSyntaxError, lalr, load_rule_files, parse_cache, parse_rules, parser

HELPERS = helpers_with()
RULES = sorted((Path(__file__).resolve().parents[2] / "rules" / "hailo8").glob("*.rw"))


def signature(rules):
    return [(r.name, r.file, r.line, r.priority, r.summary, r.defn) for r in rules]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("REWRITER_NO_CACHE", raising=False)
    return tmp_path / "xdg" / "hailo-rewriter" / "rules"


@pytest.fixture(scope="module")
def fresh():
    """The hailo8 rules parsed without any cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("REWRITER_NO_CACHE", "1")
    try:
        return signature(load_rule_files(RULES, HELPERS))
    finally:
        mp.undo()


def entry_path(cache: Path, rule_file: Path) -> Path:
    text = rule_file.read_text()
    src = text if text.endswith("\n") else text + "\n"
    return cache / f"{parse_cache.cache_key(parser._grammar(), src)}.json"


class Planted:
    """Unpickling this creates the marker file: proof that pickle data was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_a_hit_gives_the_rules_a_fresh_parse_gives(cache, fresh, monkeypatch):
    assert signature(load_rule_files(RULES, HELPERS)) == fresh  # miss: parsed, then stored
    assert sorted(p.name for p in cache.iterdir()) == sorted(entry_path(cache, f).name for f in RULES)

    def no_lark(*_):
        raise AssertionError("lark was called on a cache hit")

    monkeypatch.setattr(lalr, "_lark", no_lark)
    monkeypatch.setattr(lalr, "parse_items", no_lark)
    assert signature(load_rule_files(RULES, HELPERS)) == fresh  # hit: no parser built, same rules
    for path in cache.iterdir():
        assert json.loads(path.read_text())["key"] == path.stem  # plain JSON data


def test_planted_pickles_never_run(cache, fresh, tmp_path, caplog):
    marker = tmp_path / "marker"
    cache.mkdir(parents=True)
    payload = pickle.dumps(Planted(marker))
    for rule_file in RULES:
        path = entry_path(cache, rule_file)
        path.write_bytes(payload)  # where this cache looks
        path.with_suffix(".pickle").write_bytes(payload)  # where a pickle cache would look
    with caplog.at_level(logging.WARNING, logger="rewriter.rules"):
        assert signature(load_rule_files(RULES, HELPERS)) == fresh
    assert not marker.exists()
    assert sum("corrupt" in r.getMessage() or "unreadable" in r.getMessage() for r in caplog.records) == len(RULES)
    assert all(json.loads(entry_path(cache, f).read_text())["key"] for f in RULES)  # replaced by good entries


def forge(path: Path, edit) -> None:
    """Edit an entry's syntax trees and recompute its checksum, as someone writing to the cache could."""
    entry = json.loads(path.read_text())
    rules = json.loads(entry["rules"])
    edit(rules)
    entry["rules"] = json.dumps(rules)
    entry["sha256"] = parse_cache._digest(entry["rules"])
    path.write_text(json.dumps(entry))


def _field(node: list, name: str) -> int:
    """Index of field `name` in a node's positional array ([class, fields...])."""
    return 1 + parse_cache._FIELDS[node[0]].index(name)


def rename_first_rule(rules):
    rule = rules[2]  # rules[0] is the list's tag, rules[1] the file's lets and defs
    k = _field(rule, "name")
    rule[k] = "forged" + rule[k][6:]


def rename_a_value(rules):
    """The first pattern's first output renamed: a rule that would rewrite another value."""
    rule = rules[2]
    first = rule[_field(rule, "match")][1]
    first[_field(first, "outputs")][1] = "forged"


def swap_a_class(rules):
    """A node of a class the syntax trees do not have."""
    rules[2][0] = "Popen"


def swap_a_nested_class(rules):
    """The same deep inside a rule: its first pattern node."""
    rule = rules[2]
    rule[_field(rule, "match")][1][0] = "Popen"


def add_a_field(rules):
    """A node with one value more than its class has fields."""
    rule = rules[2]
    rule[_field(rule, "match")][1].append("extra")


def _first_def(rules):
    scope = rules[1]  # the file's FileScope: its lets and defs, stored once
    defs = scope[_field(scope, "defs")]  # ["@d", [name, FuncDef]...]
    return defs[1][1]


def rename_a_def_parameter(rules):
    first = _first_def(rules)
    first[_field(first, "params")][1] = "forged"


def swap_def_parameters(rules):
    """The parameters (a, x) listed as (x, a), each with its own position: every name is the file's
    text at its place, yet every call would bind its arguments the other way round."""
    first = _first_def(rules)
    params, places = first[_field(first, "params")], first[_field(first, "param_pos")]
    params[1], params[2] = params[2], params[1]
    places[1], places[2] = places[2], places[1]


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),  # truncated
        lambda p: p.write_bytes(b"\xff\xfe" + p.read_bytes()),  # not UTF-8
        lambda p: p.write_text(p.read_text().replace('\\"RuleDef\\"', '\\"Q\\"', 1)),  # checksum mismatch
        lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "key": "0" * 64})),  # foreign key
        lambda p: forge(p, rename_first_rule),  # consistent forgeries
        lambda p: forge(p, rename_a_value),
        lambda p: forge(p, swap_a_class),
        lambda p: forge(p, swap_a_nested_class),
        lambda p: forge(p, add_a_field),
        lambda p: p.chmod(0o666),  # others may write it
        lambda p: p.write_text(
            json.dumps({"key": p.stem, "rules": "[" * 100000, "sha256": parse_cache._digest("[" * 100000)})
        ),  # nested too deeply
    ],
    ids=[
        "truncated",
        "not-utf8",
        "checksum",
        "key",
        "forged-name",
        "forged-value",
        "forged-class",
        "forged-nested-class",
        "forged-field",
        "world-writable",
        "deep",
    ],
)
def test_a_damaged_entry_is_parsed_again_with_a_warning(cache, fresh, caplog, damage):
    load_rule_files(RULES, HELPERS)
    layout = next(f for f in RULES if f.name == "layout.rw")
    path = entry_path(cache, layout)
    damage(path)
    with caplog.at_level(logging.WARNING, logger="rewriter.rules"):
        got = signature(load_rule_files(RULES, HELPERS))
    assert got == fresh
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) <= 1
    assert warnings and str(path) in warnings[0] and "parsing the rule file again" in warnings[0]


def test_an_unwritable_cache_is_only_slower(tmp_path, monkeypatch, fresh):
    blocker = tmp_path / "xdg"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.delenv("REWRITER_NO_CACHE", raising=False)
    assert signature(load_rule_files(RULES, HELPERS)) == fresh


# ---- hostile rule files -------------------------------------------------------------------------------
def nested_not(n: int) -> str:
    return (
        "rule deep:\n    match:\n        y = Relu(x)\n    where:\n        " + "not " * n + "false\n"
        "    rewrite:\n        y = Relu(x)\n"
    )


def test_20000_nested_not_is_a_located_error():
    with pytest.raises(RuleSyntaxError, match="nested more than") as err:
        parse_rules(nested_not(20000), "deep.rw")
    assert (err.value.file, err.value.line) == ("deep.rw", 5)
    assert "\n" not in str(err.value)  # one line: no 80,000-character source line quoted


def test_nesting_within_the_bound_parses_and_evaluates():
    from rewriter.dsl.expr import Evaluator

    rule = parse_rules(nested_not(parser.MAX_NESTING // 2 + 1), "ok.rw")["deep"]
    assert Evaluator({}).eval(rule.defn.where[0], {}) is True  # an odd number of `not false`


def test_non_utf8_rule_file_is_a_located_error(tmp_path):
    path = tmp_path / "latin1.rw"
    path.write_bytes("# r\u00e9gle\nrule r:\n".encode("latin-1"))
    with pytest.raises(RuleSyntaxError, match="not UTF-8") as err:
        load_rule_files([path])
    assert (err.value.line, err.value.col) == (1, 4)


def test_parse_work_does_not_grow_with_the_number_of_rules(monkeypatch):
    """The quadratic part (the whole text split into lines once per rule, 317 s for 20,000 rules)
    counted without a clock: str.splitlines runs a fixed number of times per file."""
    import sys

    monkeypatch.setenv("REWRITER_NO_CACHE", "1")
    rule = "# about r{i}\nrule r{i}:\n    match:\n        y = Relu(x)\n    rewrite:\n        y = Relu(x)\n\n"

    def splits(n):
        text = "".join(rule.format(i=i) for i in range(n))
        calls = []

        def count(frame, event, arg):
            if event == "c_call" and getattr(arg, "__name__", "") == "splitlines":
                calls.append(1)

        sys.setprofile(count)
        try:
            parse_rules(text, "many.rw")
        finally:
            sys.setprofile(None)
        return len(calls)

    assert splits(40) == splits(5) <= 3


DEFS = """
def squeezes(a, x) = value(a) == [2] and rank(x) == 4

rule relu_after_squeeze:
    match:
        s = Squeeze(x, a: const)
        y = Relu(s)
    where:
        squeezes(a, x)
    rewrite:
        y4 = Relu(x)
        y = Squeeze(y4, a)
"""


@pytest.mark.parametrize("forgery", [rename_a_def_parameter, swap_def_parameters], ids=["renamed", "reordered"])
def test_a_forged_def_is_parsed_again_with_a_warning(cache, tmp_path, caplog, forgery):
    rule_file = tmp_path / "defs.rw"
    rule_file.write_text(DEFS)
    fresh = signature(load_rule_files([rule_file], HELPERS))  # a miss: parsed and stored
    forge(entry_path(cache, rule_file), forgery)
    with caplog.at_level(logging.WARNING, logger="rewriter.rules"):
        assert signature(load_rule_files([rule_file], HELPERS)) == fresh
    assert any("parsing the rule file again" in r.getMessage() for r in caplog.records)
