"""--cuda-graphs on CPU over whole runs: the loop's graphed branch and replays through static buffers train like
the ordinary loop (moved from tests/unit/test_cuda_graphs.py, whose docstring explains the CPU stand-ins)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import random_encoded, tiny_sequence_model

from bertkit.classification.objective import SequenceObjective
from bertkit.config import TrainConfig
from bertkit.cuda_graphs import GraphedTrainStep, capturable_optimizer
from bertkit.data.encoding import collate
from bertkit.engine import loop as training


def test_fit_with_cuda_graphs_trains_like_fit_without(tiny_bert, monkeypatch):
    """The loop's --cuda-graphs branch (graph replays stood in for by the same eager step): same weights, loss
    and learning-rate record as the ordinary loop. fp32: under precision "auto" a CPU with native bf16 trains in
    bf16, where the padded batches' backward rounds differently (same function, ~1e-4 apart after ten steps)."""
    data, targets = random_encoded(40), np.arange(40) % 2
    config = TrainConfig(epochs=2, batch_size=8, learning_rate=1e-3, precision="fp32").resolved(40)

    def run(**changes):
        model = tiny_sequence_model(tiny_bert)
        result = training.fit(model, data, TrainConfig(**{**config.__dict__, **changes}),
                              SequenceObjective("classification", targets), device=torch.device("cpu"),
                              run=training.RunOptions(progress=False))  # fmt: skip
        return model, result.history

    plain_model, plain_history = run()
    monkeypatch.setattr(training, "check_cuda_graphs", lambda *args: None)
    monkeypatch.setattr(training, "GraphedTrainStep", lambda *a, **k: GraphedTrainStep(*a, **k, capture=False))
    graphed_model, graphed_history = run(cuda_graphs=True)
    for a, b in zip(plain_model.parameters(), graphed_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=5e-6, rtol=1e-5)
    assert all(p.grad is None for p in graphed_model.parameters())  # as the ordinary loop leaves them
    for plain, graphed in zip(plain_history, graphed_history, strict=True):
        assert graphed["train_loss"] == pytest.approx(plain["train_loss"], rel=1e-5)
        assert graphed["learning_rate"] == pytest.approx(plain["learning_rate"])
        assert isinstance(graphed["learning_rate"], float)


class _ReplayedGraph:
    """Stands in for torch.cuda.CUDAGraph on CPU: replay() re-runs the recorded step on the static buffers."""

    def __init__(self, run) -> None:
        self.run = run

    def replay(self) -> None:
        self.run()


class _CpuGraphedStep(GraphedTrainStep):
    """GraphedTrainStep whose capture records a closure instead of a CUDA graph: the buffers, shape keys and the
    eager-then-capture-then-replay sequence are the real ones."""

    def _capture(self, inputs, targets):
        static_inputs = {k: v.clone() for k, v in inputs.items()}
        static_targets, static_loss = targets.clone(), torch.zeros(())
        return _ReplayedGraph(lambda: static_loss.copy_(self._step(static_inputs, static_targets))), static_inputs, \
            static_targets, static_loss  # fmt: skip


def test_replays_through_static_buffers_in_any_shape_order_equal_the_loops_steps(tiny_bert):
    """40 steps over 5 batch shapes revisited in random order: each shape runs eagerly once, is captured on its
    second visit and replayed after; losses and weights match the ordinary loop's."""
    rng = np.random.default_rng(0)
    data, targets = random_encoded(64, seed=1, longest=70), torch.from_numpy(np.arange(64) % 2)
    order = np.argsort(data.lengths, kind="stable")
    groups = [order[i : i + 8] for i in range(0, 64, 8)]
    sequence = [groups[i] for i in rng.integers(0, len(groups), size=40)]
    loss_fn = torch.nn.CrossEntropyLoss()

    def loss(outputs, target):
        return loss_fn(outputs.logits.float(), target)

    reference = tiny_sequence_model(tiny_bert)
    reference.train()
    optimizer = training.make_optimizer(reference, 1e-3, 0.01)
    schedule = training.linear_schedule(optimizer, 3, len(sequence))
    expected = []
    for index in sequence:
        value = loss(reference(**collate(data, index, False)), targets[index])
        value.backward()
        expected.append(value.item())
        training.optimizer_step(reference, optimizer, schedule, None, 1.0)

    model = tiny_sequence_model(tiny_bert)
    model.train()
    optimizer = capturable_optimizer(training.make_optimizer(model, 1e-3, 0.01), torch.device("cpu"))
    schedule = training.linear_schedule(optimizer, 3, len(sequence))
    step = _CpuGraphedStep(model, loss, optimizer, device=torch.device("cpu"), dtype=None, max_grad_norm=1.0,
                           pad_id=0, capture=False)  # fmt: skip
    step.capture = True  # the capture-and-replay branch, with the stand-in graph
    got = []
    for index in sequence:
        got.append(float(step(collate(data, index, False), targets[index])))
        schedule.step()
    assert len(step.graphs) >= 3  # shapes were captured and then replayed
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    for a, b in zip(reference.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=2e-6, rtol=1e-5)
