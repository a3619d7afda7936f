"""R-Drop (``--rdrop``): the loss on two dropout passes of each batch, and how the loop feeds them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bertkit.classification.objective import SequenceObjective
from bertkit.config import TrainConfig
from bertkit.exceptions import ConfigError


def _loss(task: str, first: torch.Tensor, second: torch.Tensor, targets: np.ndarray, rdrop: float) -> float:
    objective = SequenceObjective(task, targets, rdrop=rdrop)
    assert objective.forward_copies == (2 if rdrop else 1)
    outputs = SimpleNamespace(logits=torch.cat([first, second]))  # [2 x batch, labels]: copy after copy
    return objective.loss(outputs, torch.from_numpy(targets)).item()


def test_classification_loss_is_mean_cross_entropy_plus_weighted_symmetric_kl():
    first = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])  # [examples, classes]
    second = torch.tensor([[1.0, 0.5, -1.0], [0.0, 1.5, 2.0]])
    targets = np.array([0, 2])
    p, q = first.softmax(-1), second.softmax(-1)
    cross_entropy = [-(d.log()[[0, 1], [0, 2]]).mean().item() for d in (p, q)]
    symmetric_kl = ((p - q) * (p.log() - q.log())).sum(-1).mean().item()  # KL(p||q) + KL(q||p), per example
    expected = sum(cross_entropy) / 2 + 0.7 * symmetric_kl / 2
    assert _loss("classification", first, second, targets, 0.7) == pytest.approx(expected, rel=1e-6)
    # identical passes (no dropout): nothing added to the plain loss
    assert _loss("classification", first, first, targets, 0.7) == pytest.approx(cross_entropy[0], rel=1e-6)


def test_multi_label_penalty_is_the_bernoulli_kl_of_each_label():
    first = torch.tensor([[2.0, -1.0], [0.0, 3.0]])  # [examples, labels]
    second = torch.tensor([[1.0, -2.0], [0.5, 1.0]])
    targets = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    p, q = torch.sigmoid(first), torch.sigmoid(second)

    def kl(a, b):  # Bernoulli(a) || Bernoulli(b), per label
        return a * (a / b).log() + (1 - a) * ((1 - a) / (1 - b)).log()

    bce = [torch.nn.functional.binary_cross_entropy(d, torch.from_numpy(targets)).item() for d in (p, q)]
    expected = sum(bce) / 2 + 0.5 * ((kl(p, q) + kl(q, p)) / 2).mean().item()
    assert _loss("multi-label", first, second, targets, 0.5) == pytest.approx(expected, rel=1e-5)


def test_regression_penalty_is_the_squared_difference_of_the_passes():
    first, second = torch.tensor([[0.5], [2.0]]), torch.tensor([[1.0], [1.0]])
    targets = np.array([1.0, 1.5], dtype=np.float32)
    mse = [((d.squeeze(-1) - torch.from_numpy(targets)) ** 2).mean().item() for d in (first, second)]
    expected = sum(mse) / 2 + 2.0 * ((0.5**2 + 1.0**2) / 2)
    assert _loss("regression", first, second, targets, 2.0) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"rdrop": -0.1}, r"--rdrop must be 0 \(off\) or a positive weight \(got -0.1\)"),
     ({"rdrop": float("nan")}, "--rdrop must be 0"),
     ({"rdrop": 1.0, "cuda_graphs": True}, "--cuda-graphs records steps of one batch shape and does not run --rdrop")],
)  # fmt: skip
def test_rdrop_settings_are_checked(settings, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**settings)


def _fit(
    tiny_bert, rdrop: float, dropout: float, seen: list[int] | None = None, grad_accumulation: int = 1
) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import bertkit.engine.loop as training
    from bertkit.data.encoding import encode

    texts = [f"good movie {i}" if i % 2 else f"awful plot number {i} really" for i in range(16)]
    labels = np.array([i % 2 for i in range(16)])
    encoded = encode(AutoTokenizer.from_pretrained(str(tiny_bert)), texts, None, 32)
    torch.manual_seed(1)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(tiny_bert), num_labels=2, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout
    )
    if seen is not None:
        model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(len(kwargs["input_ids"])),
                                        with_kwargs=True)  # fmt: skip
    config = TrainConfig(epochs=1, batch_size=8, grad_accumulation=grad_accumulation, learning_rate=5e-3,
                         precision="fp32", rdrop=rdrop).resolved(16)  # fmt: skip
    objective = SequenceObjective("classification", labels, rdrop=config.rdrop or 0.0)
    training.fit(model, encoded, config, objective, device=torch.device("cpu"), run=training.RunOptions(progress=False))
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_each_batch_goes_through_the_model_twice_in_one_pass(tiny_bert):
    seen: list[int] = []
    _fit(tiny_bert, rdrop=1.0, dropout=0.1, seen=seen)
    assert seen == [16, 16]  # two batches of 8 examples, each stacked on itself
    seen.clear()
    _fit(tiny_bert, rdrop=0.0, dropout=0.1, seen=seen)
    assert seen == [8, 8]


def test_without_dropout_the_passes_agree_and_training_is_the_plain_run(tiny_bert):
    """Dropout off: both copies give the same logits, the penalty and its gradient are zero, and the mean of two
    equal losses is the loss, so R-Drop must train exactly as the plain loop does."""
    plain, doubled = _fit(tiny_bert, 0.0, 0.0), _fit(tiny_bert, 1.0, 0.0)
    for name, value in plain.items():
        torch.testing.assert_close(doubled[name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_with_gradient_accumulation_each_micro_batch_is_doubled_and_training_is_the_plain_run(tiny_bert):
    """The README's advice for memory: --grad-accumulation 2 runs each step of 8 as two micro-batches of 4,
    each doubled by R-Drop, and (dropout off) trains as the plain loop with the same accumulation does."""
    seen: list[int] = []
    doubled = _fit(tiny_bert, 1.0, 0.0, seen=seen, grad_accumulation=2)
    assert seen == [8, 8, 8, 8]  # four micro-batches of 4 examples, each stacked on itself
    plain = _fit(tiny_bert, 0.0, 0.0, grad_accumulation=2)
    for name, value in plain.items():
        torch.testing.assert_close(doubled[name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_with_dropout_the_penalty_moves_the_weights(tiny_bert):
    """Same doubled batches and dropout masks (same seed, same shapes); only the penalty's weight differs."""
    negligible, weighted = _fit(tiny_bert, 1e-12, 0.1), _fit(tiny_bert, 5.0, 0.1)
    moved = max((weighted[k] - negligible[k]).abs().max().item() for k in negligible)
    assert moved > 1e-4


def test_rdrop_flows_from_the_estimator_into_the_saved_config(tiny_bert, tmp_path):
    import json

    from bertkit import TextClassifier

    texts = [f"good movie {i}" if i % 2 else f"awful plot number {i}" for i in range(16)]
    labels = ["pos" if i % 2 else "neg" for i in range(16)]
    clf = TextClassifier(str(tiny_bert), epochs=1, batch_size=8, max_length=16, rdrop=0.5, progress=False)
    clf.fit(texts, labels).save(tmp_path / "model")
    assert clf.config_.rdrop == 0.5
    assert json.loads((tmp_path / "model" / "bertkit.json").read_text())["config"]["rdrop"] == 0.5
