"""The optimizer, schedule and class weights of the training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertkit.config import TrainConfig
from bertkit.engine.loop import linear_schedule, make_optimizer
from bertkit.exceptions import ConfigError


def test_no_weight_decay_on_biases_and_layernorm(tiny_bert):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2)
    optimizer = make_optimizer(model, 1e-3, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.01 and plain["weight_decay"] == 0.0
    assert all(not names[id(p)].endswith(("bias", "LayerNorm.weight")) for p in decayed["params"])
    assert any(names[id(p)].endswith("LayerNorm.weight") for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(names)


def test_linear_warmup_then_decay_to_zero():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = linear_schedule(optimizer, warmup_steps=2, total_steps=6)
    rates = []
    for _ in range(6):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([0.0, 0.5, 1.0, 0.75, 0.5, 0.25])  # transformers' schedule, step for step
    assert optimizer.param_groups[0]["lr"] == 0.0


def test_balanced_class_weights():
    from bertkit.classification.objective import balanced_class_weights

    weights = balanced_class_weights(np.array([0, 0, 0, 1]), "classification", 2)
    np.testing.assert_allclose(weights, [4 / 6, 2.0])


def test_defaults_adapt_to_data_size():
    small = TrainConfig().resolved(2000)
    large = TrainConfig().resolved(8000)
    assert (small.batch_size, small.learning_rate) == (16, 1e-4)
    assert (large.batch_size, large.learning_rate) == (32, 5e-5)
    assert TrainConfig(batch_size=8).resolved(100).batch_size == 8


def test_rdrop_is_on_by_default_for_single_label_classification_from_4000_rows():
    assert TrainConfig().resolved(8000, "classification").rdrop == 0.5
    assert TrainConfig().resolved(3999, "classification").rdrop == 0.0
    assert TrainConfig().resolved(8000, "regression").rdrop == 0.0
    assert TrainConfig().resolved(8000, "multi-label").rdrop == 0.0
    assert TrainConfig().resolved(8000).rdrop == 0.0  # taggers and QA: no sequence objective to double
    # where it cannot act: no encoder dropout to differ, or a recorded step of fixed shape
    for settings in ({"freeze_encoder": True}, {"dropout": 0.0}, {"cuda_graphs": True}):
        assert TrainConfig(**settings).resolved(8000, "classification").rdrop == 0.0, settings
    # what the user sets stands
    assert TrainConfig(rdrop=0.0).resolved(8000, "classification").rdrop == 0.0
    assert TrainConfig(rdrop=1.0).resolved(100, "regression").rdrop == 1.0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("task", "tagging", "--task must be one of"), ("epochs", 0, "--epochs must be a positive"),
     ("learning_rate", 2.0, "--learning-rate must be in"), ("precision", "int4", "--precision must be one of"),
     ("label_smoothing", 1.0, r"--label-smoothing must be in \[0, 1\)"),
     ("dropout", 1.0, r"--dropout must be in \[0, 1\) \(got 1.0\)"), ("dropout", -0.1, "--dropout must be in"),
     ("attention_dropout", 1.0, r"--attention-dropout must be in \[0, 1\) \(got 1.0\)")],
)  # fmt: skip
def test_config_checks_name_the_flag(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value})


def test_label_smoothing_spreads_each_target_over_all_classes():
    from types import SimpleNamespace

    from bertkit.classification.objective import SequenceObjective

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])  # [examples, classes]
    targets = np.array([0, 2])
    outputs = SimpleNamespace(logits=logits)
    log_p = torch.log_softmax(logits, dim=-1)
    smoothed = torch.full((2, 3), 0.3 / 3)  # 0.3 spread evenly over the 3 classes, 0.7 left on the true one
    smoothed[0, 0] += 0.7
    smoothed[1, 2] += 0.7
    loss = SequenceObjective("classification", targets, label_smoothing=0.3).loss(outputs, torch.from_numpy(targets))
    assert loss.item() == pytest.approx(-(smoothed * log_p).sum(dim=1).mean().item())
    plain = SequenceObjective("classification", targets).loss(outputs, torch.from_numpy(targets))
    assert plain.item() == pytest.approx(-log_p[[0, 1], [0, 2]].mean().item())


def test_config_file_round_trip(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('epochs = 2\nlearning-rate = 3e-5\nmodel = "minilm"\n')
    config = TrainConfig.from_file(path)
    assert (config.epochs, config.learning_rate, config.model) == (2, 3e-5, "minilm")
    bad = tmp_path / "bad.json"
    bad.write_text('{"epochz": 2}')
    with pytest.raises(ConfigError, match=r"unknown config keys \['epochz'\]"):
        TrainConfig.from_file(bad)


def test_selection_metric_is_checked_against_the_task():
    from bertkit.selection import resolve_selection_metric

    assert resolve_selection_metric("auto", "classification") == "mcc"
    assert resolve_selection_metric("accuracy", "classification") == "accuracy"
    assert resolve_selection_metric("auto", "regression") == "pearson"
    with pytest.raises(ConfigError, match="--selection-metric for regression must be one of auto, pearson"):
        resolve_selection_metric("accuracy", "regression")


def test_thresholds_maximise_micro_f1_and_leave_signal_free_labels_off():
    from bertkit.classification.metrics import multilabel_metrics, tune_thresholds

    rng = np.random.default_rng(0)
    truth = np.zeros((200, 3), dtype=int)
    truth[:, 0] = rng.random(200) < 0.5  # a label the model separates well
    truth[:, 1] = rng.random(200) < 0.1  # a rare label the model knows nothing about
    truth[:, 2] = rng.random(200) < 0.5
    proba = np.column_stack([
        np.where(truth[:, 0], 0.7, 0.2), np.full(200, 0.3), np.where(truth[:, 2], 0.45, 0.35),
    ])  # fmt: skip
    thresholds = tune_thresholds(truth, proba)
    assert 0.2 < thresholds[0] <= 0.7 and 0.35 < thresholds[2] <= 0.45
    assert thresholds[1] > 0.3  # switching the rare label on everywhere would lower micro F1
    tuned = multilabel_metrics(truth, proba, thresholds)["micro_f1"]
    assert (
        tuned == pytest.approx(1.0 - 0.0, abs=0.2)
        and tuned > multilabel_metrics(truth, proba, np.full(3, 0.5))["micro_f1"]
    )


def test_inference_precision_follows_training_and_fp16_models_predict_on_cpu():
    import torch

    from bertkit.devices import autocast_dtype, inference_dtype

    cpu = torch.device("cpu")
    assert inference_dtype("fp32", cpu) is None
    assert inference_dtype("bf16", cpu) == torch.bfloat16
    assert inference_dtype("auto", cpu) == autocast_dtype("auto", cpu)
    assert inference_dtype("fp16", cpu) == autocast_dtype("auto", cpu)  # trained on a GPU, predicted here
    with pytest.raises(ConfigError, match="--precision fp16 needs a GPU"):
        autocast_dtype("fp16", cpu)  # training in fp16 on a CPU stays an error


@pytest.mark.parametrize("grad_accumulation", [1, 2])
def test_fit_takes_the_steps_of_a_textbook_loop(tiny_bert, monkeypatch, grad_accumulation):
    """With dropout off and the batches fixed, fit() must match a plain PyTorch loop (AdamW without decay on
    biases/LayerNorm, transformers' linear warm-up/decay schedule, clipping at 1.0) weight for weight; with
    accumulation, two micro-batches of 4 must make the same step as one batch of 8."""
    import math

    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    import bertkit.engine.loop as training
    from bertkit.classification.objective import SequenceObjective
    from bertkit.data.encoding import collate, encode

    texts = [f"good movie {i}" if i % 2 else f"awful plot number {i} really" for i in range(24)]
    labels = np.array([i % 2 for i in range(24)])
    encoded = encode(AutoTokenizer.from_pretrained(str(tiny_bert)), texts, None, 32)
    order = np.random.default_rng(0).permutation(24)

    def model():
        torch.manual_seed(1)
        return AutoModelForSequenceClassification.from_pretrained(
            str(tiny_bert), num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
        )

    def batches(lengths, size, rng, **kwargs):  # the same fixed order every epoch
        return [order[i : i + size] for i in range(0, len(order), size)]

    monkeypatch.setattr(training, "training_batches", batches)
    config = TrainConfig(epochs=2, batch_size=8, learning_rate=5e-3, warmup_ratio=0.2, precision="fp32",
                         grad_accumulation=grad_accumulation).resolved(24)  # fmt: skip
    ours = model()
    objective = SequenceObjective("classification", labels)
    training.fit(ours, encoded, config, objective, device=torch.device("cpu"), run=training.RunOptions(progress=False))

    reference = model()
    reference.train()
    no_decay = [p for n, p in reference.named_parameters() if n.endswith(("bias", "LayerNorm.weight"))]
    decay = [p for n, p in reference.named_parameters() if not n.endswith(("bias", "LayerNorm.weight"))]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=5e-3)  # fmt: skip
    total = 2 * 3
    schedule = get_linear_schedule_with_warmup(optimizer, math.ceil(0.2 * total), total)
    for _ in range(2):
        for index in batches(None, 8, None):
            inputs = collate(encoded, index, with_type_ids=False)
            loss = torch.nn.functional.cross_entropy(reference(**inputs).logits, torch.as_tensor(labels[index]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(reference.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()

    start = model().state_dict()
    for name, value in reference.state_dict().items():
        moved = (value - start[name]).abs().max().item()
        difference = (ours.state_dict()[name] - value).abs().max().item()
        assert difference <= 1e-5 + 1e-3 * moved, f"{name}: differs by {difference:.2e} (moved {moved:.2e})"
    assert (ours.state_dict()["classifier.weight"] - start["classifier.weight"]).abs().max() > 1e-3
