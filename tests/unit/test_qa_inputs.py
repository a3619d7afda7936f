"""QA inputs at their edges: answers with whitespace around them, answers no window holds, RoBERTa's four
special tokens, in-memory rows without titles, and questions given as generators."""

from __future__ import annotations

import re

import pytest

from bertkit import BertkitWarning, ConfigError, DataError, QuestionAnswerer
from bertkit.models.checkpoints import load_tokenizer
from bertkit.qa.estimator import hold_out_articles
from bertkit.qa.squad import as_squad, questions_contexts
from bertkit.qa.windows import encode_windows, span_targets

CONTEXT = "the film was superb and the plot dull."


@pytest.fixture(scope="module")
def tokenizer(tiny_bert):
    return load_tokenizer(str(tiny_bert))


def labelled(tokenizer, context: str, text: str, start: int, **sizes) -> str:
    """The context characters the first window's start/end labels cover ("CLS" for none)."""
    rows = [{"id": "q1", "question": "what is good ?", "context": context, "answers": [{"text": text, "answer_start": start}]}]  # fmt: skip
    data = as_squad(rows)
    windows = encode_windows(tokenizer, data.records, **({"max_length": 48, "doc_stride": 8} | sizes))
    first, last = span_targets(windows, data.records)[0]
    if first == windows.cls_index[0]:
        return "CLS"
    base = int(windows.encoded.offsets[0])
    return context[windows.char_start[base + first] : windows.char_end[base + last]]


# whitespace around answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start"), [("superb", 13), ("superb ", 13), (" superb", 12), (" superb ", 12), ("superb\n", 13)]
)
def test_whitespace_around_an_answer_adds_no_token_to_its_labels(tokenizer, text, start):
    context = CONTEXT if text != "superb\n" else CONTEXT.replace("superb ", "superb\n")
    assert labelled(tokenizer, context, text, start) == "superb"


def test_an_answer_ending_in_whitespace_at_the_end_of_the_context_is_still_labelled(tokenizer):
    assert labelled(tokenizer, "the film was superb ", "superb ", 13) == "superb"


@pytest.mark.parametrize("text", [" ", "\n\t "])
def test_a_whitespace_only_answer_is_refused_naming_the_question(text):
    context = f"the film{text}was superb."
    rows = [{"id": "q7", "question": "what ?", "context": context, "answers": [{"text": text, "answer_start": 8}]}]
    with pytest.raises(DataError) as caught:
        as_squad(rows, "X")
    message = str(caught.value)
    assert message.startswith("X [0].answers[0].text (question id q7): the answer text is empty or only whitespace")
    assert "\n" not in message


# answers that no window holds ------------------------------------------------------------------------------


def test_answers_in_no_window_warn_once_with_their_count_ids_and_the_fix(tokenizer):
    words = ("the film was good and " * 12).split()
    context = " ".join(words) + "."
    long_answer = " ".join(words[2:40])  # ~38 tokens: longer than a 32-token window's context room
    rows = [
        {"id": f"long{i}", "question": "what is good ?", "context": context,
         "answers": [{"text": long_answer, "answer_start": context.find(long_answer)}]}
        for i in range(4)
    ] + [{"id": "short", "question": "what is good ?", "context": context, "answers": [{"text": "film", "answer_start": 4}]}]  # fmt: skip
    data = as_squad(rows)
    windows = encode_windows(tokenizer, data.records, max_length=32, doc_stride=4)
    with pytest.warns(BertkitWarning) as caught:
        targets = span_targets(windows, data.records)
    assert len(caught) == 1
    assert re.fullmatch(
        r"4 of 5 answerable questions \('long0', 'long1', 'long2', \.\.\.\) have their answer in no window .*"
        r'train as "no answer"; raise --max-length \(or --doc-stride\)',
        str(caught[0].message),
    )
    short = windows.encoded.doc_index == 4
    assert (targets[short, 0] != windows.cls_index[short]).any()  # the short answer is labelled


