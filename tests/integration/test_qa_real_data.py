"""Extractive QA with the packaged MiniLM on XQuAD-en (../shared/data/squad): labels on the real file, and a
short end-to-end fit. The scored run lives in benchmarks/qa_squad.py."""

from __future__ import annotations

import pytest
from helpers import SHARED_DATA, needs_shared_data

from bertkit import QuestionAnswerer, read_squad
from bertkit.models.checkpoints import load_tokenizer, resolve_checkpoint
from bertkit.qa.windows import encode_windows, span_targets

pytestmark = [pytest.mark.integration, needs_shared_data("squad", "xquad_en_36articles.json")]
FILE = SHARED_DATA / "squad" / "xquad_en_36articles.json"


def test_every_real_answer_maps_to_tokens_and_back_to_its_characters():
    data = read_squad(FILE)
    assert (len(data), len(data.titles), data.version) == (925, 36, "1.1")
    tokenizer = load_tokenizer(resolve_checkpoint("minilm"))
    windows = encode_windows(tokenizer, data.records, max_length=256, doc_stride=128)
    targets = span_targets(windows, data.records)
    labelled, exact = set(), 0
    for w, r in enumerate(windows.encoded.doc_index):
        if targets[w][0] == windows.cls_index[w]:
            continue
        record, base = data.records[r], int(windows.encoded.offsets[w])
        text = record.context[windows.char_start[base + targets[w][0]] : windows.char_end[base + targets[w][1]]]
        labelled.add(int(r))
        # Token boundaries can only widen an answer that starts or ends inside a word, never shift it.
        assert record.answers[0].text in text
        exact += text == record.answers[0].text
    assert len(labelled) == len(data)
    assert len(windows) > len(data)  # some contexts are longer than 256 tokens
    assert exact >= 0.99 * (len(targets) - (targets[:, 0] == windows.cls_index).sum())


def test_minilm_fits_a_few_questions_and_answers_with_exact_offsets():
    data = read_squad(FILE)
    train, test = data.subset(data.titles[:2]), data.subset(data.titles[2:3])
    qa = QuestionAnswerer(epochs=1, max_length=128, doc_stride=32, max_train_questions=24, progress=False, seed=13)
    qa.fit(train, eval_set=test.subset([test.titles[0]]))
    assert qa.history_[0]["train_loss"] > 0 and 0 <= qa.validation_metrics_["f1"] <= 100
    answers = qa.predict_records(test)
    assert len(answers) == len(test)
    for record, answer in zip(test.records, answers, strict=True):
        assert record.context[answer["start"] : answer["end"]] == answer["answer"] != ""
