"""TokenTagger on the tiny random BERT: learns a synthetic tag set, predicts spans with character offsets,
survives save/load, loads in plain transformers, and refuses misuse with clear errors."""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
from helpers import ner_examples, write_conll

from bertkit import ConfigError, DataError, ModelLoadError, NotFittedError, TextClassifier, TokenTagger

FAST = dict(epochs=3, batch_size=16, learning_rate=5e-3, max_length=32, progress=False)


@pytest.fixture(scope="module")
def fitted(tiny_bert, tmp_path_factory):
    sentences, tags = ner_examples(240, seed=1)
    tagger = TokenTagger(str(tiny_bert), **FAST).fit(sentences, tags)
    folder = tagger.save(tmp_path_factory.mktemp("tagger") / "model")
    return tagger, folder


def test_fit_learns_entities_and_uses_the_shared_loop(fitted):
    tagger, _ = fitted
    assert tagger.labels_ == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert len(tagger.history_) == 3 and "val_f1" in tagger.history_[0]
    assert tagger.history_[-1]["train_loss"] < tagger.history_[0]["train_loss"]
    sentences, tags = ner_examples(80, seed=2)
    report = tagger.evaluate(sentences, tags)
    assert report["f1"] >= 0.9, report
    assert report["n_sentences"] == 80 and set(report["per_type"]) == {"LOC", "PER"}
    assert tagger.score(sentences, tags) == report["f1"]


def test_predict_returns_entity_spans_with_character_offsets(fitted):
    tagger, _ = fitted
    texts = ["the film was  good charming, and the plot was dull.", "", "the movie"]
    out = tagger.predict(texts)
    assert len(out) == 3 and out[1] == [] and out[2] == []
    entities = out[0]
    assert [(e["entity"], e["text"]) for e in entities] == [("PER", "good charming"), ("LOC", "dull")]
    for entity in entities:
        assert texts[0][entity["start"] : entity["end"]] == entity["text"]
        assert 0 < entity["score"] <= 1
    assert entities[0]["start"] == 14


def test_predict_tags_and_sentences(fitted):
    tagger, _ = fitted
    assert tagger.predict_tags([["great", "lovely", "film"]]) == [["B-PER", "I-PER", "O"]]
    row = tagger.predict_sentences([["the", "great", "lovely", "film"]])[0]
    assert row["tags"] == ["O", "B-PER", "I-PER", "O"]
    (entity,) = row["entities"]
    assert (entity["text"], entity["start"], entity["end"]) == ("great lovely", 4, 16)
    assert (entity["first_token"], entity["last_token"]) == (1, 2)


def test_save_load_round_trip_and_self_describing_folder(fitted):
    tagger, folder = fitted
    metadata = json.loads((folder / "bertkit.json").read_text())
    assert metadata["kind"] == "token-classification"
    assert metadata["labels"] == tagger.labels_
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"]["1"] == "B-LOC" and config["label2id"]["I-PER"] == 4
    loaded = TokenTagger.load(folder, device="cpu")
    texts = ["good moving acting and a weak plot", "superb brilliant music"]
    assert loaded.predict(texts) == tagger.predict(texts)
    assert loaded.labels_ == tagger.labels_ and loaded.max_length == 32


def test_folder_loads_in_a_plain_transformers_pipeline(fitted):
    from transformers import pipeline

    _, folder = fitted
    found = pipeline("token-classification", model=str(folder), aggregation_strategy="simple")(
        "the film was great lovely"
    )
    assert [(e["entity_group"], e["word"]) for e in found] == [("PER", "great lovely")]


def test_classifier_and_tagger_folders_are_not_confused(fitted, tmp_path):
    _, folder = fitted
    with pytest.raises(
        ModelLoadError, match=r"holds a token-classification model, not a text classifier; use `bertkit tag"
    ):
        TextClassifier.load(folder)
    fake = tmp_path / "clf"
    fake.mkdir()
    (fake / "config.json").write_text((folder / "config.json").read_text())
    (fake / "bertkit.json").write_text(json.dumps({"kind": "text-classification", "task": "classification"}))
    with pytest.raises(ModelLoadError, match=r"clf: holds a text-classification model, not a token tagger"):
        TokenTagger.load(fake)


def test_a_plain_hf_token_classification_folder_is_not_loaded_as_a_classifier(fitted, tmp_path):
    import shutil

    _, folder = fitted
    plain = tmp_path / "plain-ner"
    shutil.copytree(folder, plain)
    (plain / "bertkit.json").unlink()  # what transformers' save_pretrained leaves: architectures only
    with pytest.raises(
        ModelLoadError, match=r"plain-ner: holds a token-classification model, not a text classifier; use `bertkit tag"
    ):
        TextClassifier.load(plain)


def _split_scores(text: str, suffix: str) -> tuple[list, list[float]]:
    """Output rows without entity scores, and the scores (compared with a tolerance: batches differ)."""
    if suffix != ".jsonl":
        return text.splitlines(), []
    rows = [json.loads(line) for line in text.splitlines()]
    scores = [entity.pop("score") for row in rows for entity in row["entities"]]
    return rows, scores


