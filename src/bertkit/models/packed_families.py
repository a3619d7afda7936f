"""How each encoder family runs packed (:mod:`bertkit.models.packed`): its embeddings, one layer and its
classification head, written with the model's own modules on the packed ``[tokens, hidden]`` matrix.

A :class:`Family` says what differs; :meth:`Family.run` is the one loop. Each family here matches its
``transformers`` 5 class (``modeling_<family>.py``): the same modules in the same order, attention scaled by
``head_size ** -0.5``, layer norms after each residual sum (post-norm), and equality with the Hugging Face
forward is tested per family.
"""

from __future__ import annotations

from typing import Any

import torch

from bertkit.models.packed_grid import Grid, padding_positions


def self_attention(
    grid: Grid,
    hidden: torch.Tensor,
    cls_only: bool,
    projections: tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module],
    heads: int,
    scale: float,
    bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A layer's self-attention on the packed ``hidden``: ``(queries_in, attended)``, where ``queries_in`` is
    the residual input of the attention output (the [CLS] rows alone with ``cls_only``) and ``attended`` the
    attention of the query/key/value ``projections`` before the output dense layer, packed like it."""
    query, key, value = projections
    queries_in = hidden[grid.cls_at] if cls_only else hidden
    attended = grid.attend(query(queries_in), key(hidden), value(hidden), heads, scale, cls_only=cls_only, bias=bias)
    return queries_in, attended


class Family:
    """One encoder family's packed forward: what differs is said by the methods, :meth:`run` is the loop."""

    embeddings_types: tuple[str, ...] = ()

    def supports(self, model: torch.nn.Module) -> bool:
        """Whether ``model`` is built the way this family's forward assumes (else the caller keeps HF's)."""
        config = model.config
        if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
            return False
        return type(getattr(model.base_model, "embeddings", None)).__name__ in self.embeddings_types

    def run(self, model: torch.nn.Module, grid: Grid, input_ids: torch.Tensor, token_type_ids: Any) -> torch.Tensor:
        """Logits ``[batch, num_labels]`` of ``model`` on a right-padded batch."""
        hidden = self.embed(model, grid, input_ids, token_type_ids)  # [tokens, hidden]
        context = self.prepare(model, grid)
        layers = self.layers(model)
        cls_last = self.cls_only_last(model) and len(layers) > 0
        for i, layer in enumerate(layers):
            hidden = self.layer(layer, hidden, grid, cls_last and i == len(layers) - 1, context)
        return self.head(model, hidden, grid)  # hidden: [batch, hidden] when cls_last, else [tokens, hidden]

    def cls_only_last(self, model: torch.nn.Module) -> bool:
        """Whether the head reads only the first token, so that the last layer may compute queries, attention
        output and feed-forward for that token alone (then :meth:`head` gets ``[batch, hidden]``)."""
        return True

    def prepare(self, model: torch.nn.Module, grid: Grid) -> Any:
        """What every layer of one batch shares (a position bias...); None by default."""
        return None

    def embed(self, model: torch.nn.Module, grid: Grid, input_ids: torch.Tensor, token_type_ids: Any) -> torch.Tensor:
        """The packed tokens' embeddings, ``[tokens, hidden]``: the model's embeddings module on the packed
        ids as one row, with each token's own position (its column) and segment."""
        ids = grid.pack(input_ids.reshape(-1))
        types = torch.zeros_like(ids) if token_type_ids is None else grid.pack(token_type_ids.reshape(-1))
        positions = self.positions(model, grid, input_ids)
        return model.base_model.embeddings(
            input_ids=ids[None], token_type_ids=types[None], position_ids=positions[None]
        )[0]

    def positions(self, model: torch.nn.Module, grid: Grid, input_ids: torch.Tensor) -> torch.Tensor:
        """The packed tokens' position ids, ``[tokens]``: their columns by default."""
        return grid.positions

    def layers(self, model: torch.nn.Module) -> list[torch.nn.Module]:
        """The encoder layers in the order they run."""
        return list(model.base_model.encoder.layer)

    def layer(
        self, layer: torch.nn.Module, hidden: torch.Tensor, grid: Grid, cls_only: bool, context: Any
    ) -> torch.Tensor:
        """One layer on the packed ``hidden`` ``[tokens, hidden]``; with ``cls_only`` it returns the [CLS]
        rows alone, ``[batch, hidden]``. ``context``: what :meth:`prepare` returned."""
        raise NotImplementedError

    def head(self, model: torch.nn.Module, hidden: torch.Tensor, grid: Grid) -> torch.Tensor:
        """RoBERTa-style heads read ``features[:, 0]``: the [CLS] rows as a one-token batch."""
        return model.classifier(hidden[:, None])


