"""What the tagger says beyond its scores: entity types the model does not know (evaluate), an output it cannot
write (predict_file), CoNLL words a column cannot hold, and the size its modules keep to."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from helpers import ner_examples, run_cli, write_conll

from bertkit import DataError, TokenTagger
from bertkit.data.writers import partial_path

FAST = dict(epochs=1, batch_size=16, learning_rate=5e-3, max_length=32, progress=False)


@pytest.fixture(scope="module")
def fitted(tiny_bert, tmp_path_factory):
    tagger = TokenTagger(str(tiny_bert), **FAST).fit(*ner_examples(40, seed=1))  # tags O, B/I-LOC, B/I-PER
    return tagger, tagger.save(tmp_path_factory.mktemp("tagger") / "model")


def _with_unknown_types() -> tuple[list[list[str]], list[list[str]]]:
    sentences, tags = ner_examples(6, seed=2)
    sentences += [["alice", "met", "bob"], ["the", "big", "fair"]]
    tags += [["B-ORG", "O", "B-ORG"], ["O", "B-MISC", "I-MISC"]]
    return sentences, tags


def test_evaluate_names_the_entity_types_the_model_does_not_know(fitted):
    tagger, _ = fitted
    report = tagger.evaluate(*_with_unknown_types())
    assert report["unknown_types"] == {"MISC": 1, "ORG": 2}
    assert report["warnings"] == [
        "X: entity types the model does not know: MISC (1 entity), ORG (2 entities); they count as missed"
    ]
    assert report["per_type"]["ORG"]["recall"] == 0.0 and report["per_type"]["ORG"]["support"] == 2
    known = tagger.evaluate(*ner_examples(6, seed=2))
    assert known["unknown_types"] == {} and known["warnings"] == []


def test_tag_evaluate_warns_on_stderr_with_and_without_json(fitted, tmp_path, capsys):
    _, folder = fitted
    data = write_conll(tmp_path / "data.conll", *_with_unknown_types())
    warning = "warning: data.conll: entity types the model does not know: MISC (1 entity), ORG (2 entities); they "
    for flags in (["--json"], []):
        capsys.readouterr()
        assert run_cli("tag", "evaluate", folder, "--data", data, *flags) == 0
        out, err = capsys.readouterr()
        assert warning + "count as missed" in err.splitlines() and "warning:" not in out
        if flags:
            assert json.loads(out)["unknown_types"] == {"MISC": 1, "ORG": 2}
    write_conll(data, *ner_examples(6, seed=2))
    assert run_cli("tag", "evaluate", folder, "--data", data) == 0
    assert "warning" not in capsys.readouterr().err


def _no_space(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_predict_file_that_cannot_finish_its_output_is_a_data_error(fitted, tmp_path, monkeypatch):
    tagger, _ = fitted
    conll = write_conll(tmp_path / "test.conll", *ner_examples(10, seed=5))
    for name in ("tagged.jsonl", "tagged.conll"):
        output = tmp_path / name
        output.write_text("an earlier run's output\n", encoding="utf-8")
        with monkeypatch.context() as patch:
            patch.setattr(os, "replace", _no_space)
            message = rf"^{output}: cannot write the output \(No space left on device\); choose another --output$"
            with pytest.raises(DataError, match=message):
                tagger.predict_file(conll, output)
        assert output.read_text(encoding="utf-8") == "an earlier run's output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tagged.conll", "tagged.jsonl", "test.conll"]


def test_predict_file_that_cannot_open_its_output_is_a_data_error(fitted, tmp_path):
    tagger, _ = fitted
    conll = write_conll(tmp_path / "test.conll", *ner_examples(10, seed=5))
    output = tmp_path / "tagged.jsonl"
    output.write_text("an earlier run's output\n", encoding="utf-8")
    partial_path(output).mkdir()  # tests run as root, whom chmod does not stop; a folder in the way does
    with pytest.raises(DataError, match=rf"^{output}: cannot write the output \(Is a directory\); choose another"):
        tagger.predict_file(conll, output)
    assert output.read_text(encoding="utf-8") == "an earlier run's output\n"


def test_words_a_conll_column_cannot_hold_are_checked_in_the_conll_module(tmp_path):
    from bertkit.tagging.conll import check_conll_words
    from bertkit.tagging.inputs import from_lists

    check_conll_words(from_lists([["new", "york"]], None), tmp_path / "out.conll")
    for word in ("new york", "", "tab\there"):
        data = from_lists([["fine"], ["is", word]], None)
        with pytest.raises(DataError, match=rf"^X sentence 2: the word {re.escape(repr(word))} cannot be a CoNLL column \(empty, "
                           r"or holding a space\); write out.jsonl instead, or split the word in the input$"):  # fmt: skip
            check_conll_words(data, tmp_path / "out.conll")


def test_tagging_modules_stay_under_400_lines():
    import bertkit.tagging

    folder = Path(bertkit.tagging.__file__).parent
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in folder.glob("*.py")}
    assert max(sizes.values()) < 400, sizes
