"""Tokenize once into flat arrays, then build dynamically padded batches with vectorised numpy.

A batch is gathered from one flat id array with an index matrix (no per-example Python), padded only to the
longest member; training batches are grouped by length so little padding is computed at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bertkit.exceptions import ConfigError

if TYPE_CHECKING:  # torch is imported where a batch becomes tensors: prediction with ONNX Runtime never needs it
    import torch


@dataclass
class Encoded:
    ids: np.ndarray
    """All token ids back to back, int64 [total_tokens]."""
    type_ids: np.ndarray | None
    """Segment ids aligned with ``ids`` (BERT pairs), or None when the model takes none."""
    offsets: np.ndarray
    """Start of example i in ``ids``: int64 [n]."""
    lengths: np.ndarray
    """Tokens of example i: int64 [n]."""
    pad_id: int
    max_length: int
    doc_index: np.ndarray | None = None
    """With sliding windows: the example each window belongs to, int64 [windows]; None otherwise."""
    n_docs: int | None = None
    """Number of examples (equals the number of rows unless windowed)."""

    def __len__(self) -> int:
        return len(self.lengths)

    def subset(self, index: np.ndarray) -> Encoded:
        """The examples at ``index`` (the flat token arrays are shared, not copied)."""
        return Encoded(
            self.ids, self.type_ids, self.offsets[index], self.lengths[index], self.pad_id, self.max_length,
            None if self.doc_index is None else self.doc_index[index], self.n_docs,
        )  # fmt: skip

    @property
    def truncated(self) -> int:
        """Examples that hit max_length and so were, or may have been, cut (0 with windows: nothing is)."""
        if self.doc_index is not None:
            return 0
        return int((self.lengths >= self.max_length).sum())


def encode(
    tokenizer, texts: Sequence[str], pairs: Sequence[str] | None, max_length: int, stride: int | None = None
) -> Encoded:
    """Tokenize in one batched call of the Rust tokenizer; no padding is stored.

    With a positive ``stride`` (tokens shared by neighbouring windows), texts longer than ``max_length``
    become several overlapping windows instead of being truncated (for pairs, the second text is windowed; a
    pair whose first text leaves the second no more than ``stride`` tokens is truncated instead, as one
    window); ``doc_index`` then maps each window to its example. ``None`` or 0 (a saved ``window_stride`` that
    chose truncation) truncates.
    """
    stride = stride or None
    special = tokenizer.num_special_tokens_to_add(pair=pairs is not None)
    if max_length <= special:
        # below that the tokenizer skips truncation (a torch error later) or keeps the special tokens alone
        raise ConfigError(
            f"--max-length {max_length} leaves no room for text beside the model's {special} special tokens; "
            f"give at least {special + 1} (128 or more is usual)"
        )
    wants_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
    if stride is not None and pairs is not None:
        rows, types, doc_index = _pair_windows(tokenizer, texts, pairs, max_length, stride, wants_types)
    else:
        out = _tokenize(tokenizer, texts, pairs, max_length, wants_types, stride)
        rows, types = out["input_ids"], out.get("token_type_ids")
        doc_index = None if stride is None else np.asarray(out["overflow_to_sample_mapping"], dtype=np.int64)
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows), dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    ids = np.fromiter((t for r in rows for t in r), dtype=np.int64, count=int(lengths.sum()))
    type_ids = None
    if wants_types and pairs is not None:
        type_ids = np.fromiter((t for r in types for t in r), dtype=np.int64, count=int(lengths.sum()))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return Encoded(ids, type_ids, offsets, lengths, int(pad_id), max_length, doc_index, len(texts))


def _tokenize(
    tokenizer, texts: Sequence[str], pairs: Sequence[str] | None, max_length: int, wants_types: bool,
    stride: int | None, truncation: bool | str = True,
) -> Any:  # fmt: skip
    """One batched tokenizer call without padding; ``stride``: overflowing windows sharing that many tokens."""
    windows = {} if stride is None else {"return_overflowing_tokens": True, "stride": stride}
    return tokenizer(
        list(texts),
        list(pairs) if pairs is not None else None,
        truncation=truncation,
        max_length=max_length,
        padding=False,
        return_attention_mask=False,
        return_token_type_ids=wants_types,
        **windows,
    )


def _pair_windows(
    tokenizer, texts: Sequence[str], pairs: Sequence[str], max_length: int, stride: int, wants_types: bool
) -> tuple[list, list | None, np.ndarray]:
    """Windows over the second texts of pairs: (token rows, type rows, the pair of each row), in pair order.

    The Rust tokenizer fails (a panic, not an exception) on a pair whose first text leaves the second
    ``stride`` tokens or fewer: those pairs are truncated instead, one window each, so one long first text
    among many cannot stop a prediction run."""
    firsts = tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False)["input_ids"]
    room = max_length - tokenizer.num_special_tokens_to_add(pair=True)
    narrow = np.fromiter((room - len(f) <= stride for f in firsts), dtype=bool, count=len(firsts))
    groups = [(np.flatnonzero(~narrow), stride, "only_second"), (np.flatnonzero(narrow), None, True)]
    rows: list = []
    types: list = []
    owners = []
    for index, group_stride, truncation in groups:
        if not len(index):
            continue
        out = _tokenize(
            tokenizer, [texts[i] for i in index], [pairs[i] for i in index], max_length, wants_types,
            group_stride, truncation,
        )  # fmt: skip
        rows.extend(out["input_ids"])
        types.extend(out.get("token_type_ids") or [])
        mapping = out["overflow_to_sample_mapping"] if group_stride is not None else range(len(index))
        owners.append(index[np.asarray(mapping, dtype=np.int64)])
    doc_index = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
    order = np.argsort(doc_index, kind="stable")  # windows of a pair stay in reading order
    return [rows[i] for i in order], [types[i] for i in order] if types else None, doc_index[order]


def count_longer(tokenizer, texts: Sequence[str], pairs: Sequence[str] | None, max_length: int) -> int:
    """Examples (texts, or pairs with their special tokens) longer than ``max_length`` tokens: those that
    truncation at ``max_length`` cuts. Tokenized at ``max_length + 1``, so one of exactly ``max_length``
    tokens counts as fitting; nothing random is drawn."""
    if not len(texts):
        return 0
    out = _tokenize(tokenizer, texts, pairs, max_length + 1, wants_types=False, stride=None)
    return sum(len(row) > max_length for row in out["input_ids"])


def collate_arrays(encoded: Encoded, index: np.ndarray, with_type_ids: bool) -> dict[str, np.ndarray]:
    """Pad the examples at ``index`` to their longest member.

    Returns input_ids, attention_mask (and token_type_ids when the model takes them): int64 [batch, longest].
    """
    lengths = encoded.lengths[index]
    longest = int(lengths.max())
    positions = np.arange(longest)
    mask = positions[None, :] < lengths[:, None]  # [batch, longest]
    gather = np.where(mask, encoded.offsets[index][:, None] + positions[None, :], 0)
    batch = {
        "input_ids": np.where(mask, encoded.ids[gather], encoded.pad_id),
        "attention_mask": mask.astype(np.int64),
    }
    if with_type_ids and encoded.type_ids is not None:
        batch["token_type_ids"] = np.where(mask, encoded.type_ids[gather], 0)
    return batch


def collate(encoded: Encoded, index: np.ndarray, with_type_ids: bool) -> dict[str, torch.Tensor]:
    """:func:`collate_arrays` as torch tensors (sharing the arrays' memory)."""
    import torch

    return {name: torch.from_numpy(array) for name, array in collate_arrays(encoded, index, with_type_ids).items()}


def gather_padded(
    encoded: Encoded, values: np.ndarray, index: np.ndarray, pad_value: int, longest: int | None = None
) -> torch.Tensor:
    """Per-token ``values`` (aligned with ``encoded.ids``) of the examples at ``index``, padded like
    ``collate`` pads the ids: [batch, longest]. Token labels use it with ``pad_value=-100``."""
    import torch

    lengths = encoded.lengths[index]
    longest = longest or int(lengths.max())
    positions = np.arange(longest)
    mask = positions[None, :] < lengths[:, None]  # [batch, longest]
    gather = np.where(mask, encoded.offsets[index][:, None] + positions[None, :], 0)
    return torch.from_numpy(np.where(mask, values[gather], pad_value))


def training_batches(
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    *,
    group_size: int = 50,
    rank: int = 0,
    world_size: int = 1,
) -> list[np.ndarray]:
    """Shuffled batches of similar length: shuffle, sort within groups of ``group_size`` batches, cut, and
    shuffle the batch order. Under DDP each global batch is split among the ranks (:func:`split_for_rank`)."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * group_size
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(-lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    batches = [batches[i] for i in rng.permutation(len(batches))]
    return split_for_rank(batches, rank, world_size)


def split_for_rank(batches: list[np.ndarray], rank: int, world_size: int) -> list[np.ndarray]:
    """This rank's share of each global batch (:func:`global_batches_for`): every ``world_size``-th member
    (batches are length-sorted, so each rank still gets texts of similar length). The union over ranks of
    micro-batch k is global batch k, which makes a run on N processes take the same steps as one process with
    the same global batch."""
    if world_size <= 1:
        return batches
    return [batch[rank::world_size] for batch in global_batches_for(batches, world_size)]


def global_batches_for(batches: list[np.ndarray], world_size: int) -> list[np.ndarray]:
    """``batches`` as ``world_size`` processes take them: a batch smaller than ``world_size`` (at most the
    epoch's last, short one), which would leave a rank with nothing, joins the batch before it (or, first, the
    one after), so no row is left out. Empty when no batch has ``world_size`` rows (fewer rows than processes:
    :class:`bertkit.engine.loop.StepPlan` refuses that)."""
    if world_size <= 1:
        return batches
    joined: list[np.ndarray] = []
    waiting: list[np.ndarray] = []  # small batches before the first full one
    for batch in batches:
        if len(batch) >= world_size:
            joined.append(np.concatenate([*waiting, batch]) if waiting else batch)
            waiting = []
        elif joined:
            joined[-1] = np.concatenate([joined[-1], batch])
        else:
            waiting.append(batch)
    return joined


def inference_batches(lengths: np.ndarray, max_batch_size: int, max_tokens: int = 16384) -> Iterator[np.ndarray]:
    """Length-sorted batches bounded by examples and by padded tokens (long texts get smaller batches)."""
    order = np.argsort(-lengths, kind="stable")
    start = 0
    while start < len(order):
        longest = int(lengths[order[start]])
        size = max(1, min(max_batch_size, max_tokens // max(longest, 1)))
        yield order[start : start + size]
        start += size
