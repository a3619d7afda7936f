"""Long texts as overlapping windows: encoding, aggregation, training and the recorded choice."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from helpers import NEGATIVE, NEUTRAL, POSITIVE

from bertkit import ConfigError, TextClassifier
from bertkit.data.encoding import encode
from bertkit.engine.forward import aggregate_windows


def long_texts(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """The sentiment word sits after the 30th of 35-50 filler words: truncation at 32 tokens loses it."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        positive = i % 2 == 0
        words = rng.choices(NEUTRAL, k=rng.randint(35, 50))
        words.insert(rng.randint(31, len(words)), rng.choice(POSITIVE if positive else NEGATIVE))
        texts.append(" ".join(words))
        labels.append("positive" if positive else "negative")
    return texts, labels


def test_windows_cover_every_token_with_the_given_overlap(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    texts = ["great " * 30, "dull film"]
    encoded = encode(tokenizer, texts, None, max_length=16, stride=4)
    assert encoded.n_docs == 2 and set(encoded.doc_index) == {0, 1}
    assert (encoded.lengths <= 16).all() and encoded.truncated == 0
    first = encoded.doc_index == 0
    # 30 tokens, 14 per window (16 minus [CLS]/[SEP]) advancing by 14 - 4 = 10: 3 windows.
    assert first.sum() == 3
    assert np.sum(encoded.doc_index == 1) == 1


def test_aggregate_mean_and_max():
    from bertkit.data.encoding import Encoded

    encoded = Encoded(np.zeros(1), None, np.zeros(3), np.ones(3), 0, 8, np.array([0, 0, 1]), 2)
    logits = np.array([[1.0, 3.0], [3.0, -1.0], [0.5, 0.5]], dtype=np.float32)
    np.testing.assert_allclose(aggregate_windows(logits, encoded, "mean"), [[2.0, 1.0], [0.5, 0.5]])
    np.testing.assert_allclose(aggregate_windows(logits, encoded, "max"), [[3.0, 3.0], [0.5, 0.5]])


@pytest.mark.slow
def test_windows_find_what_truncation_cuts_off(tiny_bert, tmp_path):
    texts, labels = long_texts(200)
    test_texts, test_labels = long_texts(60, seed=1)
    # lr 3e-3 for 12 epochs learns the task under every seed tried (42, 1, 2, 3); 1e-2 diverged under some
    settings = dict(epochs=12, batch_size=16, learning_rate=3e-3, max_length=32, progress=False)
    truncated = TextClassifier(str(tiny_bert), **settings).fit(texts, labels)
    windowed = TextClassifier(str(tiny_bert), **settings, window_stride=8, window_aggregation="max")
    windowed.fit(texts, labels)
    assert truncated.score(test_texts, test_labels) <= 0.7  # the label word is past the first 30 tokens
    assert windowed.score(test_texts, test_labels) >= 0.85
    assert windowed.predict_proba(test_texts).shape == (60, 2)
    windowed.save(tmp_path)
    config = json.loads((tmp_path / "bertkit.json").read_text())["config"]
    assert (config["window_stride"], config["window_aggregation"]) == (8, "max")
    loaded = TextClassifier.load(tmp_path)
    np.testing.assert_allclose(loaded.predict_proba(test_texts), windowed.predict_proba(test_texts), atol=1e-5)


def test_window_options_are_checked():
    with pytest.raises(ConfigError, match="--window-stride must be at least 0 and below half"):
        TextClassifier(max_length=16, window_stride=10)._config()
    with pytest.raises(ConfigError, match="--window-aggregation must be mean or max"):
        TextClassifier(window_aggregation="sum")._config()
