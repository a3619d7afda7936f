"""``bertkit tag train / evaluate / predict`` end to end on the tiny random BERT and small CoNLL/JSONL files."""

from __future__ import annotations

import json

import pytest
from helpers import ner_examples, run_cli, write_conll

TRAIN_FLAGS = ["--epochs", "3", "--batch-size", "8", "--learning-rate", "0.005", "--max-length", "32", "--quiet"]


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tag-cli")
    train = write_conll(folder / "train.conll", *ner_examples(200, seed=3))
    test = write_conll(folder / "test.conll", *ner_examples(60, seed=4))
    model = folder / "model"
    assert run_cli("tag", "train", "--train", train, "--output", model, "--model", tiny_bert, *TRAIN_FLAGS) == 0
    return model, test


def test_train_writes_a_self_describing_model_folder(trained, capsys):
    model, _ = trained
    metadata = json.loads((model / "bertkit.json").read_text())
    assert metadata["kind"] == "token-classification"
    assert metadata["labels"] == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert (model / "model.safetensors").is_file() and (model / "history.jsonl").is_file()


def test_evaluate_json_gives_entity_scores(trained, capsys):
    model, test = trained
    capsys.readouterr()
    assert run_cli("tag", "evaluate", model, "--data", test, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert all(0 <= report[k] <= 1 for k in ("precision", "recall", "f1"))
    assert report["f1"] >= 0.9, report
    assert report["n_sentences"] == 60
    assert set(report["per_type"]) == {"LOC", "PER"}
    assert run_cli("tag", "evaluate", model, "--data", test) == 0
    table = capsys.readouterr().out
    assert "overall" in table and "PER" in table and "precision" in table


def test_predict_one_text_prints_spans_with_offsets(trained, capsys):
    model, _ = trained
    capsys.readouterr()
    text = "the plot was weak and superb moving was the music"
    assert run_cli("tag", "predict", model, text) == 0
    entities = json.loads(capsys.readouterr().out)
    assert [(e["entity"], e["text"]) for e in entities] == [("LOC", "weak"), ("PER", "superb moving")]
    assert all(text[e["start"] : e["end"]] == e["text"] for e in entities)


def test_predict_files(trained, tmp_path, capsys):
    model, test = trained
    out = tmp_path / "tagged.jsonl"
    assert run_cli("tag", "predict", model, "--data", test, "--output", out) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 60 and {"tokens", "tags", "entities", "gold_tags"} <= set(rows[0])
    assert "wrote 60 tagged sentences" in capsys.readouterr().err
    conll = tmp_path / "tagged.conll"
    assert run_cli("tag", "predict", model, "--data", test, "--output", conll) == 0
    first = conll.read_text().split("\n\n")[0].splitlines()
    assert len(first[0].split()) == 3  # word, gold tag, predicted tag (conlleval input)
    texts = tmp_path / "texts.txt"
    texts.write_text("the film was great lovely\n\nweak plot\n")
    spans = tmp_path / "spans.jsonl"
    assert run_cli("tag", "predict", model, "--data", texts, "--output", spans) == 0
    rows = [json.loads(line) for line in spans.read_text().splitlines()]
    assert [r["text"] for r in rows] == ["the film was great lovely", "", "weak plot"]  # one row per line
    assert rows[1]["entities"] == []
    assert rows[0]["entities"][0]["text"] == "great lovely"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "{model}"], "give either one TEXT argument or --data FILE"),
        (["predict", "{model}", "--data", "{test}"], "--data needs --output FILE.jsonl"),
        (["predict", "{model}", "--data", "{test}", "--output", "x.csv"], "x.csv: --output must end in .jsonl"),
        (["evaluate", "{model}", "--data", "{bad}"], "bad.conll line 3: 2 columns, expected 4 like line 1"),
        (["train", "--train", "{bad}", "--output", "{out}"], "bad.conll line 3: 2 columns, expected 4 like line 1"),
        (["evaluate", "{missing}", "--data", "{test}"], "no such model folder"),
    ],
)
def test_errors_are_one_line_naming_file_and_line(trained, tmp_path, capsys, args, message):
    model, test = trained
    bad = tmp_path / "bad.conll"
    bad.write_text("EU NNP I-NP I-ORG\nrejects VBZ I-VP O\nGerman I-MISC\n")
    values = {"model": model, "test": test, "bad": bad, "out": tmp_path / "out", "missing": tmp_path / "nope"}
    capsys.readouterr()
    assert run_cli("tag", *[a.format(**values) for a in args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1, err


def test_classifier_commands_refuse_a_tagger_folder(trained, capsys):
    model, _ = trained
    capsys.readouterr()
    assert run_cli("predict", model, "some text") == 1
    assert "holds a token-classification model, not a text classifier" in capsys.readouterr().err


def test_predict_reads_a_conll_txt_as_conll_like_train_and_evaluate(trained, tmp_path, capsys):
    model, test = trained
    conll_txt = tmp_path / "conll_test.txt"
    conll_txt.write_text(test.read_text())
    out = tmp_path / "t.jsonl"
    assert run_cli("tag", "predict", model, "--data", conll_txt, "--output", out) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 60 and {"tokens", "tags", "gold_tags"} <= set(rows[0])


def test_predict_refuses_an_output_that_would_destroy_the_data_or_is_a_folder(trained, tmp_path, capsys):
    from helpers import fails

    model, test = trained
    data = tmp_path / "gold.conll"
    data.write_bytes(test.read_bytes())
    error = fails(capsys, "tag", "predict", model, "--data", data, "--output", data)
    assert "gold.conll: --output is the --data file" in error and data.read_bytes() == test.read_bytes()
    (tmp_path / "out.jsonl").mkdir()
    error = fails(capsys, "tag", "predict", model, "--data", data, "--output", tmp_path / "out.jsonl")
    assert "out.jsonl: is a folder" in error and not list(tmp_path.glob(".*partial"))
    assert "--output goes with --data" in fails(capsys, "tag", "predict", model, "a film", "--output", "x.jsonl")


def test_words_conll_columns_cannot_hold_are_refused_before_writing_conll(trained, tmp_path, capsys):
    from helpers import fails

    model, _ = trained
    data = tmp_path / "words.jsonl"
    data.write_text(json.dumps({"tokens": ["new york", "is", "big"]}) + "\n")
    error = fails(capsys, "tag", "predict", model, "--data", data, "--output", tmp_path / "out.conll")
    assert "words.jsonl line 1: the word 'new york' cannot be a CoNLL column" in error and "out.jsonl" in error
    assert not (tmp_path / "out.conll").exists()
    assert run_cli("tag", "predict", model, "--data", data, "--output", tmp_path / "out.jsonl") == 0


def test_flags_are_checked_before_the_data_is_read(tiny_bert, tmp_path, capsys):
    from helpers import fails

    missing = tmp_path / "absent.conll"  # a flag error must come first: reading a large file costs time
    error = fails(capsys, "tag", "train", "--train", missing, "--output", tmp_path / "m", "--model", tiny_bert,
                  "--epochs", "0")  # fmt: skip
    assert error == "error: --epochs must be a positive integer (got 0)"


def test_validation_sentences_that_are_training_sentences_are_warned_of(tiny_bert, tmp_path, capsys):
    train = write_conll(tmp_path / "train.conll", *ner_examples(40, seed=3))
    code = run_cli("tag", "train", "--train", train, "--validation", train, "--output", tmp_path / "m",
                   "--model", tiny_bert, "--epochs", "1", *TRAIN_FLAGS[2:])  # fmt: skip
    assert code == 0
    assert "warning: 40 of 40 validation sentences are also training sentences" in capsys.readouterr().err
