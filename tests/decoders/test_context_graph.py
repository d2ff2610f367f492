"""The Aho-Corasick context graph on a hand-made alphabet (B = word boundary)."""

from __future__ import annotations

from biasing.decoders.context_graph import BOUNDARY, ContextGraph

B = 0  # boundary symbol in these tests (a character vocabulary's space)
A, N, U, L, Y, O, R, K, W, E, C = range(1, 12)


def _graph() -> ContextGraph:
    paths = [
        (0, [B, A, N, N, B], 1.0),                   # "ann"
        (1, [B, N, E, W, B, Y, O, R, K, B], 2.0),    # "new york"
        (2, [B, Y, O, R, K, B], 1.0),                # "york"
        (3, [B, N, E, W, B, Y, O, R, K, B, C, B], 1.0),  # "new york c"
    ]
    return ContextGraph.build(paths, B, [1.0, 2.0, 1.0, 3.0])


def _walk(graph: ContextGraph, symbols: list[int]) -> list[tuple[int, bool]]:
    node, out = graph.start, []
    for symbol in symbols:
        node, continued = graph.step(node, symbol)
        out.append((node, continued))
    return out


def test_shared_prefixes_and_weights() -> None:
    graph = _graph()
    assert graph.stats.n_paths == 4
    # "new york" and "new york c" share 10 symbols: 1 root + B + 4 ("ann") + 9 + 4 + 2
    assert len(graph) == 1 + 1 + 4 + 9 + 5 + 2
    new = graph.children[graph.children[graph.start][N]][E]
    assert graph.weight[new] == 2.0  # the largest weight of the entities through it
    assert graph.depth[graph.start] == 1


def test_whole_words_only() -> None:
    graph = _graph()
    # "annual": a, n, n match, then "u" breaks off: back to the root side, not an entity
    steps = _walk(graph, [A, N, N, U])
    assert [c for _, c in steps] == [True, True, True, False]
    assert graph.output(steps[2][0]) == (-1, 0.0)
    # "ann" then a boundary completes entity 0
    node = _walk(graph, [A, N, N, B])[-1][0]
    assert graph.output(node) == (0, 1.0)


def test_failure_link_finds_the_inner_entity() -> None:
    graph = _graph()
    # "new york" continued by a boundary completes "new york" itself (weight 2)
    node = _walk(graph, [N, E, W, B, Y, O, R, K, B])[-1][0]
    assert graph.output(node) == (1, 2.0)
    assert graph.entity[node] == 1
    # "new yor" + "e" breaks off; the failure chain knows nothing starting with "e"
    node, continued = _walk(graph, [N, E, W, B, Y, O, R, E])[-1]
    assert not continued and node == 0
    # the suffix "york" of "new york ..." is reachable through the failure links
    inner = _walk(graph, [N, E, W, B, Y, O, R, K])[-1][0]
    york = _walk(graph, [Y, O, R, K])[-1][0]
    assert graph.fail(inner) == york


def test_force_units_look_through_a_virtual_boundary() -> None:
    graph = ContextGraph.build([(0, [BOUNDARY, 5, BOUNDARY, 7, 8, BOUNDARY], 1.0)], BOUNDARY)
    first = graph.children[graph.start][5]
    assert graph.force_units(first) == (7,)  # "▁new" -> (boundary) -> "▁york"
    assert graph.force_units(graph.children[graph.children[first][BOUNDARY]][7]) == (8,)


def test_empty_graph() -> None:
    graph = ContextGraph.build([], B)
    assert len(graph) == 1 and graph.start == 0
    assert graph.step(0, A) == (0, False)
