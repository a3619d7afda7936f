"""--rdrop-layers: R-Drop's copies made in front of the top layers (bertkit.models.shared_copies). Without
dropout the copies equal the batch stacked at the input, outputs and gradients; with dropout the lower layers run
once and the copies differ from the top layers up; eval mode and the end of training leave the model as it was."""

from __future__ import annotations

import pytest
import torch
from helpers import sentiment_examples
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from bertkit import ConfigError, TextClassifier, TrainConfig
from bertkit.models.shared_copies import copies_from_top_layers, top_layers

TEXTS = ["a good film", "bad", "an awful, long and dull film with nothing in it"]  # padded: lengths differ


def _model(folder, dropout: float, layers: int | None = None) -> torch.nn.Module:
    """The tiny model at ``folder`` as a 3-label classifier with ``dropout`` everywhere (and ``layers`` encoder
    layers: those beyond the saved ones start random)."""
    options = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    if layers is not None:
        options["num_hidden_layers"] = layers
    if "distil" in str(folder):
        options = {"dropout": dropout, "attention_dropout": dropout, "seq_classif_dropout": dropout}
        if layers is not None:
            options["n_layers"] = layers
    torch.manual_seed(1)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3, **options)
    return model.train()


def _batch(folder) -> dict[str, torch.Tensor]:
    batch = AutoTokenizer.from_pretrained(folder)(TEXTS, padding=True, return_tensors="pt")
    return {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


@pytest.fixture(params=["tiny_bert", "tiny_roberta", "tiny_distilbert"])
def folder(request):
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("count", [1, 2])
def test_without_dropout_the_copies_equal_the_batch_stacked_at_the_input(folder, count):
    model = _model(folder, 0.0, layers=3)
    batch = _batch(folder)
    stacked = {k: torch.cat([v, v]) for k, v in batch.items()}
    expected = model(**stacked).logits  # [2 x batch, labels]
    (expected**2).sum().backward()
    expected_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    with copies_from_top_layers(model, count):
        got = model(**batch).logits
    assert got.shape == (2 * len(TEXTS), 3)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    (got**2).sum().backward()
    for grad, want in zip([p.grad for p in model.parameters()], expected_grads, strict=True):
        torch.testing.assert_close(grad, want, rtol=1e-4, atol=1e-6)


def test_with_dropout_the_lower_layers_run_once_and_the_copies_differ_above(tiny_bert):
    model = _model(tiny_bert, 0.3)
    batch = _batch(tiny_bert)
    layers = list(model.bert.encoder.layer)  # 2 layers: the top one runs on copies
    seen = {}
    hooks = [
        layer.register_forward_hook(lambda module, args, out, i=i: seen.__setitem__(i, out))
        for i, layer in enumerate(layers)
    ]
    with copies_from_top_layers(model, 1):
        logits = model(**batch).logits
    for hook in hooks:
        hook.remove()
    assert seen[0].shape[0] == len(TEXTS) and seen[1].shape[0] == 2 * len(TEXTS)
    first, second = logits[: len(TEXTS)], logits[len(TEXTS) :]
    assert not torch.allclose(first, second)  # the top layer's dropout masks differ between the copies


def test_eval_mode_and_the_end_of_the_block_leave_the_model_alone(tiny_bert):
    model = _model(tiny_bert, 0.1)
    batch = _batch(tiny_bert)
    with copies_from_top_layers(model, 1):
        model.eval()
        assert model(**batch).logits.shape[0] == len(TEXTS)
    model.train()
    assert model(**batch).logits.shape[0] == len(TEXTS)
    assert all(not layer._forward_pre_hooks for layer in model.bert.encoder.layer)


def test_the_count_must_leave_a_layer_below_and_the_family_must_be_known(tiny_bert):
    model = _model(tiny_bert, 0.1)  # 2 encoder layers
    with pytest.raises(ConfigError, match=r"--rdrop-layers 2: the model has 2 encoder layers; give 1 to 1"):
        top_layers(model, 2)
    assert len(top_layers(model, 1)) == 1

    class Other(torch.nn.Module):
        base_model = torch.nn.Module()
        config = type("Config", (), {"model_type": "gpt2"})()

    with pytest.raises(ConfigError, match=r"gpt2 layers are built otherwise: leave --rdrop-layers out"):
        top_layers(Other(), 1)


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_rdrop_layers_is_a_positive_count(value):
    with pytest.raises(ConfigError, match=r"--rdrop-layers must be a number of top encoder layers, 1 or more"):
        TrainConfig(rdrop_layers=value)


def test_fit_with_rdrop_layers_trains_and_removes_its_hooks(tiny_bert):
    texts, labels = sentiment_examples(24)
    clf = TextClassifier(model=str(tiny_bert), epochs=1, batch_size=8, max_length=24, rdrop=0.5, rdrop_layers=1,
                         precision="fp32", progress=False).fit(texts, labels)  # fmt: skip
    assert clf.config_.rdrop == 0.5 and clf.config_.rdrop_layers == 1
    assert all(not layer._forward_pre_hooks for layer in clf.model_.bert.encoder.layer)
    assert clf.predict_proba(texts[:3]).shape == (3, 2)


def test_rdrop_layers_without_rdrop_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match=r"R-Drop is off here \(--rdrop 0\): add --rdrop 0.5 to run it"):
        TrainConfig(rdrop=0.0, rdrop_layers=2).resolved(5000, "classification")
    with pytest.raises(ConfigError, match=r"on by default only for single-label classification from 4,000"):
        TrainConfig(rdrop_layers=2).resolved(1000, "classification")
    assert TrainConfig(rdrop_layers=2).resolved(5000, "classification").rdrop == 0.5
    assert TrainConfig(rdrop=0.5, rdrop_layers=2).resolved(1000, "classification").rdrop_layers == 2


def test_a_student_distilled_from_a_teacher_trained_with_rdrop_layers_runs_without_either():
    from types import SimpleNamespace

    from bertkit import Distiller
    from bertkit.classification.distillation import parse_student

    teacher = SimpleNamespace(config_=TrainConfig(rdrop=0.5, rdrop_layers=2), task_="classification")
    config = Distiller()._student_config(teacher, parse_student("layers:1"), "teacher")
    assert config.rdrop == 0.0 and config.rdrop_layers is None
    assert config.resolved(5000, "classification").rdrop == 0.0
