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
        # Each grid position's packed row for attention's inputs: padding takes the row before it (a real
        # token's, finite, and masked out as a key; its query's output is never packed back). One gather, where
        # writing onto a zeroed grid is a fill and a scatter (13% of the int8 graph's time, profiled).
        self.spread_at = None if self.packed_at is None else (torch.cumsum(keep.long(), 0) - 1).clamp(min=0)
        self._additive_masks: dict[torch.dtype, torch.Tensor] = {}
        self._indices: dict[tuple[str, int], torch.Tensor] = {}

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

    def row_sums(self, packed: torch.Tensor) -> torch.Tensor:
        """``[tokens, features]`` -> ``[batch, features]``: each row's sum over its real tokens, as one product
        with the rows' one-hot membership ``[batch, tokens]`` (no zero-filled grid to scatter onto)."""
        rows = torch.arange(self.batch, device=packed.device)
        owner = self.pack(rows.repeat_interleave(self.length))  # [tokens]: each token's row
        return (owner[None, :] == rows[:, None]).to(packed.dtype) @ packed

    def heads(self, packed: torch.Tensor, heads: int) -> torch.Tensor:
        """Packed projections ``[tokens, heads * size]`` -> the attention grid ``[batch, heads, length, size]``;
        padding positions hold another token's row (finite; masked out as keys, dropped as queries)."""
        if torch.onnx.is_in_onnx_export():
            # One Gather of [size] rows straight into the head-major grid: the graph has no Transpose here
            # (Transposes were 15% of the int8 graph's time). Eager torch keeps the transposed view below,
            # which costs no copy and is the layout its attention kernel reads.
            rows = packed.reshape(-1, packed.shape[-1] // heads)  # [tokens * heads, size]
            return rows[self._index("heads", heads)].view(self.batch, heads, self.length, -1)
        spread = packed if self.spread_at is None else packed[self.spread_at]  # [batch * length, heads * size]
        return spread.view(self.batch, self.length, heads, -1).transpose(1, 2)

    def packed_heads(self, context: torch.Tensor) -> torch.Tensor:
        """The attention grid ``[batch, heads, length, size]`` -> packed ``[tokens, heads * size]``."""
        heads, size = context.shape[1], context.shape[3]
        if torch.onnx.is_in_onnx_export():  # one Gather, no Transpose (see heads)
            return context.reshape(-1, size)[self._index("packed", heads)].view(-1, heads * size)
        # eager attention returns the grid as a transposed view of [batch, length, heads, size]: free to undo
        return self.pack(context.transpose(1, 2).reshape(self.batch * self.length, heads * size))

    def _index(self, direction: str, heads: int) -> torch.Tensor:
        """Row indices for :meth:`heads` ("heads": ``[batch * heads * length]`` rows of the packed
        ``[tokens * heads, size]``) and :meth:`packed_heads` ("packed": ``[tokens * heads]`` rows of the grid's
        ``[batch * heads * length, size]``), made once per forward."""
        key = (direction, heads)
        if key not in self._indices:
            device = self.attention_mask.device
            head = torch.arange(heads, device=device)
            if direction == "heads":
                grid = torch.arange(self.batch * self.length, device=device)
                token = grid if self.spread_at is None else self.spread_at  # [batch * length]
                index = token.view(self.batch, 1, self.length) * heads + head.view(1, heads, 1)
            else:
                flat = self.pack(torch.arange(self.batch * self.length, device=device))  # [tokens]: b * length + l
                row, column = flat // self.length, flat % self.length
                index = (row[:, None] * heads + head[None, :]) * self.length + column[:, None]  # [tokens, heads]
            self._indices[key] = index.reshape(-1)
        return self._indices[key]

    def additive_mask(self, dtype: torch.dtype) -> torch.Tensor:
        """The key mask as scores to add (0 on real keys, the dtype's lowest on padding) ``[batch, 1, 1,
        length]``, made once per forward and dtype: a float mask exports to one Add per layer, a boolean one to
        Where and a NaN guard after the softmax (every row here has a real key, so no row is all masked)."""
        if dtype not in self._additive_masks:
            zeros = torch.zeros(self.key_mask.shape, dtype=dtype, device=self.key_mask.device)
            self._additive_masks[dtype] = zeros.masked_fill(~self.key_mask, torch.finfo(dtype).min)
        return self._additive_masks[dtype]

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
        if allowed is None and bias is None:
            mask = self.additive_mask(queries.dtype)
        else:
            keep = self.key_mask if allowed is None else self.key_mask & (allowed[:1] if cls_only else allowed)
            scores = torch.zeros((), dtype=queries.dtype, device=queries.device) if bias is None else bias
            scores = scores[:, :, :1] if bias is not None and cls_only else scores
            mask = scores.to(queries.dtype).masked_fill(~keep, torch.finfo(queries.dtype).min)
        context = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask, scale=scale)
        if cls_only:  # [batch, heads, 1, size] -> [batch, hidden]
            return context.transpose(1, 2).reshape(self.batch, -1)
        return self.packed_heads(context)  # [tokens, hidden]


def padding_positions(input_ids: torch.Tensor, padding_idx: int, grid: Grid) -> torch.Tensor:
    """RoBERTa's and MPNet's position ids of the packed tokens: ``padding_idx + 1`` onwards, counting only
    tokens that are not the padding id (as ``create_position_ids_from_input_ids`` does on the padded batch)."""
    real = input_ids.ne(padding_idx).int()
    positions = torch.cumsum(real, dim=1).type_as(real) * real + padding_idx  # [batch, length]
    return grid.pack(positions.reshape(-1).long())
