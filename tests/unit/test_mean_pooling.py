"""--classifier-pooling mean: an extra, ordinary encoder layer that starts as mean pooling over real tokens."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import sentiment_examples

from bertkit import ConfigError, TextClassifier
from bertkit.models.heads import build_classifier
from bertkit.models.packed import packed_classifier
from bertkit.models.pooling import add_mean_pooling_layer

FAST = dict(epochs=1, batch_size=16, learning_rate=3e-3, max_length=32, progress=False)


def test_the_added_layer_starts_as_mean_pooling_over_real_tokens(tiny_bert):
    from transformers import AutoTokenizer

    model = build_classifier(str(tiny_bert), "classification", ["neg", "pos"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    batch = tokenizer(["a great film", "a dull plot and a very slow start to the film"], padding=True,
                      return_tensors="pt")  # fmt: skip
    layers = model.config.num_hidden_layers
    with torch.no_grad():
        before = model.base_model(**batch).last_hidden_state  # [batch, length, hidden]
        add_mean_pooling_layer(model, scale=1e4)  # the residual [CLS] state then weighs 1e-4
        after = model.base_model(**batch).last_hidden_state[:, 0]  # [batch, hidden]
    mask = batch["attention_mask"].unsqueeze(-1).float()  # padding must not enter the mean
    mean = (before * mask).sum(dim=1) / mask.sum(dim=1)
    expected = torch.nn.functional.layer_norm(mean, mean.shape[-1:], eps=model.config.layer_norm_eps)
    assert model.config.num_hidden_layers == layers + 1
    torch.testing.assert_close(after, expected, atol=2e-3, rtol=2e-3)


def test_a_mean_pooling_model_is_a_plain_transformers_classifier(tiny_bert, tmp_path):
    from transformers import pipeline

    texts, labels = sentiment_examples(64)
    clf = TextClassifier(str(tiny_bert), classifier_pooling="mean", **FAST).fit(texts, labels)
    folder = clf.save(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    assert config["num_hidden_layers"] == 3 and config["architectures"] == ["BertForSequenceClassification"]

    probe = ["great film", "a dull and tedious plot", "the music"]
    exact = TextClassifier.load(folder, precision="fp32", calibration=False)  # the pipeline is uncalibrated
    results = pipeline("text-classification", model=str(folder))(probe)
    assert [r["label"] for r in results] == list(exact.predict(probe))
    np.testing.assert_allclose([r["score"] for r in results], exact.predict_proba(probe).max(axis=1), atol=1e-5)
    # bertkit's packed forward covers the extra layer like any other
    batch = exact.tokenizer_(probe, padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(packed_classifier(exact.model_)(**batch), exact.model_(**batch).logits)


def test_only_plain_bert_style_encoders_get_the_layer(tiny_bert):
    from bertkit.models.pooling import has_bert_style_layers

    model = build_classifier(str(tiny_bert), "classification", ["neg", "pos"])
    assert has_bert_style_layers(model)
    # Longformer and ConvBERT name their parts as BERT does but attend globally or convolve: not mean pooling
    model.config.model_type = "longformer"
    assert not has_bert_style_layers(model)


def test_mean_pooling_names_the_architectures_it_needs(tiny_distilbert):
    texts, labels = sentiment_examples(16)
    with pytest.raises(ConfigError, match="--classifier-pooling mean needs a BERT-style encoder .* distilbert"):
        TextClassifier(str(tiny_distilbert), classifier_pooling="mean", **FAST).fit(texts, labels)
    with pytest.raises(ConfigError, match="^classifier_pooling must be auto, cls or mean"):  # the API's terms
        TextClassifier(str(tiny_distilbert), classifier_pooling="max", **FAST).fit(texts, labels)


def _sentence_transformers_folder(base, folder, **pooling):
    import shutil

    shutil.copytree(base, folder)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]))  # fmt: skip
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **pooling}))
    return folder


def test_auto_pooling_follows_the_sentence_transformers_config(tiny_bert, tiny_distilbert, tmp_path):
    from bertkit.models.checkpoints import resolve_checkpoint
    from bertkit.models.pooling import sentence_pooling

    mean = _sentence_transformers_folder(tiny_bert, tmp_path / "mean", pooling_mode_mean_tokens=True)
    cls = _sentence_transformers_folder(tiny_bert, tmp_path / "cls", pooling_mode_cls_token=True)
    assert (sentence_pooling(str(mean)), sentence_pooling(str(cls)), sentence_pooling(str(tiny_bert))) == (
        "mean", "cls", None,
    )  # fmt: skip
    assert sentence_pooling(resolve_checkpoint("minilm")) == "mean"  # the built-in default was trained so
    odd = _sentence_transformers_folder(tiny_bert, tmp_path / "odd")
    (odd / "1_Pooling" / "config.json").write_text("[]")  # not a pooling config: no opinion, no error
    assert sentence_pooling(str(odd)) is None

    texts, labels = sentiment_examples(32)
    # a mean-pooling DistilBERT: auto keeps the architecture's own head (explicit mean refuses, above)
    distil = _sentence_transformers_folder(tiny_distilbert, tmp_path / "distil", pooling_mode_mean_tokens=True)
    cases = ((mean, "mean", 3), (cls, "cls", 2), (tiny_bert, "cls", 2), (distil, "cls", 2))
    for folder, expected, layers in cases:
        clf = TextClassifier(str(folder), classifier_pooling="auto", **FAST).fit(texts, labels)
        assert (clf.config_.classifier_pooling, clf.model_.config.num_hidden_layers) == (expected, layers)
