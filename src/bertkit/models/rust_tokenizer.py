"""A fast tokenizer's Rust core (the ``tokenizers`` library, reading the folder's tokenizer.json), called the way
:func:`bertkit.data.encoding.encode` calls a transformers tokenizer, without importing transformers.

Importing transformers' tokenizer classes costs about a second and imports torch too (1.5 s more); a prediction
with an ONNX graph needs neither (benchmarks/RESULTS.md, "Whole-process prediction"). For the tokenizer classes
that hand the text to the Rust tokenizer unchanged (:data:`MODEL_INPUT_NAMES`), transformers itself only sets
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

WITH_SEGMENTS = ("input_ids", "token_type_ids", "attention_mask")
WITHOUT_SEGMENTS = ("input_ids", "attention_mask")
MODEL_INPUT_NAMES: dict[str, tuple[str, ...]] = {
    "BertTokenizer": WITH_SEGMENTS, "ElectraTokenizer": WITH_SEGMENTS,
    "DebertaV2Tokenizer": ("input_ids", "attention_mask", "token_type_ids"),
    "DistilBertTokenizer": WITHOUT_SEGMENTS, "RobertaTokenizer": WITHOUT_SEGMENTS,
    "XLMRobertaTokenizer": WITHOUT_SEGMENTS, "CamembertTokenizer": WITHOUT_SEGMENTS, "MPNetTokenizer": WITHOUT_SEGMENTS,
    "AlbertTokenizer": WITHOUT_SEGMENTS, "PreTrainedTokenizer": WITHOUT_SEGMENTS, "TokenizersBackend": WITHOUT_SEGMENTS,
}  # fmt: skip
"""The tokenizer classes (``tokenizer_class`` of tokenizer_config.json, less ``Fast``) whose call is the Rust
tokenizer's ``encode_batch`` under transformers' truncation settings, with no Python step around it, and the
``model_input_names`` each declares (a class attribute, not saved in the folder; tested equal to transformers'):
segment ids are returned only where it names them, whatever the Rust tokenizer computes."""


BATCH_OPTIONS = frozenset({
    "truncation", "max_length", "padding", "return_attention_mask", "return_token_type_ids",
    "return_overflowing_tokens", "stride", "add_special_tokens",
})  # fmt: skip
"""The options of a batch call that :class:`RustTokenizer` answers itself (what :mod:`bertkit.data.encoding` uses)."""


class RustTokenizer:
    """The subset of a transformers tokenizer that :func:`bertkit.data.encoding.encode` calls, on the Rust
    tokenizer ``backend`` with the folder's ``settings`` (tokenizer_config.json). Other attributes (saving,
    decoding...) load the transformers tokenizer of ``folder`` and come from it."""

    def __init__(self, folder: str, backend: Any, settings: dict[str, Any]) -> None:
        self._folder = folder
        self._full: Any = None
        self.backend = backend
        backend.no_padding()  # bertkit pads its own batches
        kind = str(settings.get("tokenizer_class") or "").removesuffix("Fast")
        self.model_input_names = list(settings.get("model_input_names") or MODEL_INPUT_NAMES[kind])
        backend.encode_special_tokens = bool(settings.get("split_special_tokens", False))  # as transformers sets it
        self.truncation_side = settings.get("truncation_side") or "right"
        pad = settings.get("pad_token")
        pad = pad.get("content") if isinstance(pad, dict) else pad
        self.pad_token_id = backend.token_to_id(pad) if isinstance(pad, str) else None

    def __call__(self, text: Any, text_pair: Any = None, **options: Any) -> Any:
        """``input_ids`` (and ``token_type_ids``, ``overflow_to_sample_mapping`` when asked) of a batch of texts,
        unpadded, as transformers returns them: each example's windows follow it (the first, then its overflow).
        Any other call (one string, padding, tensors...) goes to the transformers tokenizer."""
        if isinstance(text, str) or not set(options) <= BATCH_OPTIONS or options.get("padding"):
            return self.transformers_tokenizer()(text, text_pair, **options)
        return self._batch(text, text_pair, **options)

    def _batch(
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
        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
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
    :data:`MODEL_INPUT_NAMES`; else the transformers tokenizer (:func:`load_tokenizer`)."""
    folder = Path(name)
    try:
        settings = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        if not isinstance(settings, dict):
            raise ValueError("tokenizer_config.json is not an object")
        kind = str(settings.get("tokenizer_class") or "").removesuffix("Fast")
        if kind not in MODEL_INPUT_NAMES or settings.get("auto_map"):  # auto_map: the folder's own code
            raise ValueError(kind)
        from tokenizers import Tokenizer

        backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception:  # no folder, no tokenizer.json, another class, a file tokenizers cannot read: transformers'
        return load_tokenizer(name, trained_by=trained_by)
    tokenizer = RustTokenizer(str(folder), backend, settings)
    check_vocab_fits(name, tokenizer)
    return tokenizer
