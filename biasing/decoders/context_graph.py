"""Token-level context graph: a prefix tree of entity spellings with Aho-Corasick failure links.

Nodes are integers; node 0 is the root. The alphabet is the decoder's label indices plus a
word boundary: for character vocabularies the space label itself, for subword vocabularies
the virtual :data:`BOUNDARY` (-1) that the decoder feeds before every ``"▁"`` piece. Every
entity path is ``boundary, units..., boundary``, so an entity only matches whole words
("Ann" never fires inside "annual"), and a multi-word entity is one path.

The graph only says where a hypothesis is; scores live in the decoder. Per node it keeps:

- ``children``: unit -> node;
- ``fail``: the node of the longest proper suffix that is also a path prefix;
- ``depth``: number of symbols (boundaries included) from the root;
- ``weight``: the largest weight of the entities whose paths pass through the node;
- ``entity``: index of the entity whose path ends here (after its closing boundary), or -1;
- ``output``: the nearest node on the failure chain (the node included) where an entity
  ends, or -1 ("york" completes inside "new york city").

Building is linear in the total length of the paths; one step is amortised O(1).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

BOUNDARY = -1


@dataclass(frozen=True)
class GraphStats:
    """Size and cost of a compiled graph (for benchmarks)."""

    n_paths: int  # spellings inserted (entities x segmentations x variants)
    n_nodes: int  # nodes, root included
    build_s: float  # seconds spent building
    approx_bytes: int  # rough memory of the node tables


class ContextGraph:
    """Aho-Corasick automaton over unit sequences. Build with :meth:`build`."""

    def __init__(self, children: list[dict[int, int]], fail: list[int], depth: list[int],
                 weight: list[float], entity: list[int], output: list[int], start: int,
                 boundary: int, stats: GraphStats) -> None:
        self.children = children
        self.fail = fail
        self.depth = depth
        self.weight = weight
        self.entity = entity
        self.output = output
        self.start = start  # state after the utterance-initial boundary
        self.boundary = boundary  # symbol that separates words
        self.stats = stats
        self._force: dict[int, tuple[int, ...]] = {}

    @classmethod
    def build(cls, paths: Sequence[tuple[int, Sequence[int], float]], boundary: int,
              ) -> ContextGraph:
        """Build from ``(entity_index, symbols, weight)`` paths.

        ``symbols`` already contain the boundaries (``boundary, units..., boundary``).
        Several paths may share an entity index (segmentations, spelling variants).
        """
        started = time.perf_counter()
        children: list[dict[int, int]] = [{}]
        depth = [0]
        weight = [0.0]
        entity = [-1]
        for index, symbols, path_weight in paths:
            node = 0
            for symbol in symbols:
                nxt = children[node].get(symbol)
                if nxt is None:
                    nxt = len(children)
                    children[node][symbol] = nxt
                    children.append({})
                    depth.append(depth[node] + 1)
                    weight.append(path_weight)
                    entity.append(-1)
                elif path_weight > weight[nxt]:
                    weight[nxt] = path_weight
                node = nxt
            if entity[node] < 0:
                entity[node] = index
        fail = [0] * len(children)
        output = [-1] * len(children)
        queue: deque[int] = deque()
        for child in children[0].values():
            queue.append(child)
            output[child] = child if entity[child] >= 0 else -1
        while queue:
            node = queue.popleft()
            for symbol, child in children[node].items():
                target = fail[node]
                while target and symbol not in children[target]:
                    target = fail[target]
                link = children[target].get(symbol, 0)
                fail[child] = link if link != child else 0
                output[child] = child if entity[child] >= 0 else output[fail[child]]
                queue.append(child)
        start = children[0].get(boundary, 0)
        size = (sys.getsizeof(children) + sum(sys.getsizeof(c) for c in children)
                + 5 * (sys.getsizeof(fail) + 8 * len(fail)))
        stats = GraphStats(n_paths=len(paths), n_nodes=len(children),
                           build_s=time.perf_counter() - started, approx_bytes=size)
        return cls(children, fail, depth, weight, entity, output, start, boundary, stats)

    def __len__(self) -> int:
        return len(self.children)

    def step(self, node: int, symbol: int) -> tuple[int, bool]:
        """Follow ``symbol`` from ``node``: ``(next_node, continued)``.

        ``continued`` is False when the path broke off and the next node was found through
        the failure links (or is the root): the caller returns the partial bonus.
        """
        child = self.children[node].get(symbol)
        if child is not None:
            return child, True
        node = self.fail[node]
        while node and symbol not in self.children[node]:
            node = self.fail[node]
        return self.children[node].get(symbol, 0), False

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