class BertLike(Family):
    """BERT's layer (BERT, RoBERTa, XLM-R, CamemBERT, ELECTRA): self-attention, dense + LayerNorm on the
    residual, intermediate (dense + activation), output dense + LayerNorm on the residual."""

    def layer(
        self, layer: torch.nn.Module, hidden: torch.Tensor, grid: Grid, cls_only: bool, context: Any
    ) -> torch.Tensor:
        attention = layer.attention.self
        queries_in, attended = self_attention(
            grid, hidden, cls_only, (attention.query, attention.key, attention.value),
            attention.num_attention_heads, attention.scaling,
        )  # fmt: skip
        attended = layer.attention.output(attended, queries_in)  # dense, dropout, LayerNorm(+ residual)
        return layer.output(layer.intermediate(attended), attended)


class Bert(BertLike):
    embeddings_types = ("BertEmbeddings",)

    def supports(self, model: torch.nn.Module) -> bool:
        return super().supports(model) and getattr(model.bert, "pooler", None) is not None

    def head(self, model: torch.nn.Module, hidden: torch.Tensor, grid: Grid) -> torch.Tensor:
        pooler = model.bert.pooler
        return model.classifier(model.dropout(pooler.activation(pooler.dense(hidden))))


class Roberta(BertLike):
    """RoBERTa, XLM-R, CamemBERT: positions from ``padding_idx + 1``, counting non-padding ids only."""

    embeddings_types = ("RobertaEmbeddings", "XLMRobertaEmbeddings", "CamembertEmbeddings")

    def positions(self, model: torch.nn.Module, grid: Grid, input_ids: torch.Tensor) -> torch.Tensor:
        return padding_positions(input_ids, model.base_model.embeddings.padding_idx, grid)


class Electra(BertLike):
    """ELECTRA: embeddings of ``embedding_size``, projected to ``hidden_size`` when the two differ."""

    embeddings_types = ("ElectraEmbeddings",)

    def embed(self, model: torch.nn.Module, grid: Grid, input_ids: torch.Tensor, token_type_ids: Any) -> torch.Tensor:
        hidden = super().embed(model, grid, input_ids, token_type_ids)
        project = getattr(model.electra, "embeddings_project", None)
        return hidden if project is None else project(hidden)


class DistilBert(Family):
    """DistilBERT: no segments, ``q_lin``/``k_lin``/``v_lin``/``out_lin``, a ``pre_classifier`` + ReLU head."""

    embeddings_types = ("Embeddings",)

    def supports(self, model: torch.nn.Module) -> bool:
        return type(model.distilbert.embeddings).__name__ in self.embeddings_types

    def embed(self, model: torch.nn.Module, grid: Grid, input_ids: torch.Tensor, token_type_ids: Any) -> torch.Tensor:
        ids = grid.pack(input_ids.reshape(-1))
        return model.distilbert.embeddings(ids[None], position_ids=grid.positions[None])[0]

    def layers(self, model: torch.nn.Module) -> list[torch.nn.Module]:
        return list(model.distilbert.transformer.layer)

    def layer(
        self, layer: torch.nn.Module, hidden: torch.Tensor, grid: Grid, cls_only: bool, context: Any
    ) -> torch.Tensor:
        attention = layer.attention
        queries_in, attended = self_attention(
            grid, hidden, cls_only, (attention.q_lin, attention.k_lin, attention.v_lin), attention.n_heads,
            attention.scaling,
        )  # fmt: skip
        attended = layer.sa_layer_norm(attention.out_lin(attended) + queries_in)
        return layer.output_layer_norm(layer.ffn.ff_chunk(attended) + attended)

    def head(self, model: torch.nn.Module, hidden: torch.Tensor, grid: Grid) -> torch.Tensor:
        pooled = torch.relu(model.pre_classifier(hidden))
        return model.classifier(model.dropout(pooled))


