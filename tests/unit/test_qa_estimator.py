"""QuestionAnswerer on the tiny random BERT: it learns the synthetic task, predicts exact character spans,
handles unanswerable questions (v2), and saves a self-describing folder that plain transformers loads."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from helpers import make_squad, sentiment_examples

from bertkit import ConfigError, ModelLoadError, NotFittedError, QuestionAnswerer, TextClassifier
from bertkit.qa.estimator import hold_out_articles
from bertkit.qa.metrics import squad_metrics
from bertkit.qa.squad import parse_squad

# fp32 everywhere: a CI machine without native bf16 then trains the same way as one with it.
SETTINGS = dict(
    epochs=4, batch_size=16, learning_rate=2e-3, max_length=48, doc_stride=8, progress=False, device="cpu",
    precision="fp32",
)  # fmt: skip


@pytest.fixture(scope="module")
def answerer(tiny_bert) -> QuestionAnswerer:
    # Contexts up to 40 words: some need two or three 48-token windows, so training sees answerless windows.
    return QuestionAnswerer(str(tiny_bert), **SETTINGS).fit(make_squad(160, seed=0, n_words=(6, 40)))


@pytest.fixture(scope="module")
def saved(answerer, tmp_path_factory):
    return answerer.save(tmp_path_factory.mktemp("qa") / "model")


def test_fit_learns_the_task_and_beats_the_first_sentence_baseline(answerer):
    test = parse_squad(make_squad(60, seed=9))
    metrics = answerer.evaluate(test)
    baseline = squad_metrics([r.context for r in test.records], [[a.text for a in r.answers] for r in test.records])
    # Measured: F1 83 vs 24 for the whole context; the margins leave room for other CPUs' float rounding.
    assert metrics["f1"] > 65 and metrics["f1"] > baseline["f1"] + 35, (metrics, baseline)
    assert set(metrics) == {"exact_match", "f1", "total"} and metrics["total"] == 60
    assert len(answerer.history_) == 4 and answerer.validation_metrics_["f1"] > 0
    assert answerer.null_threshold_ is None and answerer.squad_version_ == "1.1"


def test_predict_returns_exact_character_offsets(answerer):
    contexts = ["the film was quite superb, and the plot dull.", "music and acting, very lovely story."]
    answers = answerer.predict(["what is good ?", "what is good ?"], contexts)
    assert len(answers) == 2
    for context, answer in zip(contexts, answers, strict=True):
        assert set(answer) == {"id", "question", "answer", "start", "end", "score"}
        assert context[answer["start"] : answer["end"]] == answer["answer"] != ""
        assert 0 < answer["score"] <= 1
    assert answers[0]["answer"] == "superb"
    assert answerer.predict((q for q in ["what is good ?"] * 2), iter(contexts)) == answers  # any iterable
    nbest = answerer.predict_nbest(["what is good ?"], contexts[:1], k=3)[0]
    assert len(nbest) == 3 and nbest[0]["answer"] == "superb"
    assert all(contexts[0][c["start"] : c["end"]] == c["answer"] for c in nbest)


def test_contexts_longer_than_a_window_are_answered_from_the_right_window(answerer):
    squad = make_squad(12, seed=11, n_words=(50, 70))
    data = parse_squad(squad)
    assert answerer._windows(data.records).encoded.n_docs == 12 < len(answerer._windows(data.records))
    metrics = answerer.evaluate(data)
    assert metrics["f1"] > 60, metrics
    for record, answer in zip(data.records, answerer.predict_records(data), strict=True):
        assert record.context[answer["start"] : answer["end"]] == answer["answer"]


def test_save_load_round_trip_and_plain_transformers(answerer, saved):
    meta = json.loads((saved / "bertkit.json").read_text())
    assert meta["kind"] == "question-answering" and meta["qa"]["doc_stride"] == 8
    assert (saved / "model.safetensors").is_file()
    loaded = QuestionAnswerer.load(saved, device="cpu")
    questions, contexts = ["what is good ?"] * 2, ["the plot is wonderful.", "a very charming story and music."]
    assert loaded.predict(questions, contexts) == answerer.predict(questions, contexts)
    assert (loaded.max_length, loaded.doc_stride, loaded.null_threshold_) == (48, 8, None)

    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    model = AutoModelForQuestionAnswering.from_pretrained(saved).eval()
    tokenizer = AutoTokenizer.from_pretrained(saved)
    inputs = tokenizer(questions[0], contexts[0], return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    start, end = int(out.start_logits[0, 1:].argmax()) + 1, int(out.end_logits[0, 1:].argmax()) + 1
    spans = inputs.encodings[0].offsets
    assert contexts[0][spans[start][0] : spans[end][1]] == loaded.predict(questions[:1], contexts[:1])[0]["answer"]


def test_v2_unanswerable_questions_use_a_tuned_and_stored_null_threshold(tiny_bert, tmp_path):
    v2 = QuestionAnswerer(str(tiny_bert), **{**SETTINGS, "epochs": 5}).fit(
        make_squad(200, seed=0, impossible_share=0.3)
    )
    assert v2.squad_version_ == "2.0" and isinstance(v2.null_threshold_, float)
    test = make_squad(60, seed=9, impossible_share=0.3)
    metrics = v2.evaluate(test)
    assert {"HasAns_f1", "NoAns_f1", "NoAns_total"} <= set(metrics) and metrics["NoAns_f1"] > 0
    answers = v2.predict_records(test)
    empty = [a for a in answers if a["answer"] == ""]
    assert empty and all(a["start"] is None and a["end"] is None and 0 <= a["score"] <= 1 for a in empty)
    folder = v2.save(tmp_path / "v2")
    loaded = QuestionAnswerer.load(folder, device="cpu")
    assert loaded.null_threshold_ == pytest.approx(v2.null_threshold_)
    assert loaded.predict_records(test) == answers
    # A threshold given as a parameter is kept instead of tuned.
    fixed = QuestionAnswerer(str(tiny_bert), **{**SETTINGS, "epochs": 1, "null_threshold": 0.5})
    assert fixed.fit(make_squad(40, seed=0, impossible_share=0.3)).null_threshold_ == 0.5
    # The fitted threshold can be moved after training: a huge one means "always answer".
    always = QuestionAnswerer.load(folder, device="cpu")
    always.null_threshold_ = 1e9
    assert all(a["answer"] for a in always.predict_records(test))


def test_articles_stay_whole_in_the_held_out_split():
    data = parse_squad(make_squad(40, per_article=4))
    fit, validation = hold_out_articles(data, 0.2, seed=1)
    assert len(validation.titles) == 2 and not set(fit.titles) & set(validation.titles)
    assert len(fit) + len(validation) == 40
    one_article = parse_squad(make_squad(6, per_article=10))
    fit, validation = hold_out_articles(one_article, 0.5, seed=1)
    assert (len(fit), len(validation)) == (3, 3)


def test_errors(tiny_bert, tmp_path, saved):
    with pytest.raises(NotFittedError, match="QuestionAnswerer is not fitted yet; call fit"):
        QuestionAnswerer().predict(["q"], ["c"])
    with pytest.raises(ConfigError, match=re.escape("--max-answer-length must be a positive integer (got 0)")):
        QuestionAnswerer(str(tiny_bert), max_answer_length=0).fit(make_squad(8))
    with pytest.raises(ConfigError, match=re.escape("--doc-stride must be at least 0 and below")):
        QuestionAnswerer(str(tiny_bert), max_length=32, doc_stride=30).fit(make_squad(8))
    with pytest.raises(ConfigError, match="unknown parameter 'stride'; valid parameters"):
        QuestionAnswerer().set_params(stride=3)
    # A classifier folder is not a QA model, and a QA folder is not a classifier.
    classifier = TextClassifier(str(tiny_bert), epochs=1, max_length=16, progress=False)
    classifier.fit(*sentiment_examples(8)).save(tmp_path / "clf")
    with pytest.raises(
        ModelLoadError, match=r"clf: not a question-answering model \(bertkit.json kind: text-classification\)"
    ):
        QuestionAnswerer.load(tmp_path / "clf")
    with pytest.raises(
        ModelLoadError,
        match=r"model: holds a question-answering model, not a text classifier; use `bertkit qa evaluate/predict` \(QuestionAnswerer.load\)",
    ):
        TextClassifier.load(saved)
    with pytest.raises(ModelLoadError, match=r"not a question-answering model \(bertkit.json kind: none\)"):
        QuestionAnswerer.load(tiny_bert)  # a bare encoder: loading it would invent a random span head


def test_sklearn_parameters_round_trip():
    qa = QuestionAnswerer(max_length=256, doc_stride=64)
    params = qa.get_params()
    assert params["max_length"] == 256 and params["doc_stride"] == 64 and "null_threshold" in params
    assert QuestionAnswerer(**params).get_params() == params
    assert np.isclose(QuestionAnswerer().set_params(learning_rate=3e-5).learning_rate, 3e-5)


@pytest.mark.parametrize("fixture", ["tiny_distilbert", "tiny_roberta"])
def test_other_architectures_label_windows_and_answer_with_exact_offsets(request, fixture):
    from bertkit.models.checkpoints import load_tokenizer
    from bertkit.qa.windows import encode_windows, span_targets

    folder = request.getfixturevalue(fixture)
    data = parse_squad(make_squad(24, seed=2, n_words=(6, 30)))
    windows = encode_windows(load_tokenizer(str(folder)), data.records, max_length=40, doc_stride=8)
    targets = span_targets(windows, data.records)
    for w, r in enumerate(windows.encoded.doc_index):
        if targets[w][0] != windows.cls_index[w]:
            base, record = int(windows.encoded.offsets[w]), data.records[r]
            span = record.context[windows.char_start[base + targets[w][0]] : windows.char_end[base + targets[w][1]]]
            assert span == record.answers[0].text
    qa = QuestionAnswerer(str(folder), **{**SETTINGS, "epochs": 1, "max_length": 40}).fit(data)
    for record, answer in zip(data.records, qa.predict_records(data), strict=True):
        assert record.context[answer["start"] : answer["end"]] == answer["answer"] != ""


def test_training_under_torchrun_is_refused_not_run_once_per_rank(tiny_bert, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="bertkit qa train runs in one process; launch it without torchrun"):
        QuestionAnswerer(str(tiny_bert), **SETTINGS).fit(make_squad(8, seed=0))
