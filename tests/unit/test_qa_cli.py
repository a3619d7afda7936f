"""``bertkit qa train / evaluate / predict`` end to end on the tiny random BERT (in-process, like test_cli)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import fails as fails_cleanly
from helpers import make_squad, ok, run_cli, write_squad

from bertkit import QuestionAnswerer

FLAGS = ["--epochs", "1", "--batch-size", "16", "--learning-rate", "0.002", "--max-length", "48", "--doc-stride", "8"]


def fails(capsys, *args: object) -> str:
    """Run a command that must fail with exactly one ``error:`` line (after any progress lines)."""
    return fails_cleanly(capsys, *args, alone=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("qa-cli")
    write_squad(folder / "train.json", make_squad(96, seed=0, n_words=(6, 30)))
    write_squad(folder / "test.json", make_squad(24, seed=7))
    return folder


@pytest.fixture(scope="module")
def model_dir(tiny_bert, files) -> Path:
    output = files / "model"
    assert run_cli("qa", "train", "--train", files / "train.json", "--output", output, "--model", tiny_bert,
                   *FLAGS, "--quiet") == 0  # fmt: skip
    return output


def test_train_writes_a_self_describing_model_folder(model_dir):
    meta = json.loads((model_dir / "bertkit.json").read_text())
    assert meta["kind"] == "question-answering" and meta["squad_version"] == "1.1"
    assert meta["qa"]["max_answer_length"] == 30 and meta["config"]["max_length"] == 48
    assert set(meta["validation_metrics"]) >= {"exact_match", "f1"}
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "history.jsonl").is_file()
    assert json.loads((model_dir / "config.json").read_text())["architectures"] == ["BertForQuestionAnswering"]


def test_train_reports_what_it_read_and_the_validation_scores(capsys, tiny_bert, files, tmp_path):
    _, err = ok(capsys, "qa", "train", "--train", files / "train.json", "--output", tmp_path / "m",
                "--model", tiny_bert, *FLAGS, "--quiet", "--validation", files / "test.json")  # fmt: skip
    assert "training on 96 questions (24 articles, SQuAD 1.1)" in err
    assert "question-answering model saved to" in err and "on 24 questions" in err


def test_evaluate_json_prints_one_object_with_em_and_f1(capsys, model_dir, files):
    out, _ = ok(capsys, "qa", "evaluate", model_dir, "--data", files / "test.json", "--json")
    metrics = json.loads(out)
    assert 0 <= metrics["exact_match"] <= metrics["f1"] <= 100 and metrics["total"] == 24
    expected = QuestionAnswerer.load(model_dir, device="cpu").evaluate(files / "test.json")
    assert metrics == pytest.approx(expected)
    out, _ = ok(capsys, "qa", "evaluate", model_dir, "--data", files / "test.json")
    assert "exact_match" in out and "f1" in out and not out.startswith("{")


def test_predict_one_question(capsys, model_dir):
    context = "the story was quite lovely and the music dull."
    out, _ = ok(capsys, "qa", "predict", model_dir, "--question", "what is good ?", "--context", context)
    answer = json.loads(out)
    assert set(answer) == {"id", "question", "answer", "start", "end", "score"}
    assert context[answer["start"] : answer["end"]] == answer["answer"]


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_predict_a_file(capsys, model_dir, files, tmp_path, suffix):
    questions = make_squad(10, seed=3)
    for article in questions["data"]:  # a file to predict needs no answers
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                qa.pop("answers")
    output = tmp_path / f"answers{suffix}"
    _, err = ok(capsys, "qa", "predict", model_dir, "--data", write_squad(tmp_path / "q.json", questions),
                "--output", output)  # fmt: skip
    assert f"wrote 10 answers to {output}" in err
    contexts = {qa["id"]: p["context"] for a in questions["data"] for p in a["paragraphs"] for qa in p["qas"]}
    if suffix == ".json":  # the official predictions format: {question id: answer text}
        answers = json.loads(output.read_text())
        assert list(answers) == list(contexts) and all(answers[i] in contexts[i] for i in answers)
    else:
        rows = [json.loads(line) for line in output.read_text().splitlines()]
        assert [r["id"] for r in rows] == list(contexts)
        assert all(contexts[r["id"]][r["start"] : r["end"]] == r["answer"] for r in rows)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "give either --question and --context, or --data FILE.json"),
        (["--question", "what ?"], "--question and --context go together"),
        (["--question", "what ?", "--context", "film", "--data", "x.json"], "give either --question"),
        (["--data", "x.json"], "--data needs --output FILE.json or FILE.jsonl"),
        (["--data", "x.json", "--output", "out.csv"], "out.csv: --output must end in .json or .jsonl"),
    ],
)
def test_predict_argument_errors(capsys, model_dir, args, fragment):
    assert fragment in fails(capsys, "qa", "predict", model_dir, *args)


def test_predict_refuses_an_output_that_would_destroy_the_data_or_is_a_folder(capsys, model_dir, files, tmp_path):
    data = tmp_path / "q.json"
    data.write_bytes((files / "test.json").read_bytes())
    error = fails(capsys, "qa", "predict", model_dir, "--data", data, "--output", data)
    assert "q.json: --output is the --data file; writing there would replace the data read" in error
    assert json.loads(data.read_text())["data"]  # the SQuAD file is intact
    (tmp_path / "out.json").mkdir()
    assert "out.json: is a folder; --output names the file to write" in fails(
        capsys, "qa", "predict", model_dir, "--data", data, "--output", tmp_path / "out.json"
    )
    error = fails(capsys, "qa", "predict", model_dir, "--question", "who?", "--context", "Ada", "--output", "a.json")
    assert "--output goes with --data" in error
    assert "--context is empty" in fails(capsys, "qa", "predict", model_dir, "--question", "who?", "--context", "  ")


def test_a_tagger_folder_fine_tunes_into_a_two_output_span_head(tiny_bert, tmp_path):
    from transformers import AutoModelForTokenClassification

    from bertkit.models.heads import build_qa_model

    tagger = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=5)
    tagger.save_pretrained(tmp_path / "tagger")
    (tmp_path / "tagger" / "vocab.txt").write_bytes((Path(tiny_bert) / "vocab.txt").read_bytes())
    model = build_qa_model(str(tmp_path / "tagger"))
    assert model.qa_outputs.out_features == 2  # the tagger's 5 labels would fail inside the forward


def test_bad_squad_files_end_with_one_line(capsys, tiny_bert, model_dir, files, tmp_path):
    squad = make_squad(8, seed=1)
    squad["data"][1]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] += 2
    bad = write_squad(tmp_path / "offsets.json", squad)
    line = fails(capsys, "qa", "evaluate", model_dir, "--data", bad)
    assert "offsets.json data[1].paragraphs[0].qas[0].answers[0].answer_start (question id q4)" in line
    assert "set answer_start to" in line
    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [', encoding="utf-8")
    line = fails(capsys, "qa", "train", "--train", broken, "--output", tmp_path / "m", "--model", tiny_bert, *FLAGS)
    assert "broken.json line 1 column 11: invalid JSON" in line
    line = fails(capsys, "qa", "train", "--train", tmp_path / "none.json", "--output", tmp_path / "m")
    assert "none.json: SQuAD file not found" in line


def test_bad_options_and_wrong_model_kind(capsys, tiny_bert, files, tmp_path):
    line = fails(capsys, "qa", "train", "--train", files / "train.json", "--output", tmp_path / "m",
                 "--model", tiny_bert, "--max-length", "48", "--doc-stride", "40", "--quiet")  # fmt: skip
    assert "--doc-stride must be at least 0 and below the context room of a window, 33 tokens" in line
    line = fails(capsys, "qa", "evaluate", tiny_bert, "--data", files / "test.json")
    assert "not a question-answering model" in line


def test_flags_are_checked_before_the_data_is_read(capsys, tiny_bert, tmp_path):
    missing = tmp_path / "absent.json"  # a flag error must come first: reading a large file costs time
    error = fails(capsys, "qa", "train", "--train", missing, "--output", tmp_path / "m", "--model", tiny_bert,
                  "--learning-rate", "-1")  # fmt: skip
    assert error == "error: --learning-rate must be in (0, 1) (got -1.0)"
