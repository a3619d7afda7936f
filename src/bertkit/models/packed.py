"""A packed inference forward for BERT sequence classifiers: no arithmetic on padding, and a last layer that
computes only what the [CLS] token needs.

``BertForSequenceClassification.forward`` runs every dense layer on the padded ``[batch, max_len]`` grid, and
its last layer computes every token although the pooler reads only [CLS]. At inference the dense layers (about
nine tenths of the work) are per token, so this forward gathers the real tokens into one ``[tokens, hidden]``
matrix, scatters them back onto the padded grid only for the attention product, and in the last layer
computes keys and values for all tokens but queries, attention output and feed-forward for [CLS] alone.
The weights are the model's own modules; the logits equal the Hugging Face forward's up to float rounding
(tested). Other architectures, and anything this forward does not reproduce exactly, use the Hugging Face
forward (:func:`packed_classifier` returns None).
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator

import torch
import torch.nn.functional as F  # noqa: N812 (the usual name)


def packed_classifier(model: torch.nn.Module) -> PackedBertClassifier | None:
    """A :class:`PackedBertClassifier` over ``model`` when it is a plain (encoder-only, absolute positions)
    ``BertForSequenceClassification``; None otherwise, and the caller keeps the Hugging Face forward."""
    if type(model).__name__ != "BertForSequenceClassification":
        return None
    config = model.config
    bert = getattr(model, "bert", None)
    if bert is None or getattr(bert, "pooler", None) is None:
        return None
    if config.is_decoder or getattr(config, "add_cross_attention", False):
        return None
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return None
    if type(bert.embeddings).__name__ != "BertEmbeddings":
        return None
    return PackedBertClassifier(model)


class PackedBertClassifier:
    """Callable like ``model(**inputs).logits`` for a BERT sequence classifier in eval mode, on right-padded
    batches (BERT tokenizers pad on the right; other batches go to the model's own forward)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.bert = model.bert

    def __call__(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.model.training or not bool(attention_mask[:, 0].all()):
            return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
        batch, length = input_ids.shape
        keep = attention_mask.reshape(-1).bool()  # [batch * length]
        lengths = attention_mask.sum(dim=1)  # [batch]
        # Index of each real token in the padded grid, and of each row's [CLS] among the packed tokens.
        packed_at = None if bool(keep.all()) else keep.nonzero().squeeze(1)  # [tokens] or None (no padding)
        cls_at = torch.cumsum(lengths, 0) - lengths  # [batch]
        positions = torch.arange(length, device=input_ids.device).repeat(batch)  # [batch * length]
        ids, types = input_ids.reshape(-1), None if token_type_ids is None else token_type_ids.reshape(-1)
        if packed_at is not None:
            positions, ids = positions[packed_at], ids[packed_at]
            types = None if types is None else types[packed_at]
        hidden = self._embed(ids, types, positions)  # [tokens, hidden]
        key_mask = attention_mask.bool()[:, None, None, :]  # [batch, 1, 1, length]: keys that are real tokens
        layers = self.bert.encoder.layer
        for i, layer in enumerate(layers):
            only_cls = cls_at if i == len(layers) - 1 else None
            hidden = self._layer(layer, hidden, packed_at, batch, length, key_mask, only_cls)
        # The last layer returned [batch, hidden]: the [CLS] rows.
        pooled = self.bert.pooler.activation(self.bert.pooler.dense(hidden))  # [batch, hidden]
        return self.model.classifier(self.model.dropout(pooled))  # [batch, num_labels]

    def _embed(self, ids: torch.Tensor, types: torch.Tensor | None, positions: torch.Tensor) -> torch.Tensor:
        embeddings = self.bert.embeddings
        if types is None:
            types = torch.zeros_like(ids)
        summed = embeddings.word_embeddings(ids) + embeddings.token_type_embeddings(types)
        summed = summed + embeddings.position_embeddings(positions)
        return embeddings.LayerNorm(summed)  # [tokens, hidden]

    @staticmethod
    def _layer(
        layer: torch.nn.Module,
        hidden: torch.Tensor,  # [tokens, hidden]
        packed_at: torch.Tensor | None,
        batch: int,
        length: int,
        key_mask: torch.Tensor,
        cls_at: torch.Tensor | None,
    ) -> torch.Tensor:
        attention = layer.attention.self
        heads, head_size = attention.num_attention_heads, attention.attention_head_size

        def on_grid(x: torch.Tensor) -> torch.Tensor:  # [tokens, heads*head_size] -> [batch, heads, length, head_size]
            if packed_at is not None:
                grid = x.new_zeros(batch * length, x.shape[-1])
                grid[packed_at] = x
                x = grid
            return x.view(batch, length, heads, head_size).transpose(1, 2)

        keys, values = on_grid(attention.key(hidden)), on_grid(attention.value(hidden))
        queries_in = hidden if cls_at is None else hidden[cls_at]  # [tokens or batch, hidden]
        queries = attention.query(queries_in)
        queries = on_grid(queries) if cls_at is None else queries.view(batch, 1, heads, head_size).transpose(1, 2)
        context = F.scaled_dot_product_attention(queries, keys, values, attn_mask=key_mask, scale=attention.scaling)
        context = context.transpose(1, 2).reshape(-1, heads * head_size)  # [batch * query_length, hidden]
        if cls_at is None and packed_at is not None:
            context = context[packed_at]  # back to [tokens, hidden]
        output = layer.attention.output
        attended = output.LayerNorm(output.dense(context) + queries_in)
        return layer.output.LayerNorm(layer.output.dense(layer.intermediate(attended)) + attended)


@contextlib.contextmanager
def cls_only_last_layer(model: torch.nn.Module) -> Iterator[bool]:
    """While training a BERT sequence classifier, let its last layer compute only the [CLS] row.

    The pooler reads nothing else, so the last layer's queries, attention output and feed-forward for the
    other tokens are dead arithmetic, in the forward and again in the backward (about a seventh of a 6-layer
    model's work). Inside this context the last layer computes keys and values for every token and the rest
    for [CLS] alone, with the layer's own modules, dropouts and attention function: the same function of
    the same weights, so gradients match the full layer's to float rounding (tested). It yields whether it
    applied (plain BERT classifiers only, as :func:`packed_classifier`); on exit the layer is as before.
    """
    if packed_classifier(model) is None or model.config._attn_implementation not in ("sdpa", "eager"):
        yield False  # flex attention passes a BlockMask, which the [CLS] row cannot be sliced from
        return
    layer = model.bert.encoder.layer[-1]
    layer.forward = types.MethodType(_cls_only_layer_forward, layer)
    try:
        yield True
    finally:
        del layer.forward  # back to the class's forward


def _cls_only_layer_forward(
    layer: torch.nn.Module, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, *args, **kwargs
) -> torch.Tensor:
    """BertLayer.forward for the [CLS] row only: [batch, length, hidden] in, [batch, 1, hidden] out."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.bert.modeling_bert import eager_attention_forward

    attention = layer.attention.self
    batch, length, _ = hidden_states.shape
    heads, head_size = attention.num_attention_heads, attention.attention_head_size
    cls = hidden_states[:, :1]  # [batch, 1, hidden]
    queries = attention.query(cls).view(batch, 1, heads, head_size).transpose(1, 2)  # [batch, heads, 1, size]
    keys = attention.key(hidden_states).view(batch, length, heads, head_size).transpose(1, 2)
    values = attention.value(hidden_states).view(batch, length, heads, head_size).transpose(1, 2)
    if attention_mask is not None and attention_mask.dim() == 4:
        attention_mask = attention_mask[:, :, :1, :]  # the [CLS] query's row: [batch, 1, 1, length]
    attend = ALL_ATTENTION_FUNCTIONS.get_interface(attention.config._attn_implementation, eager_attention_forward)
    context, _ = attend(attention, queries, keys, values, attention_mask,
                        dropout=attention.dropout.p if attention.training else 0.0, scaling=attention.scaling)  # fmt: skip
    context = context.reshape(batch, 1, heads * head_size)  # [batch, 1, hidden]
    attended = layer.attention.output(context, cls)  # dense, dropout, LayerNorm(+ [CLS] input)
    return layer.output(layer.intermediate(attended), attended)  # [batch, 1, hidden]
