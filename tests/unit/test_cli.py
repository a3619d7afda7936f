"""The ``bertkit`` CLI, run in-process through ``bertkit.cli.main`` on the tiny random BERT.

Two small models are trained once per module (a sentiment model with string labels and a text-pair model
with integer labels); every other test reuses them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from helpers import CLI_TRAIN_FLAGS, fails, ok, read_csv, run_cli, sentiment_examples, write_csv

# fixtures: data files and two trained models ---------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli-data")
    texts, labels = sentiment_examples(96)
    write_csv(folder / "train.csv", ["text", "label"], [list(r) for r in zip(texts, labels, strict=True)])
    texts, labels = sentiment_examples(32, seed=1)
    write_csv(folder / "valid.csv", ["text", "label"], [list(r) for r in zip(texts, labels, strict=True)])
    return folder


@pytest.fixture(scope="module")
def trained(tiny_bert, data_dir) -> Path:
    """A sentiment model ('positive'/'negative') trained once for the whole module."""
    output = data_dir / "model"
    code = run_cli(
        "train", "--train", data_dir / "train.csv", "--validation", data_dir / "valid.csv",
        "--output", output, "--model", tiny_bert, *CLI_TRAIN_FLAGS,
    )  # fmt: skip
    assert code == 0
    return output


def pair_rows(n: int, seed: int) -> list[list[object]]:
    """(first, second, agree): agree is 1 when both texts carry the same sentiment, else -1."""
    texts, labels = sentiment_examples(n, seed=seed)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [[texts[i], texts[j], 1 if labels[i] == labels[j] else -1] for i, j in zip(range(n), order, strict=True)]


@pytest.fixture(scope="module")
def pair_model(tiny_bert, data_dir) -> tuple[Path, str]:
    """A text-pair model with integer labels -1/1, trained on a file with one empty label (skipped)."""
    rows = pair_rows(64, seed=3)
    rows.insert(5, [rows[5][0], rows[5][1], ""])
    train = write_csv(data_dir / "pairs.csv", ["first", "second", "agree"], rows)
    output = data_dir / "pair-model"
    code = run_cli(
        "train", "--train", train, "--output", output, "--model", tiny_bert,
        "--text-column", "first", "--text-pair-column", "second", "--label-column", "agree",
        "--skip-bad-rows", *CLI_TRAIN_FLAGS,
    )  # fmt: skip
    assert code == 0
    return output, str(train)


# happy paths -----------------------------------------------------------------------------------------------


def test_train_writes_a_complete_model_folder(trained):
    config = json.loads((trained / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == {"negative": 0, "positive": 1}
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "bertkit.json", "history.jsonl"):
        assert (trained / name).is_file(), name
    metadata = json.loads((trained / "bertkit.json").read_text())
    assert metadata["task"] == "classification"
    assert metadata["classes"] == ["negative", "positive"]
    assert metadata["config"]["epochs"] == 2 and metadata["config"]["batch_size"] == 16
    history = [json.loads(line) for line in (trained / "history.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in history] == [1, 2]
    report = json.loads((trained / "report" / "report.json").read_text())
    assert report["n_examples"] == 32 and report["data"] == "valid.csv"
    assert {"accuracy", "f1", "mcc"} <= set(report)
    for png in ("confusion_matrix.png", "learning_curves.png"):
        assert (trained / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def test_evaluate_json_prints_one_object_matching_the_training_report(capsys, trained, data_dir, tmp_path):
    out, _ = ok(capsys, "evaluate", trained, "--data", data_dir / "valid.csv", "--json", "--report-dir", tmp_path)
    assert len(out.strip().splitlines()) == 1
    result = json.loads(out)
    assert {"accuracy", "f1", "mcc"} <= set(result)
    assert result["n_examples"] == 32 and result["classes"] == ["negative", "positive"]
    assert sum(map(sum, result["confusion_matrix"])) == 32
    # Same model, same data: the numbers train wrote for validation.
    report = json.loads((trained / "report" / "report.json").read_text())
    assert result["accuracy"] == pytest.approx(report["accuracy"])
    assert result["mcc"] == pytest.approx(report["mcc"])
    assert json.loads((tmp_path / "report.json").read_text())["accuracy"] == pytest.approx(result["accuracy"])
    for png in ("confusion_matrix.png", "learning_curves.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG", png


def test_a_report_dir_that_is_a_file_fails_before_the_model_loads(capsys, trained, data_dir, tmp_path, monkeypatch):
    import bertkit

    def load(*args, **kwargs):
        raise AssertionError("the model was loaded before --report-dir was checked")

    monkeypatch.setattr(bertkit.TextClassifier, "load", load)
    (tmp_path / "notes").write_text("keep")
    for folder, error in ((tmp_path / "notes", "is a file, not a folder; give --report-dir a folder"),
                          (tmp_path / "notes" / "sub", "a part of this path is a file")):  # fmt: skip
        line = fails(capsys, "evaluate", trained, "--data", data_dir / "valid.csv", "--report-dir", folder)
        assert line == f"error: {folder}: {error}" or line.startswith(f"error: {folder}: {error}"), line
    assert (tmp_path / "notes").read_text() == "keep"


def test_evaluate_prints_a_table_without_json(capsys, trained, data_dir):
    out, _ = ok(capsys, "evaluate", trained, "--data", data_dir / "valid.csv")
    assert "accuracy" in out and "positive" in out and "negative" in out


@pytest.mark.parametrize("top_k", [None, 2])
def test_predict_csv_keeps_input_rows_and_columns(capsys, trained, tmp_path, top_k):
    texts, _ = sentiment_examples(30, seed=2)
    data = write_csv(tmp_path / "in.csv", ["id", "text", "note"], [[i, t, f"n{i}"] for i, t in enumerate(texts)])
    output = tmp_path / "sub" / "out.csv"
    extra = ["--top-k", top_k] if top_k else []
    _, err = ok(capsys, "predict", trained, "--data", data, "--output", output, *extra)
    assert f"wrote 30 predictions to {output}" in err
    rows = read_csv(output)
    added = ["label", "score"] + (["top1_label", "top1_score", "top2_label", "top2_score"] if top_k else [])
    assert list(rows[0]) == ["id", "text", "note", *added]
    assert [r["id"] for r in rows] == [str(i) for i in range(30)]
    assert [r["text"] for r in rows] == texts
    assert {r["label"] for r in rows} <= {"positive", "negative"}
    assert all(0.5 <= float(r["score"]) <= 1.0 for r in rows)
    if top_k:
        for r in rows:
            assert r["top1_label"] == r["label"] and float(r["top1_score"]) == pytest.approx(float(r["score"]))
            assert {r["top1_label"], r["top2_label"]} == {"positive", "negative"}
            assert float(r["top1_score"]) + float(r["top2_score"]) == pytest.approx(1.0, abs=1e-5)


def test_predict_jsonl_output_and_a_label_column_in_the_input(capsys, trained, data_dir, tmp_path):
    output = tmp_path / "out.jsonl"
    ok(capsys, "predict", trained, "--data", data_dir / "valid.csv", "--output", output)
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    given = read_csv(data_dir / "valid.csv")
    assert len(records) == len(given) == 32
    # The input's own 'label' column is kept; the predicted one takes a prefixed name.
    assert list(records[0]) == ["text", "label", "predicted_label", "score"]
    assert [r["text"] for r in records] == [g["text"] for g in given]
    assert [r["label"] for r in records] == [g["label"] for g in given]
    assert {r["predicted_label"] for r in records} <= {"positive", "negative"}


def test_predict_one_text_prints_one_json_object(capsys, trained):
    out, _ = ok(capsys, "predict", trained, "a great and wonderful film")
    assert len(out.strip().splitlines()) == 1
    row = json.loads(out)
    assert row["text"] == "a great and wonderful film"
    assert row["label"] in ("positive", "negative")
    assert 0.5 <= row["score"] <= 1.0
    assert row["top1_label"] == row["label"]


def test_text_pairs_with_integer_labels(capsys, pair_model, tmp_path):
    model, train_file = pair_model
    metadata = json.loads((model / "bertkit.json").read_text())
    assert metadata["classes"] == [-1, 1]  # integers, as written, not 0/1 ids or "1.0"
    assert metadata["skipped_rows"] == 1  # the empty-label row of train, skipped on request
    assert json.loads((model / "config.json").read_text())["id2label"] == {"0": "-1", "1": "1"}

    out, _ = ok(capsys, "predict", model, "a great film", "--pair", "a good movie")
    row = json.loads(out)
    assert row["text"] == "a great film" and row["text_pair"] == "a good movie"
    assert type(row["label"]) is int and row["label"] in (-1, 1)
    line = fails(capsys, "predict", model, "a great film", "--pair", "")  # an empty pair, not a missing one
    assert "trained on text pairs" not in line and "empty" in line, line

    rows = pair_rows(12, seed=9)
    data = write_csv(tmp_path / "pairs.csv", ["a", "b"], [r[:2] for r in rows])
    output = tmp_path / "out.csv"
    ok(capsys, "predict", model, "--data", data, "--text-column", "a", "--text-pair-column", "b", "--output", output)
    predicted = read_csv(output)
    assert [[p["a"], p["b"]] for p in predicted] == [r[:2] for r in rows]
    assert {p["label"] for p in predicted} <= {"-1", "1"}

    data = write_csv(tmp_path / "labelled.csv", ["a", "b", "agree"], rows)
    out, _ = ok(
        capsys,
        "evaluate",
        model,
        "--data",
        data,
        "--text-column",
        "a",
        "--text-pair-column",
        "b",
        "--label-column",
        "agree",
        "--json",
    )
    assert json.loads(out)["n_examples"] == 12


def test_skip_bad_rows_skips_an_empty_label_instead_of_failing(capsys, trained, tmp_path):
    data = write_csv(tmp_path / "gaps.csv", ["text", "label"], [["good film", "positive"], ["dull", ""], ["bad", "negative"]])  # fmt: skip
    error = fails(capsys, "evaluate", trained, "--data", data, "--json")
    assert f"{data} line 3: column 'label' is empty" in error and "--skip-bad-rows" in error
    out, _ = ok(capsys, "evaluate", trained, "--data", data, "--json", "--skip-bad-rows")
    result = json.loads(out)
    assert result["n_examples"] == 2 and result["skipped_rows"] == 1


# bad input: one line on stderr, exit code 1 -----------------------------------------------------------------

HEADER = b"text,label\n"
BAD_FILES = {
    # id: (file name, bytes, extra flags, fragments the message must hold; {f} is the file's path)
    "missing-label-column": ("a.csv", b"text,notes\ngood,x\nbad,y\n", [], ["{f}: no label column found", "--label-column", "columns found: 'text', 'notes'"]),
    "unknown-text-column": ("a.csv", HEADER + b"good,positive\n", ["--text-column", "review"], ["{f}: --text-column 'review' is not a column", "columns found: 'text', 'label'"]),
    "empty-file": ("a.csv", b"", [], ["{f}: file is empty", "at least one row"]),
    "header-only": ("a.csv", HEADER, [], ["{f}: file has a header line but no data rows"]),
    "empty-text": ("a.csv", HEADER + b"good,positive\n  ,negative\n", [], ["{f} line 3: column 'text' is empty", "--skip-bad-rows"]),
    "missing-label": ("a.csv", HEADER + b"good,positive\nbad,\n", [], ["{f} line 3: column 'label' is empty", "--skip-bad-rows"]),
    "not-utf8": ("a.csv", HEADER + b"good,positive\ncaf\xe9 bad,negative\n", [], ["{f} line 3: bytes are not valid utf-8", "--encoding latin-1"]),
    "wrong-field-count": ("a.csv", HEADER + b"good,positive\nbad,negative,extra\n", [], ["{f} line 3: malformed row with 3 fields, the header has 2", "delimiter and quoting"]),
    "open-quote": ("a.csv", HEADER + b'good,positive\n"bad,negative\n', [], ["{f} line 3: malformed row", "quoting"]),
    "bad-jsonl": ("a.jsonl", b'{"text": "good", "label": "positive"}\n{"text": "bad", \n', [], ["{f} line 2: malformed JSON", "one JSON object"]),
    "unsupported-suffix": ("a.xlsx", b"whatever", [], ["{f}: unsupported file type '.xlsx'", ".csv"]),
}  # fmt: skip


@pytest.mark.parametrize("command", ["train", "evaluate"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_data_files(capsys, tmp_path, tiny_bert, trained, command, case):
    name, content, flags, fragments = BAD_FILES[case]
    path = tmp_path / name
    path.write_bytes(content)
    if command == "train":
        args = ["train", "--train", path, "--output", tmp_path / "out", "--model", tiny_bert, *CLI_TRAIN_FLAGS]
    else:
        args = ["evaluate", trained, "--data", path]
    error = fails(capsys, *args, *flags)
    for fragment in fragments:
        assert fragment.format(f=path) in error
    assert not (tmp_path / "out").exists()


def test_label_never_seen_in_training(capsys, trained, tmp_path):
    # Issue 19: evaluation scores such rows as errors and names the labels (it refused the file before).
    data = write_csv(tmp_path / "eval.csv", ["text", "label"], [["good", "positive"], ["meh", "neutral"], ["bad", "negative"]])  # fmt: skip
    out, _ = ok(capsys, "evaluate", trained, "--data", data, "--json")
    assert json.loads(out)["unseen_labels"] == {"neutral": 1}


def test_label_never_seen_in_training_validation_file(capsys, tiny_bert, data_dir, tmp_path):
    valid = write_csv(tmp_path / "valid.csv", ["text", "label"], [["good", "positive"], ["bad", "mixed"]])
    args = ["train", "--train", data_dir / "train.csv", "--validation", valid, "--output", tmp_path / "out"]
    error = fails(capsys, *args, "--model", tiny_bert, *CLI_TRAIN_FLAGS, alone=False)
    assert f"{valid} line 3: column 'label' has label 'mixed', never seen in training" in error


@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
@pytest.mark.parametrize("problem", ["folder", "missing"])
def test_data_path_is_not_a_file(capsys, tmp_path, tiny_bert, trained, command, problem):
    path = tmp_path if problem == "folder" else tmp_path / "nope.csv"
    args = {
        "train": ["train", "--train", path, "--output", tmp_path / "out", "--model", tiny_bert, *CLI_TRAIN_FLAGS],
        "evaluate": ["evaluate", trained, "--data", path],
        "predict": ["predict", trained, "--data", path, "--output", tmp_path / "p.csv"],
    }[command]
    error = fails(capsys, *args)
    expected = "is a folder, not a file; pass a data file" if problem == "folder" else "file not found; check the path"
    assert f"error: {path}: {expected}" in error


def _no_config(folder: Path) -> None:
    (folder / "weights.bin").write_bytes(b"\0")


def _garbage_config(folder: Path) -> None:
    (folder / "config.json").write_text("{ this is not json")


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (_no_config, ["not a model folder (no config.json)", "bertkit train"]),
        (_garbage_config, ["model folder is unreadable", "config.json"]),
    ],
    ids=["no-config", "garbage-config"],
)
@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
def test_unreadable_model_folder(capsys, tmp_path, data_dir, make, fragments, command):
    folder = tmp_path / "broken-model"
    folder.mkdir()
    make(folder)
    args = {
        "train": ["train", "--train", data_dir / "train.csv", "--output", tmp_path / "out", "--model", folder, *CLI_TRAIN_FLAGS],
        "evaluate": ["evaluate", folder, "--data", data_dir / "valid.csv"],
        "predict": ["predict", folder, "some text"],
    }[command]  # fmt: skip
    error = fails(capsys, *args, alone=command != "train")
    assert error.startswith(f"error: {folder}: ")
    for fragment in fragments:
        assert fragment in error
    # only a base model to fine-tune may be the built-in minilm; predict and evaluate need a trained folder
    assert ("minilm" in error) == (command == "train")


def test_unreadable_model_folder_message_names_a_fix(capsys, tmp_path):
    _garbage_config(tmp_path)
    error = fails(capsys, "predict", tmp_path, "some text")
    assert any(fix in error for fix in ("bertkit train", "save_pretrained", "re-save", "--model minilm"))


@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
def test_hub_id_while_offline(capsys, tmp_path, data_dir, command):
    hub_id = "bert-base-uncased"
    args = {
        "train": ["train", "--train", data_dir / "train.csv", "--output", tmp_path / "out", "--model", hub_id, *CLI_TRAIN_FLAGS],
        "evaluate": ["evaluate", hub_id, "--data", data_dir / "valid.csv"],
        "predict": ["predict", hub_id, "some text"],
    }[command]  # fmt: skip
    error = fails(capsys, *args, alone=command != "train")
    assert error.startswith(f"error: {hub_id}: ")
    assert "offline" in error and "local model folder" in error
    assert ("minilm" in error) == (command == "train")  # predict/evaluate take a trained folder, not minilm


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ([], ["give either one TEXT argument or --data FILE"]),
        (["some text", "--data", "x.csv"], ["give either one TEXT argument or --data FILE"]),
        (["--data", "x.csv"], ["--data needs --output FILE.csv or FILE.jsonl"]),
        (["--data", "x.csv", "--output", "out.xlsx"], ["out.xlsx: --output must end in .csv"]),
    ],
    ids=["neither", "both", "no-output", "bad-output-suffix"],
)
def test_predict_argument_errors(capsys, trained, args, fragments):
    error = fails(capsys, "predict", trained, *args)
    for fragment in fragments:
        assert fragment in error


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--task", "bogus"], "--task must be one of auto, classification, multi-label, regression (got 'bogus')"),
        (["--precision", "fp8"], "--precision must be one of auto, fp32, bf16, fp16 (got 'fp8')"),
        (["--epochs", "0"], "--epochs must be a positive integer (got 0)"),
        (["--task", "regression"], "--task regression needs numeric labels"),
        (["--cuda-graphs", "--device", "cpu"], "--cuda-graphs needs a CUDA GPU: drop it or use --device cuda"),
        (["--keep-epoch", "first"], "--keep-epoch must be auto, best or last (got 'first')"),
    ],
    ids=["task", "precision", "epochs", "regression-on-strings", "cuda-graphs-on-cpu", "keep-epoch"],
)
def test_bad_train_options(capsys, tiny_bert, data_dir, tmp_path, flags, fragment):
    args = ["train", "--train", data_dir / "train.csv", "--output", tmp_path / "out", "--model", tiny_bert]
    error = fails(capsys, *args, *CLI_TRAIN_FLAGS, *flags, alone=flags[0] != "--task" or flags[1] != "regression")
    assert fragment in error
    assert not (tmp_path / "out").exists()


# usage errors and interrupts: no traceback either ----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["evaluate", "some-folder"], "Missing option '--data'"),
        (["predict"], "Missing argument"),
        (["predict", "some-folder", "text", "--bogus"], "No such option: --bogus"),
        (["train", "--train", "x.csv", "--output", "o", "--epochs", "many"], "Invalid value for '--epochs'"),
    ],
    ids=["missing-option", "missing-argument", "unknown-option", "not-an-int"],
)
def test_usage_errors_exit_2_without_traceback(capsys, args, fragment):
    assert run_cli(*args) == 2
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    assert fragment in err


def test_no_arguments_prints_help(capsys):
    assert run_cli() == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "train" in out + err and "predict" in out + err


def test_ctrl_c_exits_130_with_one_line(capsys, monkeypatch, trained):
    from bertkit.classification.estimator import TextClassifier

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(TextClassifier, "load", interrupted)
    assert run_cli("predict", trained, "some text") == 130
    _, err = capsys.readouterr()
    assert err.strip() == "interrupted"


def test_config_file_fills_options_and_flags_win(capsys, tiny_bert, data_dir, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("epochs = 1\nmax-length = 24\nseed = 7\n")
    out = tmp_path / "model"
    ok(capsys, "train", "--train", data_dir / "train.csv", "--output", out, "--model", tiny_bert,
       "--config", config, "--epochs", "2", "--batch-size", "16", "--quiet")  # fmt: skip
    saved = json.loads((out / "bertkit.json").read_text())["config"]
    assert (saved["epochs"], saved["max_length"], saved["seed"], saved["batch_size"]) == (2, 24, 7, 16)
