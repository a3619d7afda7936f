"""Mean pooling for classifiers on sentence-embedding checkpoints: which pooling a checkpoint was trained with,
and an extra encoder layer that starts as mean pooling inside a plain ``...ForSequenceClassification``."""

from __future__ import annotations

import json
from pathlib import Path

from bertkit.exceptions import ConfigError


def sentence_pooling(checkpoint: str) -> str | None:
    """The pooling a sentence-transformers checkpoint folder was trained with (``mean`` or ``cls``), read from
    its ``modules.json`` and pooling config; None for other folders and for hub ids (nothing is downloaded)."""
    folder = Path(checkpoint)
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        pooling = next(m for m in modules if str(m.get("type", "")).endswith("Pooling"))
        config = json.loads((folder / pooling["path"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, StopIteration, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(config, dict):
        return None
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    if config.get("pooling_mode_cls_token"):
        return "cls"
    return None


def add_mean_pooling_layer(model, scale: float = 10.0) -> None:
    """Append an encoder layer to ``model`` (in place) whose [CLS] output starts as the mean of the previous
    layer's hidden states over the real tokens, layer-normalised: mean pooling, in a model that stays a plain
    ``...ForSequenceClassification`` (one layer deeper), so ``transformers`` loads it without bertkit.

    Sentence-embedding checkpoints such as all-MiniLM-L6-v2 were trained with mean pooling; their [CLS] state
    is a weaker starting point for the classification head (frozen-feature probe on rotten_tomatoes: mean
    0.748, [CLS] 0.717, pooler 0.704). The new layer is a copy of the last one, then: queries zero (every
    score 0, so the attention mask leaves uniform weights over real tokens), values the identity, attention
    output ``scale`` x identity (LayerNorm ignores scale, so the residual [CLS] state weighs 1/scale),
    feed-forward output zero, LayerNorms plain. All of it trains with the rest.
    """
    import copy

    import torch

    if not has_bert_style_layers(model):
        raise ConfigError(
            f"--classifier-pooling mean needs a BERT-style encoder (BERT, RoBERTa, ...); "
            f"{model.config.model_type} layers are built differently: use --classifier-pooling cls"
        )
    layers = model.base_model.encoder.layer
    layer = copy.deepcopy(layers[-1])
    hidden = model.config.hidden_size
    identity = torch.eye(hidden)
    attention, output = layer.attention, layer.output
    with torch.no_grad():
        attention.self.query.weight.zero_()
        attention.self.query.bias.zero_()
        attention.self.value.weight.copy_(identity)
        attention.self.value.bias.zero_()
        attention.output.dense.weight.copy_(identity * scale)
        attention.output.dense.bias.zero_()
        output.dense.weight.zero_()
        output.dense.bias.zero_()
        for norm in (attention.output.LayerNorm, output.LayerNorm):
            norm.weight.fill_(1.0)
            norm.bias.zero_()
    if hasattr(attention.self, "layer_idx"):
        attention.self.layer_idx = len(layers)
    layers.append(layer)
    model.config.num_hidden_layers += 1


# Encoders whose layers are BERT's own, with nothing else in them (Longformer's global attention or ConvBERT's
# convolution branch have the same attribute names but would not start as mean pooling).
BERT_STYLE_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "electra")


def has_bert_style_layers(model) -> bool:
    """Whether ``model``'s encoder layers are BERT's (post-LayerNorm, query/key/value projections), which
    :func:`add_mean_pooling_layer` knows how to copy and set."""
    if getattr(model.config, "model_type", None) not in BERT_STYLE_MODEL_TYPES:
        return False
    layers = getattr(getattr(model.base_model, "encoder", None), "layer", None)
    return layers is not None and len(layers) > 0
