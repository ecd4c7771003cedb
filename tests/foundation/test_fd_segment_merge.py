"""rewriter/segment_merge.py: merged groups stay convex and single-device on random DAGs."""

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from rewriter.partition.merge import merge_groups
from rewriter.partition.partitioner import _waves
from rewriter.partition.placement import HAILO, HOST


@st.composite
def placed_dags(draw):
    n = draw(st.integers(2, 40))
    dag = nx.DiGraph()
    dag.add_nodes_from(range(n))
    for v in range(1, n):  # edges only forward: a DAG in index order
        for u in draw(st.lists(st.integers(0, v - 1), max_size=3, unique=True)):
            dag.add_edge(u, v)
    device = [draw(st.sampled_from([HAILO, HOST])) for _ in range(n)]
    return dag, device


@settings(max_examples=200, deadline=None)
@given(placed_dags())
def test_merged_groups_are_convex_and_single_device(case):
    dag, device = case
    groups = merge_groups(dag, _waves(dag, device), device)
    assert sorted(v for g in groups for v in g) == list(range(len(device)))
    for g in groups:
        assert len({device[v] for v in g}) == 1
    assert nx.is_directed_acyclic_graph(nx.condensation(dag, [set(g) for g in groups]))


def test_parallel_branches_merge_but_a_host_detour_does_not():
    # 0 -> {1, 2} hailo branches -> 3 host; and 4 hailo -> 5 host -> 6 hailo with 4 -> 6 directly
    dag = nx.DiGraph([(0, 1), (0, 2), (1, 3), (2, 3), (3, 4), (4, 5), (5, 6), (4, 6)])
    device = [HOST, HAILO, HAILO, HOST, HAILO, HOST, HAILO]
    groups = merge_groups(dag, _waves(dag, device), device)
    owner = {v: i for i, g in enumerate(groups) for v in g}
    assert owner[1] == owner[2]  # independent branches: one segment
    assert owner[4] != owner[6]  # merging them would feed the segment through host node 5
