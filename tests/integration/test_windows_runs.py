"""Long texts as overlapping windows: training finds what truncation cuts off (moved from tests/unit/test_windows.py)."""

from __future__ import annotations

import json
import random

import numpy as np
from helpers import NEGATIVE, NEUTRAL, POSITIVE

from bertkit import TextClassifier


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


def test_windows_find_what_truncation_cuts_off(tiny_bert, tmp_path):
    texts, labels = long_texts(200)
    test_texts, test_labels = long_texts(60, seed=1)
    # lr 3e-3 for 12 epochs learns the task under every seed tried (42, 1, 2, 3); 1e-2 diverged under some
    settings = dict(epochs=12, batch_size=16, learning_rate=3e-3, max_length=32, progress=False)
    truncated = TextClassifier(str(tiny_bert), **settings, window_stride=0).fit(texts, labels)  # 0: never windows
    windowed = TextClassifier(str(tiny_bert), **settings, window_stride=8, window_aggregation="max")
    windowed.fit(texts, labels)
    assert truncated.score(test_texts, test_labels) <= 0.7  # the label word is past the first 30 tokens
    assert windowed.score(test_texts, test_labels) >= 0.85
    assert windowed.predict_proba(test_texts).shape == (60, 2)
    auto = TextClassifier(str(tiny_bert), **settings, window_aggregation="max").fit(texts, labels)
    assert auto.config_.window_stride == 8  # every text is long: windows by default, stride 32 // 4
    np.testing.assert_allclose(auto.predict_proba(test_texts), windowed.predict_proba(test_texts), atol=1e-5)
    windowed.save(tmp_path)
    config = json.loads((tmp_path / "bertkit.json").read_text())["config"]
    assert (config["window_stride"], config["window_aggregation"]) == (8, "max")
    loaded = TextClassifier.load(tmp_path)
    np.testing.assert_allclose(loaded.predict_proba(test_texts), windowed.predict_proba(test_texts), atol=1e-5)
