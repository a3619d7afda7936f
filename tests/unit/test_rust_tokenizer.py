"""The Rust tokenizer core that prediction with an ONNX graph tokenizes with (no transformers import) gives the
ids transformers gives: texts, pairs, truncation, windows, windows over pairs, long-text counts; and which
folders it serves."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from transformers import AutoTokenizer

from bertkit.data.encoding import count_longer, encode
from bertkit.models.checkpoints import resolve_checkpoint
from bertkit.models.rust_tokenizer import MODEL_INPUT_NAMES, RustTokenizer, load_rust_tokenizer

WORDS = ["great", "good", "bad", "awful", "the", "film", "movie", "plot", "was", "very", "and", "story", "music"]


def sentences(n: int, seed: int, low: int, high: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(low, high))) for _ in range(n)]


TEXTS = [*sentences(30, 1, 1, 40), "", "x", "Unusual W0rds, punctuation!? [SEP] [CLS] <s>", "Ünïcödé café naïve 北京"]
PAIRS = sentences(len(TEXTS), 2, 1, 30)


@pytest.fixture(params=["tiny_bert", "tiny_distilbert", "tiny_roberta", "minilm"])
def folder(request) -> str:
    if request.param == "minilm":
        return resolve_checkpoint("minilm")
    return str(request.getfixturevalue(request.param))


def same(a, b) -> None:
    for field in ("ids", "offsets", "lengths", "doc_index"):
        x, y = getattr(a, field), getattr(b, field)
        assert (x is None) == (y is None), field
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=field)
    assert (a.type_ids is None) == (b.type_ids is None), "segment ids in one encoding only"
    if b.type_ids is not None:
        np.testing.assert_array_equal(a.type_ids, b.type_ids)
    assert a.pad_id == b.pad_id and a.n_docs == b.n_docs


def test_the_same_ids_as_transformers(folder):
    rust, hf = load_rust_tokenizer(folder), AutoTokenizer.from_pretrained(folder)
    assert isinstance(rust, RustTokenizer)
    assert rust.pad_token_id == hf.pad_token_id
    assert rust.num_special_tokens_to_add(pair=True) == hf.num_special_tokens_to_add(pair=True)
    for max_length in (8, 16, 64):
        same(encode(rust, TEXTS, None, max_length), encode(hf, TEXTS, None, max_length))
        same(encode(rust, TEXTS, PAIRS, max_length), encode(hf, TEXTS, PAIRS, max_length))
        assert count_longer(rust, TEXTS, PAIRS, max_length) == count_longer(hf, TEXTS, PAIRS, max_length)
    for max_length, stride in ((12, 3), (16, 4)):  # windows of long texts, and of the second texts of pairs
        same(encode(rust, TEXTS, None, max_length, stride), encode(hf, TEXTS, None, max_length, stride))
        same(encode(rust, TEXTS, PAIRS, max_length, stride), encode(hf, TEXTS, PAIRS, max_length, stride))


def test_other_attributes_come_from_transformers(tiny_bert, tmp_path):
    rust = load_rust_tokenizer(str(tiny_bert))
    assert rust._full is None
    rust.save_pretrained(tmp_path)  # not its own: the transformers tokenizer, loaded on demand
    assert rust._full is not None and (tmp_path / "tokenizer.json").is_file()


def test_folders_it_does_not_serve_get_transformers_tokenizer(tiny_bert, tmp_path, monkeypatch):
    import bertkit.models.rust_tokenizer as module

    monkeypatch.setattr(module, "load_tokenizer", lambda name, trained_by=None: ("transformers", name))
    settings = json.loads((tiny_bert / "tokenizer_config.json").read_text())
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "config.json"):
        (tmp_path / name).write_bytes((tiny_bert / name).read_bytes())
    assert isinstance(load_rust_tokenizer(str(tmp_path)), RustTokenizer)
    for changed in ({"tokenizer_class": "XLNetTokenizer"}, {"auto_map": {"AutoTokenizer": ["x.Tok", None]}}):
        (tmp_path / "tokenizer_config.json").write_text(json.dumps({**settings, **changed}))
        assert load_rust_tokenizer(str(tmp_path)) == ("transformers", str(tmp_path))  # a class with Python steps
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(settings))
    (tmp_path / "tokenizer.json").unlink()
    assert load_rust_tokenizer(str(tmp_path)) == ("transformers", str(tmp_path))
    assert load_rust_tokenizer("some/hub-id") == ("transformers", "some/hub-id")


def test_each_served_class_declares_the_inputs_transformers_declares():
    import transformers

    for kind, names in MODEL_INPUT_NAMES.items():
        declared = getattr(transformers, kind + "Fast", None) or getattr(transformers, kind)
        assert tuple(declared.model_input_names) == names, kind


def test_other_calls_and_split_special_tokens_follow_transformers(tiny_bert, tmp_path):
    rust, hf = load_rust_tokenizer(str(tiny_bert)), AutoTokenizer.from_pretrained(str(tiny_bert))
    padded = rust(["a film", "a very good film"], padding=True, return_tensors="np")  # export's call
    np.testing.assert_array_equal(padded["input_ids"], hf(["a film", "a very good film"], padding=True,
                                                           return_tensors="np")["input_ids"])  # fmt: skip
    assert rust("one text")["input_ids"] == hf("one text")["input_ids"]
    settings = json.loads((tiny_bert / "tokenizer_config.json").read_text())
    for name in ("tokenizer.json", "vocab.txt", "config.json"):
        (tmp_path / name).write_bytes((tiny_bert / name).read_bytes())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**settings, "split_special_tokens": True}))
    rust, hf = load_rust_tokenizer(str(tmp_path)), AutoTokenizer.from_pretrained(str(tmp_path))
    texts = ["the film [SEP] was good", "[CLS] great"]
    split = encode(rust, texts, None, 32)
    same(split, encode(hf, texts, None, 32))
    assert split.lengths[0] > encode(load_rust_tokenizer(str(tiny_bert)), texts, None, 32).lengths[0]
