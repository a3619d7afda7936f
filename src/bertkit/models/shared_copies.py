"""R-Drop on the top layers only: the encoder layers below run once per batch and their output is copied.

R-Drop (``--rdrop``) runs every batch twice, with independent dropout masks, and penalises the difference of the
two predictions; stacked into one forward pass it doubles the examples of every layer, forward and backward.
With ``--rdrop-layers K`` the batch runs once through the embeddings and the layers below the top K, and its
hidden states are copied in front of the first of the top K layers: the two copies share the lower layers'
dropout masks and differ from there up (the top K layers and the head), at the cost of K layers run twice
instead of all of them. Hooks do the copying (a forward pre-hook on each of the top K layers), so the model stays
the Hugging Face module it was; in eval mode they do nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from bertkit.exceptions import ConfigError

MASK_KEYWORDS = ("attention_mask", "attn_mask")
"""The keyword names of the padding mask that BERT-style and DistilBERT layers take."""
FAMILIES = ("BertLayer", "RobertaLayer", "XLMRobertaLayer", "CamembertLayer", "ElectraLayer", "TransformerBlock")
"""Layer classes whose inputs are the hidden states then the padding mask (positional or by keyword) and
nothing else with a batch dimension: the families whose top layers can be run on copies by this module."""


def top_layers(model: torch.nn.Module, count: int) -> list[torch.nn.Module]:
    """The top ``count`` encoder layers of ``model`` (a BERT-style or DistilBERT classifier); ConfigError for
    another architecture or a count that is not a proper part of its layers."""
    base = model.base_model
    holder = getattr(getattr(base, "encoder", None), "layer", None)
    if holder is None:
        holder = getattr(getattr(base, "transformer", None), "layer", None)  # DistilBERT
    layers = list(holder) if holder is not None else []
    if not layers or type(layers[0]).__name__ not in FAMILIES:
        raise ConfigError(
            f"--rdrop-layers runs the top layers of BERT, RoBERTa, XLM-R, CamemBERT, ELECTRA or DistilBERT on "
            f"copies; {getattr(model.config, 'model_type', type(model).__name__)} layers are built otherwise: leave "
            "--rdrop-layers out (R-Drop then copies the whole batch)"
        )
    if not 1 <= count < len(layers):
        raise ConfigError(
            f"--rdrop-layers {count}: the model has {len(layers)} encoder layers; give 1 to {len(layers) - 1} "
            "(or leave it out: R-Drop through every layer)"
        )
    return layers[len(layers) - count :]


@contextlib.contextmanager
def copies_from_top_layers(model: torch.nn.Module, count: int, copies: int = 2) -> Iterator[None]:
    """While training, stack ``copies`` copies of the hidden states in front of the top ``count`` layers (and of
    the padding mask those layers take), copy after copy, so the model's outputs are ``[copies x batch, ...]``
    as if the batch had been stacked at the input. The hooks act only in training mode; removed on exit."""
    layers = top_layers(model, count)
    first = layers[0]

    def copy_inputs(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        if not module.training:
            return None
        hidden = args[0] if args else kwargs["hidden_states"]
        # the first shared layer gets the batch once; above it the hidden states are already copies
        batch = hidden.shape[0] if module is first else hidden.shape[0] // copies
        if module is first:
            hidden = torch.cat([hidden] * copies)  # [copies x batch, length, hidden]
        args = (hidden, *args[1:]) if args else args
        if not args:
            kwargs = {**kwargs, "hidden_states": hidden}
        args = tuple(_copied(value, batch, copies) if i == 1 else value for i, value in enumerate(args))
        kwargs = {k: _copied(v, batch, copies) if k in MASK_KEYWORDS else v for k, v in kwargs.items()}
        return args, kwargs

    handles = [layer.register_forward_pre_hook(copy_inputs, with_kwargs=True) for layer in layers]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _copied(mask: Any, batch: int, copies: int) -> Any:
    """The padding mask of one copy, stacked ``copies`` times when it has one row per example (a mask that
    broadcasts over the batch, or None, stays as it is)."""
    if isinstance(mask, torch.Tensor) and mask.dim() > 0 and mask.shape[0] == batch and batch > 1:
        return torch.cat([mask] * copies)
    return mask
