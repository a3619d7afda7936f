"""A fast tokenizer's Rust core (the ``tokenizers`` library, reading the folder's tokenizer.json), called the way
:func:`bertkit.data.encoding.encode` calls a transformers tokenizer, without importing transformers.

Importing transformers' tokenizer classes costs about a second and imports torch too (1.5 s more); a prediction
with an ONNX graph needs neither (benchmarks/RESULTS.md, "Whole-process prediction"). For the tokenizer classes
that hand the text to the Rust tokenizer unchanged (:data:`RUST_ONLY_CLASSES`), transformers itself only sets
truncation and calls ``encode_batch``: :class:`RustTokenizer` does the same, and gives the same ids (tested
against transformers on WordPiece, byte-level BPE and the default model's tokenizers). Anything else asked of it
goes to the transformers tokenizer, loaded then.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bertkit.models.checkpoints import check_vocab_fits, load_tokenizer

RUST_ONLY_CLASSES = frozenset({
    "BertTokenizer", "DistilBertTokenizer", "ElectraTokenizer", "RobertaTokenizer", "XLMRobertaTokenizer",
    "CamembertTokenizer", "MPNetTokenizer", "AlbertTokenizer", "DebertaV2Tokenizer", "PreTrainedTokenizer",
    "TokenizersBackend",
})  # fmt: skip
"""Tokenizer classes (``tokenizer_class`` of tokenizer_config.json, with or without ``Fast``) whose call is the
Rust tokenizer's ``encode_batch`` under transformers' truncation settings, with no Python step around it."""
DEFAULT_INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask")
"""transformers' default ``model_input_names``; segment ids are used only by models with segment embeddings."""


class RustTokenizer:
    """The subset of a transformers tokenizer that :func:`bertkit.data.encoding.encode` calls, on the Rust
    tokenizer ``backend`` with the folder's ``settings`` (tokenizer_config.json). Other attributes (saving,
    decoding...) load the transformers tokenizer of ``folder`` and come from it."""

    def __init__(self, folder: str, backend: Any, settings: dict[str, Any]) -> None:
        self._folder = folder
        self._full: Any = None
        self.backend = backend
        backend.no_padding()  # bertkit pads its own batches
        self.model_input_names = list(settings.get("model_input_names") or DEFAULT_INPUT_NAMES)
        self.truncation_side = settings.get("truncation_side") or "right"
        pad = settings.get("pad_token")
        pad = pad.get("content") if isinstance(pad, dict) else pad
        self.pad_token_id = backend.token_to_id(pad) if isinstance(pad, str) else None

    def __call__(
        self,
        text: Sequence[str],
        text_pair: Sequence[str] | None = None,
        *,
        truncation: bool | str = False,
        max_length: int | None = None,
        padding: bool = False,
        return_attention_mask: bool | None = None,
        return_token_type_ids: bool | None = None,
        return_overflowing_tokens: bool = False,
        stride: int = 0,
        add_special_tokens: bool = True,
    ) -> dict[str, list]:
        """``input_ids`` (and ``token_type_ids``, ``overflow_to_sample_mapping`` when asked) of a batch, unpadded,
        as transformers returns them: each example's windows follow it (the first, then its overflow)."""
        if padding:
            raise ValueError("RustTokenizer does not pad; bertkit pads its batches itself")
        if truncation and max_length is not None:
            strategy = "longest_first" if truncation is True else str(truncation)
            self.backend.enable_truncation(max_length, stride=stride, strategy=strategy, direction=self.truncation_side)
        else:
            self.backend.no_truncation()
        inputs = list(text) if text_pair is None else list(zip(text, text_pair, strict=True))
        encodings = self.backend.encode_batch(inputs, add_special_tokens=add_special_tokens)
        ids, types, owners = [], [], []
        for number, encoding in enumerate(encodings):
            for piece in [encoding, *encoding.overflowing] if return_overflowing_tokens else [encoding]:
                ids.append(piece.ids)
                types.append(piece.type_ids)
                owners.append(number)
        out: dict[str, list] = {"input_ids": ids}
        if return_token_type_ids:
            out["token_type_ids"] = types
        if return_overflowing_tokens:
            out["overflow_to_sample_mapping"] = owners
        return out

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self.backend.num_special_tokens_to_add(pair)

    def get_vocab(self) -> dict[str, int]:
        return self.backend.get_vocab()

    def transformers_tokenizer(self) -> Any:
        """The transformers tokenizer of the folder (loaded on the first call)."""
        if self._full is None:
            self._full = load_tokenizer(self._folder)
        return self._full

    def __getattr__(self, attribute: str) -> Any:
        # Only reached for what this class does not define: the transformers tokenizer's own attributes.
        if attribute.startswith("__") or attribute in ("_folder", "_full", "backend"):
            raise AttributeError(attribute)
        return getattr(self.transformers_tokenizer(), attribute)


def load_rust_tokenizer(name: str, *, trained_by: str | None = None) -> RustTokenizer | Any:
    """A :class:`RustTokenizer` for the folder ``name`` when it holds tokenizer.json and a tokenizer class of
    :data:`RUST_ONLY_CLASSES`; else the transformers tokenizer (:func:`load_tokenizer`)."""
    folder = Path(name)
    try:
        settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        if not isinstance(settings, dict):
            raise ValueError("tokenizer_config.json is not an object")
        kind = str(settings.get("tokenizer_class") or "").removesuffix("Fast")
        if kind not in RUST_ONLY_CLASSES or settings.get("auto_map"):  # auto_map: the folder's own code
            raise ValueError(kind)
        from tokenizers import Tokenizer

        backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception:  # no folder, no tokenizer.json, another class, a file tokenizers cannot read: transformers'
        return load_tokenizer(name, trained_by=trained_by)
    tokenizer = RustTokenizer(str(folder), backend, settings)
    check_vocab_fits(name, tokenizer)
    return tokenizer
