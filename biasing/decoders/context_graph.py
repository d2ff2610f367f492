"""Token-level context graph: a prefix tree of entity spellings with Aho-Corasick failure links.

Nodes are integers; node 0 is the root. The alphabet is the decoder's label indices plus a
word boundary: for character vocabularies the space label itself, for subword vocabularies
the virtual :data:`BOUNDARY` (-1) that the decoder feeds before every ``"▁"`` piece. Every
entity path is ``boundary, units..., boundary``, so an entity only matches whole words
("Ann" never fires inside "annual"), and a multi-word entity is one path.

The graph only says where a hypothesis is; scores live in the decoder. Per node it keeps:

- ``children``: unit -> node;
- ``depth``: number of symbols (boundaries included) from the root;
- ``weight``: the largest weight of the entities whose paths pass through the node;
- ``entity``: index of the entity whose path ends here (after its closing boundary), or -1;
- ``fail(node)``: the node of the longest proper suffix that is also a path prefix;
- ``output(node)``: the entity ending at the node or nearest on its failure chain
  ("york" completes inside "new york city").

Building is linear in the total length of the paths; one step is amortised O(1).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

BOUNDARY = -1


@dataclass(frozen=True)
class GraphStats:
    """Size and cost of a compiled graph (for benchmarks)."""

    n_paths: int  # spellings inserted (entities x segmentations x variants)
    n_nodes: int  # nodes, root included
    build_s: float  # seconds spent building


class ContextGraph:
    """Aho-Corasick automaton over unit sequences. Build with :meth:`build`.

    The tree is kept as arrays (per node: parent, symbol, depth, weight, entity; a parent
    comes before its children); the per-node ``children`` dicts the Python core walks are
    made on first use (the compiled core reads the arrays). Failure and output links are
    computed lazily, on first use, and memoised: a decode touches few nodes of a large
    graph, and building stays linear in the input.
    """

    def __init__(self, parent: Sequence[int] | np.ndarray, symbol: Sequence[int] | np.ndarray,
                 depth: Sequence[int] | np.ndarray, weight: Sequence[float] | np.ndarray,
                 entity: Sequence[int] | np.ndarray,
                 entity_weight: Sequence[float], boundary: int, stats: GraphStats) -> None:
        self.arrays = GraphArrays(np.asarray(parent, dtype=np.int32),
                                  np.asarray(symbol, dtype=np.int32),
                                  np.asarray(depth, dtype=np.int32),
                                  np.asarray(weight, dtype=np.float64),
                                  np.asarray(entity, dtype=np.int32),
                                  np.asarray(entity_weight, dtype=np.float64))
        self.boundary = boundary  # symbol that separates words
        self.stats = stats
        self._entity_weight = list(entity_weight)
        self._fail: dict[int, int] = {0: 0}
        self._output: dict[int, tuple[int, float]] = {}
        self._force: dict[int, tuple[int, ...]] = {}
        root = self.arrays.parent[1:] == 0
        after = np.flatnonzero(root & (self.arrays.symbol[1:] == boundary))
        self.start = int(after[0]) + 1 if len(after) else 0  # after the initial boundary

    @classmethod
    def build(cls, paths: Sequence[tuple[int, Sequence[int], float]], boundary: int,
              entity_weights: Sequence[float] = ()) -> ContextGraph:
        """Build from ``(entity_index, symbols, weight)`` paths.

        ``symbols`` already contain the boundaries (``boundary, units..., boundary``).
        Several paths may share an entity index (segmentations, spelling variants).
        ``entity_weights[i]`` scales entity ``i``'s completion (default 1).
        """
        return cls.build_with_units(paths, boundary, entity_weights)[0]

    @classmethod
    def build_with_units(cls, paths: Sequence[tuple[int, Sequence[int], float]],
                         boundary: int, entity_weights: Sequence[float] = (),
                         ) -> tuple[ContextGraph, tuple[tuple[int, tuple[int, ...]], ...]]:
        """:meth:`build`, and each path's units without its word boundaries (``(entity
        index, units)`` once each, in order: what the unit spotter looks for)."""
        from . import native

        started = time.perf_counter()
        if not entity_weights:
            entity_weights = [1.0] * (max((p[0] for p in paths), default=-1) + 1)
        tree: Sequence[Any]
        if native.available():  # the same tree, built in C++
            *tree, units = native.build_graph(paths, boundary)
        else:
            tree = _build_tree(paths)
            units = list(dict.fromkeys(
                (index, tuple(u for u in _trim(path, boundary) if u != BOUNDARY))
                for index, path, _ in paths))
        stats = GraphStats(n_paths=len(paths), n_nodes=len(tree[0]),
                           build_s=time.perf_counter() - started)
        parent, symbol, depth, weight, entity = tree
        graph = cls(parent, symbol, depth, weight, entity, entity_weights, boundary, stats)
        return graph, tuple(units)

    def __len__(self) -> int:
        return len(self.arrays.parent)

    @functools.cached_property
    def children(self) -> list[dict[int, int]]:
        """Per node, symbol -> child node."""
        children: list[dict[int, int]] = [{} for _ in range(len(self))]
        for node, (parent, symbol) in enumerate(zip(self.parents, self.symbols)):
            if node:
                children[parent][symbol] = node
        return children

    @functools.cached_property
    def parents(self) -> list[int]:
        """Each node's parent (the root's is itself); a parent comes before its children."""
        return self.arrays.parent.tolist()

    @functools.cached_property
    def symbols(self) -> list[int]:
        """The symbol on the edge into each node (0 for the root)."""
        return self.arrays.symbol.tolist()

    @functools.cached_property
    def depth(self) -> list[int]:
        """Symbols (boundaries included) from the root to each node."""
        return self.arrays.depth.tolist()

    @functools.cached_property
    def weight(self) -> list[float]:
        """Per node, the largest weight of the entities whose paths pass through it."""
        return self.arrays.weight.tolist()

    @functools.cached_property
    def entity(self) -> list[int]:
        """Per node, the entity whose path ends there (after its closing boundary), or -1."""
        return self.arrays.entity.tolist()

    @property
    def entity_weights(self) -> Sequence[float]:
        """Each entity's completion weight."""
        return self._entity_weight

    def fail(self, node: int) -> int:
        """The node of the longest proper suffix of ``node``'s path that is a path prefix."""
        found = self._fail.get(node)
        if found is not None:
            return found
        parent, symbol = self.parents[node], self.symbols[node]
        link = 0
        if parent != 0:
            target = self.fail(parent)
            while True:
                child = self.children[target].get(symbol)
                if child is not None:
                    link = child
                    break
                if target == 0:
                    break
                target = self.fail(target)
        self._fail[node] = link
        return link

    def output(self, node: int) -> tuple[int, float]:
        """``(entity, weight)`` of the entity ending at ``node`` or, failing that, at the
        nearest node on its failure chain; ``(-1, 0.0)`` if none ("york" inside
        "new york city")."""
        found = self._output.get(node)
        if found is None:
            index = self.entity[node]
            if index >= 0:
                found = (index, self._entity_weight[index])
            elif node == 0:
                found = (-1, 0.0)
            else:
                found = self.output(self.fail(node))
            self._output[node] = found
        return found

    def step(self, node: int, symbol: int) -> tuple[int, bool]:
        """Follow ``symbol`` from ``node``: ``(next_node, continued)``.

        ``continued`` is False when the path broke off and the next node was found through
        the failure links (or is the root): the caller returns the partial bonus.
        """
        child = self.children[node].get(symbol)
        if child is not None:
            return child, True
        while node:
            node = self.fail(node)
            child = self.children[node].get(symbol)
            if child is not None:
                return child, False
        return 0, False

    def force_units(self, node: int) -> tuple[int, ...]:
        """Label indices that continue the path at ``node`` when emitted next.

        A virtual boundary is looked through: after it, the ``"▁"`` pieces that follow it
        are what the decoder would emit.
        """
        units = self._force.get(node)
        if units is None:
            found = [s for s in self.children[node] if s != BOUNDARY]
            after = self.children[node].get(BOUNDARY)
            if after is not None:
                found.extend(s for s in self.children[after] if s != BOUNDARY)
            units = tuple(found)
            self._force[node] = units
        return units


