"""Packed forwards (:mod:`bertkit.models.packed`) for the encoders whose attention is not BERT's: DeBERTa-v2/v3
(disentangled attention over relative positions) and ModernBERT (pre-norm layers, rotary positions, local
sliding-window layers, GLU feed-forward)."""

from __future__ import annotations

from typing import Any

import torch

from bertkit.models.packed_families import Family
from bertkit.models.packed_grid import Grid


class DebertaV2(Family):
    """DeBERTa-v2 and v3. The disentangled attention (content and relative-position scores) runs as the model's
    own module on the padded grid, its query/key/value projections included; the attention output and the
    feed-forward, two thirds of a layer's work, run packed. Every layer runs whole (the attention module has no
    [CLS]-only query path); the head then reads the [CLS] rows."""

    embeddings_types = ("DebertaV2Embeddings",)

    def supports(self, model: torch.nn.Module) -> bool:
        # The convolution layer (deberta-v2-xlarge) mixes neighbouring tokens outside attention; z_steps re-runs
        # the last layer: both are left to the Hugging Face forward.
        if getattr(model.config, "conv_kernel_size", 0) > 0 or getattr(model.deberta, "z_steps", 0) > 1:
            return False
        return super().supports(model)

    def cls_only_last(self, model: torch.nn.Module) -> bool:
        return False

    def prepare(self, model: torch.nn.Module, grid: Grid) -> dict[str, Any]:
        encoder = model.deberta.encoder
        shape = torch.empty(1, grid.length, 0, device=grid.attention_mask.device)  # only its length is read
        return {
            "attention_mask": encoder.get_attention_mask(grid.attention_mask),  # [batch, 1, length, length]
            "relative_pos": encoder.get_rel_pos(shape),
            "rel_embeddings": encoder.get_rel_embedding(),
        }

    def layer(
        self, layer: torch.nn.Module, hidden: torch.Tensor, grid: Grid, cls_only: bool, context: Any
    ) -> torch.Tensor:
        attended, _ = layer.attention.self(grid.unpack(hidden), context["attention_mask"],
                                           relative_pos=context["relative_pos"], rel_embeddings=context["rel_embeddings"])  # fmt: skip
        attended = layer.attention.output(grid.pack_grid(attended), hidden)  # dense, dropout, LayerNorm(+ residual)
        return layer.output(layer.intermediate(attended), attended)

    def head(self, model: torch.nn.Module, hidden: torch.Tensor, grid: Grid) -> torch.Tensor:
        pooled = model.pooler(hidden[grid.cls_at][:, None])  # ContextPooler reads features[:, 0]
        return model.classifier(model.dropout(pooled))


class ModernBert(Family):
    """ModernBERT: pre-norm layers (the first without attention norm), one fused query/key/value projection,
    rotary positions (local and global bases), sliding-window attention on local layers, a GLU feed-forward,
    a final norm, then [CLS] or mean pooling into its prediction head."""

    embeddings_types = ("ModernBertEmbeddings",)

    def supports(self, model: torch.nn.Module) -> bool:
        return model.config.classifier_pooling in ("cls", "mean") and super().supports(model)

    def cls_only_last(self, model: torch.nn.Module) -> bool:
        return model.config.classifier_pooling == "cls"

    def embed(self, model: torch.nn.Module, grid: Grid, input_ids: torch.Tensor, token_type_ids: Any) -> torch.Tensor:
        return model.model.embeddings(input_ids=grid.pack(input_ids.reshape(-1))[None])[0]

    def layers(self, model: torch.nn.Module) -> list[torch.nn.Module]:
        return list(model.model.layers)

    def prepare(self, model: torch.nn.Module, grid: Grid) -> dict[str, Any]:
        """Per layer type: the packed tokens' rotary cos and sin ``[tokens, head_dim]`` and the keys each query
        may see (``|query - key| <= sliding_window`` on local layers, None on global ones)."""
        weight = model.model.embeddings.tok_embeddings.weight
        like = torch.empty(0, dtype=weight.dtype, device=weight.device)  # cos and sin take its dtype
        columns = torch.arange(grid.length, device=grid.positions.device)
        window = (columns[:, None] - columns[None, :]).abs() <= model.config.sliding_window  # [length, length]
        context = {}
        for layer_type in set(model.config.layer_types):
            cos, sin = model.model.rotary_emb(like, grid.positions[None], layer_type)  # [1, tokens, head_dim]
            context[layer_type] = (cos[0], sin[0], window if layer_type == "sliding_attention" else None)
        return context

    def layer(
        self, layer: torch.nn.Module, hidden: torch.Tensor, grid: Grid, cls_only: bool, context: Any
    ) -> torch.Tensor:
        from transformers.models.modernbert.modeling_modernbert import apply_rotary_pos_emb

        attention = layer.attn
        cos, sin, allowed = context[layer.attention_type]
        qkv = attention.Wqkv(layer.attn_norm(hidden)).view(hidden.shape[0], 3, -1, attention.head_dim)
        queries, keys, values = qkv.unbind(dim=1)  # [tokens, heads, head_dim] each
        heads = queries.shape[1]
        queries, keys = apply_rotary_pos_emb(queries, keys, cos, sin, unsqueeze_dim=1)
        residual = hidden
        if cls_only:
            queries, residual = queries[grid.cls_at], hidden[grid.cls_at]
        attended = grid.attend(
            queries.reshape(queries.shape[0], -1), keys.reshape(keys.shape[0], -1), values.reshape(values.shape[0], -1),
            heads, attention.head_dim**-0.5, cls_only=cls_only, allowed=allowed,
        )  # fmt: skip
        hidden = residual + attention.out_drop(attention.Wo(attended))
        return hidden + layer.mlp(layer.mlp_norm(hidden))

    def head(self, model: torch.nn.Module, hidden: torch.Tensor, grid: Grid) -> torch.Tensor:
        hidden = model.model.final_norm(hidden)
        if model.config.classifier_pooling != "cls":  # mean over each row's real tokens (zeros on padding)
            hidden = grid.row_sums(hidden) / grid.attention_mask.sum(dim=1, keepdim=True).to(hidden.dtype)
        return model.classifier(model.drop(model.head(hidden)))
