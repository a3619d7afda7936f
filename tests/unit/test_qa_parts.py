"""QA building blocks on the tiny tokenizer: windows and span labels, decoding back to characters, SQuAD metrics."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_squad

from bertkit import ConfigError, ModelLoadError
from bertkit.models.checkpoints import load_tokenizer
from bertkit.qa.decoding import choose_answers, decode_spans
from bertkit.qa.metrics import best_null_threshold, exact_match, f1_score, normalize_answer, squad_metrics
from bertkit.qa.squad import QARecord, as_squad, parse_squad
from bertkit.qa.windows import check_window_sizes, encode_windows, span_targets, token_span


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    return load_tokenizer(str(tiny_bert))


def labelled_text(windows, targets, w, record) -> str:
    base = int(windows.encoded.offsets[w])
    start, end = targets[w]
    return record.context[windows.char_start[base + start] : windows.char_end[base + end]]


# windows and labels ----------------------------------------------------------------------------------------


def test_labels_point_at_the_answer_tokens_and_map_back_to_the_exact_characters(tokenizer):
    data = parse_squad(make_squad(60, seed=1))
    windows = encode_windows(tokenizer, data.records, max_length=48, doc_stride=8)
    targets = span_targets(windows, data.records)
    assert len(windows) == len(data)  # short contexts: one window each
    for w, r in enumerate(windows.encoded.doc_index):
        record = data.records[r]
        assert targets[w][0] != windows.cls_index[w]
        assert labelled_text(windows, targets, w, record) == record.answers[0].text
        ids = windows.encoded.ids[windows.window_slice(w)]
        answer_ids = tokenizer(record.answers[0].text, add_special_tokens=False)["input_ids"]
        assert list(ids[targets[w][0] : targets[w][1] + 1]) == answer_ids


def test_long_contexts_become_overlapping_windows_and_every_answer_is_labelled_somewhere(tokenizer):
    data = parse_squad(make_squad(12, seed=3, n_words=(70, 90)))
    stride = 6
    windows = encode_windows(tokenizer, data.records, max_length=32, doc_stride=stride)
    targets = span_targets(windows, data.records)
    doc_index = windows.encoded.doc_index
    assert (windows.encoded.lengths <= 32).all()
    assert (np.bincount(doc_index) >= 3).all()  # every context needs several windows
    for r, record in enumerate(data.records):
        mine = np.flatnonzero(doc_index == r)
        labelled = [w for w in mine if targets[w][0] != windows.cls_index[w]]
        assert labelled, f"answer of {record.id} is in no window"
        for w in labelled:
            assert labelled_text(windows, targets, w, record) == record.answers[0].text
        for w in mine:
            if w not in labelled:  # the answer is not wholly inside this window's part of the context
                part = windows.window_slice(w)
                starts, ends = windows.char_start[part], windows.char_end[part]
                inside = starts[starts >= 0].min() <= record.answers[0].start and ends.max() >= record.answers[0].end
                assert not inside
        # Neighbouring windows share exactly `stride` context tokens, and together cover the whole context.
        for a, b in zip(mine[:-1], mine[1:], strict=True):
            first = windows.char_start[windows.window_slice(a)]
            second = windows.char_start[windows.window_slice(b)]
            assert list(first[first >= 0][-stride:]) == list(second[second >= 0][:stride])
        covered = np.concatenate([windows.char_start[windows.window_slice(w)] for w in mine])
        assert covered.max() >= len(record.context) - 1 and covered[covered >= 0].min() == 0


def test_unanswerable_and_unlabelled_questions_point_at_cls(tokenizer):
    data = parse_squad(make_squad(30, seed=4, impossible_share=0.5))
    windows = encode_windows(tokenizer, data.records, max_length=48, doc_stride=8)
    targets = span_targets(windows, data.records)
    for w, r in enumerate(windows.encoded.doc_index):
        if data.records[r].is_impossible:
            assert tuple(targets[w]) == (windows.cls_index[w], windows.cls_index[w]) == (0, 0)
        else:
            assert labelled_text(windows, targets, w, data.records[r]) == data.records[r].answers[0].text


def test_long_questions_are_cut_so_the_context_keeps_room(tokenizer):
    record = QARecord("q", " ".join(["the plot"] * 40) + " ?", "the film was great.")
    windows = encode_windows(tokenizer, [record], max_length=32, doc_stride=4, max_question_length=8)
    assert len(windows) == 1
    question_tokens = (windows.char_start[windows.window_slice(0)] < 0).sum() - 3  # CLS, SEP, SEP
    assert question_tokens == 8


def test_answers_starting_or_ending_inside_a_word_or_on_a_space(tokenizer):
    context = "abc xyz film"  # x ##y ##z: three tokens
    windows = encode_windows(tokenizer, [QARecord("q", "what ?", context)], max_length=32, doc_stride=4)
    for start, end, expected in [(5, 7, "yz"), (3, 7, "xyz"), (0, 12, context), (4, 6, "xy"), (4, 8, "xyz")]:
        first, last = token_span(windows, 0, start, end)
        assert context[windows.char_start[first] : windows.char_end[last]] == expected
    assert token_span(windows, 0, 4, 40) is None  # runs past the window


@pytest.mark.parametrize(
    ("sizes", "fragment"),
    [
        ((8, 2, 4), "--max-length must be at least 16 for question answering (got 8)"),
        ((64, 45, 24), "--doc-stride must be at least 0 and below the context room of a window, 45 tokens (--max-length 64 minus 16 for the question minus 3 special tokens) (got 45)"),
        ((384, 317, 64), "317 tokens (--max-length 384 minus 64 for the question"),
        ((64, -1, 24), "(got -1)"),
        ((64, 8, 0), "--max-question-length must be a positive integer (got 0)"),
    ],
)  # fmt: skip
def test_window_size_errors(sizes, fragment):
    with pytest.raises(ConfigError) as caught:
        check_window_sizes(*sizes)
    assert fragment in str(caught.value)


def test_a_slow_tokenizer_is_refused():
    class Slow:
        is_fast = False
        name_or_path = "slow-model"

    with pytest.raises(ModelLoadError, match="slow-model: question answering needs a fast .* tokenizer.json"):
        encode_windows(Slow(), [QARecord("q", "what ?", "film")], 32, 4)


# decoding --------------------------------------------------------------------------------------------------


def spiked_logits(windows, spikes: dict[int, tuple[int, int]], cls: float = -5.0):
    """Flat logits: 0 everywhere, 5 at (start, end) window positions of the given windows, ``cls`` at CLS."""
    start = np.zeros(len(windows.encoded.ids), dtype=np.float32)
    end = np.zeros_like(start)
    for w in range(len(windows)):
        base = int(windows.encoded.offsets[w])
        start[base + windows.cls_index[w]] = end[base + windows.cls_index[w]] = cls
        if w in spikes:
            start[base + spikes[w][0]] += 5
            end[base + spikes[w][1]] += 5
    return start, end


def test_decoding_maps_the_best_span_back_to_exact_character_offsets(tokenizer):
    context = "the film, was superb and very moving."
    records = [QARecord("q", "what is good ?", context)]
    windows = encode_windows(tokenizer, records, max_length=48, doc_stride=8)
    target = token_span(windows, 0, context.index("very"), context.index("moving") + len("moving"))
    decoded = decode_spans(windows, *spiked_logits(windows, {0: target}), records, n_best=5, max_answer_length=10)
    best = decoded[0].candidates[0]
    assert (best.text, best.start, best.end) == ("very moving", 25, 36) and context[25:36] == "very moving"
    assert len(decoded[0].candidates) == 5
    assert [c.logit for c in decoded[0].candidates] == sorted((c.logit for c in decoded[0].candidates), reverse=True)
    assert 0 < best.score <= 1 and best.score > decoded[0].candidates[1].score
    # The same spike with a two-token limit: "very moving" is too long, so a one-token piece of it wins.
    short = decode_spans(windows, *spiked_logits(windows, {0: target}), records, n_best=5, max_answer_length=1)
    assert short[0].candidates[0].text in ("very", "moving")
    assert all(len(c.text.split()) == 1 for c in short[0].candidates)


def test_overlapping_windows_give_each_span_once_and_the_null_margin(tokenizer):
    record = parse_squad(make_squad(1, seed=5, n_words=(60, 60))).records[0]
    windows = encode_windows(tokenizer, [record], max_length=32, doc_stride=12)
    targets = span_targets(windows, [record])
    labelled = [w for w in range(len(windows)) if targets[w][0] != windows.cls_index[w]]
    spikes = {w: tuple(targets[w]) for w in labelled}
    decoded = decode_spans(windows, *spiked_logits(windows, spikes), [record], n_best=20, max_answer_length=5)[0]
    spans = [(c.start, c.end) for c in decoded.candidates]
    assert len(spans) == len(set(spans)) == 20
    assert decoded.candidates[0].text == record.answers[0].text
    assert decoded.null_logit == -10.0 and decoded.null_margin == pytest.approx(-20.0)
    assert choose_answers([decoded], None)[0].text == record.answers[0].text
    assert choose_answers([decoded], -25.0) == [None]  # margin -20 is above the threshold: no answer
    # A confident CLS makes the no-answer score win at threshold 0.
    confident = decode_spans(windows, *spiked_logits(windows, spikes, cls=20.0), [record])[0]
    assert confident.null_margin > 0 and choose_answers([confident], 0.0) == [None]
    assert confident.null_score > 0.5


# metrics ---------------------------------------------------------------------------------------------------


def test_official_normalisation_exact_match_and_f1_on_hand_examples():
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    assert normalize_answer("an apple a day") == "apple day"
    assert exact_match("the Eiffel Tower.", "Eiffel tower") == 1.0
    assert f1_score("the cat sat", "a cat sat down") == pytest.approx(0.8)  # p 2/2, r 2/3
    assert f1_score("cat cat", "cat") == pytest.approx(2 / 3)  # p 1/2 (counted overlap), r 1
    assert f1_score("dog", "cat") == 0.0
    assert f1_score("", "") == 1.0 and f1_score("cat", "") == 0.0


def test_squad_metrics_take_the_best_gold_answer_and_score_unanswerable_questions():
    predictions = ["1843", "Ada", "", "something"]
    golds = [["in 1843", "1843"], ["Ada Lovelace"], [], []]
    metrics = squad_metrics(predictions, golds, answerable=[True, True, False, False])
    assert metrics["exact_match"] == pytest.approx(100 * 2 / 4)
    assert metrics["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 0) / 4)
    assert (metrics["HasAns_exact"], metrics["NoAns_exact"], metrics["total"]) == (50.0, 50.0, 4)
    assert "HasAns_f1" not in squad_metrics(predictions[:2], golds[:2])


def test_best_null_threshold_answers_exactly_the_questions_worth_answering():
    margins = np.array([2.0, -2.0, 1.0, -1.0])
    answerable = np.array([False, True, False, True])
    best_f1 = np.array([0.0, 1.0, 0.0, 0.5])
    threshold, f1 = best_null_threshold(margins, best_f1, answerable)
    assert -1.0 < threshold < 1.0 and f1 == pytest.approx(100 * 3.5 / 4)
    # All answerable and right: answer everything.
    threshold, f1 = best_null_threshold(margins, np.ones(4), np.ones(4, dtype=bool))
    assert threshold > 2.0 and f1 == 100.0
    # Nothing answerable: answer nothing.
    threshold, f1 = best_null_threshold(margins, np.zeros(4), np.zeros(4, dtype=bool))
    assert threshold < -2.0 and f1 == 100.0


def test_as_squad_records_roundtrip_through_decoding(tokenizer):
    data = as_squad([{"question": "what is good ?", "context": "the plot was lovely."}], need_answers=False)
    windows = encode_windows(tokenizer, data.records, max_length=32, doc_stride=4)
    decoded = decode_spans(windows, *spiked_logits(windows, {}), data.records, n_best=3, max_answer_length=2)
    for candidate in decoded[0].candidates:
        assert data.records[0].context[candidate.start : candidate.end] == candidate.text
