"""Models with a task head on an encoder: built fresh for fine-tuning (``build_*``) or loaded ready (``load_*``),
one pair per model kind (sequence classification, token classification, question answering)."""

from __future__ import annotations

from typing import Any

from bertkit.exceptions import ModelLoadError
from bertkit.models.checkpoints import load_config, load_error, quiet_transformers

PROBLEM_TYPES = {
    "classification": "single_label_classification",
    "multi-label": "multi_label_classification",
    "regression": "regression",
}


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
ATTENTION_DROPOUT_FIELDS = ("attention_probs_dropout_prob", "attention_dropout")
"""The fields among them for the attention weights alone (BERT-style and DeBERTa; DistilBERT and ModernBERT)."""


def build_classifier(
    name: str, task: str, classes: list[Any], *, dropout: float | None = None, attention_dropout: float | None = None
):
    """A sequence-classification model on the encoder ``name`` with a fresh head for ``classes``; ``dropout``
    (when given) replaces every dropout probability of the checkpoint's config, then ``attention_dropout`` (when
    given) that of the attention weights."""
    from transformers import AutoModelForSequenceClassification

    # One read of config.json, edited before the modules are built (they read their dropouts at construction).
    config = load_config(name)
    if dropout is not None:
        for field in DROPOUT_FIELDS:
            if hasattr(config, field):
                setattr(config, field, dropout)
    if attention_dropout is not None:
        for field in ATTENTION_DROPOUT_FIELDS:
            if hasattr(config, field):
                setattr(config, field, attention_dropout)
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


def load_classifier(name: str):
    """A ready sequence-classification model (a bertkit folder or any fine-tuned HF checkpoint)."""
    from transformers import AutoModelForSequenceClassification

    return _load_ready(AutoModelForSequenceClassification, name, "bertkit train")


class DeferredClassifier:
    """Stands in for a sequence classifier whose predictions come from an ONNX graph: its config at once (what
    prediction reads: the labels, the segment embeddings; :class:`SavedConfig`), the torch model only when
    anything else is asked of it (export, save, torch prediction), loaded then by :func:`load_classifier`. An
    ONNX-backed ``bertkit predict`` so skips transformers' model classes and the weights (loading fell from
    2.96 s to 1.54 s on MiniLM; benchmarks/RESULTS.md, "The backend chosen at training"), and torch itself."""

    def __init__(self, name: str) -> None:
        self.config = SavedConfig.read(name)
        self._name = name
        self._model: Any = None

    def torch_model(self) -> Any:
        """The torch model it stands in for (loaded on the first call; eval mode)."""
        if self._model is None:
            self._model = load_classifier(self._name).eval()
        return self._model

    def __getattr__(self, attribute: str) -> Any:
        # Only reached for what the stand-in does not hold: the torch model's own attributes.
        if attribute.startswith("__") or attribute in ("_name", "_model", "config"):
            raise AttributeError(attribute)
        return getattr(self.torch_model(), attribute)


def torch_network(model: Any) -> Any:
    """The torch network behind ``model``: a :class:`DeferredClassifier`'s (loaded now), else ``model`` itself."""
    return model.torch_model() if isinstance(model, DeferredClassifier) else model


class SavedConfig:
    """A model folder's config.json as saved: its plain fields (``model_type``, ``type_vocab_size``,
    ``hidden_size``...) and ``num_labels`` read from the JSON, without importing transformers; any other
    attribute (label maps with integer keys, defaults of the config class) from the transformers config, loaded
    when first asked."""

    def __init__(self, name: str, values: dict[str, Any]) -> None:
        self._name = name
        self._values = values
        self._config: Any = None

    @classmethod
    def read(cls, name: str) -> SavedConfig | Any:
        """The folder's config.json; the transformers config when the JSON is missing or unreadable (its error
        names the cause)."""
        import json
        from pathlib import Path

        try:
            values = json.loads((Path(name) / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            values = None
        if not isinstance(values, dict) or not isinstance(values.get("id2label", {}), dict):
            return load_config(name, trained_by="bertkit train")
        return cls(name, values)

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__") or attribute in ("_name", "_values", "_config"):
            raise AttributeError(attribute)
        if attribute == "num_labels" and "id2label" in self._values:
            return len(self._values["id2label"])
        if attribute in self._values and attribute not in ("id2label", "label2id"):
            return self._values[attribute]
        if self._config is None:
            self._config = load_config(self._name, trained_by="bertkit train")
        return getattr(self._config, attribute)


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

    return _load_ready(AutoModelForTokenClassification, name, "bertkit tag train")


def build_qa_model(name: str):
    """A question-answering model on the encoder ``name`` (a fresh span head unless it already has one)."""
    from transformers import AutoModelForQuestionAnswering

    try:
        with quiet_transformers():
            # Two outputs (start, end) whatever the folder's config says: a tagger's or classifier's num_labels
            # would give a span head of their label count, which fails inside the forward.
            return AutoModelForQuestionAnswering.from_pretrained(name, num_labels=2, ignore_mismatched_sizes=True)
    except Exception as exc:
        raise load_error(name, exc) from None


def load_qa_model(name: str):
    """A ready question-answering model (a bertkit QA folder or any fine-tuned HF QA checkpoint): loaded as
    :func:`build_qa_model` does (from_pretrained keeps the span head it holds), with messages for a load."""
    from transformers import AutoModelForQuestionAnswering

    return _load_ready(AutoModelForQuestionAnswering, name, "bertkit qa train")


def _load_ready(auto: Any, name: str, trained_by: str):
    """``auto.from_pretrained(name)``, refused when the weights do not fit config.json (tensors of other
    shapes) or lack tensors the model needs: transformers would fill those with random values, and answer."""
    try:
        with quiet_transformers():
            model, info = auto.from_pretrained(name, output_loading_info=True)
    except Exception as exc:
        if "ignore_mismatched_sizes" in str(exc):
            raise _mismatch_error(auto, name, trained_by) from None
        raise load_error(name, exc, trained_by=trained_by) from None
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ModelLoadError(
            f"{name}: the weights lack {', '.join(missing[:3])}{more}, which config.json's model needs (they would "
            f"be random); the weights come from another model: re-create the folder with "
            f"`{trained_by}` or copy its own model.safetensors back"
        )
    return model


def _mismatch_error(auto: Any, name: str, trained_by: str) -> ModelLoadError:
    """The error for weights whose tensor shapes differ from config.json's model, naming one such tensor."""
    where = ""
    try:
        with quiet_transformers():
            _, info = auto.from_pretrained(name, output_loading_info=True, ignore_mismatched_sizes=True)
        key, saved, expected = sorted(info.get("mismatched_keys") or (), key=str)[0]
        where = f" ({key} is {list(saved)} in the weights but {list(expected)} by config.json)"
    except Exception:  # the message names no tensor then
        pass
    return ModelLoadError(
        f"{name}: the weights do not fit config.json{where}: the two files come from different models "
        f"(another num_labels, id2label or architecture); re-create the folder with `{trained_by}` or copy "
        "its own config.json and model.safetensors back"
    )