def test_unanswerable_questions_and_answers_that_fit_do_not_warn(tokenizer):
    rows = [
        {"id": "a", "question": "what is good ?", "context": CONTEXT, "answers": [{"text": "superb", "answer_start": 13}]},
        {"id": "b", "question": "what is bad ?", "context": CONTEXT, "is_impossible": True},
    ]  # fmt: skip
    data = as_squad(rows)
    span_targets(encode_windows(tokenizer, data.records, 32, 4), data.records)  # BertkitWarning would fail here


# RoBERTa: four special tokens in a pair -------------------------------------------------------------------------


def test_roberta_windows_count_its_four_special_tokens(tiny_roberta):
    tokenizer = load_tokenizer(str(tiny_roberta))
    data = as_squad([{"question": "what is the good film and plot ?", "context": CONTEXT * 5}], need_answers=False)
    fragment = "below the context room of a window, 8 tokens (--max-length 16 minus 4 for the question minus 4 special tokens) (got 8)"  # fmt: skip
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        encode_windows(tokenizer, data.records, max_length=16, doc_stride=8)
    with pytest.raises(ConfigError, match=re.escape(fragment)):  # before any data is read
        QuestionAnswerer(str(tiny_roberta), max_length=16, doc_stride=8, device="cpu").check_params()
    assert len(encode_windows(tokenizer, data.records, max_length=16, doc_stride=7)) > 1


def test_a_roberta_answer_starting_with_a_multi_byte_character_starts_at_its_first_byte_piece(tiny_roberta):
    tokenizer = load_tokenizer(str(tiny_roberta))
    context = "the \N{GRINNING FACE} good film"
    rows = [{"question": "what ?", "context": context, "answers": [{"text": "\N{GRINNING FACE} good", "answer_start": 4}]}]  # fmt: skip
    data = as_squad(rows)
    windows = encode_windows(tokenizer, data.records, max_length=32, doc_stride=4)
    first, last = span_targets(windows, data.records)[0]
    pieces = tokenizer("\N{GRINNING FACE}", add_special_tokens=False)["input_ids"]  # several byte-level pieces
    ids = windows.encoded.ids[windows.window_slice(0)]
    assert len(pieces) > 1 and list(ids[first : first + len(pieces)]) == pieces
    assert tokenizer.decode(ids[first : last + 1]).strip() == "\N{GRINNING FACE} good"


# in-memory rows and iterables ---------------------------------------------------------------------------------


def test_rows_without_titles_keep_each_context_on_one_side_of_the_split():
    contexts = [f"the film number {i} was good." for i in range(5)]
    rows = [
        {"question": q, "context": c, "answers": [{"text": "good", "answer_start": c.find("good")}]}
        for c in contexts
        for q in ("what is good ?", "what was good ?", "which is good ?", "good ?")
    ]
    data = as_squad(rows, "X")
    assert data.titles == [f"context {i}" for i in range(5)]
    for seed in range(5):
        fit, validation = hold_out_articles(data, 0.4, seed)
        assert not {r.context for r in fit.records} & {r.context for r in validation.records}
        assert len(fit) + len(validation) == 20 and len(validation) % 4 == 0
    titled = as_squad([{**rows[0], "title": "Films"}, rows[4]])
    assert titled.titles == ["Films", "context 0"]
    from_frame = as_squad([{**rows[0], "title": float("nan")}, {**rows[4], "title": float("nan")}])
    assert from_frame.titles == ["context 0", "context 1"]  # DataFrame.to_dict("records") gives NaN, not None


def test_questions_and_contexts_may_be_any_iterable():
    data = questions_contexts((q for q in ["what ?", "who ?"]), iter(["the film", "Ada wrote"]))
    assert [(r.id, r.question, r.context) for r in data.records] == [("0", "what ?", "the film"), ("1", "who ?", "Ada wrote")]  # fmt: skip
    with pytest.raises(DataError, match=r"1 questions but 2 contexts"):
        questions_contexts((q for q in ["what ?"]), (c for c in ["a", "b"]))
    with pytest.raises(DataError, match=r"^questions: expected a list of strings \(got int\); pass a list$"):
        questions_contexts(3, ["the film"])
