"""A model folder checked whole before it is loaded: config.json, weights, tokenizer files and bertkit.json
present, readable and in agreement (kind, labels, text pair or single text).

Without this, transformers fills a gap silently: a folder without its tokenizer files loads a fallback that
knows only the special tokens, so every text predicts the same label with exit 0. Each problem is one
ModelLoadError naming the folder and the part. Hub ids skip the check (transformers fetches what it needs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bertkit.exceptions import ModelLoadError
from bertkit.models.folders import read_metadata
from bertkit.models.kinds import HEAD_SUFFIXES, ModelKind, head_kind

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# What a tokenizer is built from, as transformers reads it: the fast tokenizer's one file, a WordPiece vocab
# (BERT, DistilBERT, ELECTRA), byte-level BPE's vocab and merges (RoBERTa), or a sentencepiece model (ALBERT,
# XLM-R, DeBERTa-v3). Without any of them AutoTokenizer still "loads", from special tokens alone.
TOKENIZER_FILES = "tokenizer.json, vocab.txt, vocab.json with merges.txt, or a sentencepiece *.model"


def check_folder(folder: str | Path, checkpoint: str, kind: ModelKind) -> dict[str, Any]:
    """Check the model folder ``checkpoint`` (``folder`` as the user named it) before it is loaded as ``kind``;
    returns its bertkit.json ({} for a plain Hugging Face folder or a hub id)."""
    path = Path(checkpoint)
    if not path.is_dir():
        return {}  # a hub id
    config = _read_config(folder, path)
    _check_weights(folder, path)
    metadata = read_metadata(path) or {}
    _check_tokenizer(folder, path, metadata)
    architectures = [str(a) for a in config.get("architectures") or []]
    if metadata:
        _check_metadata(folder, config, architectures, metadata)
    elif architectures and head_kind(architectures) is None:
        # A bare encoder (BertModel) or another head: loading it would invent a random head, and its answers.
        raise ModelLoadError(
            f"{folder}: holds {', '.join(architectures)}, an encoder without a {_head_words(kind)} head "
            f"(config.json architectures); fine-tune it first: {_train_command(kind)} --model {folder} ..."
        )
    return metadata


def _read_config(folder: str | Path, path: Path) -> dict[str, Any]:
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(
            f"{folder}: model folder is unreadable: config.json is not valid JSON ({exc}); re-create it with "
            "`bertkit train` or save_pretrained"
        ) from None
    if not isinstance(config, dict):
        raise ModelLoadError(
            f"{folder}: model folder is unreadable: config.json is a JSON {_json_type(config)}, not an object; "
            "re-create it with `bertkit train` or save_pretrained"
        )
    return config


def _check_weights(folder: str | Path, path: Path) -> None:
    if any((path / name).is_file() for name in WEIGHT_FILES):
        return
    for index in WEIGHT_INDEXES:
        if (path / index).is_file():
            try:
                shards = sorted(set(json.loads((path / index).read_text(encoding="utf-8"))["weight_map"].values()))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise ModelLoadError(f"{folder}: {index} is unreadable ({exc}); re-save the model") from None
            missing = [str(s) for s in shards if not (path / str(s)).is_file()]
            if missing:
                raise ModelLoadError(
                    f"{folder}: {index} lists {', '.join(missing)}, which the folder does not hold; "
                    "copy the missing shards or re-save the model"
                )
            return
    raise ModelLoadError(
        f"{folder}: no weights ({', '.join(WEIGHT_FILES + WEIGHT_INDEXES)}); the folder holds config.json but "
        "not the model; re-save it with `bertkit train` or save_pretrained"
    )


def _check_tokenizer(folder: str | Path, path: Path, metadata: dict[str, Any]) -> None:
    has = (path / "tokenizer.json").is_file() or (path / "vocab.txt").is_file()
    has = has or ((path / "vocab.json").is_file() and (path / "merges.txt").is_file()) or any(path.glob("*.model"))
    if has:
        return
    base = (metadata.get("config") or {}).get("model") if isinstance(metadata.get("config"), dict) else None
    source = f"the base model ({base})" if base else "the base model"
    raise ModelLoadError(
        f"{folder}: no tokenizer files ({TOKENIZER_FILES}); without them texts would be split by a fallback that "
        f"knows only special tokens; copy them from {source} or re-save the model"
    )


def _check_metadata(
    folder: str | Path, config: dict[str, Any], architectures: list[str], metadata: dict[str, Any]
) -> None:
    """bertkit.json against config.json: the kind against the head, the labels against id2label."""
    kind = str(metadata.get("kind", ModelKind.CLASSIFIER))
    held = head_kind(architectures)
    if architectures and kind in HEAD_SUFFIXES and held != kind:
        raise ModelLoadError(
            f"{folder}: bertkit.json kind is {kind} but config.json architectures ({', '.join(architectures)}) "
            f"hold {held.description if held else 'no such head'}; the files come from two models: re-save it"
        )
    _check_fields(folder, kind, metadata)
    text_pair = metadata.get("text_pair")
    if text_pair is not None and not isinstance(text_pair, bool):
        raise ModelLoadError(f"{folder}: bertkit.json text_pair must be true or false (got {text_pair!r}); re-save it")
    names = _label_names(config)
    if kind == ModelKind.CLASSIFIER and metadata.get("task") != "regression" and names is not None:
        _same_labels(folder, [str(c) for c in metadata.get("classes") or []], names, "classes", "class")
    elif kind == ModelKind.TAGGER and names is not None:
        _same_labels(folder, [str(t) for t in metadata.get("labels") or []], names, "labels", "label")


TASKS = ("classification", "multi-label", "regression")


def _check_fields(folder: str | Path, kind: str, metadata: dict[str, Any]) -> None:
    """The bertkit.json fields loading reads, present and of the right JSON type (a hand edit can break them)."""
    fields: list[tuple[str, type, str]] = [("config", dict, "an object of the training options")]
    if kind == ModelKind.CLASSIFIER:
        task = metadata.get("task")
        if task not in TASKS:
            raise ModelLoadError(
                f"{folder}: bertkit.json task is {'missing' if 'task' not in metadata else repr(task)}, not one of {', '.join(TASKS)}; "
                "restore it (or re-save the model)"
            )
        fields.append(("classes", list, "a list of the class names in config.json's id2label order"))
    elif kind == ModelKind.TAGGER and "labels" in metadata:
        fields.append(("labels", list, "a list of the tag names in config.json's id2label order"))
    for field, json_type, what in fields:
        value = metadata.get(field)
        if not isinstance(value, json_type):
            got = "missing" if field not in metadata else f"a JSON {_json_type(value)}"
            raise ModelLoadError(
                f"{folder}: bertkit.json {field} is {got}; it must be {what}; restore it (or re-save the model)"
            )


def _same_labels(folder: str | Path, saved: list[str], names: list[str], field: str, one: str) -> None:
    if len(saved) != len(names):
        raise ModelLoadError(
            f"{folder}: bertkit.json names {len(saved)} {field} ({', '.join(saved)}) but config.json's id2label has "
            f"{len(names)} ({', '.join(names)}); the files come from two models: re-save it"
        )
    for i, (a, b) in enumerate(zip(saved, names, strict=True)):
        if a != b:
            raise ModelLoadError(
                f"{folder}: bertkit.json {one} {i} is {a!r} but config.json's id2label has {b!r} there; "
                "the files come from two models: re-save it"
            )


def _label_names(config: dict[str, Any]) -> list[str] | None:
    """id2label's names in id order; None when config.json has no usable id2label."""
    id2label = config.get("id2label")
    if not isinstance(id2label, dict):
        return None
    try:
        by_id = {int(k): str(v) for k, v in id2label.items()}
    except (TypeError, ValueError):
        return None
    return [by_id[i] for i in sorted(by_id)]


def _head_words(kind: ModelKind) -> str:
    return {ModelKind.CLASSIFIER: "classification", ModelKind.TAGGER: "token-classification"}.get(
        kind, "question-answering"
    )


def _train_command(kind: ModelKind) -> str:
    return {ModelKind.CLASSIFIER: "bertkit train", ModelKind.TAGGER: "bertkit tag train"}.get(kind, "bertkit qa train")


def _json_type(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null"
    )
