"""rewriter/partition/dag.py agrees with networkx (the library it replaces on the hot path) on random DAGs."""

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewriter.partition.dag import CycleError, Dag, group_order, reachable


@st.composite
def dags_and_groups(draw):
    n = draw(st.integers(1, 30))
    edges = [(u, v) for v in range(1, n) for u in draw(st.lists(st.integers(0, v - 1), max_size=3))]
    # groups: intervals of the index order (a topological order), hence convex; then labels shuffled
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=n - 1))) if n > 1 else []
    bounds = [0, *cuts, n]
    groups = [list(range(a, b)) for a, b in zip(bounds, bounds[1:])]
    perm = draw(st.permutations(range(n)))
    return n, [(perm[u], perm[v]) for u, v in edges], [[perm[v] for v in g] for g in groups]


@settings(max_examples=200, deadline=None)
@given(dags_and_groups())
def test_reachability_and_group_order_match_networkx(case):
    n, edges, groups = case
    ours, theirs = Dag(n), nx.DiGraph()
    theirs.add_nodes_from(range(n))
    for u, v in edges:
        ours.add_edge(u, v)
        theirs.add_edge(u, v)
    assert sorted(ours.edges) == sorted(theirs.edges)
    for v in range(n):
        assert ours.in_degree(v) == theirs.in_degree(v)
        assert reachable(ours, v) == nx.descendants(theirs, v)
        assert reachable(ours, v, forward=False) == nx.ancestors(theirs, v)
    seg = nx.condensation(theirs, [set(g) for g in groups])
    expected = list(nx.lexicographical_topological_sort(seg, key=lambda g: min(groups[g])))
    assert group_order(ours, groups) == expected


def test_a_non_convex_group_is_a_cycle():
    dag = Dag(3)
    dag.add_edge(0, 1)
    dag.add_edge(1, 2)
    with pytest.raises(CycleError):
        group_order(dag, [[0, 2], [1]])  # 0 -> 1 -> 2 leaves the group {0, 2} and comes back
