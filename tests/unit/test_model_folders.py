"""Model folders are checked whole before use (issue 19): config, weights, tokenizer and bertkit.json must be
there and agree (label count, kind, text pair or single text); a missing folder is named for the command that
needs it; --max-length is checked against the model's position embeddings before anything runs."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from helpers import fails, make_squad, ner_examples, sentiment_examples, write_csv

from bertkit import ConfigError, DataError, ModelLoadError, QuestionAnswerer, TextClassifier, TokenTagger

FAST = dict(epochs=1, batch_size=16, max_length=32, progress=False)


@pytest.fixture(scope="module")
def pair_classifier(tiny_classifier, tmp_path_factory) -> Path:
    """A folder that records training on (text, text_pair) tuples (fit sets ``text_pair_``: test_estimator.py)."""
    folder = Path(shutil.copytree(tiny_classifier, tmp_path_factory.mktemp("pair-classifier") / "model"))
    edit_json(folder / "bertkit.json", text_pair=True)
    return folder


@pytest.fixture(scope="module")
def plain_heads(tiny_bert, tmp_path_factory) -> dict[str, Path]:
    """Plain Hugging Face tagger and QA folders (no bertkit.json) on the tiny BERT, untrained."""
    from transformers import AutoModelForQuestionAnswering, AutoModelForTokenClassification

    root = tmp_path_factory.mktemp("plain-heads")
    tags = {0: "O", 1: "B-PER", 2: "I-PER"}
    folders = {
        "tagger": AutoModelForTokenClassification.from_pretrained(
            str(tiny_bert), num_labels=3, id2label=tags, label2id={v: k for k, v in tags.items()}
        ),
        "qa": AutoModelForQuestionAnswering.from_pretrained(str(tiny_bert)),
    }
    out = {}
    for name, model in folders.items():
        model.save_pretrained(root / name)
        for file in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
            shutil.copy(tiny_bert / file, root / name / file)
        out[name] = root / name
    return out


def copy(folder: Path, tmp_path: Path, name: str = "m2") -> Path:
    return Path(shutil.copytree(folder, tmp_path / name))


def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def load(kind: str, folder: Path):
    return {"classifier": TextClassifier, "tagger": TokenTagger, "qa": QuestionAnswerer}[kind].load(
        folder, device="cpu"
    )


# 1. the folder is checked whole -------------------------------------------------------------------------------


def test_a_folder_without_tokenizer_files_is_refused_by_predict(capsys, tiny_classifier, tmp_path):
    # cp -r m m2; rm m2/tokenizer*; bertkit predict m2 "hello": predicted with a five-word fallback tokenizer
    m2 = copy(tiny_classifier, tmp_path)
    for file in m2.glob("tokenizer*"):
        file.unlink()
    error = fails(capsys, "predict", m2, "hello")
    assert error.startswith(f"error: {m2}: no tokenizer files (tokenizer.json, vocab.txt"), error


@pytest.mark.parametrize("kind", ["classifier", "tagger", "qa"])
def test_every_kind_refuses_a_folder_without_tokenizer_files(kind, tiny_classifier, plain_heads, tmp_path):
    folder = copy(tiny_classifier if kind == "classifier" else plain_heads[kind], tmp_path)
    for file in [*folder.glob("tokenizer*"), *folder.glob("vocab.txt")]:
        file.unlink()
    with pytest.raises(ModelLoadError, match=rf"^{folder}: no tokenizer files"):
        load(kind, folder)


def test_missing_or_partial_weights_are_named(tiny_classifier, tmp_path):
    bare = copy(tiny_classifier, tmp_path, "bare")
    (bare / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match=rf"^{bare}: no weights \(model.safetensors"):
        TextClassifier.load(bare)
    sharded = copy(tiny_classifier, tmp_path, "sharded")
    (sharded / "model.safetensors").rename(sharded / "model-00001-of-00002.safetensors")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelLoadError, match=r"model.safetensors.index.json lists model-00002-of-00002.safetensors"):
        TextClassifier.load(sharded)


def test_an_unparseable_config_names_config_json(tiny_classifier, tmp_path):
    folder = copy(tiny_classifier, tmp_path)
    (folder / "config.json").write_text("[1, 2]")  # valid JSON, not a config: transformers raised AttributeError
    with pytest.raises(ModelLoadError, match=rf"^{folder}: model folder is unreadable: config.json is a JSON list"):
        TextClassifier.load(folder)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"classes": ["a", "b", "c"]}, r"bertkit.json names 3 classes \(a, b, c\) but config.json's id2label has 2"),
        ({"classes": ["positive", "negative"]}, r"bertkit.json class 0 is 'positive' but config.json's id2label"),
        ({"text_pair": "yes"}, r"bertkit.json text_pair must be true or false \(got 'yes'\)"),
    ],
    ids=["label-count", "label-order", "text-pair"],
)
def test_metadata_that_disagrees_with_config_is_refused(tiny_classifier, tmp_path, metadata, message):
    folder = copy(tiny_classifier, tmp_path)
    edit_json(folder / "bertkit.json", **metadata)
    with pytest.raises(ModelLoadError, match=rf"^{folder}: {message}"):
        TextClassifier.load(folder)


def test_a_kind_that_disagrees_with_the_head_is_refused(tiny_classifier, tmp_path):
    folder = copy(tiny_classifier, tmp_path)
    edit_json(folder / "config.json", architectures=["BertForTokenClassification"])
    with pytest.raises(
        ModelLoadError,
        match=rf"^{folder}: bertkit.json kind is text-classification but config.json architectures "
        r"\(BertForTokenClassification\) hold a token-classification model",
    ):
        TextClassifier.load(folder)


def test_a_bare_encoder_is_not_loaded_as_a_classifier(capsys, tiny_bert):
    # it loaded with a random head and labels LABEL_0/LABEL_1
    error = fails(capsys, "predict", tiny_bert, "a great film")
    assert error.startswith(f"error: {tiny_bert}: holds BertModel, an encoder without a classification head")
    assert "bertkit train --model" in error


def test_a_plain_hugging_face_folder_still_loads(tiny_classifier, tmp_path):
    folder = copy(tiny_classifier, tmp_path)
    (folder / "bertkit.json").unlink()
    assert TextClassifier.load(folder, device="cpu").predict(["a great film"]).shape == (1,)


# 10a. pair or single text, as trained --------------------------------------------------------------------------


def test_the_pair_setting_is_recorded_at_save(tiny_classifier, pair_classifier, tmp_path):
    assert json.loads((tiny_classifier / "bertkit.json").read_text())["text_pair"] is False  # fit on single texts
    loaded = TextClassifier.load(pair_classifier, device="cpu")
    assert loaded.text_pair_ is True
    assert json.loads((loaded.save(tmp_path / "again") / "bertkit.json").read_text())["text_pair"] is True


def test_a_pair_model_refuses_single_texts_and_a_single_text_model_refuses_pairs(tiny_classifier, pair_classifier):
    paired = TextClassifier.load(pair_classifier, device="cpu")
    single = TextClassifier.load(tiny_classifier, device="cpu")
    for call in (paired.predict, paired.predict_proba, lambda x: paired.evaluate(x, ["positive"])):
        with pytest.raises(DataError, match=r"^X: this model was trained on text pairs; give each text its pair"):
            call(["a great film"])
    for call in (single.predict, single.predict_proba, lambda x: single.evaluate(x, ["positive"])):
        with pytest.raises(DataError, match=r"^X: this model was trained on single texts, not pairs; drop the"):
            call([("a great film", "a good plot")])
    assert paired.predict([("a great film", "the film")]).shape == (1,)


def test_predict_file_and_cli_refuse_the_wrong_shape(capsys, tiny_classifier, pair_classifier, tmp_path):
    error = fails(capsys, "predict", tiny_classifier, "a great film", "--pair", "a good plot")
    assert error == "error: this model was trained on single texts, not pairs: leave out --pair"
    error = fails(capsys, "predict", pair_classifier, "a great film")
    assert error.startswith("error: this model was trained on text pairs: give the second text with --pair")
    data = write_csv(tmp_path / "in.csv", ["text"], [["a great film"], ["dull"]])
    with pytest.raises(DataError, match=rf"^{data}: this model was trained on text pairs; .*--text-pair-column"):
        TextClassifier.load(pair_classifier, device="cpu").predict_file(data, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_a_folder_without_the_pair_setting_takes_both(tiny_classifier, tmp_path):
    folder = copy(tiny_classifier, tmp_path)
    metadata = json.loads((folder / "bertkit.json").read_text())
    metadata.pop("text_pair")  # saved before bertkit recorded it: unknown
    (folder / "bertkit.json").write_text(json.dumps(metadata))
    loaded = TextClassifier.load(folder, device="cpu")
    assert loaded.text_pair_ is None
    assert loaded.predict_proba(["a"]).shape == loaded.predict_proba([("a", "b")]).shape == (1, 2)


def test_the_service_answers_422_for_the_wrong_shape(tiny_classifier, pair_classifier):
    pytest.importorskip("fastapi", reason="bertkit serve needs the serve extra")
    from fastapi.testclient import TestClient

    from bertkit.serving import ServeSettings, create_app

    for folder, body, words in (
        (tiny_classifier, {"pairs": [["a great film", "dull"]]}, "pairs: this model was trained on single texts"),
        (pair_classifier, {"texts": ["a great film"]}, "texts: this model was trained on text pairs"),
    ):
        with TestClient(create_app(folder, ServeSettings(device="cpu"))) as client:
            deadline = time.monotonic() + 60
            while client.get("/ready").status_code != 200:
                assert time.monotonic() < deadline, client.get("/ready").json()
                time.sleep(0.02)
            response = client.post("/predict", json=body)
            assert response.status_code == 422, response.text
            detail = response.json()["detail"]
            assert detail.startswith(words) and ('"pairs"' in detail or '"texts"' in detail), detail
            if folder == pair_classifier:
                pairs = client.post("/predict", json={"pairs": [["a great film", "the film"]], "top_k": 1})
                assert pairs.status_code == 200 and len(pairs.json()["predictions"]) == 1


# 10b. a missing folder, named for the command ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["predict", "{m}", "text"], ["evaluate", "{m}", "--data", "{data}"], ["export", "{m}"], ["tag", "predict", "{m}", "x"],
     ["qa", "predict", "{m}", "--question", "q", "--context", "c"]],
    ids=["predict", "evaluate", "export", "tag", "qa"],
)  # fmt: skip
def test_a_missing_model_folder_suggests_training_one_not_minilm(capsys, tmp_path, args):
    missing = tmp_path / "no-model"
    data = write_csv(tmp_path / "test.csv", ["text", "label"], [["a", "x"]])
    error = fails(capsys, *[a.format(m=missing, data=data) for a in args])
    assert error.startswith(f"error: {missing}: no such model folder"), error
    assert "minilm" not in error and "bertkit" in error and "--output" in error


def test_train_still_suggests_minilm_for_a_missing_base_model(capsys, tmp_path):
    data = write_csv(tmp_path / "train.csv", ["text", "label"], [["a", "x"], ["b", "y"]] * 4)
    missing = tmp_path / "no-model"
    error = fails(capsys, "train", "--train", data, "--output", tmp_path / "out", "--model", missing, alone=False)
    assert "no such model folder" in error and "--model minilm" in error


# 3. --max-length against the model's position embeddings -------------------------------------------------------


def test_train_refuses_max_length_above_the_model_before_writing(capsys, tiny_bert, tmp_path):
    texts, labels = sentiment_examples(32)
    long_texts = [" ".join([text] * 40) for text in texts]  # ~200 tokens: the forward failed at 128 positions
    data = write_csv(tmp_path / "train.csv", ["text", "label"], [list(r) for r in zip(long_texts, labels, strict=True)])
    output = tmp_path / "out"
    error = fails(capsys, "train", "--train", data, "--output", output, "--model", tiny_bert, "--max-length", "256",
                  "--epochs", "1", "--batch-size", "16", "--quiet", alone=False)  # fmt: skip
    assert error == (
        f"error: --max-length 256: the model {tiny_bert} reads at most 128 tokens (max_position_embeddings 128); "
        "pass --max-length 128 or less"
    )
    assert not output.exists()


def test_tagger_and_qa_refuse_max_length_above_the_model(tiny_bert, tiny_roberta):
    sentences, tags = ner_examples(16)
    with pytest.raises(ConfigError, match=r"^--max-length 200: the model .* reads at most 128 tokens"):
        TokenTagger(str(tiny_bert), **{**FAST, "max_length": 200}).fit(sentences, tags)
    with pytest.raises(ConfigError, match=r"^--max-length 384: the model .* reads at most 128 tokens"):
        QuestionAnswerer(str(tiny_bert), progress=False).fit(make_squad(8))
    # RoBERTa's positions start after the padding index: 130 embeddings hold 128 tokens
    with pytest.raises(ConfigError, match=r"reads at most 128 tokens \(max_position_embeddings 130 minus 2"):
        TextClassifier(str(tiny_roberta), **{**FAST, "max_length": 129}).fit(["a", "b"] * 4, ["x", "y"] * 4)


def test_a_plain_folder_reads_no_more_tokens_than_its_positions(tiny_classifier, tmp_path):
    folder = copy(tiny_classifier, tmp_path)
    (folder / "bertkit.json").unlink()  # then max_length came from the tokenizer (512): long texts crashed
    loaded = TextClassifier.load(folder, device="cpu")
    assert loaded.config_.max_length == 128
    assert loaded.predict([" ".join(["great film"] * 200)]).shape == (1,)
