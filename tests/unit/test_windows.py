"""Long texts as overlapping windows: encoding, aggregation, training and the recorded choice."""

from __future__ import annotations

import numpy as np
import pytest

from bertkit import ConfigError, TextClassifier
from bertkit.data.encoding import encode
from bertkit.engine.batches import aggregate_windows


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


def test_window_options_are_checked():
    with pytest.raises(ConfigError, match="^window_stride must be at least 0 and below half"):
        TextClassifier(max_length=16, window_stride=10)._config()
    with pytest.raises(ConfigError, match="^window_aggregation must be mean or max"):
        TextClassifier(window_aggregation="sum")._config()
