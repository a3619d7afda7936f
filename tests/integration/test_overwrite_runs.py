"""--overwrite for `bertkit tag train`, trained for real twice (slow): the old model survives a failed run and is
replaced by a finished one. The fast checks of the output folder are in tests/unit/test_overwrite.py."""

from __future__ import annotations

from helpers import fails, ok


def test_tag_train_overwrite_replaces_the_model_only_once_trained(capsys, tmp_path, tiny_bert, monkeypatch):
    from helpers import ner_examples, write_conll

    from bertkit import DataError, TokenTagger

    data = write_conll(tmp_path / "train.conll", *ner_examples(40, seed=1))
    output = tmp_path / "tagger"
    args = ["tag", "train", "--train", data, "--output", output, "--model", tiny_bert, "--epochs", "1",
            "--max-length", "32", "--quiet"]  # fmt: skip
    ok(capsys, *args)
    before = (output / "model.safetensors").read_bytes()

    def broken_fit(self, *args, **kwargs):
        raise DataError("training stopped part-way")

    with monkeypatch.context() as patch:
        patch.setattr(TokenTagger, "fit", broken_fit)
        assert "training stopped part-way" in fails(capsys, *args, "--overwrite", alone=False)
    assert (output / "model.safetensors").read_bytes() == before  # the old model survives a failed run
    ok(capsys, *args, "--overwrite", "--seed", "7")
    assert (output / "bertkit.json").is_file() and (output / "history.jsonl").read_text().strip()
