"""The model card (``README.md``) every saved bertkit model folder gets, in the Hugging Face layout: a YAML
header (library, pipeline tag, base model, tags, ``model-index`` with the validation metrics) over sections
saying what the model does, what trained it, how well it scored, what it cannot do and how to load it.

Everything comes from the folder's ``bertkit.json`` metadata, read defensively (``.get``): a key a model does
not record (calibration, the share of truncated texts, ...) leaves its line out. The header is written by
``huggingface_hub.ModelCardData``, so ``ModelCard.load(folder / "README.md")`` reads it back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bertkit.models.kinds import ModelKind

CARD_FILE = "README.md"
"""The file name of the card in a model folder (the Hugging Face hub shows it as the model's page)."""
# The hub ids behind bertkit's built-in model aliases (models.checkpoints.ALIASES names their packages).
BASE_MODEL_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}
_MAX_LABELS = 50
_LOADERS = {
    ModelKind.CLASSIFIER: ("TextClassifier", 'clf.predict(["a great film"])', "bertkit predict {folder} 'a great film'"),
    ModelKind.TAGGER: ("TokenTagger", 'model.predict(["Ada Lovelace lived in London"])', "bertkit tag predict {folder} 'Ada Lovelace lived in London'"),
    ModelKind.QA: ("QuestionAnswerer", 'model.predict(["Who wrote it?"], ["Ada wrote it."])', "bertkit qa predict {folder} --question 'Who wrote it?' --context 'Ada wrote it.'"),
}  # fmt: skip


def write_card(folder: str | Path, metadata: Mapping[str, Any]) -> Path:
    """Write ``folder/README.md`` from the model's metadata (what ``bertkit.json`` holds); returns its path."""
    path = Path(folder) / CARD_FILE
    path.write_text(card_text(metadata, name=Path(folder).resolve().name), encoding="utf-8")
    return path


def card_text(metadata: Mapping[str, Any], name: str = "model") -> str:
    """The card of a model whose ``bertkit.json`` is ``metadata`` (``name``: the model's name, its folder)."""
    kind = _kind(metadata)
    config = metadata.get("config") if isinstance(metadata.get("config"), Mapping) else {}
    sections = [
        f"# {name}\n\n{_summary(kind, metadata, config)}",
        _task_section(kind, metadata),
        _base_section(config),
        _data_section(metadata),
        _metrics_section(metadata),
        _recipe_section(config, metadata, repeat=kind == ModelKind.CLASSIFIER),
        _versions_section(metadata),
        _use_section(kind),
        _limits_section(kind, metadata, config),
        _load_section(kind, name),
    ]
    return f"---\n{_header(kind, metadata, config, name)}\n---\n\n" + "\n\n".join(s for s in sections if s) + "\n"


def _kind(metadata: Mapping[str, Any]) -> ModelKind:
    try:
        return ModelKind(str(metadata.get("kind", ModelKind.CLASSIFIER)))
    except ValueError:  # a kind this bertkit does not know: described as a classifier, the default
        return ModelKind.CLASSIFIER


def base_model_id(model: Any) -> str | None:
    """The hub id of the base model ``model`` (a TrainConfig ``model``): an alias's id, a hub id as given, or
    None for a local folder (the hub's ``base_model`` field takes hub ids only)."""
    from bertkit.models.checkpoints import HUB_ID

    if not isinstance(model, str) or not model:
        return None
    if model in BASE_MODEL_IDS:
        return BASE_MODEL_IDS[model]
    if Path(model).expanduser().exists() or not HUB_ID.match(model):
        return None
    return model


