"""Sub-word alignment, long-sentence pieces, token logits and character offsets (tiny random BERT)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertkit.data.encoding import collate
from bertkit.models.checkpoints import load_tokenizer
from bertkit.models.heads import build_token_classifier
from bertkit.tagging.objective import TokenObjective, predict_token_logits
from bertkit.tagging.words import encode_words, entity_dicts, split_words, word_predictions


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    return load_tokenizer(str(tiny_bert))


def test_label_sits_on_the_first_sub_token(tokenizer):
    # "xyz" is not in the tiny vocab: it becomes x ##y ##z.
    words = encode_words(tokenizer, [["great", "xyz", "film"], ["bad"]], max_length=32)
    enc = words.encoded
    first_row = tokenizer.convert_ids_to_tokens(enc.ids[enc.offsets[0] : enc.offsets[0] + enc.lengths[0]].tolist())
    assert first_row == ["[CLS]", "great", "x", "##y", "##z", "film", "[SEP]"]
    assert words.first.tolist() == [1, 2, 5, 8]  # flat positions; row 2 starts at 7
    assert words.word.tolist() == [0, 1, 2, 3]
    labels = words.token_labels(np.array([1, 2, 0, 3]))
    assert labels.tolist() == [-100, 1, 2, -100, -100, 0, -100, -100, 3, -100]


def test_long_sentences_are_cut_between_words_not_truncated(tokenizer):
    sentence = ["great", "xyz", "film", "was", "bad", "abcd", "plot", "is", "dull"]
    words = encode_words(tokenizer, [["good"], sentence], max_length=8)  # 6 sub-tokens per piece at most
    enc = words.encoded
    assert enc.lengths.max() <= 8
    assert enc.doc_index.tolist()[0] == 0 and set(enc.doc_index.tolist()[1:]) == {1}
    assert len(enc) > 2
    # Every word of both sentences has exactly one first sub-token, in order.
    assert words.word.tolist() == list(range(1 + len(sentence)))
    tokens = tokenizer.convert_ids_to_tokens(enc.ids[words.first].tolist())
    assert tokens == ["good", "great", "x", "film", "was", "bad", "a", "plot", "is", "dull"]


def test_objective_targets_pad_like_collate_and_loss_ignores_minus_100(tokenizer, tiny_bert):
    sentences = [["great", "film"], ["the", "xyz", "was", "bad"]]
    words = encode_words(tokenizer, sentences, max_length=32)
    objective = TokenObjective(words, np.array([1, 0, 0, 1, 0, 2]))
    index = np.array([1, 0])
    inputs = collate(words.encoded, index, with_type_ids=False)
    targets = objective.batch_targets(index, inputs)
    assert targets.shape == inputs["input_ids"].shape  # [2, 8]
    assert targets[0].tolist() == [-100, 0, 1, -100, -100, 0, 2, -100]
    assert targets[1].tolist() == [-100, 1, 0, -100, -100, -100, -100, -100]
    model = build_token_classifier(str(tiny_bert), ["O", "B-PER", "I-PER"])
    logits = torch.zeros(2, 8, 3)
    logits[targets == 1, 1] = 50.0  # perfect on labelled positions, nonsense on ignored ones
    logits[targets == 0, 0] = 50.0
    logits[targets == 2, 2] = 50.0
    logits[targets == -100, 2] = -50.0
    loss = objective.loss(type("Out", (), {"logits": logits})(), targets)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    assert model.config.id2label == {0: "O", 1: "B-PER", 2: "I-PER"}


def test_token_logits_are_in_input_order(tokenizer, tiny_bert):
    model = build_token_classifier(str(tiny_bert), ["O", "B-PER", "I-PER"])
    sentences = [["great"], ["the", "film", "was", "xyz", "bad"], ["a", "plot"]]
    words = encode_words(tokenizer, sentences, max_length=32)
    flat = predict_token_logits(model, words.encoded, batch_size=2)  # batches sorted by length
    assert flat.shape == (len(words.encoded.ids), 3)
    for row in range(3):
        start, length = words.encoded.offsets[row], words.encoded.lengths[row]
        ids = torch.from_numpy(words.encoded.ids[start : start + length])[None, :]
        with torch.no_grad():
            alone = model(input_ids=ids).logits[0].numpy()
        np.testing.assert_allclose(flat[start : start + length], alone, atol=1e-5)
    ids, scores = word_predictions(words, flat, outside=0)
    assert ids.shape == scores.shape == (8,)
    assert np.all((scores > 0) & (scores <= 1))


def test_split_words_offsets_point_into_the_text():
    text = "Mr. Blackburn met EU officials in the U.S. on 1996-08-22, O'Neill said."
    words, offsets = split_words(text)
    assert words == [
        "Mr", ".", "Blackburn", "met", "EU", "officials", "in", "the", "U.S.", "on", "1996-08-22", ",",
        "O'Neill", "said", ".",
    ]  # fmt: skip
    assert [text[s:e] for s, e in offsets] == words


def test_entity_dicts_use_character_offsets():
    text = "  Peter  Blackburn visits Bonn."
    words, offsets = split_words(text)
    entities = entity_dicts(text, offsets, [("PER", 0, 2), ("LOC", 3, 4)], np.array([0.9, 0.7, 0.1, 0.8, 0.5]))
    assert entities == [
        {"entity": "PER", "text": "Peter  Blackburn", "start": 2, "end": 18, "score": 0.8},
        {"entity": "LOC", "text": "Bonn", "start": 26, "end": 30, "score": 0.8},
    ]
    assert all(text[e["start"] : e["end"]] == e["text"] for e in entities)


def test_byte_level_bpe_tokenizes_each_word_as_after_a_space(tiny_roberta):
    from bertkit.tagging.estimator import _tokenizer

    tokenizer = _tokenizer(str(tiny_roberta))
    assert tokenizer.add_prefix_space
    words = encode_words(tokenizer, [["great", "film", "was", "dull"]], max_length=16)
    first = tokenizer.convert_ids_to_tokens(words.encoded.ids[words.first].tolist())
    assert len(first) == 4 and all(token.startswith("Ġ") for token in first), first
