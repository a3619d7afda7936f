"""The packed BERT forward gives the Hugging Face forward's logits, and applies only where it can."""

from __future__ import annotations

import contextlib

import pytest
import torch
from helpers import assert_packed_equals_hf
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from bertkit.data.encoding import encode
from bertkit.engine.forward import predict_logits
from bertkit.models.packed import cls_only_last_layer, packed_classifier

TEXTS = ["good", "the film was very good and the music was lovely", "bad plot", "a dull , tedious and weak story"]
PAIRS = ["great acting", "the story is okay", "awful", "meh"]


def _classifier(folder, num_labels: int = 3):
    torch.manual_seed(1)
    return AutoModelForSequenceClassification.from_pretrained(folder, num_labels=num_labels).eval()


@pytest.fixture(scope="module")
def bert(tiny_bert):
    return _classifier(tiny_bert), AutoTokenizer.from_pretrained(tiny_bert)


def _batch(tokenizer, texts, pairs=None, **kwargs) -> dict[str, torch.Tensor]:
    return dict(tokenizer(texts, pairs, padding=True, return_tensors="pt", **kwargs))


@pytest.mark.parametrize(
    "case", ["mixed lengths", "pairs with segment ids", "one text", "no padding", "no token_type_ids"]
)
def test_packed_logits_equal_the_hugging_face_forward(bert, case):
    model, tokenizer = bert
    batch = {
        "mixed lengths": lambda: _batch(tokenizer, TEXTS),
        "pairs with segment ids": lambda: _batch(tokenizer, TEXTS, PAIRS),
        "one text": lambda: _batch(tokenizer, TEXTS[1:2]),
        "no padding": lambda: _batch(tokenizer, ["good film", "bad film"]),
        "no token_type_ids": lambda: {k: v for k, v in _batch(tokenizer, TEXTS).items() if k != "token_type_ids"},
    }[case]()
    if case == "pairs with segment ids":
        assert batch["token_type_ids"].any()  # the segment embedding is really exercised
    if case == "mixed lengths":
        assert not batch["attention_mask"].all()  # and padding is really there
    assert_packed_equals_hf(model, batch)


def test_left_padded_batches_and_training_mode_use_the_model_forward(bert):
    model, tokenizer = bert
    tokenizer = AutoTokenizer.from_pretrained(tokenizer.name_or_path, padding_side="left")
    batch = _batch(tokenizer, TEXTS)
    assert not batch["attention_mask"][:, 0].all()
    with torch.inference_mode():
        torch.testing.assert_close(packed_classifier(model)(**batch), model(**batch).logits)
    model.train()  # dropout on: only the model's own forward reproduces its random masks
    try:
        with torch.inference_mode():
            torch.manual_seed(3)
            got = packed_classifier(model)(**_batch(tokenizer, TEXTS))
            torch.manual_seed(3)
            expected = model(**_batch(tokenizer, TEXTS)).logits
    finally:
        model.eval()
    torch.testing.assert_close(got, expected)


def test_packed_forward_under_bf16_autocast_stays_close(bert):
    model, tokenizer = bert
    batch = _batch(tokenizer, TEXTS, PAIRS)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = model(**batch).logits.float()
        got = packed_classifier(model)(**batch).float()
    torch.testing.assert_close(got, expected, atol=0.05, rtol=0.05)


def test_other_architectures_keep_their_own_forward(tiny_distilbert, tiny_roberta, bert):
    # DistilBERT and RoBERTa run packed too (tests/unit/test_packed_families.py); a bare encoder does not.
    assert packed_classifier(_classifier(tiny_distilbert)) is not None
    assert packed_classifier(_classifier(tiny_roberta)) is not None
    model, _ = bert
    assert packed_classifier(model.bert) is None  # the bare encoder has no classification head


def test_predict_logits_packed_and_unpacked_agree(bert):
    model, tokenizer = bert
    encoded = encode(tokenizer, TEXTS * 3, PAIRS * 3, 32, None)
    packed = predict_logits(model, encoded, batch_size=5)
    plain = predict_logits(model, encoded, batch_size=5, packed=False)
    assert packed.shape == (12, 3)
    assert abs(packed - plain).max() < 1e-5
    assert model.training is False


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_cls_only_last_layer_trains_like_the_full_layer(tiny_bert, implementation):
    """Training through the [CLS]-only last layer gives the full layer's logits and gradients (dropout off)."""

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    batch = tokenizer(["a good film", "the plot was long and dull and slow"], padding=True, return_tensors="pt")
    target = torch.tensor([1, 0])

    def logits_and_grads(cls_only: bool):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(tiny_bert), num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            attn_implementation=implementation,
        )  # fmt: skip
        model.train()
        with cls_only_last_layer(model) if cls_only else contextlib.nullcontext():
            logits = model(**batch).logits
            torch.nn.functional.cross_entropy(logits, target).backward()
        return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, model

    full_logits, full_grads, _ = logits_and_grads(False)
    logits, grads, model = logits_and_grads(True)
    torch.testing.assert_close(logits, full_logits, atol=1e-6, rtol=1e-5)
    assert grads.keys() == full_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, full_grads[name], atol=1e-6, rtol=1e-4, msg=name)
    assert "forward" not in vars(model.bert.encoder.layer[-1])  # the layer's own forward is back


def test_cls_only_last_layer_leaves_other_architectures_alone(tiny_distilbert):

    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_distilbert), num_labels=2)
    with cls_only_last_layer(model.distilbert) as applied:  # a bare encoder: no head reading [CLS]
        assert not applied