def test_predict_file_tags_and_writes_in_chunks_with_the_same_output(fitted, tmp_path, monkeypatch):
    # fp32 (not "auto", bf16 on some CPUs): chunks regroup the batches, which must not move a tag.
    tagger = copy.copy(fitted[0])
    tagger.config_ = dataclasses.replace(tagger.config_, precision="fp32")
    conll = write_conll(tmp_path / "test.conll", *ner_examples(30, seed=5))
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(" ".join(words) + "\n" for words in ner_examples(30, seed=6)[0]), encoding="utf-8")
    whole = {}
    for source, suffix in ((conll, ".conll"), (conll, ".jsonl"), (texts, ".jsonl")):
        output = tmp_path / f"whole-{source.stem}{suffix}"
        assert tagger.predict_file(source, output) == 30
        whole[source, suffix] = output.read_text(encoding="utf-8")
    chunk_sizes = []
    predict_words = type(tagger)._predict_words
    monkeypatch.setattr(
        type(tagger),
        "_predict_words",
        lambda self, sentences: chunk_sizes.append(len(sentences)) or predict_words(self, sentences),
    )
    for (source, suffix), expected in whole.items():
        chunk_sizes.clear()
        output = tmp_path / f"chunked-{source.stem}{suffix}"
        assert tagger.predict_file(source, output, chunk_rows=7) == 30
        rows, scores = _split_scores(output.read_text(encoding="utf-8"), suffix)
        expected_rows, expected_scores = _split_scores(expected, suffix)
        assert rows == expected_rows
        np.testing.assert_allclose(scores, expected_scores, atol=2e-4)  # scores are rounded to 4 decimals
        assert chunk_sizes == [7, 7, 7, 7, 2]
    assert len(whole[conll, ".jsonl"].splitlines()) == 30 and whole[conll, ".conll"].count("\n\n") == 30
    with pytest.raises(ConfigError, match="chunk_rows must be a positive integer"):
        tagger.predict_file(conll, tmp_path / "x.jsonl", chunk_rows=0)


def test_predict_file_that_fails_part_way_leaves_no_partial_output(fitted, tmp_path, monkeypatch):
    tagger, _ = fitted
    conll = write_conll(tmp_path / "test.conll", *ner_examples(30, seed=5))
    earlier = tmp_path / "tagged.jsonl"
    earlier.write_text("an earlier run's output\n", encoding="utf-8")
    predict_sentences = type(tagger).predict_sentences
    calls = []

    def fail_on_third_chunk(self, X):
        calls.append(len(X))
        if len(calls) == 3:
            raise MemoryError("out of memory")
        return predict_sentences(self, X)

    monkeypatch.setattr(type(tagger), "predict_sentences", fail_on_third_chunk)
    with pytest.raises(MemoryError):
        tagger.predict_file(conll, earlier, chunk_rows=7)
    assert calls == [7, 7, 7]
    assert earlier.read_text(encoding="utf-8") == "an earlier run's output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tagged.jsonl", "test.conll"]


def test_user_errors(tiny_bert):
    with pytest.raises(NotFittedError, match="TokenTagger is not fitted yet"):
        TokenTagger(str(tiny_bert)).predict(["a text"])
    with pytest.raises(ConfigError, match="unknown parameter 'epoch'"):
        TokenTagger().set_params(epoch=2)
    with pytest.raises(DataError, match="needs tags"):
        TokenTagger(str(tiny_bert), **FAST).fit([["a", "film"]])
    with pytest.raises(DataError, match="3 sentences are too few to hold out validation data"):
        TokenTagger(str(tiny_bert), **FAST).fit([["a"]] * 3, [["O"]] * 3)
    with pytest.raises(DataError, match="X sentence 1: 2 words but 1 tags"):
        TokenTagger(str(tiny_bert), **FAST).fit([["a", "film"]] * 5, [["O"]] * 5)
    # an entity type validation holds and training lacks: a wrong file or a typo, refused before training
    sentences, tags = [["alice", "met", "bob"]] * 6, [["B-PER", "O", "B-PER"]] * 6
    with pytest.raises(DataError, match=r"^eval_set sentence 2: tag 'B-FOO' has an entity type never seen in "
                       r"training \(the training data has: PER\)"):  # fmt: skip
        TokenTagger(str(tiny_bert), **FAST).fit(
            sentences, tags, eval_set=(sentences[:2], [tags[0], ["B-FOO", "O", "O"]])
        )


def test_sklearn_params_round_trip():
    tagger = TokenTagger(epochs=2, max_length=64)
    assert tagger.get_params()["epochs"] == 2
    assert TokenTagger(**tagger.get_params()).get_params() == tagger.get_params()
    assert tagger.set_params(epochs=5) is tagger and tagger.epochs == 5


def test_eval_set_and_row_limit(tiny_bert, tmp_path):
    sentences, tags = ner_examples(120, seed=5)
    val_sentences, val_tags = ner_examples(30, seed=6)
    params = {**FAST, "epochs": 1}
    tagger = TokenTagger(str(tiny_bert), **params, max_train_rows=50)
    tagger.fit(sentences, tags, eval_set=(val_sentences, val_tags), output_dir=tmp_path)
    assert tagger.n_train_rows_ == 50  # all 50 train; validation came from eval_set
    assert len(tagger.history_) == 1
    assert json.loads((tmp_path / "history.jsonl").read_text())["val_f1"] == tagger.validation_metrics_["f1"]


def test_training_under_torchrun_is_refused_not_run_once_per_rank(tiny_bert, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="bertkit tag train runs in one process; launch it without torchrun"):
        TokenTagger(str(tiny_bert), epochs=1, progress=False).fit([["alice", "was", "great"]], [["B-PER", "O", "O"]])
