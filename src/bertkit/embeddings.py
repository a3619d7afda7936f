"""Sentence and token embeddings from any BERT-family encoder (base checkpoint or a fine-tuned bertkit model)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from bertkit.data.encoding import collate, encode, inference_batches
from bertkit.data.writers import check_output_file, written_file
from bertkit.devices import resolve_device
from bertkit.exceptions import ConfigError, DataError, NotFittedError
from bertkit.models.checkpoints import (
    load_error,
    load_tokenizer,
    position_limit,
    quiet_transformers,
    resolve_checkpoint,
)
from bertkit.params import ParamsMixin

POOLINGS = ("mean", "cls", "pooler")


class TextEmbedder(ParamsMixin):
    """Embed texts with an encoder: ``pooling`` "mean" (attention-masked), "cls" or "pooler"; ``layers`` -1
    (the last), another index, or a list of indices whose hidden states are averaged.

    ``transform(texts)`` returns float32 [n, hidden] in input order; ``token_embeddings(texts)`` returns,
    per text, its tokens and their hidden states [tokens, hidden]. Batches are length-sorted and padded
    only to their longest member. ``texts``: a list, array or Series of strings, or a one-column DataFrame.
    Texts are truncated at ``max_length`` tokens, or at the model's position limit where that is lower
    (``max_length_``), as sentence-transformers does.
    """

    _estimator_type = "transformer"

    def __init__(
        self,
        model: str = "minilm",
        *,
        pooling: str = "mean",
        layers: int | Sequence[int] = -1,
        normalize: bool = False,
        max_length: int = 256,
        batch_size: int = 64,
        device: str = "auto",
    ) -> None:
        self.model = model
        self.pooling = pooling
        self.layers = layers
        self.normalize = normalize
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device

    def fit(self, X=None, y=None) -> TextEmbedder:
        """Load the encoder (no training); returns ``self``."""
        if self.pooling not in POOLINGS:
            raise ConfigError(f"--pooling must be one of {', '.join(POOLINGS)} (got {self.pooling!r})")
        layers = [self.layers] if isinstance(self.layers, int) else list(self.layers)
        if self.pooling == "pooler" and layers != [-1]:
            raise ConfigError("--pooling pooler uses the last layer only; drop --layer or choose mean or cls")
        from transformers import AutoModel

        checkpoint = resolve_checkpoint(self.model)
        self.tokenizer_ = load_tokenizer(checkpoint)
        try:
            with quiet_transformers():
                encoder, loading = AutoModel.from_pretrained(checkpoint, output_loading_info=True)
        except Exception as exc:
            raise load_error(checkpoint, exc) from None
        n_states = encoder.config.num_hidden_layers + 1  # embeddings output + one per layer
        for layer in layers:
            if not -n_states <= layer < n_states:
                raise ConfigError(f"--layer {layer} is out of range for a model with {n_states - 1} layers")
        if self.pooling == "pooler" and getattr(encoder, "pooler", None) is None:
            raise ConfigError(f"{self.model}: this model has no pooler; use --pooling mean or cls")
        if self.pooling == "pooler" and any(k.split(".")[0] == "pooler" for k in loading.get("missing_keys", ())):
            # A fine-tuned tagger or QA folder saves no pooler: transformers would make a random one each load.
            raise ConfigError(f"{self.model}: this model has no trained pooler weights; use --pooling mean or cls")
        self.layers_ = layers
        # Tokens per text: max_length, at most what the model's positions hold (a longer text is truncated there
        # either way; beyond the table torch would fail half-way through a batch).
        limit = position_limit(encoder.config)
        self.max_length_ = min(self.max_length, limit[0]) if limit is not None else self.max_length
        self.encoder_ = encoder.to(resolve_device(self.device)).eval()
        return self

    def _check(self) -> None:
        if not hasattr(self, "encoder_"):
            raise NotFittedError("call fit() first (it loads the encoder)")

    @torch.inference_mode()
    def _run(self, texts: list[str], each) -> None:
        encoded = encode(self.tokenizer_, texts, None, self.max_length_)
        device = next(self.encoder_.parameters()).device
        want_states = self.layers_ != [-1]
        for index in inference_batches(encoded.lengths, self.batch_size):
            batch = {k: v.to(device) for k, v in collate(encoded, index, False).items()}
            out = self.encoder_(**batch, output_hidden_states=want_states)
            if want_states:
                hidden = torch.stack([out.hidden_states[i] for i in self.layers_]).mean(0)  # [batch, tokens, hidden]
            else:
                hidden = out.last_hidden_state  # [batch, tokens, hidden]
            each(index, batch, hidden, out)

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Pooled embeddings, float32 [n, hidden], rows in input order."""
        self._check()
        texts = _texts(texts)
        result = np.empty((len(texts), self.encoder_.config.hidden_size), dtype=np.float32)

        def pool(index, batch, hidden, out):
            if self.pooling == "cls":
                vectors = hidden[:, 0]
            elif self.pooling == "pooler":
                vectors = out.pooler_output
            else:
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [batch, tokens, 1]
                vectors = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            if self.normalize:
                vectors = torch.nn.functional.normalize(vectors, dim=-1)
            result[index] = vectors.float().cpu().numpy()

        self._run(texts, pool)
        return result

    def fit_transform(self, texts: Sequence[str], y=None) -> np.ndarray:
        return self.fit().transform(texts)

    def token_embeddings(self, texts: Sequence[str]) -> list[tuple[list[str], np.ndarray]]:
        """Per text: its word-piece tokens (special tokens included) and their hidden states [tokens, hidden]."""
        self._check()
        texts = _texts(texts)
        result: list = [None] * len(texts)

        def keep(index, batch, hidden, out):
            lengths = batch["attention_mask"].sum(1).tolist()
            for row, i in enumerate(index):
                ids = batch["input_ids"][row, : lengths[row]].tolist()
                tokens = self.tokenizer_.convert_ids_to_tokens(ids)
                result[int(i)] = (tokens, hidden[row, : lengths[row]].float().cpu().numpy())

        self._run(texts, keep)
        return result


def _texts(texts: Sequence[str]) -> list[str]:
    """``texts`` checked as :func:`bertkit.data.dataset.from_lists` checks a classifier's input (one string per
    item, none empty; a one-column DataFrame's rows), single texts only."""
    from bertkit.data.dataset import from_lists

    data = from_lists(texts, name="texts")
    if data.pairs is not None:
        raise DataError("texts: the embedder embeds single texts, not (text, pair) tuples; embed each text alone")
    return data.texts


def write_embeddings(vectors: np.ndarray, path: str | Path, ids: Sequence | None = None) -> Path:
    """Save as .npy (the matrix) or .parquet (an ``embedding`` list column, plus ``id`` when given)."""
    path = Path(path)
    if path.suffix not in (".npy", ".parquet"):
        raise DataError(f"{path}: --output must end in .npy or .parquet")
    check_output_file(path)
    with written_file(path) as partial:  # complete or absent: an earlier file of that name stays until then
        if path.suffix == ".npy":
            with partial.open("wb") as handle:  # a handle: np.save would add ".npy" to the partial file's name
                np.save(handle, vectors)
        else:
            import pandas as pd

            frame = pd.DataFrame({"embedding": list(vectors)})
            if ids is not None:
                frame.insert(0, "id", list(ids))
            frame.to_parquet(partial, index=False)
    return path