class GraphArrays(NamedTuple):
    """The tree as arrays (what the compiled core reads)."""

    parent: np.ndarray  # int32 per node
    symbol: np.ndarray  # int32 per node
    depth: np.ndarray  # int32 per node
    weight: np.ndarray  # float64 per node
    entity: np.ndarray  # int32 per node
    entity_weight: np.ndarray  # float64 per entity


def _build_tree(paths: Sequence[tuple[int, Sequence[int], float]],
                ) -> tuple[list[int], list[int], list[int], list[float], list[int]]:
    """The prefix tree of the paths as per-node lists (in Python; the compiled core has
    the same in C++)."""
    children: list[dict[int, int]] = [{}]
    parent, symbol_in, depth, weight, entity = [0], [0], [0], [0.0], [-1]
    for index, symbols, path_weight in paths:
        node = 0
        for symbol in symbols:
            nxt = children[node].get(symbol)
            if nxt is None:
                nxt = len(children)
                children[node][symbol] = nxt
                children.append({})
                parent.append(node)
                symbol_in.append(symbol)
                depth.append(depth[node] + 1)
                weight.append(path_weight)
                entity.append(-1)
            elif path_weight > weight[nxt]:
                weight[nxt] = path_weight
            node = nxt
        if entity[node] < 0:
            entity[node] = index
    return parent, symbol_in, depth, weight, entity


def _trim(path: Sequence[int], boundary: int) -> Sequence[int]:
    """A graph path without its leading and trailing word boundary."""
    start = 1 if path and path[0] == boundary else 0
    end = len(path) - 1 if len(path) > start and path[-1] == boundary else len(path)
    return path[start:end]
