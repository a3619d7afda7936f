"""`torchrun --nproc-per-node 2 -m bertkit train` on CPU (gloo) against one process with the same global batch.

Dropout is off in the tiny model so that both runs compute the same function; the training set size leaves
an uneven last micro-batch (split 3 / 2) and the validation set an odd number of rows (sharded 11 / 10).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import build_tiny_bert, ok, sentiment_examples, write_csv

SRC = Path(__file__).resolve().parents[2] / "src"
# Two micro-batches of 8 per optimizer step: each is split 4 / 4 among the ranks, the first without a gradient
# all-reduce (DDP no_sync); the last micro-batch of an epoch holds 5 examples (split 3 / 2).
FLAGS = ["--epochs", "2", "--batch-size", "16", "--grad-accumulation", "2", "--learning-rate", "0.002",
         "--max-length", "32", "--device", "cpu", "--precision", "fp32", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def no_dropout_bert(tmp_path_factory) -> Path:
    folder = build_tiny_bert(tmp_path_factory.mktemp("tiny-bert-no-dropout"))
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def ddp_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ddp-data")
    texts, labels = sentiment_examples(101)  # 12 micro-batches of 8 and one of 5
    write_csv(folder / "train.csv", ["text", "label"], [list(r) for r in zip(texts, labels, strict=True)])
    texts, labels = sentiment_examples(21, seed=1)
    write_csv(folder / "valid.csv", ["text", "label"], [list(r) for r in zip(texts, labels, strict=True)])
    return folder


def torchrun(
    *args: object, nproc: int = 2, module: str = "bertkit", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    extra = dict(env or {})
    paths = (extra.pop("PYTHONPATH", ""), str(SRC), os.environ.get("PYTHONPATH", ""))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", **extra, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}  # fmt: skip
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
               "-m", module, *map(str, args)]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def weights(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(folder / "model.safetensors")


def test_two_cpu_processes_match_one_process_with_the_same_global_batch(capsys, no_dropout_bert, ddp_data, tmp_path):
    data = ["--train", ddp_data / "train.csv", "--validation", ddp_data / "valid.csv", "--model", no_dropout_bert]
    single, double = tmp_path / "single", tmp_path / "ddp"
    ok(capsys, "train", *data, "--output", single, *FLAGS)
    done = torchrun("train", *data, "--output", double, *FLAGS)
    assert done.returncode == 0, done.stderr[-3000:]
    # rank 0 alone reports and writes
    assert done.stderr.count("model saved to") == 1, done.stderr[-3000:]
    assert done.stderr.count("training on 101 rows") == 1

    one, two = weights(single), weights(double)
    assert one.keys() == two.keys()
    for name in one:
        np.testing.assert_allclose(two[name], one[name], atol=2e-5, rtol=1e-4, err_msg=name)
    meta_one = json.loads((single / "bertkit.json").read_text())
    meta_two = json.loads((double / "bertkit.json").read_text())
    assert meta_two["config"]["batch_size"] == 16  # the global batch, not per process
    for key, value in meta_one["validation_metrics"].items():
        assert meta_two["validation_metrics"][key] == pytest.approx(value, abs=1e-5), key
    for a, b in zip(meta_one["history"], meta_two["history"], strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], abs=1e-4)
        assert b["val_loss"] == pytest.approx(a["val_loss"], abs=1e-5)
    lines = (double / "history.jsonl").read_text().splitlines()
    assert len(lines) == 2  # written once (rank 0), not once per rank
    assert meta_two["best_epoch"] == meta_one["best_epoch"]
    assert meta_two["kept_epoch"] == meta_one["kept_epoch"]
    # validation gathered once per row: the report counts the 21 rows, not 22 (no sampler padding)
    report = json.loads((double / "report" / "report.json").read_text())
    assert report["n_examples"] == 21


def _gather_worker(rank: int, world_size: int, port: int, queue) -> None:
    import torch.distributed as dist

    from bertkit import ddp

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        index = np.arange(rank, 7, world_size)  # 7 rows over 2 ranks: 4 and 3
        rows = ddp.gather_rows(index, np.stack([index * 10.0, -index]).T, 7)  # [rows, 2]
        items = ddp.gather_rows(index, [f"row {i}" for i in index], 7)
        queue.put((rank, rows.tolist(), items))
    finally:
        dist.destroy_process_group()


def test_gather_rows_reassembles_input_order_once_per_row():
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    context = mp.get_context("spawn")
    queue = context.Queue()
    mp.start_processes(_gather_worker, args=(2, port, queue), nprocs=2, start_method="spawn")
    results = sorted(queue.get(timeout=60) for _ in range(2))
    for _, rows, items in results:
        assert rows == [[i * 10.0, -i] for i in range(7)]
        assert items == [f"row {i}" for i in range(7)]


KILLING_ENTRY = '''
"""`python -m killed_bertkit ...`: bertkit's CLI whose training dies (os._exit, no clean-up, as a lost machine
would) at micro-batch KILL_AT of every rank."""
import os

from bertkit.cli import main
from bertkit.engine import loop

real_step, calls = loop._Trainer._step, [0]


def step(self, *args, **kwargs):
    calls[0] += 1
    if calls[0] == int(os.environ["KILL_AT"]):
        os._exit(3)
    return real_step(self, *args, **kwargs)


loop._Trainer._step = step
main()
'''


def test_a_killed_two_process_run_resumed_ends_as_the_uninterrupted_run(capsys, ddp_data, tmp_path):
    """Resume under DDP: two CPU processes (gloo) with dropout on (the tiny BERT's default), the checkpoint after
    epoch 1 (written by rank 0 with every rank's random generators), both killed in epoch 2, then resumed: the
    saved model is the uninterrupted two-process run's."""
    entry = tmp_path / "entry"
    entry.mkdir()
    (entry / "killed_bertkit.py").write_text(KILLING_ENTRY)
    model = build_tiny_bert(tmp_path / "tiny-bert")  # dropout 0.1: the generators must be restored per rank
    data = ["--train", ddp_data / "train.csv", "--validation", ddp_data / "valid.csv", "--model", model]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    done = torchrun("train", *data, "--output", whole, *FLAGS)
    assert done.returncode == 0, done.stderr[-3000:]
    # 13 micro-batches an epoch (12 of 8 examples, 4 per rank, and one of 5): killed at the 3rd of epoch 2
    env = {"KILL_AT": "16", "PYTHONPATH": str(entry)}
    died = torchrun("train", *data, "--output", killed, *FLAGS, "--checkpoint-every", "epoch", module="killed_bertkit",
                    env=env)  # fmt: skip
    assert died.returncode != 0, died.stderr[-3000:]
    assert (killed / "checkpoint" / "checkpoint.json").is_file(), died.stderr[-3000:]
    state = json.loads((killed / "checkpoint" / "checkpoint.json").read_text())
    assert state["epoch"] == 1 and state["epoch_finished"]
    assert not (killed / "model.safetensors").exists()
    # resumed with a kill at micro-batch 14: a run that continues from epoch 2 has 13 left and never gets there,
    # one that started over (the checkpoint ignored, the same weights in the end) would die
    env["KILL_AT"] = "14"
    resumed = torchrun("train", *data, "--output", killed, *FLAGS, "--checkpoint-every", "epoch", "--resume", killed,
                       module="killed_bertkit", env=env)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    one, two = weights(whole), weights(killed)
    for name in one:
        np.testing.assert_allclose(two[name], one[name], atol=1e-6, rtol=1e-5, err_msg=name)
    history = [json.loads(line) for line in (killed / "history.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in history] == [1, 2]


def test_a_forward_pass_smaller_than_the_processes_is_refused_in_one_line(no_dropout_bert, ddp_data, tmp_path):
    flags = [*FLAGS[: FLAGS.index("--batch-size")], "--batch-size", "2", "--grad-accumulation", "2", *FLAGS[6:]]
    data = ["--train", ddp_data / "train.csv", "--model", no_dropout_bert]
    done = torchrun("train", *data, "--output", tmp_path / "o", *flags)
    # torchrun prints its own ChildFailedError traceback; the processes print no frame of bertkit's
    assert done.returncode != 0 and "/bertkit/" not in done.stderr, done.stderr[-3000:]
    assert "error: --batch-size 2 with --grad-accumulation 2 gives forward passes of 1 row, fewer than" in done.stderr
    assert not (tmp_path / "o" / "model.safetensors").exists()


RECORDING_ENTRY = '''
"""`python -m recording_bertkit ...`: bertkit's CLI that writes what torch's generator draws at each rank's
first micro-batch (where dropout masks come from) to $DRAWS/rank{RANK}.json."""
import json
import os
from pathlib import Path

import torch

from bertkit.cli import main
from bertkit.engine import loop

real_step = loop._Trainer._step


def step(self, *args, **kwargs):
    draws = Path(os.environ["DRAWS"]) / f"rank{os.environ['RANK']}.json"
    if not draws.exists():
        state = torch.get_rng_state()
        draws.write_text(json.dumps(torch.rand(8).tolist()))
        torch.set_rng_state(state)  # the run itself draws as it would have
    return real_step(self, *args, **kwargs)


loop._Trainer._step = step
main()
'''


def test_each_process_draws_its_own_dropout_masks(ddp_data, tmp_path):
    entry = tmp_path / "entry"
    entry.mkdir()
    (entry / "recording_bertkit.py").write_text(RECORDING_ENTRY)
    model = build_tiny_bert(tmp_path / "tiny-bert")  # dropout 0.1
    flags = [*FLAGS[: FLAGS.index("--epochs")], "--epochs", "1", *FLAGS[2:]]
    env = {"DRAWS": str(tmp_path), "PYTHONPATH": str(entry)}
    done = torchrun("train", "--train", ddp_data / "train.csv", "--model", model, "--output", tmp_path / "o", *flags,
                    module="recording_bertkit", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert first != second  # the same masks on both ranks' rows would halve dropout's noise