def _numbers(values: Any) -> dict[str, float]:
    """The numeric entries of a metrics mapping (booleans and nested values left out)."""
    if not isinstance(values, Mapping):
        return {}
    return {str(k): float(v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _source(metadata: Mapping[str, Any]) -> str | None:
    fingerprint = metadata.get("data_fingerprint")
    if isinstance(fingerprint, Mapping) and fingerprint.get("source"):
        return str(fingerprint["source"])
    run_options = metadata.get("run_options")
    if isinstance(run_options, Mapping) and run_options.get("train"):
        return str(run_options["train"])
    return None


def _validation_name(metadata: Mapping[str, Any], source: str | None) -> str:
    """The data the validation metrics come from: the --validation file, else rows held out of the training data."""
    run_options = metadata.get("run_options")
    validation = run_options.get("validation") if isinstance(run_options, Mapping) else None
    return str(validation) if validation else f"{source or 'training data'} (held-out rows)"


def _header(kind: ModelKind, metadata: Mapping[str, Any], config: Mapping[str, Any], name: str) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    source = _source(metadata)
    dataset = source[3:].split(":")[0] if source and source.startswith("hf:") else None
    task = metadata.get("task") if kind == ModelKind.CLASSIFIER else None
    tags = ["bertkit", kind.value, *([str(task)] if task and task != kind.value else [])]
    results = [
        EvalResult(
            task_type=kind.value, dataset_type=dataset or "custom", dataset_name=_validation_name(metadata, source),
            dataset_split="validation", metric_type=metric, metric_name=metric, metric_value=value,
        )
        for metric, value in _numbers(metadata.get("validation_metrics")).items()
    ]  # fmt: skip
    data = ModelCardData(
        # transformers: the folder is a plain transformers model folder, and the hub shows the snippet that loads it
        library_name="transformers",
        pipeline_tag=kind.value,
        base_model=base_model_id(config.get("model")),
        tags=tags,
        datasets=[dataset] if dataset else None,
        model_name=name if results else None,
        eval_results=results or None,
    )
    return data.to_yaml()


def _summary(kind: ModelKind, metadata: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    base = config.get("model", "an unrecorded base model")
    return f"{kind.description.capitalize()} (`{kind.value}`) fine-tuned from `{base}` with bertkit."


def _shown_labels(labels: list[Any]) -> str:
    more = f", and {len(labels) - _MAX_LABELS} more" if len(labels) > _MAX_LABELS else ""
    return ", ".join(f"`{label}`" for label in labels[:_MAX_LABELS]) + more


def _task_section(kind: ModelKind, metadata: Mapping[str, Any]) -> str:
    lines = ["## Task and labels", ""]
    if kind == ModelKind.CLASSIFIER:
        task = metadata.get("task", "classification")
        pairs = " of text pairs" if metadata.get("text_pair") else ""
        lines.append(f"- task: {task}{pairs}")
        classes = list(metadata.get("classes") or [])
        if task == "regression":
            lines.append("- output: one value per text")
        else:
            lines.append(f"- {len(classes)} labels: {_shown_labels(classes)}")
        thresholds = metadata.get("thresholds")
        if task == "multi-label" and isinstance(thresholds, list):
            lines.append(f"- per-label decision thresholds (tuned on validation): {[round(t, 3) for t in thresholds]}")
    elif kind == ModelKind.TAGGER:
        labels = list(metadata.get("labels") or [])
        lines.append(f"- task: token classification (BIO tags), {len(labels)} tags: {_shown_labels(labels)}")
    else:
        version = metadata.get("squad_version")
        lines.append(
            f"- task: extractive question answering (SQuAD {version or 'format'}): answers are spans of the context"
        )
        if str(version).startswith("2"):
            lines.append("- may answer that the context holds no answer")
    return "\n".join(lines)


def _base_section(config: Mapping[str, Any]) -> str:
    model = config.get("model")
    if not model:
        return ""
    hub = base_model_id(model)
    where = f" ([{hub}](https://huggingface.co/{hub}))" if hub else " (a local folder)"
    return f"## Base model\n\n`{model}`{where}"


def _data_section(metadata: Mapping[str, Any]) -> str:
    lines = ["## Training data", ""]
    fingerprint = metadata.get("data_fingerprint")
    if isinstance(fingerprint, Mapping):
        lines += [f"- source: `{fingerprint.get('source', '?')}`", f"- rows: {fingerprint.get('rows', '?')}",
                  f"- sha256 of texts and labels: `{fingerprint.get('sha256', '?')}`"]  # fmt: skip
    elif _source(metadata):
        lines.append(f"- source: `{_source(metadata)}`")
    sizes = {
        "n_train_rows": "rows that trained", "n_train_questions": "questions that trained",
        "n_train_windows": "windows that trained", "validation_articles": "validation articles",
        "skipped_rows": "rows skipped as unreadable",
    }  # fmt: skip
    for key, words in sizes.items():
        value = metadata.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            lines.append(f"- {words}: {value}")
    return "\n".join(lines) if len(lines) > 2 else ""


def _metrics_section(metadata: Mapping[str, Any]) -> str:
    metrics = _numbers(metadata.get("validation_metrics"))
    lines = ["## Validation metrics", ""]
    if metrics:
        lines += ["| metric | value |", "|---|---|", *(f"| {k} | {v:.4f} |" for k, v in metrics.items())]
    else:
        lines.append("Not recorded.")
    best, kept = metadata.get("best_epoch"), metadata.get("kept_epoch")
    if best is not None:
        lines += ["", f"Best validation score at epoch {best}" + (f"; weights of epoch {kept} kept." if kept else ".")]
    calibration = metadata.get("calibration")
    if isinstance(calibration, Mapping):
        shown = {k: v for k, v in calibration.items() if k != "scores" and isinstance(v, str | int | float | list)}
        if shown:
            lines += ["", "### Calibration", ""]
            lines += [f"- {k}: {_round(v)}" for k, v in shown.items()]
    return "\n".join(lines)


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def _recipe_section(config: Mapping[str, Any], metadata: Mapping[str, Any], repeat: bool) -> str:
    if not config:
        return ""
    recipe = json.dumps(dict(config), indent=2, default=str)
    seconds = metadata.get("train_seconds")
    took = f"\n\nTraining took {seconds:.0f} s." if isinstance(seconds, int | float) else ""
    again = " (`train_config.json` in this folder repeats the run: `bertkit train --config`)" if repeat else ""
    return f"## Training recipe\n\nThe resolved options{again}:\n\n```json\n{recipe}\n```{took}"


def _versions_section(metadata: Mapping[str, Any]) -> str:
    versions = metadata.get("versions")
    if not isinstance(versions, Mapping) or not versions:
        return ""
    return "## Library versions\n\n" + "\n".join(f"- {k} {v}" for k, v in versions.items())


def _use_section(kind: ModelKind) -> str:
    what = {
        ModelKind.CLASSIFIER: "labelling texts like those it was trained on with the labels above",
        ModelKind.TAGGER: "tagging the words of texts like those it was trained on with the tags above",
        ModelKind.QA: "finding the answer to a question inside a given context, in texts like those it was trained on",
    }[kind]
    return (
        f"## Intended use\n\nMade for {what}. Check it on data of your own use before relying on it: the "
        "validation metrics above come from data drawn like the training data, and scores shift on other "
        "sources, domains or languages."
    )


def _limits_section(kind: ModelKind, metadata: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    lines = ["## Known limits", ""]
    max_length = config.get("max_length")
    stride = config.get("window_stride")
    if max_length:
        lines.append(f"- reads at most {max_length} tokens per input")
    if kind == ModelKind.CLASSIFIER and stride:
        lines.append(f"- longer texts are read in overlapping windows of {max_length} tokens sharing {stride}, "
                     f"their scores combined by {config.get('window_aggregation', 'mean')}")  # fmt: skip
    elif kind == ModelKind.CLASSIFIER:
        lines.append("- longer texts are truncated: what comes after the limit is not read")
    qa = metadata.get("qa") if isinstance(metadata.get("qa"), Mapping) else {}
    if kind == ModelKind.QA and qa.get("doc_stride"):
        lines.append(f"- long contexts are read in windows overlapping by {qa['doc_stride']} tokens; answers are at "
                     f"most {qa.get('max_answer_length', '?')} tokens long")  # fmt: skip
    if kind == ModelKind.TAGGER:
        lines.append("- long sentences are cut at word boundaries into pieces that fit; no word is lost")
    for key, words in (("truncated_share", "of training texts were truncated"),
                       ("long_share", "of training texts were longer than the limit")):  # fmt: skip
        value = metadata.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            lines.append(f"- {value:.1%} {words}")
    if kind == ModelKind.QA:
        lines.append("- answers only with a span of the context given; it adds no knowledge of its own")
    elif metadata.get("task") != "regression":
        lines.append(
            "- knows only the labels of its training data: it answers with them for any input, even unrelated text"
        )
    return "\n".join(lines)


def _load_section(kind: ModelKind, name: str) -> str:
    cls, call, command = _LOADERS[kind]
    variable = "clf" if kind == ModelKind.CLASSIFIER else "model"
    plain = {
        ModelKind.CLASSIFIER: 'classify = pipeline("text-classification", model="{f}")\nclassify("a great film")',
        ModelKind.TAGGER: 'tag = pipeline("token-classification", model="{f}", aggregation_strategy="simple")\n'
        'tag("Ada Lovelace lived in London")',
        ModelKind.QA: 'answer = pipeline("question-answering", model="{f}")\n'
        'answer(question="Who wrote it?", context="Ada wrote it.")',
    }[kind].format(f=name)
    return (
        f"## How to load it\n\nWith bertkit:\n\n```python\nfrom bertkit import {cls}\n\n{variable} = {cls}.load("
        f'"{name}")\n{call}\n```\n\n```bash\n{command.format(folder=name)}\n```\n\nWith plain transformers (no '
        "bertkit needed; bertkit's own settings, such as windows over long texts, calibration and multi-label "
        f"thresholds, are not applied):\n\n```python\nfrom transformers import pipeline\n\n{plain}\n```"
    )
