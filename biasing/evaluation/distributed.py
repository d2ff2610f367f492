"""``ctc-biasing eval --ray``: the model and every technique's decoding on a Ray cluster,
the scores computed by the caller as usual (:func:`.run.run_eval` with ``remote=``).

Each actor rebuilds the evaluation from an :class:`EvalSpec` (model spec, techniques by
name, decoder settings, adapter file, cache folder), takes batches of utterances with
their lists, and returns per utterance its hypotheses and timings. Techniques registered
at run time in the caller's process are unknown to actors unless their module registers
them on import.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..datasets import Utterance
from ..entities import EntityList
from ..raypool import RayOptions, ray_map
from .run import Decoded, Remote, decode_one, model_output, needed_outputs


@dataclass(frozen=True)
class EvalSpec:
    """What an actor needs to rebuild the evaluation (all picklable)."""

    model: str  # the model's spec
    techniques: str  # comma-separated names, as --techniques
    beam_width: int
    options: Mapping[str, Any] = field(default_factory=dict)  # --set
    kenlm: str | None = None
    tokenizer: str | None = None  # None: the model's own
    adapter: str | None = None  # adapter file, when a technique uses one
    cache: str | None = None  # model-output cache folder (shared storage on a cluster)
    device: str = "cpu"
    threads: int = 1
    companion: str | None = None  # the phonetic companion's spec, for a model without phones


class EvalActor:
    """Holds the model and the techniques' decoders; decodes batches of utterances."""

    def __init__(self, spec: EvalSpec) -> None:
        from ..adapters import load_adapter
        from ..models import load_model, set_threads
        from .cache import OutputCache
        from .techniques import EvalContext, parse_techniques

        set_threads(spec.threads)
        from ..models.companion import attach_companion

        self.model = attach_companion(load_model(spec.model, device=spec.device),
                                      spec.companion, spec.device)
        self.techniques = parse_techniques(spec.techniques)
        adapter = load_adapter(spec.adapter, self.model) if spec.adapter else None
        self.context = EvalContext.for_model(self.model, spec.model, spec.kenlm,
                                             spec.tokenizer, spec.beam_width, spec.options,
                                             adapter)
        self.decoders = {t.name: t.build(self.context) for t in self.techniques}
        self.cache = None if spec.cache is None else OutputCache.for_model(spec.cache,
                                                                            self.model)
        self.heads, self.layers = needed_outputs(self.techniques, self.context)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"id": [], "decoded": []}
        for utt_id, audio, encoded in zip(batch["id"], batch["audio"], batch["entities"]):
            entries, policy = json.loads(str(encoded))
            entities = EntityList([tuple(e) for e in entries], on_unrepresentable=policy)
            output, seconds, spent = model_output(self.model, Path(str(audio)), self.cache,
                                                  self.heads, self.layers)
            hypotheses = {t.name: decode_one(self.decoders[t.name], output, entities)
                          for t in self.techniques}
            out["id"].append(str(utt_id))
            out["decoded"].append(json.dumps([seconds, spent, hypotheses]))
        return out


def ray_remote(spec: EvalSpec, where: RayOptions,
               progress: Callable[[str, int, int], None] | None = None,
               log: Callable[[str], None] = lambda line: None) -> Remote:
    """A ``remote`` for :func:`run_eval` that decodes on Ray."""
    def remote(dataset: Sequence[Utterance], lists: Mapping[str, EntityList]
               ) -> dict[str, Decoded]:
        device = "cuda" if where.gpus_per_actor else spec.device
        actor_spec = replace(spec, device=device, threads=where.threads_per_actor)
        items = [{"id": u.id, "audio": str(u.audio), "entities": json.dumps(
            [[[e.text, e.weight] for e in lists[u.id]], lists[u.id].on_unrepresentable])}
            for u in dataset]
        decoded: dict[str, Decoded] = {}
        for row in ray_map(items, EvalActor, {"spec": actor_spec}, where, log):
            seconds, spent, hypotheses = json.loads(str(row["decoded"]))
            decoded[str(row["id"])] = Decoded(seconds, spent,
                                              {k: (v[0], v[1]) for k, v in hypotheses.items()})
            if progress:
                progress("ray", len(decoded), len(dataset))
        return decoded
    return remote
