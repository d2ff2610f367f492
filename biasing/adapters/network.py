"""The contextual adapter as a torch module: entity encoder, attention, output shift.

Shapes: B utterances, T frames, N entities, U units per entity, A = ``attention_dim``.

- **Entity encoder**: unit embeddings -> one-layer BiLSTM -> mean over the units of its
  last states -> linear, one A-vector per entity (:meth:`ContextualAdapter.encode`).
- **Query**: each intermediate layer (``config.layers``) is projected to A and normalised;
  the query is their weighted sum, with learnt softmax weights.
- **Attention**: at every frame, scaled dot product of the query with the keys of
  ``<no-bias>`` (a learnt key) and of the entities. The values are the entity vectors
  projected; ``<no-bias>``'s value is zero, so attending to it adds nothing.
- **Unit match** (models whose intermediate CTC heads predict the entity encoder's units,
  ``config.query_heads``, as the bundled model's ``ctc_5`` and ``ctc_11`` predict its
  sentencepiece pieces): the heads' posteriors, averaged over ``2 * head_window + 1``
  frames and mixed with learnt weights, say which units are being said around each frame.
  Their product with an entity's bag of unit embeddings (the mean embedding of its units)
  is added to the attention score, learnt scale, so that from the first step an entity
  draws attention where its units are heard; the learnt part refines that.
- **Spotting gate** (``config.spot_head``): the entities' units are spotted (CTC token
  passing, :mod:`biasing.decoders.spotting`) in that intermediate head's posteriors; an
  entity may draw attention only on the frames of its spots (widened by
  ``spot_margin`` frames each side) and its score there rises with the spot's score per
  unit (learnt scale and threshold). Learnt attention alone, on the CPU budget the bundled
  adapter had, never told the right name from the others (see the model card); the
  spotter finds where each name may be, the adapter learns how much to trust it.
- **Label bag** (``config.label_bag``): each entity also carries the histogram of the
  model's output labels that spell it, and the attention-weighted histogram goes through
  its own projection (``bag_out``, labels -> representation) into the shift. Trained with
  ``bag_out`` set so that the output layer maps it back to the labels and a scale that
  starts at zero, attending to an entity raises its letters at once: the loss then tells
  the attention, from the first steps, which entity's letters are being said.
- **Shift**: ``out(g(c, q) - g(0, q))`` with ``g(c, q) = relu(W_c c + W_q q + b)``, ``c``
  the attended value and ``q`` the query: what to add depends on the entity attended to
  and on the sound at that frame, and is exactly zero when nothing is attended. ``out``
  (``mlp_dim`` -> the representation the model's output layer reads) starts at zero, so an
  untrained adapter is exactly the base model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["AdapterConfig", "ContextualAdapter"]


@dataclass(frozen=True)
class AdapterConfig:
    """What an adapter file describes besides its weights."""

    units: str  # "chars" or "pieces": how entities are spelt for the encoder
    vocab_size: int  # unit ids, pad (0) and unknown (1) included
    layers: tuple[int, ...]  # the model's intermediate layers the query reads
    layer_sizes: tuple[int, ...]  # their channels, in the same order
    representation_size: int  # channels of what the model's output layer reads
    num_labels: int  # the model's output classes
    labels_sha1: str = ""  # SHA-1 of the model's labels joined by newlines
    embed_dim: int = 96
    encoder_dim: int = 96  # BiLSTM units per direction
    attention_dim: int = 256
    mlp_dim: int = 384
    query_heads: tuple[str, ...] = ()  # the model's CTC heads over the units (unit match)
    head_window: int = 8  # frames each side averaged in the unit match
    label_bag: bool = True  # the entities' output-label histograms as a second value
    spot_head: str | None = None  # the CTC head whose spots gate the attention; None: no
    # gate
    spot_margin: int = 10  # frames each side of a spot where its entity may be attended
    meta: dict[str, Any] = field(default_factory=dict)  # training facts, for the model card

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AdapterConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"adapter config has unknown fields {unknown}")
        values = dict(data)
        values["layers"] = tuple(int(x) for x in values["layers"])
        values["layer_sizes"] = tuple(int(x) for x in values["layer_sizes"])
        values["query_heads"] = tuple(str(x) for x in values.get("query_heads", ()))
        values["meta"] = dict(values.get("meta", {}))
        return cls(**values)


class ContextualAdapter(nn.Module):
    """Attends from the audio to the listed entities and shifts the output representation."""

    def __init__(self, config: AdapterConfig) -> None:
        super().__init__()
        if len(config.layers) != len(config.layer_sizes) or not config.layers:
            raise ValueError(f"adapter needs one size per layer, got layers {config.layers} "
                             f"and sizes {config.layer_sizes}")
        self.config = config
        a = config.attention_dim
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=0)
        self.lstm = nn.LSTM(config.embed_dim, config.encoder_dim, batch_first=True,
                            bidirectional=True)
        self.pool = nn.Linear(2 * config.encoder_dim, a)
        self.query_proj = nn.ModuleList(nn.Linear(size, a) for size in config.layer_sizes)
        self.query_norm = nn.ModuleList(nn.LayerNorm(a) for _ in config.layer_sizes)
        self.layer_weights = nn.Parameter(torch.zeros(len(config.layers)))
        self.no_bias_key = nn.Parameter(torch.randn(a) / math.sqrt(a))
        self.key = nn.Linear(a, a)
        self.value = nn.Linear(a, a, bias=False)
        self.mix_context = nn.Linear(a, config.mlp_dim, bias=False)
        self.mix_query = nn.Linear(a, config.mlp_dim)
        self.out = nn.Linear(config.mlp_dim, config.representation_size, bias=False)
        nn.init.zeros_(self.out.weight)
        if config.query_heads:
            self.head_weights = nn.Parameter(torch.zeros(len(config.query_heads)))
            self.match_scale = nn.Parameter(torch.tensor(4.0))
        if config.spot_head is not None:
            self.spot_scale = nn.Parameter(torch.tensor(3.0))
            self.spot_threshold = nn.Parameter(torch.tensor(1.0))
        if config.label_bag:
            self.bag_out = nn.Linear(config.num_labels, config.representation_size, bias=False)
            nn.init.zeros_(self.bag_out.weight)
            self.bag_scale = nn.Parameter(torch.tensor(0.0))

    @property
    def vector_size(self) -> int:
        """Size of what :meth:`encode` returns per entity."""
        bag = self.config.num_labels if self.config.label_bag else 0
        return self.config.attention_dim + self.config.embed_dim + bag

    def init_label_bag(self, output_matrix: torch.Tensor) -> None:
        """Set ``bag_out`` to the pseudo-inverse of the model's output layer, (D, V) as
        ``output_layer(x) - output_layer(0) = x @ output_matrix``, so a label histogram
        put through ``bag_out`` and the output layer comes back as itself."""
        with torch.no_grad():
            self.bag_out.weight.copy_(torch.linalg.pinv(output_matrix.float()).T)

    def encode(self, units: torch.Tensor, lengths: torch.Tensor,
               label_bags: torch.Tensor | None = None) -> torch.Tensor:
        """(N, U) unit ids (0-padded), (N,) lengths >= 1 and, with ``config.label_bag``,
        (N, num_labels) label histograms -> (N, vector_size): the entity vector, its bag
        of unit embeddings and its label histogram."""
        if len(units) == 0:
            return torch.zeros(0, self.vector_size, device=units.device)
        if self.config.label_bag and label_bags is None:
            raise ValueError("this adapter needs the entities' label histograms")
        x = self.embed(units)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        states, _ = self.lstm(packed)
        states, _ = nn.utils.rnn.pad_packed_sequence(states, batch_first=True,
                                                     total_length=units.shape[1])
        mask = (torch.arange(units.shape[1], device=units.device)[None, :]
                < lengths.to(units.device)[:, None]).to(states.dtype)
        mean = (states * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
        bag = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
        parts = [self.pool(mean), bag]
        if self.config.label_bag:
            assert label_bags is not None, "a label-bag adapter needs the lists' label bags"
            parts.append(label_bags.to(bag.dtype))
        return torch.cat(parts, 1)

    def query(self, hidden: Sequence[torch.Tensor]) -> torch.Tensor:
        """The query from the intermediate layers: each (B, T, C_i) -> (B, T, A)."""
        weights = torch.softmax(self.layer_weights, 0)
        parts = [w * norm(proj(h)) for w, proj, norm, h in
                 zip(weights, self.query_proj, self.query_norm, hidden)]
        return torch.stack(parts).sum(0)

    def heard_units(self, heads: Sequence[torch.Tensor]) -> torch.Tensor:
        """(B, T, embed_dim): the embedding of the units heard around each frame, from the
        ``query_heads`` posteriors mapped onto the units, each (B, T, vocab_size)."""
        weights = torch.softmax(self.head_weights, 0)
        mixed = torch.stack(list(heads)).mul(weights[:, None, None, None]).sum(0)
        width = 2 * self.config.head_window + 1
        smooth = nn.functional.avg_pool1d(mixed.transpose(1, 2), width, stride=1,
                                          padding=self.config.head_window,
                                          count_include_pad=False).transpose(1, 2)
        # a distribution over the units said nearby (silence: close to nothing)
        smooth = smooth / (smooth.sum(-1, keepdim=True) + 0.02)
        return smooth @ self.embed.weight

    def attend(self, hidden: Sequence[torch.Tensor], vectors: torch.Tensor,
               mask: torch.Tensor | None = None, heads: Sequence[torch.Tensor] = (),
               spots: torch.Tensor | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """The shift before its output projections, and the attention weights.

        Args:
            hidden: the layers of ``config.layers``, each (B, T, C_i).
            vectors: (N, A + embed_dim) from :meth:`encode`, shared by the batch, or
                (B, N, A + embed_dim).
            mask: (B, N) True where an entity is in that utterance's list (default: all).
            heads: with ``config.query_heads``, their posteriors over the units, each
                (B, T, vocab_size) (see ``biasing.adapters.adapter.head_units``).
            spots: with ``config.spot_head``, (B, T, N) the best spot score per unit of each
                entity around each frame, -inf where it was not spotted.

        Returns:
            (B, T, mlp_dim) before ``out``; (B, T, num_labels) attended label histogram
            times ``bag_scale``, before ``bag_out`` (None without ``label_bag``); attention
            (B, T, 1 + N), column 0 ``<no-bias>``.
        """
        q = self.query(hidden)
        batch = q.shape[0]
        if vectors.dim() == 2:
            vectors = vectors.unsqueeze(0).expand(batch, -1, -1)
        sizes = [self.config.attention_dim, self.config.embed_dim]
        if self.config.label_bag:
            sizes.append(self.config.num_labels)
        vectors, bags, *labels = vectors.split(sizes, -1)
        keys = torch.cat([self.no_bias_key.expand(batch, 1, -1), self.key(vectors)], 1)
        values = torch.cat([torch.zeros_like(vectors[:, :1]), self.value(vectors)], 1)
        scores = torch.einsum("bta,bna->btn", q, keys) / math.sqrt(q.shape[-1])
        if self.config.query_heads:
            if len(heads) != len(self.config.query_heads):
                raise ValueError(f"the adapter's unit match reads heads "
                                 f"{list(self.config.query_heads)}, got {len(heads)} inputs")
            heard = self.heard_units(heads)
            match = torch.einsum("bte,bne->btn", heard, bags) / self.config.embed_dim
            scores = scores + torch.cat(
                [torch.zeros_like(match[:, :, :1]), self.match_scale * match], 2)
        if self.config.spot_head is not None:
            if spots is None:
                raise ValueError(f"the adapter is gated by spots on {self.config.spot_head!r}; "
                                 "none were given")
            gate = torch.where(torch.isfinite(spots),
                               self.spot_scale * (spots.clamp(min=-50) + self.spot_threshold),
                               torch.full_like(spots, float("-inf")))
            scores = scores + torch.cat([torch.zeros_like(gate[:, :, :1]), gate], 2)
        if mask is not None:
            full = torch.cat([torch.ones_like(mask[:, :1]), mask], 1)
            scores = scores.masked_fill(~full[:, None, :], float("-inf"))
        attention = torch.softmax(scores, -1)
        context = torch.einsum("btn,bna->bta", attention, values)
        base = self.mix_query(q)
        mixed = torch.relu(self.mix_context(context) + base) - torch.relu(base)
        label_mix = None
        if labels:
            label_mix = self.bag_scale * torch.einsum("btn,bnv->btv", attention[:, :, 1:],
                                                      labels[0])
        return mixed, label_mix, attention

    def forward(self, hidden: Sequence[torch.Tensor], vectors: torch.Tensor,
                mask: torch.Tensor | None = None, heads: Sequence[torch.Tensor] = (),
                spots: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, representation_size) shift of the representation, and the attention."""
        mixed, label_mix, attention = self.attend(hidden, vectors, mask, heads, spots)
        shift = self.out(mixed)
        if label_mix is not None:
            shift = shift + self.bag_out(label_mix)
        return shift, attention
