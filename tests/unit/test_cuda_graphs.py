"""--cuda-graphs: the padded, static-shape step it records computes the loop's own step.

Capturing needs a GPU (benchmarks/gpu_speed.py measures it there). On CPU these tests run the same step code
eagerly (``capture=False``): padding to the shape buckets, the capturable AdamW with a tensor learning rate, and
the loop's use of it, against the loop's ordinary step.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertkit import training
from bertkit.config import TrainConfig
from bertkit.cuda_graphs import LENGTH_MULTIPLE, GraphedTrainStep, capturable_optimizer, pad_batch, padded_length
from bertkit.data.encoding import Encoded, collate
from bertkit.exceptions import ConfigError


def _model(tiny_bert, dropout: float = 0.0):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(
        str(tiny_bert), num_labels=2, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout
    )


def _encoded(n: int, seed: int = 0) -> Encoded:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 21, size=n).astype(np.int64)
    ids = rng.integers(5, 60, size=int(lengths.sum())).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    ids[offsets] = 2  # [CLS] first
    return Encoded(ids, None, offsets, lengths, 0, 128)


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
    data, targets = _encoded(24), torch.from_numpy(np.arange(24) % 2)
    batches = [np.arange(i, i + 8) for i in (0, 8, 16)]
    loss_fn = torch.nn.CrossEntropyLoss()

    def loss(outputs, target):
        return loss_fn(outputs.logits.float(), target)

    reference = _model(tiny_bert)
    optimizer = training.make_optimizer(reference, 1e-3, 0.01)
    schedule = training.linear_schedule(optimizer, 1, 3)
    reference.train()
    for index in batches:
        inputs = collate(data, index, False)
        loss(reference(**inputs), targets[index]).backward()
        training._optimizer_step(reference, optimizer, schedule, None, 1.0)

    graphed_model = _model(tiny_bert)
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


def test_fit_with_cuda_graphs_trains_like_fit_without(tiny_bert, monkeypatch):
    """The loop's --cuda-graphs branch (graph replays stood in for by the same eager step): same weights, loss
    and learning-rate record as the ordinary loop."""
    data, targets = _encoded(40), np.arange(40) % 2
    config = TrainConfig(epochs=2, batch_size=8, learning_rate=1e-3, device="cpu").resolved(40)

    def run(**changes):
        model = _model(tiny_bert)
        result = training.fit(model, data, targets, TrainConfig(**{**config.__dict__, **changes}),
                              task="classification", device=torch.device("cpu"), progress=False)  # fmt: skip
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


@pytest.mark.parametrize(
    ("changes", "message"),
    [({}, "needs a CUDA GPU"), ({"grad_accumulation": 2}, "--grad-accumulation 1")],
)
def test_cuda_graphs_say_what_keeps_them_from_applying(tiny_bert, changes, message):
    config = TrainConfig(epochs=1, batch_size=8, learning_rate=1e-3, device="cpu", cuda_graphs=True, **changes)
    with pytest.raises(ConfigError, match=f"--cuda-graphs .*{message}"):
        training.fit(_model(tiny_bert), _encoded(16), np.arange(16) % 2, config.resolved(16),
                     task="classification", device=torch.device("cpu"), progress=False)  # fmt: skip


def test_cuda_graphs_refuse_fp16_and_other_tasks():
    cuda = torch.device("cuda")
    with pytest.raises(ConfigError, match="fp16"):
        training.check_cuda_graphs(cuda, torch.float16, 1, 1, training.SequenceObjective("classification", np.zeros(2)))
    with pytest.raises(ConfigError, match="not under torchrun"):
        training.check_cuda_graphs(cuda, None, 2, 1, training.SequenceObjective("classification", np.zeros(2)))
    with pytest.raises(ConfigError, match="sequence classification"):
        training.check_cuda_graphs(cuda, None, 1, 1, object())
    training.check_cuda_graphs(cuda, torch.bfloat16, 1, 1, training.SequenceObjective("classification", np.zeros(2)))
