"""A packed inference forward for encoder sequence classifiers: no arithmetic on padding, and a last layer that
computes only what the [CLS] token needs.

``...ForSequenceClassification.forward`` runs every dense layer on the padded ``[batch, max_len]`` grid, and
its last layer computes every token although the head reads only [CLS]. At inference the dense layers (about
nine tenths of the work) are per token, so this forward gathers the real tokens into one ``[tokens, hidden]``
matrix, scatters them back onto the padded grid only for the attention product (:mod:`.packed_grid`), and in
the last layer computes keys and values for all tokens but queries, attention output and feed-forward for
[CLS] alone. The weights are the model's own modules; the logits equal the Hugging Face forward's up to float
rounding (tested per family). Families: BERT, RoBERTa, XLM-R, CamemBERT, ELECTRA, DistilBERT, ALBERT, MPNet
(:mod:`.packed_families`), DeBERTa-v2/v3 and ModernBERT (:mod:`.packed_modern`). Other architectures, and
variants these forwards do not reproduce exactly, use the Hugging Face forward (:func:`packed_classifier`
returns None).
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator

import torch

from bertkit.models.packed_families import Albert, Bert, DistilBert, Electra, Family, MPNet, Roberta
from bertkit.models.packed_grid import Grid
from bertkit.models.packed_modern import DebertaV2, ModernBert

FAMILIES: dict[str, Family] = {
    "BertForSequenceClassification": Bert(),
    "RobertaForSequenceClassification": Roberta(),
    "XLMRobertaForSequenceClassification": Roberta(),
    "CamembertForSequenceClassification": Roberta(),
    "ElectraForSequenceClassification": Electra(),
    "DistilBertForSequenceClassification": DistilBert(),
    "AlbertForSequenceClassification": Albert(),
    "MPNetForSequenceClassification": MPNet(),
    "DebertaV2ForSequenceClassification": DebertaV2(),
    "ModernBertForSequenceClassification": ModernBert(),
}
"""The sequence classifier classes that run packed, by class name (subclasses and remote code do not)."""


def packed_classifier(model: torch.nn.Module) -> PackedClassifier | None:
    """A :class:`PackedClassifier` over ``model`` when it is one of :data:`FAMILIES`' sequence classifiers,
    built the way that family's forward assumes (encoder only...); None otherwise, and the caller keeps the
    Hugging Face forward."""
    family = FAMILIES.get(type(model).__name__)
    if family is None or not family.supports(model):
        return None
    return PackedClassifier(model, family)


class PackedClassifier:
    """Callable like ``model(**inputs).logits`` for a sequence classifier in eval mode, on right-padded
    batches (bertkit pads on the right; other batches, and training mode, go to the model's own forward)."""

    def __init__(self, model: torch.nn.Module, family: Family) -> None:
        self.model = model
        self.family = family

    def __call__(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.model.training or not bool(attention_mask[:, 0].all()):
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:  # DistilBERT and ModernBERT take no segment ids
                inputs["token_type_ids"] = token_type_ids
            return self.model(**inputs).logits
        return self.family.run(self.model, Grid(attention_mask), input_ids, token_type_ids)


PackedBertClassifier = PackedClassifier
"""The former name, when only BERT ran packed."""


@contextlib.contextmanager
def cls_only_last_layer(model: torch.nn.Module) -> Iterator[bool]:
    """While training a sequence classifier whose head reads only [CLS] (BERT, RoBERTa, XLM-R, CamemBERT,
    ELECTRA, DistilBERT), let its last layer compute only the [CLS] row.

    The head reads nothing else, so the last layer's queries, attention output and feed-forward for the
    other tokens are dead arithmetic, in the forward and again in the backward (about a seventh of a 6-layer
    model's work). Inside this context the last layer computes keys and values for every token and the rest
    for [CLS] alone, with the layer's own modules, dropouts and attention function: the same function of
    the same weights, so gradients match the full layer's to float rounding (tested). It yields whether it
    applied; on exit the layer is as before.
    """
    family = FAMILIES.get(type(model).__name__)
    patch = _TRAINING_LAYERS.get(type(family))
    if patch is None or not family.supports(model) or model.config._attn_implementation not in ("sdpa", "eager"):
        yield False  # flex attention passes a BlockMask, which the [CLS] row cannot be sliced from
        return
    layer = family.layers(model)[-1]
    layer.forward = types.MethodType(patch, layer)
    try:
        yield True
    finally:
        del layer.forward  # back to the class's forward


def _cls_attention(
    attention: torch.nn.Module, projections: tuple, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None
) -> torch.Tensor:
    """The [CLS] query's attention over every token with ``attention``'s own interface and dropout:
    ``projections`` the (query, key, value) modules; [batch, 1, heads * size] out."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.bert.modeling_bert import eager_attention_forward

    query, key, value = projections
    batch, length, _ = hidden_states.shape
    size = attention.attention_head_size
    queries = query(hidden_states[:, :1]).view(batch, 1, -1, size).transpose(1, 2)  # [batch, heads, 1, size]
    keys = key(hidden_states).view(batch, length, -1, size).transpose(1, 2)
    values = value(hidden_states).view(batch, length, -1, size).transpose(1, 2)
    if attention_mask is not None and attention_mask.dim() == 4:
        attention_mask = attention_mask[:, :, :1, :]  # the [CLS] query's row: [batch, 1, 1, length]
    attend = ALL_ATTENTION_FUNCTIONS.get_interface(attention.config._attn_implementation, eager_attention_forward)
    context, _ = attend(attention, queries, keys, values, attention_mask,
                        dropout=attention.dropout.p if attention.training else 0.0, scaling=attention.scaling)  # fmt: skip
    return context.reshape(batch, 1, -1)


def _cls_only_bert_layer(
    layer: torch.nn.Module, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, *args, **kwargs
) -> torch.Tensor:
    """BertLayer.forward (RoBERTa's, ELECTRA's...) for the [CLS] row only: [batch, length, hidden] in,
    [batch, 1, hidden] out."""
    attention = layer.attention.self
    projections = (attention.query, attention.key, attention.value)
    context = _cls_attention(attention, projections, hidden_states, attention_mask)
    attended = layer.attention.output(context, hidden_states[:, :1])  # dense, dropout, LayerNorm(+ [CLS] input)
    return layer.output(layer.intermediate(attended), attended)  # [batch, 1, hidden]


def _cls_only_distilbert_layer(
    layer: torch.nn.Module, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, *args, **kwargs
) -> torch.Tensor:
    """DistilBERT's TransformerBlock.forward for the [CLS] row only."""
    attention = layer.attention
    context = _cls_attention(
        attention, (attention.q_lin, attention.k_lin, attention.v_lin), hidden_states, attention_mask
    )
    attended = layer.sa_layer_norm(attention.out_lin(context) + hidden_states[:, :1])
    return layer.output_layer_norm(layer.ffn(attended) + attended)  # [batch, 1, dim]


_TRAINING_LAYERS = {
    Bert: _cls_only_bert_layer,
    Roberta: _cls_only_bert_layer,
    Electra: _cls_only_bert_layer,
    DistilBert: _cls_only_distilbert_layer,
}
"""The families whose last layer :func:`cls_only_last_layer` can replace in training, and the replacement."""