class Albert(Family):
    """ALBERT: embeddings of ``embedding_size`` mapped to ``hidden_size``, layer groups shared across depth
    (``num_hidden_layers`` steps, each running its group's ``inner_group_num`` layers), a pooler head."""

    embeddings_types = ("AlbertEmbeddings",)

    def supports(self, model: torch.nn.Module) -> bool:
        return super().supports(model) and getattr(model.albert, "pooler", None) is not None

    def embed(self, model: torch.nn.Module, grid: Grid, input_ids: torch.Tensor, token_type_ids: Any) -> torch.Tensor:
        hidden = super().embed(model, grid, input_ids, token_type_ids)
        return model.albert.encoder.embedding_hidden_mapping_in(hidden)

    def layers(self, model: torch.nn.Module) -> list[torch.nn.Module]:
        config, groups = model.config, model.albert.encoder.albert_layer_groups
        steps = [
            groups[int(i / (config.num_hidden_layers / config.num_hidden_groups))]
            for i in range(config.num_hidden_layers)
        ]
        return [layer for group in steps for layer in group.albert_layers]

    def layer(
        self, layer: torch.nn.Module, hidden: torch.Tensor, grid: Grid, cls_only: bool, context: Any
    ) -> torch.Tensor:
        attention = layer.attention
        queries_in, attended = self_attention(
            grid, hidden, cls_only, (attention.query, attention.key, attention.value),
            attention.num_attention_heads, attention.scaling,
        )  # fmt: skip
        attended = attention.LayerNorm(queries_in + attention.output_dropout(attention.dense(attended)))
        return layer.full_layer_layer_norm(layer.ff_chunk(attended) + attended)

    def head(self, model: torch.nn.Module, hidden: torch.Tensor, grid: Grid) -> torch.Tensor:
        pooled = model.albert.pooler_activation(model.albert.pooler(hidden))
        return model.classifier(model.dropout(pooled))


class MPNet(Family):
    """MPNet: RoBERTa's positions, and a relative position bias (one per head, shared by all layers) added
    to the attention scores."""

    embeddings_types = ("MPNetEmbeddings",)

    def embed(self, model: torch.nn.Module, grid: Grid, input_ids: torch.Tensor, token_type_ids: Any) -> torch.Tensor:
        ids = grid.pack(input_ids.reshape(-1))
        positions = padding_positions(input_ids, model.mpnet.embeddings.padding_idx, grid)
        return model.mpnet.embeddings(input_ids=ids[None], position_ids=positions[None])[0]

    def prepare(self, model: torch.nn.Module, grid: Grid) -> torch.Tensor:
        # MPNetEncoder.compute_position_bias reads only the batch and length of its input: [1, heads, L, L].
        shape = torch.empty(1, grid.length, 0, device=grid.attention_mask.device)
        return model.mpnet.encoder.compute_position_bias(shape)

    def layer(
        self, layer: torch.nn.Module, hidden: torch.Tensor, grid: Grid, cls_only: bool, context: Any
    ) -> torch.Tensor:
        attention = layer.attention.attn
        queries_in, attended = self_attention(
            grid, hidden, cls_only, (attention.q, attention.k, attention.v), attention.num_attention_heads,
            attention.attention_head_size**-0.5, bias=context,
        )  # fmt: skip
        attended = layer.attention.LayerNorm(layer.attention.dropout(attention.o(attended)) + queries_in)
        return layer.output(layer.intermediate(attended), attended)
