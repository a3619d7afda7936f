"""Model folders: a plain Hugging Face folder (config.json with id2label/label2id, tokenizer files,
model.safetensors) plus ``bertkit.json`` with what plain transformers has no place for (kind, config, metrics)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bertkit.exceptions import ModelLoadError
from bertkit.models.checkpoints import quiet_transformers

METADATA_FILE = "bertkit.json"


def read_metadata(folder: str | Path) -> dict[str, Any] | None:
    """The folder's ``bertkit.json``; None when it has none (a plain Hugging Face folder or a hub id)."""
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        return None
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: unreadable bertkit metadata ({exc}); re-save the model") from None
    if not isinstance(metadata, dict):
        raise ModelLoadError(
            f"{path}: unreadable bertkit metadata (a JSON {type(metadata).__name__}, not an object); re-save the model"
        )
    return metadata


def save_folder(folder: str | Path, model, tokenizer, metadata: dict[str, Any]) -> Path:
    """Write weights (safetensors), config, tokenizer and ``bertkit.json`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    write_metadata(folder, metadata)
    return folder


def write_metadata(folder: str | Path, metadata: dict[str, Any]) -> None:
    """Write ``metadata`` as the folder's ``bertkit.json`` (replacing it)."""
    (Path(folder) / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str) + "\n", encoding="utf-8")
