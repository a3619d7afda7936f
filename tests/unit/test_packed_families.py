"""The packed forward of every encoder family gives the Hugging Face forward's logits (eval mode, fp32) on
tiny random models and right-padded batches of different lengths, head variants included."""

from __future__ import annotations

import contextlib

import pytest
import torch
import transformers
from helpers import assert_packed_equals_hf, modernbert_config
from transformers import AutoModelForSequenceClassification

from bertkit.models.packed import cls_only_last_layer, packed_classifier
from bertkit.models.pooling import add_mean_pooling_layer

SMALL = {"vocab_size": 99, "num_attention_heads": 4, "intermediate_size": 37, "max_position_embeddings": 64}
BERT_LIKE = SMALL | {"hidden_size": 32, "num_hidden_layers": 2}
CONFIGS = {
    "bert": ("BertConfig", BERT_LIKE),
    "roberta": ("RobertaConfig", BERT_LIKE | {"pad_token_id": 1}),
    "xlm-roberta": ("XLMRobertaConfig", BERT_LIKE | {"pad_token_id": 1}),
    "camembert": ("CamembertConfig", BERT_LIKE | {"pad_token_id": 1}),
    "electra": ("ElectraConfig", BERT_LIKE | {"embedding_size": 16}),
    "electra-same-size": ("ElectraConfig", BERT_LIKE | {"embedding_size": 32}),
    "distilbert": ("DistilBertConfig", {"vocab_size": 99, "dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 37}),
    "albert": (
        "AlbertConfig",
        SMALL
        | {
            "hidden_size": 32,
            "embedding_size": 16,
            "num_hidden_layers": 4,
            "num_hidden_groups": 2,
            "inner_group_num": 2,
        },
    ),
    "mpnet": ("MPNetConfig", BERT_LIKE),
    "deberta-v3": (
        "DebertaV2Config",
        BERT_LIKE
        | {
            "relative_attention": True,
            "position_buckets": 4,
            "type_vocab_size": 0,
            "pos_att_type": ["p2c", "c2p"],
            "position_biased_input": False,
            "norm_rel_ebd": "layer_norm",
        },
    ),
    "deberta-v2": (
        "DebertaV2Config",
        BERT_LIKE
        | {
            "relative_attention": True,
            "type_vocab_size": 2,
            "max_relative_positions": 6,
            "pos_att_type": ["c2p"],
            "position_biased_input": True,
        },
    ),
    "modernbert-cls": modernbert_config(BERT_LIKE, "cls"),
    "modernbert-mean": modernbert_config(BERT_LIKE, "mean"),
}
LENGTHS = [3, 11, 1, 7]


def tiny_classifier(name: str, attention: str | None = None) -> torch.nn.Module:
    """A random classifier of family ``name`` (attention: the family's default, sdpa where it has one)."""
    config_class, fields = CONFIGS[name]
    config = getattr(transformers, config_class)(**fields, num_labels=3)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation=attention).eval()
    with torch.no_grad():  # weights larger than the 0.02 init, so logits are O(1) and depend on every input
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(std=0.2)
    return model


def padded_batch(model: torch.nn.Module, lengths: list[int] = LENGTHS, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random ids right-padded with the model's pad id (and segment ids when the model has segments)."""
    generator = torch.Generator().manual_seed(seed)
    pad = model.config.pad_token_id or 0
    longest = max(lengths)
    ids = torch.randint(3, model.config.vocab_size, (len(lengths), longest), generator=generator)
    mask = (torch.arange(longest)[None, :] < torch.tensor(lengths)[:, None]).long()
    batch = {"input_ids": ids.masked_fill(mask == 0, pad), "attention_mask": mask}
    if getattr(model.config, "type_vocab_size", 0) > 1:
        batch["token_type_ids"] = (torch.arange(longest)[None, :] >= 2).long() * mask  # a second segment
    return batch


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_packed_logits_equal_the_hugging_face_forward(name):
    model = tiny_classifier(name)
    batch = padded_batch(model)
    assert not batch["attention_mask"].all()  # padding is really there
    assert_packed_equals_hf(model, batch)


@pytest.mark.parametrize("name", ["bert", "roberta", "distilbert", "mpnet", "deberta-v3", "modernbert-mean"])
def test_no_padding_and_one_text(name):
    model = tiny_classifier(name)
    assert_packed_equals_hf(model, padded_batch(model, [6, 6]))
    assert_packed_equals_hf(model, padded_batch(model, [5]))


@pytest.mark.parametrize("name", ["roberta", "mpnet"])
def test_padding_id_inside_a_text_keeps_hugging_face_positions(name):
    """RoBERTa and MPNet count positions over non-padding ids, even inside the attention mask."""
    model = tiny_classifier(name)
    batch = padded_batch(model)
    batch["input_ids"][1, 4] = model.config.pad_token_id
    assert_packed_equals_hf(model, batch)


@pytest.mark.parametrize("name", ["bert", "roberta", "electra"])
def test_mean_pooling_layer_runs_packed(name):
    model = tiny_classifier(name)
    add_mean_pooling_layer(model)
    assert_packed_equals_hf(model, padded_batch(model))


@pytest.mark.parametrize("name", ["roberta", "distilbert", "modernbert-cls"])
def test_eager_attention_models_run_packed_too(name):
    model = tiny_classifier(name, attention="eager")
    assert_packed_equals_hf(model, padded_batch(model))


def test_unknown_or_unusual_models_keep_their_own_forward():
    model = tiny_classifier("bert")
    assert packed_classifier(model.bert) is None  # no classification head
    config = transformers.BertConfig(**BERT_LIKE, is_decoder=True)
    assert packed_classifier(AutoModelForSequenceClassification.from_config(config)) is None
    conv = transformers.DebertaV2Config(**BERT_LIKE, conv_kernel_size=3)
    assert packed_classifier(AutoModelForSequenceClassification.from_config(conv)) is None


@pytest.mark.parametrize("name", ["roberta", "electra", "distilbert"])
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_cls_only_last_layer_trains_like_the_full_layer(name, attention):
    """Training through the [CLS]-only last layer gives the full layer's logits and gradients (dropout off)."""
    batch = padded_batch(tiny_classifier(name), seed=1)
    target = torch.tensor([1, 0, 2, 1])

    def run(cls_only: bool):
        model = tiny_classifier(name, attention)
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        model.train()
        context = cls_only_last_layer(model) if cls_only else contextlib.nullcontext(False)
        with context as applied:
            assert applied == cls_only
            logits = model(**batch).logits
            torch.nn.functional.cross_entropy(logits, target).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return logits.detach(), grads, model

    full_logits, full_grads, _ = run(False)
    logits, grads, model = run(True)
    torch.testing.assert_close(logits, full_logits, atol=1e-6, rtol=1e-5)
    assert grads.keys() == full_grads.keys()
    for key, grad in grads.items():
        torch.testing.assert_close(grad, full_grads[key], atol=1e-6, rtol=1e-4, msg=key)
    assert all("forward" not in vars(layer) for layer in model.modules())  # the layer's own forward is back


@pytest.mark.parametrize("name", ["albert", "mpnet", "deberta-v3", "modernbert-cls"])
def test_cls_only_last_layer_leaves_other_families_alone(name):
    with cls_only_last_layer(tiny_classifier(name).train()) as applied:
        assert not applied
