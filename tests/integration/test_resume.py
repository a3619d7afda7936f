"""Resumable checkpoints (--checkpoint-every, --resume): a run killed part-way and resumed ends with the weights,
history and kept epoch of the uninterrupted run; a checkpoint of another run is refused."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from helpers import Killed, assert_same_weights, kill_at_micro_batch, sentiment_examples

from bertkit import TextClassifier
from bertkit.engine import checkpoint
from bertkit.exceptions import ConfigError


def classifier(tiny_bert, **params) -> TextClassifier:
    # dropout on: the resumed run must continue the random generators, not only the weights
    options = dict(epochs=2, batch_size=8, learning_rate=2e-3, max_length=24, dropout=0.1, progress=False)
    return TextClassifier(str(tiny_bert), **{**options, **params})


DATA = sentiment_examples(32)  # 29 train rows after the hold-out: 4 micro-batches of 8 per epoch


@pytest.mark.parametrize(
    ("params", "kill_at", "resumed_epoch"),
    [
        ({"checkpoint_every": "epoch"}, 6, 2),  # killed in epoch 2: epoch 1's checkpoint
        # micro-batches of 4 (8 an epoch), an optimizer step every 2, a checkpoint after each: killed in epoch 1
        # after the checkpoint at micro-batch 6
        ({"checkpoint_every": "1", "grad_accumulation": 2}, 7, 1),
        ({"checkpoint_every": "epoch", "average_weights": 0.6, "keep_epoch": "best"}, 7, 2),
    ],
    ids=["epoch", "steps", "average-best"],
)
def test_a_killed_run_resumed_ends_as_the_uninterrupted_run(tiny_bert, tmp_path, monkeypatch, params, kill_at,
                                                            resumed_epoch):  # fmt: skip
    texts, labels = DATA
    whole = classifier(tiny_bert, **params).fit(texts, labels, output_dir=tmp_path / "whole")

    output = tmp_path / "killed"
    with monkeypatch.context() as patch:
        kill_at_micro_batch(patch, kill_at)
        with pytest.raises(Killed):
            classifier(tiny_bert, **params).fit(texts, labels, output_dir=output)
    meta = json.loads((output / "checkpoint" / "checkpoint.json").read_text())
    assert meta["epoch_finished"] == (params["checkpoint_every"] == "epoch")  # else mid-epoch (micro-batch 6)
    assert meta["epoch"] == resumed_epoch - (1 if meta["epoch_finished"] else 0)
    assert not list(output.glob(".checkpoint*")), "a finished write leaves no temporary folder"

    before, real_resume = [], checkpoint.Checkpoints.resume

    def resume(self):
        epoch = real_resume(self)
        before.append(self.resumed_seconds)  # what the killed run had trained, as its checkpoint recorded
        return epoch

    monkeypatch.setattr(checkpoint.Checkpoints, "resume", resume)
    started = time.perf_counter()
    resumed = classifier(tiny_bert, **params).fit(texts, labels, output_dir=output, resume_from=output)
    elapsed = time.perf_counter() - started
    assert before[0] > 0 and before[0] < resumed.train_seconds_ <= before[0] + elapsed + 0.01  # both parts count
    assert_same_weights(resumed.model_.state_dict(), whole.model_.state_dict())
    assert (resumed.best_epoch_, resumed.kept_epoch_) == (whole.best_epoch_, whole.kept_epoch_)
    assert [r["epoch"] for r in resumed.history_] == [1, 2]
    for got, expected in zip(resumed.history_, whole.history_, strict=True):
        assert got["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-6)
        assert got["val_mcc"] == pytest.approx(expected["val_mcc"])
    written = [json.loads(line) for line in (output / "history.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in written] == [1, 2]


def test_the_interruption_matters_without_the_checkpoint(tiny_bert, tmp_path, monkeypatch):
    """The check above can fail: a run restarted from scratch after the same kill, but from a checkpoint whose
    random generators were not restored, ends elsewhere."""
    texts, labels = DATA
    whole = classifier(tiny_bert, checkpoint_every="epoch").fit(texts, labels, output_dir=tmp_path / "whole")
    output = tmp_path / "killed"
    with monkeypatch.context() as patch:
        kill_at_micro_batch(patch, 6)
        with pytest.raises(Killed):
            classifier(tiny_bert, checkpoint_every="epoch").fit(texts, labels, output_dir=output)
    monkeypatch.setattr(checkpoint, "set_rng_state", lambda state: None)
    resumed = classifier(tiny_bert, checkpoint_every="epoch").fit(texts, labels, output_dir=output, resume_from=output)
    differs = [k for k, v in whole.model_.state_dict().items() if not torch.equal(v, resumed.model_.state_dict()[k])]
    assert differs


def test_a_checkpoint_of_other_options_or_data_is_refused(tiny_bert, tmp_path, monkeypatch):
    texts, labels = DATA
    output = tmp_path / "run"
    with monkeypatch.context() as patch:
        kill_at_micro_batch(patch, 6)
        with pytest.raises(Killed):
            classifier(tiny_bert, checkpoint_every="epoch").fit(texts, labels, output_dir=output)
    with pytest.raises(ConfigError, match=r"belongs to another run \(learning_rate: checkpoint 0.002, this run 0.001"):
        classifier(tiny_bert, learning_rate=1e-3).fit(texts, labels, output_dir=output, resume_from=output)
    flipped = [("positive" if y == "negative" else "negative") if i == 0 else y for i, y in enumerate(labels)]
    with pytest.raises(ConfigError, match="train_data: checkpoint"):
        classifier(tiny_bert).fit(texts, flipped, output_dir=output, resume_from=output)
    with pytest.raises(ConfigError, match="no checkpoint to resume from"):
        classifier(tiny_bert).fit(texts, labels, resume_from=tmp_path / "nothing")


def test_checkpoint_every_is_checked(tiny_bert):
    with pytest.raises(ConfigError, match="checkpoint_every must be 'epoch' or a positive number"):
        classifier(tiny_bert, checkpoint_every="sometimes").fit(*DATA)
    with pytest.raises(ConfigError, match="checkpoint_every must be 'epoch' or a positive number"):
        classifier(tiny_bert, checkpoint_every="0").fit(*DATA)
    with pytest.raises(ConfigError, match="needs fit\\(output_dir=...\\)"):
        classifier(tiny_bert, checkpoint_every="epoch").fit(*DATA)


def test_a_write_replaces_the_checkpoint_whole(tmp_path):
    folder = tmp_path / "checkpoint"
    checkpoint.write(folder, {"n": 1}, {"fingerprint": {"a": 1}})
    checkpoint.write(folder, {"n": 2, "array": np.arange(3, dtype=np.uint32)}, {"fingerprint": {"a": 1}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]
    state = checkpoint.read(checkpoint.locate(tmp_path), {"a": 1})
    assert state["n"] == 2 and state["array"].dtype == np.uint32 and state["array"].tolist() == [0, 1, 2]
    # killed between the two renames of a write: the previous checkpoint is found under its old name
    folder.rename(tmp_path / ".checkpoint.old")
    assert checkpoint.locate(tmp_path) == tmp_path / ".checkpoint.old"


def test_the_output_folder_check_under_resume(tmp_path):
    from bertkit.runs import check_output_folder

    output = tmp_path / "run"
    with pytest.raises(ConfigError, match="no checkpoint to --resume from"):
        check_output_folder(output, overwrite=False, resume=True)
    (output / "checkpoint").mkdir(parents=True)
    (output / "history.jsonl").write_text("")
    check_output_folder(output, overwrite=False, resume=True)
    check_output_folder(output, overwrite=True)  # starting afresh over an abandoned checkpoint
    (output / "bertkit.json").write_text("{}")  # the model an --overwrite run was replacing
    with pytest.raises(ConfigError, match="also holds 'bertkit.json'; pass --overwrite too"):
        check_output_folder(output, overwrite=False, resume=True)
    check_output_folder(output, overwrite=True, resume=True)
    (output / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="also holds 'notes.txt'; move them away"):
        check_output_folder(output, overwrite=True, resume=True)
