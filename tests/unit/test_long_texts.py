"""Long texts by default: ``window_stride=None`` reads training texts in windows when more than 10% of them are
longer than max_length, says so in one line, saves the choice with the model; short texts train as before."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from helpers import NEGATIVE, NEUTRAL, POSITIVE, assert_same_weights, run_cli, sentiment_examples, write_csv
from transformers import AutoTokenizer

from bertkit import ConfigError, TextClassifier
from bertkit.classification.inputs import encode_texts, resolve_long_texts
from bertkit.config import TrainConfig
from bertkit.data.dataset import from_lists
from bertkit.data.encoding import count_longer, encode

FAST = dict(epochs=1, batch_size=8, learning_rate=2e-3, max_length=16, progress=False)


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    return AutoTokenizer.from_pretrained(str(tiny_bert))


def mixed_texts(n: int, n_long: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` labelled texts of which the first ``n_long`` run to 20-30 words (over 16 tokens), the rest 3-9."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        positive = i % 2 == 0
        words = rng.choices(NEUTRAL, k=rng.randint(20, 30) if i < n_long else rng.randint(2, 8))
        words.insert(rng.randint(0, len(words)), rng.choice(POSITIVE if positive else NEGATIVE))
        texts.append(" ".join(words))
        labels.append("positive" if positive else "negative")
    return texts, labels


def resolve(tokenizer, texts, pairs=None, **options):
    data = from_lists(list(zip(texts, pairs, strict=True)) if pairs else texts, ["x"] * len(texts), name="X")
    return resolve_long_texts(tokenizer, data, TrainConfig(max_length=16, **options))


def test_count_longer_counts_what_truncation_cuts(tokenizer):
    # "great" x 14 plus [CLS] and [SEP] is exactly 16 tokens: it fits; one word more does not.
    assert count_longer(tokenizer, ["great " * 14, "great " * 15, "good", "good " * 40], None, 16) == 2
    assert count_longer(tokenizer, ["great " * 6, "good"], ["bad " * 7, "dull"], 16) == 0  # 6 + 7 + 3 = 16
    assert count_longer(tokenizer, ["great " * 7, "good"], ["bad " * 7, "dull"], 16) == 1
    assert count_longer(tokenizer, [], None, 16) == 0


@pytest.mark.parametrize(("n_long", "stride"), [(3, 4), (2, 0), (1, 0), (0, 0)])
def test_windows_switch_on_above_ten_percent_of_long_training_texts(tokenizer, n_long, stride):
    texts, _ = mixed_texts(20, n_long)
    config, found = resolve(tokenizer, texts)
    assert found.share == n_long / 20
    assert config.window_stride == stride  # 16 // 4 = 4 above 10%; exactly 10% (2 of 20) still truncates
    assert found.windowed == (stride > 0)
    assert found.metadata() == {"long_share": n_long / 20, "truncated_share": 0.0 if stride else n_long / 20}
    if stride:
        assert found.note == (
            "15% of training texts exceed 16 tokens: reading them in overlapping windows (--window-stride 4); "
            "--window-stride 0 truncates instead"
        )
    else:
        assert found.note is None  # below the share: truncation as before, nothing said


def test_zero_always_truncates_and_a_given_stride_is_kept(tokenizer):
    texts, _ = mixed_texts(10, 10)
    config, found = resolve(tokenizer, texts, window_stride=0)
    assert (config.window_stride, found.windowed, found.note) == (0, False, None)
    assert found.metadata() == {"long_share": 1.0, "truncated_share": 1.0}
    config, found = resolve(tokenizer, texts, window_stride=2)
    assert (config.window_stride, found.windowed, found.note) == (2, True, None)
    truncated, windowed = encode(tokenizer, texts, None, 16, stride=0), encode(tokenizer, texts, None, 16, stride=2)
    assert truncated.doc_index is None and len(truncated) == 10 and truncated.truncated == 10
    assert windowed.doc_index is not None and len(windowed) > 10


def test_pairs_keep_truncation_and_say_so(tokenizer):
    texts = ["good"] * 10  # each second text of 3-10 words fits beside it, one of 21-31 words does not
    pairs, _ = mixed_texts(10, 5, seed=1)
    config, found = resolve(tokenizer, texts, pairs)
    assert (config.window_stride, found.windowed, found.share) == (0, False, 0.5)
    assert found.note == (
        "50% of training pairs exceed 16 tokens and are truncated (windows are chosen by themselves only for "
        "single texts); --window-stride 4 or a larger --max-length reads more"
    )
    assert resolve(tokenizer, texts, pairs, window_stride=4)[0].window_stride == 4  # asked for: windows


def test_pair_windows_truncate_a_pair_whose_first_text_leaves_no_room(tokenizer):
    # 16 tokens, 3 special: a first text of 9 words leaves the second 4 tokens, not more than the stride 4
    # (the Rust tokenizer panics on it), one of 20 leaves none: both are truncated, as one window each.
    texts = ["great " * 5, "good", "great " * 20, "great " * 9]
    pairs = ["bad " * 40, "dull", "bad " * 3, "bad " * 40]
    encoded = encode(tokenizer, texts, pairs, 16, stride=4)
    assert encoded.n_docs == 4 and (encoded.lengths <= 16).all()
    assert np.bincount(encoded.doc_index).tolist() == [9, 1, 1, 1]  # pair 0: 40 tokens in windows of 8 by 4
    last = encoded.ids[encoded.offsets[-1] : encoded.offsets[-1] + encoded.lengths[-1]]
    truncated = tokenizer(texts[3], pairs[3], truncation=True, max_length=16)["input_ids"]
    assert last.tolist() == truncated
    assert encoded.type_ids is not None and len(encoded.type_ids) == len(encoded.ids)


def test_the_decision_draws_nothing_random_and_short_texts_encode_as_before(tokenizer):
    texts, labels = sentiment_examples(40)
    states = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    config, found = resolve(tokenizer, texts)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]
    assert (config.window_stride, found.share, found.note) == (0, 0.0, None)
    encoded = encode_texts(tokenizer, from_lists(texts, labels, name="X"), config)
    assert encoded.doc_index is None
    rows = tokenizer(texts, truncation=True, max_length=16)["input_ids"]
    assert encoded.lengths.tolist() == [len(r) for r in rows]
    assert encoded.ids.tolist() == [t for r in rows for t in r]


def test_short_texts_train_the_same_weights_as_truncation(tiny_bert):
    texts, labels = sentiment_examples(48)
    auto = TextClassifier(str(tiny_bert), **FAST).fit(texts, labels)
    truncating = TextClassifier(str(tiny_bert), **FAST, window_stride=0).fit(texts, labels)
    assert auto.config_.window_stride == 0 and auto.window_stride is None  # resolved, the parameter kept
    assert auto.metadata_ == {"long_share": 0.0, "truncated_share": 0.0}
    assert_same_weights(auto.model_.state_dict(), truncating.model_.state_dict())
    assert auto.history_[0]["train_loss"] == truncating.history_[0]["train_loss"]


def test_the_choice_is_saved_and_followed_after_load(tiny_bert, tmp_path):
    texts, labels = mixed_texts(40, 12)
    clf = TextClassifier(str(tiny_bert), **FAST).fit(texts, labels)
    assert clf.config_.window_stride == 4
    clf.save(tmp_path)
    saved = json.loads((tmp_path / "bertkit.json").read_text())
    assert saved["config"]["window_stride"] == 4
    assert json.loads((tmp_path / "train_config.json").read_text())["window_stride"] == 4
    assert saved["truncated_share"] == 0.0 and saved["long_share"] == pytest.approx(12 / 36, abs=0.1)
    loaded = TextClassifier.load(tmp_path)
    assert loaded.config_.window_stride == 4 and loaded.metadata_["truncated_share"] == 0.0
    test_texts, _ = mixed_texts(6, 3, seed=5)
    encoded = loaded._encode(from_lists(test_texts, None, name="X"))
    assert encoded.doc_index is not None and len(encoded) > 6  # long texts read in windows at prediction
    np.testing.assert_allclose(loaded.predict_proba(test_texts), clf.predict_proba(test_texts), atol=1e-5)


def test_train_says_so_in_one_line(tiny_bert, tmp_path, capsys):
    texts, labels = mixed_texts(40, 12)
    data = write_csv(tmp_path / "long.csv", ["text", "label"], list(zip(texts, labels, strict=True)))
    code = run_cli("train", "--train", data, "--output", tmp_path / "model", "--model", tiny_bert, "--epochs", "1",
                   "--batch-size", "8", "--max-length", "16")  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    lines = [line for line in err.splitlines() if "overlapping windows" in line]
    assert len(lines) == 1 and lines[0].endswith("--window-stride 0 truncates instead"), err
    assert " of training texts exceed 16 tokens: reading them in overlapping windows (--window-stride 4)" in lines[0]
    saved = json.loads((tmp_path / "model" / "bertkit.json").read_text())
    assert saved["config"]["window_stride"] == 4


def test_window_stride_errors_say_that_zero_truncates():
    with pytest.raises(ConfigError, match=r"below half of --max-length 16 \(got 8\); 0 truncates long texts$"):
        TrainConfig(max_length=16, window_stride=8)
