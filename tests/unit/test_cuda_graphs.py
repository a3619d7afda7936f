"""--cuda-graphs: the padded, static-shape step it records computes the loop's own step.

Capturing needs a GPU (benchmarks/gpu_speed.py measures it there; the last test here runs only where one is).
On CPU these tests run the same step code eagerly (``capture=False``) or through a stand-in graph that replays
the recorded step on the static buffers: padding to the shape buckets, shape keys, the eager-capture-replay
sequence, the capturable AdamW with a tensor learning rate and the loop's use of it, each against the loop's
ordinary step.
The whole-run checks (the loop's branch, replays through the stand-in graph) are in
tests/integration/test_cuda_graphs_runs.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import random_encoded, tiny_sequence_model

from bertkit.classification.objective import SequenceObjective
from bertkit.config import TrainConfig
from bertkit.cuda_graphs import LENGTH_MULTIPLE, GraphedTrainStep, capturable_optimizer, pad_batch, padded_length
from bertkit.data.encoding import collate
from bertkit.engine import loop as training
from bertkit.engine.objective import MetricScorer, Validation
from bertkit.exceptions import ConfigError


def test_lengths_round_up_to_the_bucket_but_not_past_the_position_table():
    assert padded_length(1, 128) == LENGTH_MULTIPLE
    assert padded_length(16, 128) == 16
    assert padded_length(17, 128) == 32
    assert padded_length(120, 128) == 128
    assert padded_length(121, 125) == 125  # the model has no positions beyond 125
    assert padded_length(130, 128) == 130  # never shorter than the batch


def test_pad_batch_pads_ids_with_the_pad_id_and_the_mask_with_zeros():
    inputs = {"input_ids": torch.tensor([[2, 7, 9], [2, 8, 0]]), "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0]])}
    padded = pad_batch(inputs, 5, pad_id=0)
    assert padded["input_ids"].tolist() == [[2, 7, 9, 0, 0], [2, 8, 0, 0, 0]]
    assert padded["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]]
    assert pad_batch(inputs, 3, pad_id=0) is inputs


def test_graphed_step_equals_the_loops_step(tiny_bert):
    """Three padded steps with the capturable optimizer land on the weights of three ordinary steps."""
    data, targets = random_encoded(24), torch.from_numpy(np.arange(24) % 2)
    batches = [np.arange(i, i + 8) for i in (0, 8, 16)]
    loss_fn = torch.nn.CrossEntropyLoss()

    def loss(outputs, target):
        return loss_fn(outputs.logits.float(), target)

    reference = tiny_sequence_model(tiny_bert)
    optimizer = training.make_optimizer(reference, 1e-3, 0.01)
    schedule = training.linear_schedule(optimizer, 1, 3)
    reference.train()
    for index in batches:
        inputs = collate(data, index, False)
        loss(reference(**inputs), targets[index]).backward()
        training.optimizer_step(reference, optimizer, schedule, None, 1.0)

    graphed_model = tiny_sequence_model(tiny_bert)
    graphed_model.train()
    optimizer = capturable_optimizer(training.make_optimizer(graphed_model, 1e-3, 0.01), torch.device("cpu"))
    schedule = training.linear_schedule(optimizer, 1, 3)
    assert isinstance(optimizer.param_groups[0]["lr"], torch.Tensor)
    step = GraphedTrainStep(graphed_model, loss, optimizer, device=torch.device("cpu"), dtype=None,
                            max_grad_norm=1.0, pad_id=0, capture=False)  # fmt: skip
    for index in batches:
        inputs = collate(data, index, False)
        assert inputs["input_ids"].shape[1] % LENGTH_MULTIPLE != 0  # the step really pads
        step(inputs, targets[index])
        schedule.step()
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]
    for (name, a), b in zip(reference.named_parameters(), graphed_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=2e-6, rtol=1e-5, msg=name)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"device": "cpu"}, "needs a CUDA GPU"), ({"device": "cuda", "grad_accumulation": 2}, "--grad-accumulation 1"),
     ({"device": "cuda", "precision": "fp16"}, "--precision bf16 or fp32")],
)  # fmt: skip
def test_cuda_graphs_conflicts_are_caught_with_the_options(changes, message):
    with pytest.raises(ConfigError, match=f"--cuda-graphs .*{message}"):
        TrainConfig(cuda_graphs=True, **changes)


def test_fit_refuses_cuda_graphs_when_auto_finds_no_gpu(tiny_bert):
    config = TrainConfig(epochs=1, batch_size=8, learning_rate=1e-3, cuda_graphs=True).resolved(16)  # device auto
    with pytest.raises(ConfigError, match="--cuda-graphs needs a CUDA GPU"):
        training.fit(tiny_sequence_model(tiny_bert), random_encoded(16), config, SequenceObjective("classification", np.arange(16) % 2),
                     device=torch.device("cpu"), run=training.RunOptions(progress=False))  # fmt: skip


def test_cuda_graphs_refuse_fp16_and_other_tasks():
    cuda = torch.device("cuda")
    with pytest.raises(ConfigError, match="fp16"):
        training.check_cuda_graphs(cuda, torch.float16, 1, SequenceObjective("classification", np.zeros(2)))
    with pytest.raises(ConfigError, match="not under torchrun"):
        training.check_cuda_graphs(cuda, None, 2, SequenceObjective("classification", np.zeros(2)))
    with pytest.raises(ConfigError, match="sequence classification"):
        training.check_cuda_graphs(cuda, None, 1, object())
    training.check_cuda_graphs(cuda, torch.bfloat16, 1, SequenceObjective("classification", np.zeros(2)))


def test_cuda_graphs_refuse_a_torch_whose_scheduler_replaces_the_learning_rate(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.3.1+cu121")
    with pytest.raises(ConfigError, match=r"needs torch >= 2\.5 \(found 2\.3\.1"):
        training.check_cuda_graphs(torch.device("cuda"), None, 1, SequenceObjective("classification", np.zeros(2)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="records CUDA graphs: needs a GPU")
def test_captured_steps_equal_eager_steps_on_a_gpu(tiny_bert):
    """On a GPU: real graphs, shapes revisited out of order, a validation pass between epochs."""
    data, targets = random_encoded(96, seed=2), np.arange(96) % 2
    config = TrainConfig(epochs=3, batch_size=8, learning_rate=1e-3, device="cuda", precision="fp32").resolved(96)
    cuda = torch.device("cuda")

    def run(**changes):
        model = tiny_sequence_model(tiny_bert)
        scorer = MetricScorer(lambda logits: {"loss": float(np.mean(logits))}, main_metric="loss")
        result = training.fit(model, data, TrainConfig(**{**config.__dict__, **changes}),
                              SequenceObjective("classification", targets), device=cuda,
                              validation=Validation(random_encoded(16, seed=3), scorer),
                              run=training.RunOptions(progress=False))  # fmt: skip
        return model, result.history

    eager, eager_history = run()
    graphed, graphed_history = run(cuda_graphs=True)
    for a, b in zip(eager.parameters(), graphed.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)
    for e, g in zip(eager_history, graphed_history, strict=True):
        assert g["train_loss"] == pytest.approx(e["train_loss"], rel=1e-3)
