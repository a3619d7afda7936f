"""encode + collate against the tokenizer's own padding, and the two batch planners."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from bertkit.data.encoding import (
    Encoded,
    collate,
    encode,
    global_batches_for,
    inference_batches,
    split_for_rank,
    training_batches,
)
from bertkit.exceptions import ConfigError

WORDS = ["great", "good", "bad", "awful", "the", "film", "movie", "plot", "was", "very", "and", "story", "music"]


def sentences(n: int, seed: int, low: int = 1, high: int = 12) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(low, high))) for _ in range(n)]


TEXTS = sentences(24, seed=1) + ["", "x", "Unusual W0rds, punctuation!?"]
PAIRS = sentences(27, seed=2)


@pytest.fixture(scope="module")
def bert_tok(tiny_bert):
    return AutoTokenizer.from_pretrained(str(tiny_bert))


@pytest.fixture(scope="module")
def roberta_tok(tiny_roberta):
    return AutoTokenizer.from_pretrained(str(tiny_roberta))


def reference(tokenizer, texts, pairs, max_length, **kwargs):
    return tokenizer(texts, pairs, padding=True, truncation=True, max_length=max_length, return_tensors="pt", **kwargs)


def assert_same(batch: dict[str, torch.Tensor], ref, keys: tuple[str, ...]) -> None:
    assert set(batch) == set(keys)
    for key in keys:
        assert batch[key].dtype == torch.int64, key
        assert torch.equal(batch[key], ref[key]), key


def test_encoded_layout(bert_tok):
    enc = encode(bert_tok, TEXTS, None, max_length=64)
    assert isinstance(enc, Encoded) and len(enc) == len(TEXTS)
    rows = bert_tok(TEXTS, truncation=True, max_length=64)["input_ids"]
    assert enc.lengths.tolist() == [len(r) for r in rows]
    assert enc.offsets.tolist() == np.concatenate([[0], np.cumsum(enc.lengths)[:-1]]).tolist()
    assert enc.ids.tolist() == [t for r in rows for t in r]
    assert enc.pad_id == bert_tok.pad_token_id == 0
    assert enc.type_ids is None  # single texts: all zeros, not stored


def test_bert_single_texts_match_tokenizer_padding(bert_tok):
    batch = collate(encode(bert_tok, TEXTS, None, max_length=64), np.arange(len(TEXTS)), with_type_ids=True)
    ref = reference(bert_tok, TEXTS, None, 64)
    assert_same(batch, ref, ("input_ids", "attention_mask"))
    assert not ref["token_type_ids"].any()  # leaving them out is the same as the model's default zeros
    assert (batch["input_ids"] == bert_tok.pad_token_id).any()  # padding really happened


def test_bert_pairs_match_tokenizer_padding(bert_tok):
    enc = encode(bert_tok, TEXTS, PAIRS, max_length=64)
    batch = collate(enc, np.arange(len(TEXTS)), with_type_ids=True)
    ref = reference(bert_tok, TEXTS, PAIRS, 64)
    assert_same(batch, ref, ("input_ids", "attention_mask", "token_type_ids"))
    assert batch["token_type_ids"].sum() > 0


def test_collate_any_subset_in_any_order(bert_tok):
    enc = encode(bert_tok, TEXTS, PAIRS, max_length=64)
    index = np.array([5, 25, 0, 13])
    batch = collate(enc, index, with_type_ids=True)
    ref = reference(bert_tok, [TEXTS[i] for i in index], [PAIRS[i] for i in index], 64)
    assert_same(batch, ref, ("input_ids", "attention_mask", "token_type_ids"))
    assert batch["input_ids"].shape == (4, int(enc.lengths[index].max()))


def test_collate_without_type_ids(bert_tok):
    batch = collate(encode(bert_tok, TEXTS, PAIRS, max_length=64), np.arange(3), with_type_ids=False)
    assert set(batch) == {"input_ids", "attention_mask"}


@pytest.mark.parametrize("pairs", [None, PAIRS])
def test_truncation_matches_tokenizer(bert_tok, pairs):
    long_texts = sentences(len(TEXTS), seed=3, low=1, high=30)
    enc = encode(bert_tok, long_texts, pairs, max_length=16)
    full = bert_tok(long_texts, pairs)["input_ids"]
    assert enc.lengths.max() == 16
    assert enc.truncated == sum(len(r) >= 16 for r in full) > 0
    assert enc.truncated < len(long_texts)
    batch = collate(enc, np.arange(len(long_texts)), with_type_ids=True)
    keys = ("input_ids", "attention_mask") + (("token_type_ids",) if pairs else ())
    assert_same(batch, reference(bert_tok, long_texts, pairs, 16), keys)
    # [SEP] survives truncation at the end of every cut example
    cut = np.flatnonzero(enc.lengths == 16)
    assert (batch["input_ids"][cut, -1] == bert_tok.sep_token_id).all()


def test_truncated_counts_examples_at_max_length(bert_tok):
    enc = encode(bert_tok, ["good", "the film was very good and the plot was good"], None, max_length=5)
    assert enc.lengths.tolist() == [3, 5]
    assert enc.truncated == 1


@pytest.mark.parametrize("pairs", [None, PAIRS])
def test_roberta_gets_no_type_ids(roberta_tok, pairs):
    assert "token_type_ids" not in roberta_tok.model_input_names
    enc = encode(roberta_tok, TEXTS, pairs, max_length=40)
    assert enc.type_ids is None
    assert enc.pad_id == roberta_tok.pad_token_id == 1
    batch = collate(enc, np.arange(len(TEXTS)), with_type_ids=True)
    ref = reference(roberta_tok, TEXTS, pairs, 40)
    assert_same(batch, ref, ("input_ids", "attention_mask"))
    padded = batch["attention_mask"] == 0
    assert padded.any() and (batch["input_ids"][padded] == 1).all()


# -------------------------------------------------------------------------------------------- batching


def lengths_for(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 200, size=n)


def padded_tokens(batches: list[np.ndarray], lengths: np.ndarray) -> int:
    return int(sum(len(b) * lengths[b].max() for b in batches))


def test_training_batches_cover_every_index_once():
    lengths = lengths_for(1000)
    batches = training_batches(lengths, 16, np.random.default_rng(0))
    assert len(batches) == 63  # ceil(1000 / 16)
    assert all(1 <= len(b) <= 16 for b in batches)
    assert sum(len(b) < 16 for b in batches) == 1
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(1000))


def test_training_batches_are_seeded():
    lengths = lengths_for(500)
    first = training_batches(lengths, 8, np.random.default_rng(42))
    again = training_batches(lengths, 8, np.random.default_rng(42))
    other = training_batches(lengths, 8, np.random.default_rng(43))
    assert len(first) == len(again) and all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_training_batches_group_similar_lengths():
    lengths = lengths_for(2000)
    batches = training_batches(lengths, 16, np.random.default_rng(0), group_size=20)
    order = np.random.default_rng(0).permutation(len(lengths))
    random_batches = [order[i : i + 16] for i in range(0, len(order), 16)]
    real = int(lengths.sum())
    grouped_padding = padded_tokens(batches, lengths) - real
    random_padding = padded_tokens(random_batches, lengths) - real
    assert grouped_padding < 0.1 * random_padding
    # ... but the batch order is shuffled, not longest first
    longest = [int(lengths[b].max()) for b in batches]
    assert longest != sorted(longest, reverse=True) and longest != sorted(longest)


def test_training_batches_for_two_ranks_split_each_global_batch():
    lengths = lengths_for(1001)  # 63 global batches of 16, the last holds 9 examples: split 5 / 4
    single = training_batches(lengths, 16, np.random.default_rng(7))
    ranks = [training_batches(lengths, 16, np.random.default_rng(7), rank=r, world_size=2) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == len(single) == 63
    for step, batch in enumerate(single):
        # the union of the ranks' micro-batches at step k is the single-process batch at step k
        assert sorted(np.concatenate([ranks[0][step], ranks[1][step]]).tolist()) == sorted(batch.tolist())
        assert not set(ranks[0][step].tolist()) & set(ranks[1][step].tolist())
    # each rank's micro-batches stay length-grouped: little more padding than the global batches
    for batches in ranks:
        assert padded_tokens(batches, lengths) - int(lengths[np.concatenate(batches)].sum()) < 0.1 * int(lengths.sum())


def test_a_global_batch_smaller_than_the_world_joins_another_and_no_row_is_left_out():
    batches = [np.array([18]), np.arange(16), np.arange(16, 18)]
    joined = global_batches_for(batches, 4)
    assert [b.tolist() for b in joined] == [[18, *range(18)]]  # 1- and 2-row batches would leave ranks empty
    split = [split_for_rank(batches, r, 4) for r in range(4)]
    assert [len(s) for s in split] == [1, 1, 1, 1] and min(len(s[0]) for s in split) == 4
    assert sorted(np.concatenate([s[0] for s in split]).tolist()) == list(range(19))
    assert split_for_rank(batches, 0, 1) is batches
    assert global_batches_for([np.array([1]), np.array([2])], 2) == []  # fewer rows than processes


@pytest.mark.parametrize("rows", [31, 32, 33, 47])
def test_every_row_trains_on_two_processes_and_the_step_plan_counts_the_batches(rows):
    from bertkit.config import TrainConfig
    from bertkit.engine.loop import StepPlan

    lengths = lengths_for(rows, seed=rows)
    config = TrainConfig(batch_size=16)
    batches = training_batches(lengths, 16, np.random.default_rng(0))
    ranks = [split_for_rank(batches, r, 2) for r in range(2)]
    assert sorted(np.concatenate([*ranks[0], *ranks[1]]).tolist()) == list(range(rows))
    assert len(ranks[0]) == len(ranks[1]) == StepPlan.of(rows, config, 2).steps_per_epoch


def test_too_small_a_forward_pass_for_the_processes_is_refused():
    from bertkit.config import TrainConfig
    from bertkit.engine.loop import StepPlan

    with pytest.raises(
        ConfigError,
        match=r"^--batch-size 8 with --grad-accumulation 8 gives forward passes of 1 row, fewer than the 2 processes, "
        r"which need one each: raise --batch-size to at least 16 or lower --grad-accumulation$",
    ):
        StepPlan.of(100, TrainConfig(batch_size=8, grad_accumulation=8), 2)
    with pytest.raises(
        ConfigError, match=r"1 training rows cannot be shared among 2 processes: give more rows or launch fewer"
    ):
        StepPlan.of(1, TrainConfig(batch_size=8), 2)
    assert StepPlan.of(100, TrainConfig(batch_size=8, grad_accumulation=8), 1).steps_per_epoch == 13


def test_training_batches_smaller_than_one_batch():
    batches = training_batches(np.array([5, 3, 9]), 16, np.random.default_rng(0))
    assert len(batches) == 1 and sorted(batches[0].tolist()) == [0, 1, 2]


def test_inference_batches_cover_every_index_and_respect_the_budget():
    lengths = lengths_for(700, seed=3)
    batches = list(inference_batches(lengths, max_batch_size=64, max_tokens=2048))
    flat = np.concatenate(batches)
    assert np.array_equal(np.sort(flat), np.arange(700))
    assert all(1 <= len(b) <= 64 for b in batches)
    assert all(len(b) * lengths[b].max() <= 2048 for b in batches)
    assert np.all(np.diff(lengths[flat]) <= 0)  # longest first, so a memory problem shows at once
    assert len(batches) < 700 // 4  # not one example per batch


def test_inference_batches_limit_by_examples_when_texts_are_short():
    batches = list(inference_batches(np.full(100, 3), max_batch_size=32, max_tokens=16384))
    assert [len(b) for b in batches] == [32, 32, 32, 4]


def test_inference_batches_give_an_over_budget_text_its_own_batch():
    lengths = np.array([10, 5000, 10, 10])
    batches = list(inference_batches(lengths, max_batch_size=8, max_tokens=1000))
    assert [b.tolist() for b in batches] == [[1], [0, 2, 3]]


def test_inference_batches_collate_to_the_budget(bert_tok):
    texts = sentences(60, seed=5, high=30)
    enc = encode(bert_tok, texts, None, max_length=64)
    for index in inference_batches(enc.lengths, max_batch_size=16, max_tokens=200):
        batch = collate(enc, index, with_type_ids=True)
        assert batch["input_ids"].numel() <= 200 or len(index) == 1
        assert batch["attention_mask"].sum(dim=1).tolist() == enc.lengths[index].tolist()


def test_gather_padded_pads_per_token_values_like_collate():
    from bertkit.data.encoding import Encoded, collate, gather_padded

    ids = np.array([5, 6, 7, 8, 9], dtype=np.int64)
    encoded = Encoded(ids, None, np.array([0, 3]), np.array([3, 2]), pad_id=0, max_length=8)
    labels = np.array([1, 2, 3, 4, 5], dtype=np.int64)
    index = np.array([1, 0])
    got = gather_padded(encoded, labels, index, pad_value=-100)
    assert got.tolist() == [[4, 5, -100], [1, 2, 3]]
    assert got.shape == collate(encoded, index, False)["input_ids"].shape


def test_a_max_length_with_no_room_beside_the_special_tokens_is_refused(bert_tok, roberta_tok):
    with pytest.raises(ConfigError, match=r"^--max-length 2 leaves no room for text beside the model's 2 special"):
        encode(bert_tok, ["a long text " * 40], None, 2)
    with pytest.raises(ConfigError, match=r"^--max-length 4 leaves no room .* 4 special tokens; give at least 5"):
        encode(roberta_tok, ["a"], ["b"], 4)  # a RoBERTa pair takes 4
    assert encode(bert_tok, ["a long text " * 40], None, 3).lengths.tolist() == [3]
