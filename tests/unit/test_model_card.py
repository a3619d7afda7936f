"""The model card (README.md) of every saved model folder: written by each kind's save, read back by
huggingface_hub (YAML header, model-index), its sections following the metadata, and accepted by --overwrite."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import make_squad, ner_examples
from huggingface_hub import ModelCard

from bertkit import ConfigError, QuestionAnswerer, TokenTagger
from bertkit.models.card import base_model_id, card_text, write_card
from bertkit.runs import check_output_folder, clear_output_folder

FAST = dict(epochs=1, batch_size=16, max_length=32, progress=False)


def classifier_metadata(**extra):
    metadata = {
        "kind": "text-classification", "task": "classification", "classes": ["neg", "pos"], "text_pair": False,
        "config": {"model": "minilm", "max_length": 128, "window_stride": 0, "seed": 42, "epochs": 3},
        "validation_metrics": {"accuracy": 0.875, "macro_f1": 0.8, "loss": 0.31},
        "best_epoch": 2, "kept_epoch": 2, "train_seconds": 12.3, "n_train_rows": 900,
        "data_fingerprint": {"source": "train.csv", "rows": 1000, "sha256": "ab" * 32},
        "versions": {"bertkit": "0.1.0", "torch": "2.13.0"},
    }  # fmt: skip
    return {**metadata, **extra}


def test_a_saved_classifier_has_a_card_that_huggingface_hub_reads(tiny_classifier):
    metadata = json.loads((tiny_classifier / "bertkit.json").read_text())
    card = ModelCard.load(tiny_classifier / "README.md")
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "text-classification" and data["library_name"] == "transformers"
    assert "bertkit" in data["tags"] and "base_model" not in data  # a local base folder is no hub id
    metrics = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert metrics == pytest.approx(metadata["validation_metrics"]) and metrics
    assert {r.dataset_split for r in card.data.eval_results} == {"validation"}
    text = card.text
    for section in ("Task and labels", "Base model", "Training data", "Validation metrics", "Training recipe",
                    "Library versions", "Intended use", "Known limits", "How to load it"):  # fmt: skip
        assert f"## {section}" in text, section
    assert metadata["data_fingerprint"]["sha256"] in text
    assert "`negative`, `positive`" in text
    assert f'TextClassifier.load("{tiny_classifier.name}")' in text


def test_header_fields_follow_the_metadata():
    text = card_text(classifier_metadata(run_options={"train": "hf:rotten_tomatoes:train"}), name="sentiment")
    data = ModelCard(text).data
    assert data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert data.model_name == "sentiment"
    assert data.tags == ["bertkit", "text-classification", "classification"]
    assert {r.metric_type: r.metric_value for r in data.eval_results} == {
        "accuracy": 0.875,
        "macro_f1": 0.8,
        "loss": 0.31,
    }
    # a local file is no hub dataset: no `datasets` key; a hub dataset (hf:NAME) is listed
    assert data.datasets is None
    data_source = {"source": "hf:rotten_tomatoes:train", "rows": 10, "sha256": "0" * 64}
    assert ModelCard(card_text(classifier_metadata(data_fingerprint=data_source))).data.datasets == ["rotten_tomatoes"]


def test_the_validation_data_is_named_as_it_was_given():
    held_out = ModelCard(card_text(classifier_metadata(run_options={"train": "train.csv"}))).data
    assert {r.dataset_name for r in held_out.eval_results} == {"train.csv (held-out rows)"}
    given = classifier_metadata(run_options={"train": "train.csv", "validation": "dev.csv"})
    assert {r.dataset_name for r in ModelCard(card_text(given)).data.eval_results} == {"dev.csv"}


def test_no_metrics_no_model_index():
    data = ModelCard(card_text(classifier_metadata(validation_metrics=None))).data
    assert data.eval_results is None and "model-index" not in data.to_dict()


def test_calibration_truncation_and_windows_are_shown_when_recorded():
    plain = card_text(classifier_metadata())
    assert "Calibration" not in plain and "were truncated" not in plain
    assert "longer texts are truncated" in plain
    calibrated = card_text(classifier_metadata(
        calibration={"method": "temperature", "temperature": 1.73456, "ece_before": 0.081, "ece_after": 0.0123},
        truncated_share=0.125, long_share=0.125,
        config={"model": "minilm", "max_length": 64, "window_stride": 16, "window_aggregation": "max"},
    ))  # fmt: skip
    assert "### Calibration" in calibrated and "- temperature: 1.7346" in calibrated
    assert "- ece_before: 0.081" in calibrated and "- ece_after: 0.0123" in calibrated
    assert "- 12.5% of training texts were truncated" in calibrated
    assert "windows of 64 tokens sharing 16, their scores combined by max" in calibrated


def test_task_lines_by_task():
    multi = card_text(classifier_metadata(task="multi-label", thresholds=[0.4, 0.55]))
    assert "- task: multi-label" in multi and "[0.4, 0.55]" in multi
    regression = card_text(classifier_metadata(task="regression", classes=[]))
    assert "- output: one value per text" in regression and "knows only the labels" not in regression
    many = card_text(classifier_metadata(classes=[f"c{i}" for i in range(60)]))
    assert "- 60 labels:" in many and ", and 10 more" in many and "`c49`" in many and "`c50`" not in many


def test_base_model_ids(tmp_path):
    assert base_model_id("minilm") == "sentence-transformers/all-MiniLM-L6-v2"
    assert base_model_id("bert-base-uncased") == "bert-base-uncased"
    assert base_model_id("google-bert/bert-base-uncased") == "google-bert/bert-base-uncased"
    assert base_model_id(str(tmp_path)) is None  # a local folder
    assert base_model_id("/not/a hub id") is None and base_model_id(None) is None


def test_an_unreadable_metadata_still_gives_a_card(tmp_path):
    """Missing or odd keys leave their lines out; the card is still written and parsed."""
    path = write_card(tmp_path, {"kind": "no-such-kind", "config": "not a dict", "validation_metrics": [1, 2]})
    card = ModelCard.load(path)
    assert card.data.pipeline_tag == "text-classification" and "Not recorded." in card.text


def test_a_tagger_folder_has_a_token_classification_card(tiny_bert, tmp_path):
    sentences, tags = ner_examples(8, seed=1)
    folder = TokenTagger(str(tiny_bert), **FAST).fit(sentences, tags).save(tmp_path / "tagger")
    card = ModelCard.load(folder / "README.md")
    assert card.data.pipeline_tag == "token-classification"
    assert "token-classification" in card.data.tags and "`B-LOC`" in card.text
    assert {r.metric_type for r in card.data.eval_results} >= {"f1"}
    assert 'pipeline("token-classification"' in card.text


def test_a_qa_folder_has_a_question_answering_card(tiny_bert, tmp_path):
    model = QuestionAnswerer(str(tiny_bert), **{**FAST, "max_length": 64, "doc_stride": 16}).fit(make_squad(8))
    folder = model.save(tmp_path / "qa")
    card = ModelCard.load(folder / "README.md")
    assert card.data.pipeline_tag == "question-answering"
    assert "windows overlapping by 16 tokens" in card.text
    assert "QuestionAnswerer.load" in card.text


def test_a_folder_with_its_card_can_be_overwritten_not_mixed_into(tiny_classifier, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_classifier, folder)
    assert (folder / "README.md").is_file()
    with pytest.raises(ConfigError, match="holds a model bertkit wrote"):
        check_output_folder(folder, overwrite=False)
    check_output_folder(folder, overwrite=True)  # README.md is one of bertkit's own files
    clear_output_folder(folder)
    assert list(folder.iterdir()) == []
