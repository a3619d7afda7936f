"""The core of the packed forward (:mod:`bertkit.models.packed`): a right-padded batch's real tokens as one
``[tokens, hidden]`` matrix, and the moves between that matrix and the padded ``[batch, heads, length, size]``
grid that attention needs.

Dense layers, layer norms and activations act on each token alone, so they run on the packed matrix and do no
work on padding; only the attention product, which mixes tokens of one row, runs on the grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the usual name)


class Grid:
    """Where a right-padded batch's real tokens sit: ``packed_at`` (their flat index in the ``[batch * length]``
    grid; None when nothing is padded), ``cls_at`` (each row's first token among the packed ones), ``positions``
    (each packed token's column) and ``key_mask`` (bool ``[batch, 1, 1, length]``, the real keys)."""

    def __init__(self, attention_mask: torch.Tensor) -> None:
        self.batch, self.length = attention_mask.shape
        self.attention_mask = attention_mask
        keep = attention_mask.reshape(-1).bool()  # [batch * length]
        lengths = attention_mask.sum(dim=1)  # [batch]
        self.packed_at = None if bool(keep.all()) else keep.nonzero().squeeze(1)  # [tokens] or None
        self.cls_at = torch.cumsum(lengths, 0) - lengths  # [batch]: column 0 is real (checked by the caller)
        self.positions = self.pack(torch.arange(self.length, device=attention_mask.device).repeat(self.batch))
        self.key_mask = attention_mask.bool()[:, None, None, :]

    def pack(self, flat: torch.Tensor) -> torch.Tensor:
        """``[batch * length, ...]`` -> ``[tokens, ...]``: the real tokens' rows."""
        return flat if self.packed_at is None else flat[self.packed_at]

    def pack_grid(self, grid: torch.Tensor) -> torch.Tensor:
        """``[batch, length, ...]`` -> ``[tokens, ...]``."""
        return self.pack(grid.reshape(self.batch * self.length, *grid.shape[2:]))

    def unpack(self, packed: torch.Tensor) -> torch.Tensor:
        """``[tokens, features]`` -> ``[batch, length, features]``, zeros on padding."""
        if self.packed_at is not None:
            grid = packed.new_zeros(self.batch * self.length, packed.shape[-1])
            grid[self.packed_at] = packed
            packed = grid
        return packed.view(self.batch, self.length, packed.shape[-1])

    def heads(self, packed: torch.Tensor, heads: int) -> torch.Tensor:
        """Packed projections ``[tokens, heads * size]`` -> the attention grid ``[batch, heads, length, size]``."""
        return self.unpack(packed).view(self.batch, self.length, heads, -1).transpose(1, 2)

    def attend(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        heads: int,
        scale: float,
        *,
        cls_only: bool = False,
        bias: torch.Tensor | None = None,
        allowed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attention of packed projections (``[tokens, heads * size]``; ``queries`` ``[batch, heads * size]``
        when ``cls_only``) over each row's real tokens, returned packed like ``queries``.

        ``bias`` (float, ``[1 or batch, heads, length, length]``) is added to the scores; ``allowed`` (bool,
        ``[length, length]``) narrows which keys each query sees (a sliding window)."""
        keys, values = self.heads(keys, heads), self.heads(values, heads)
        # [batch, heads, 1, size] for the [CLS] queries alone, else [batch, heads, length, size]
        queries = queries.view(self.batch, 1, heads, -1).transpose(1, 2) if cls_only else self.heads(queries, heads)
        mask = self.key_mask if allowed is None else self.key_mask & (allowed[:1] if cls_only else allowed)
        if bias is not None:
            bias = bias[:, :, :1] if cls_only else bias
            mask = bias.to(queries.dtype).masked_fill(~mask, torch.finfo(queries.dtype).min)
        context = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask, scale=scale)
        context = context.transpose(1, 2).reshape(-1, queries.shape[1] * queries.shape[3])
        return context if cls_only else self.pack(context)  # [batch or tokens, hidden]


def padding_positions(input_ids: torch.Tensor, padding_idx: int, grid: Grid) -> torch.Tensor:
    """RoBERTa's and MPNet's position ids of the packed tokens: ``padding_idx + 1`` onwards, counting only
    tokens that are not the padding id (as ``create_position_ids_from_input_ids`` does on the padded batch)."""
    real = input_ids.ne(padding_idx).int()
    positions = torch.cumsum(real, dim=1).type_as(real) * real + padding_idx  # [batch, length]
    return grid.pack(positions.reshape(-1).long())
