"""The ONNX export traces the packed forward for every encoder family, and ONNX Runtime's logits equal torch's
(tiny random models of each family, the tiny BERT tokenizer's ids)."""

from __future__ import annotations

import collections

import pytest
import torch
import transformers
from helpers import build_tiny_bert, modernbert_config
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from bertkit.export import export_onnx
from bertkit.models.packed import packed_classifier
from bertkit.onnx_forward import OnnxForward

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

SMALL = {"num_attention_heads": 4, "intermediate_size": 37, "max_position_embeddings": 64, "hidden_size": 32}
FAMILIES = {
    "bert": ("BertConfig", SMALL | {"num_hidden_layers": 2}),
    "roberta": ("RobertaConfig", SMALL | {"num_hidden_layers": 2, "pad_token_id": 1}),
    "xlm-roberta": ("XLMRobertaConfig", SMALL | {"num_hidden_layers": 2, "pad_token_id": 1}),
    "electra": ("ElectraConfig", SMALL | {"num_hidden_layers": 2, "embedding_size": 16}),
    "distilbert": ("DistilBertConfig", {"dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 37}),
    "albert": ("AlbertConfig", SMALL | {"embedding_size": 16, "num_hidden_layers": 2, "num_hidden_groups": 1}),
    "mpnet": ("MPNetConfig", SMALL | {"num_hidden_layers": 2}),
    "deberta-v3": (
        "DebertaV2Config",
        SMALL
        | {
            "num_hidden_layers": 2,
            "relative_attention": True,
            "position_buckets": 4,
            "type_vocab_size": 0,
            "pos_att_type": ["p2c", "c2p"],
            "position_biased_input": False,
        },
    ),
    "modernbert-mean": modernbert_config(SMALL, "mean"),
}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return AutoTokenizer.from_pretrained(build_tiny_bert(tmp_path_factory.mktemp("bert")))


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_export_traces_the_packed_forward(name, tokenizer, tmp_path):
    config_class, fields = FAMILIES[name]
    config = getattr(transformers, config_class)(**fields, vocab_size=len(tokenizer), num_labels=3)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    assert packed_classifier(model) is not None
    path = export_onnx(model, tokenizer, tmp_path)  # raises when ONNX Runtime disagrees with torch
    ops = collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)
    assert ops["NonZero"] >= 1  # the real tokens' indices: the packed graph, not the padded one
    if not name.startswith("deberta"):  # DeBERTa's own attention module runs on the zero-padded grid
        # Attention's inputs are gathered straight into the head-major grid and its mask is additive: no
        # fill-and-scatter onto a zeroed grid, no boolean mask (Where, and IsNaN after each softmax).
        assert ops["ScatterND"] == ops["IsNaN"] == 0, ops
    batch = dict(
        tokenizer(["a good film", "the plot was very long and dull", "bad"], padding=True, return_tensors="pt")
    )
    with torch.inference_mode():
        expected = model(**batch).logits.numpy()
    got = OnnxForward(path)(batch)
    assert abs(got - expected).max() < 1e-4
