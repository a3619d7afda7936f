"""Shared test helpers (plain functions and constants, no fixtures): tiny model builders, synthetic data.

Test modules import these from here (``from helpers import ...``), never from conftest or another test module;
the fixtures that wrap them live in conftest.py.
"""

from __future__ import annotations

import contextlib
import csv
import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

POSITIVE = ["great", "good", "wonderful", "superb", "lovely", "brilliant", "charming", "moving"]
NEGATIVE = ["bad", "awful", "boring", "dull", "terrible", "clumsy", "tedious", "weak"]
NEUTRAL = ["the", "film", "movie", "plot", "acting", "was", "is", "a", "very", "quite", "and", "story", "music"]
WORDS = POSITIVE + NEGATIVE + NEUTRAL + ["mixed", "meh", "okay", "sports", "news"]


def _vocab() -> list[str]:
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *letters, *(f"##{c}" for c in letters)]


def build_tiny_bert(folder: Path) -> Path:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(0)  # the same random model in every session: test outcomes must not vary

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(_vocab()) + "\n")
    tokenizer = BertTokenizer(vocab=str(folder / "vocab.txt"), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=128,
    )  # fmt: skip
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_distilbert(folder: Path) -> Path:
    import torch
    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizer

    torch.manual_seed(0)

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(_vocab()) + "\n")
    tokenizer = DistilBertTokenizer(vocab=str(folder / "vocab.txt"), do_lower_case=True)
    config = DistilBertConfig(
        vocab_size=len(_vocab()), dim=32, n_layers=2, n_heads=2, hidden_dim=37, max_position_embeddings=128
    )
    DistilBertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_roberta(folder: Path) -> Path:
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

    torch.manual_seed(0)

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    corpus = [" ".join(random.Random(i).choices(WORDS, k=8)) for i in range(300)]
    bpe.train_from_iterator(
        corpus, vocab_size=400, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    bpe.save_model(str(folder))
    tokenizer = RobertaTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))
    config = RobertaConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=130, type_vocab_size=1, pad_token_id=1,
    )  # fmt: skip
    RobertaModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def sentiment_examples(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Short texts whose label is decided by one sentiment word: learnable by a tiny model."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        positive = i % 2 == 0
        word = rng.choice(POSITIVE if positive else NEGATIVE)
        filler = rng.choices(NEUTRAL, k=rng.randint(2, 8))
        filler.insert(rng.randint(0, len(filler)), word)
        texts.append(" ".join(filler))
        labels.append("positive" if positive else "negative")
    return texts, labels


def needs_shared_data(*parts: str):
    path = SHARED_DATA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"shared data not found at {path}")


def ner_examples(n: int, seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    """Sentences of vocabulary words with IOB1 tags a tiny model can learn from the words alone: PER entities
    are two words (one of the first four positive words, then one of the last four), LOC entities one negative
    word, everything else O; an entity is always followed by an O word."""
    rng = random.Random(seed)
    sentences, tags = [], []
    for _ in range(n):
        words, labels = [], []
        for _ in range(rng.randint(2, 6)):
            roll = rng.random()
            if roll < 0.25:
                words += [rng.choice(POSITIVE[:4]), rng.choice(POSITIVE[4:])]
                labels += ["I-PER", "I-PER"]
            elif roll < 0.45:
                words.append(rng.choice(NEGATIVE))
                labels.append("I-LOC")
            words.append(rng.choice(NEUTRAL))
            labels.append("O")
        sentences.append(words)
        tags.append(labels)
    return sentences, tags


def write_conll(path: Path, sentences: list[list[str]], tags: list[list[str]]) -> Path:
    """A CoNLL-2003 style file (word POS chunk NER, -DOCSTART- first, blank lines between sentences)."""
    lines = ["-DOCSTART- -X- -X- O", ""]
    for words, labels in zip(sentences, tags, strict=True):
        lines += [f"{w} NN I-NP {t}" for w, t in zip(words, labels, strict=True)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def build_tiny_classifier(folder: Path, base: Path) -> Path:
    """A sentiment classifier (labels 'negative', 'positive') on the tiny BERT at ``base``, saved to ``folder``.

    One quick epoch, then a head with large random weights: a tiny random encoder learns little in seconds,
    and tests of serving need each text to get a clearly different answer (a mix-up must show)."""
    import torch

    from bertkit import TextClassifier

    texts, labels = sentiment_examples(64)
    classifier = TextClassifier(model=str(base), epochs=1, batch_size=16, max_length=32, progress=False)
    classifier.fit(texts, labels)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        head = classifier.model_.classifier.weight
        head.copy_(torch.randn(head.shape, generator=generator) * 4)
    # The temperature and conformal scores were fitted to the head the run trained, not to this one.
    classifier.temperature_ = classifier.conformal_scores_ = None
    classifier.save(folder)
    return folder


# Synthetic SQuAD data from the tiny vocabulary: each context hides one sentiment word among neutral words.
#
# "what is good ?" is answered by the context's positive word (sometimes with "very" before it); with
# ``impossible_share`` some questions are "what is bad ?" about a context without a negative word (SQuAD v2).
# A tiny random BERT learns the task in a few epochs.


def make_context(rng: random.Random, answer: str | None, n_words: int) -> tuple[str, int]:
    """Neutral words with ``answer`` inserted at a random place, some commas, a final full stop; returns the
    context and the answer's character offset (-1 without an answer)."""
    words = rng.choices(NEUTRAL, k=n_words)
    at = rng.randint(0, n_words)
    pieces = words[:at] + ([answer] if answer else []) + words[at:]
    text, start = "", -1
    for i, piece in enumerate(pieces):
        if i:
            text += ", " if rng.random() < 0.15 else " "
        if answer and i == at:
            start = len(text)
        text += piece
    return text + ".", start


def make_squad(
    n: int, *, seed: int = 0, impossible_share: float = 0.0, n_words: tuple[int, int] = (6, 14), per_article: int = 4
) -> dict[str, Any]:
    """A SQuAD object with ``n`` questions, ``per_article`` per article (titles "article 0", ...)."""
    rng = random.Random(seed)
    articles: list[dict[str, Any]] = []
    for i in range(n):
        if i % per_article == 0:
            articles.append({"title": f"article {len(articles)}", "paragraphs": []})
        impossible = rng.random() < impossible_share
        if impossible:
            context, _ = make_context(rng, rng.choice(POSITIVE), rng.randint(*n_words))
            qa = {"id": f"q{i}", "question": "what is bad ?", "answers": [], "is_impossible": True}
        elif impossible_share and rng.random() < 0.5:
            answer = rng.choice(NEGATIVE)
            context, start = make_context(rng, answer, rng.randint(*n_words))
            qa = {"id": f"q{i}", "question": "what is bad ?", "answers": [{"text": answer, "answer_start": start}]}
        else:
            answer = ("very " if rng.random() < 0.3 else "") + rng.choice(POSITIVE)
            context, start = make_context(rng, answer, rng.randint(*n_words))
            qa = {"id": f"q{i}", "question": "what is good ?", "answers": [{"text": answer, "answer_start": start}]}
        articles[-1]["paragraphs"].append({"context": context, "qas": [qa]})
    return {"version": "v2.0" if impossible_share else "1.1", "data": articles}


def write_squad(path: Path, squad: dict[str, Any]) -> Path:
    path.write_text(json.dumps(squad), encoding="utf-8")
    return path


# Tiny models and batches for the training loop (tests/unit/test_cuda_graphs.py, test_keep_epoch.py and their runs)


def tiny_sequence_model(tiny_bert: Path, dropout: float = 0.0):
    """A 2-label sequence classifier on the tiny BERT, seeded: the same starting weights on every call."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(
        str(tiny_bert), num_labels=2, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout
    )


def random_encoded(n: int, seed: int = 0, longest: int = 20):
    """``n`` random token sequences of 3 to ``longest`` tokens, [CLS] first, as an Encoded (max_length 128)."""
    import numpy as np

    from bertkit.data.encoding import Encoded

    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, longest + 1, size=n).astype(np.int64)
    ids = rng.integers(5, 60, size=int(lengths.sum())).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    ids[offsets] = 2  # [CLS] first
    return Encoded(ids, None, offsets, lengths, 0, 128)


def assert_same_weights(state: dict, expected: dict) -> None:
    import torch

    for name, value in expected.items():
        torch.testing.assert_close(state[name], value, msg=name)


# The CLI, run in-process through bertkit.cli.main


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def run_cli(*args: object) -> int:
    """Run ``bertkit ARGS``; the exit code (0 when main returns)."""
    from bertkit.cli import main

    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def ok(capsys, *args: object) -> tuple[str, str]:
    code = run_cli(*args)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err
    return out, err


def fails(capsys, *args: object, alone: bool = True) -> str:
    """Run a command that must fail cleanly; return its one ``error:`` line.

    ``alone=False`` allows progress lines before it (train prints what it read before loading the model)."""
    code = run_cli(*args)
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    if alone:
        assert lines == errors, err
    return errors[0]


# A real server on a loopback socket (the serve extra: uvicorn, httpx)


@contextlib.contextmanager
def live_server(app, holder: dict | None = None, headers: dict | None = None) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a thread; yields its base URL once ready
    (``holder`` receives the server and its thread)."""
    import httpx
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    if holder is not None:
        holder.update(server=server, thread=thread)
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    while httpx.get(url + "/ready", headers=headers).status_code != 200:
        assert time.monotonic() < deadline, "the model did not get ready"
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


def write_sentiment_csvs(folder: Path, *, train_rows: int, validation_rows: int) -> Path:
    """``folder``/train.csv and valid.csv (``text,label``) of sentiment examples, seeds 0 and 1; returns ``folder``."""
    for name, n, seed in (("train.csv", train_rows, 0), ("valid.csv", validation_rows, 1)):
        texts, labels = sentiment_examples(n, seed=seed)
        write_csv(folder / name, ["text", "label"], [list(r) for r in zip(texts, labels, strict=True)])
    return folder


class Killed(Exception):
    """Stands in for the process dying (a kill, a lost machine) in the middle of training."""


def kill_at_micro_batch(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """Make the ``call``-th micro-batch of training raise :class:`Killed`, as if the process died there."""
    from bertkit.engine import loop

    real_step, calls = loop._Trainer._step, [0]

    def step(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == call:
            raise Killed(f"killed at micro-batch {call}")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(loop._Trainer, "_step", step)


def modernbert_config(base: dict[str, Any], pooling: str) -> tuple[str, dict[str, Any]]:
    """A tiny ModernBERT config (class name, keyword arguments) on ``base`` sizes: three layers, local attention
    over 4 tokens in every other layer, the given classifier pooling (``cls`` or ``mean``)."""
    settings = {"num_hidden_layers": 3, "local_attention": 4, "pad_token_id": 0, "classifier_pooling": pooling,
                "global_attn_every_n_layers": 2}  # fmt: skip
    return "ModernBertConfig", base | settings


def assert_packed_equals_hf(model: Any, batch: dict[str, Any]) -> float:
    """Assert that bertkit's packed forward of ``model`` gives the Hugging Face forward's logits on ``batch`` (fp32
    rounding: atol 1e-5, rtol 1e-4); returns the largest absolute difference."""
    import torch

    from bertkit.models.packed import PackedClassifier, packed_classifier

    forward = packed_classifier(model)
    assert isinstance(forward, PackedClassifier)
    with torch.inference_mode():
        expected = model(**batch).logits
        got = forward(**batch)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    return float((got - expected).abs().max())


# Flags of quick `bertkit train` runs on the tiny BERT: two epochs at 32 tokens (CLI and read-settings tests), one
# epoch at 24 (config-file, seeds and tuning runs). --no-export: the ONNX export and backend choice after training
# are tested in tests/integration/test_fast_backend.py, not repeated by every run.
CLI_TRAIN_FLAGS = ["--epochs", "2", "--batch-size", "16", "--learning-rate", "0.002", "--max-length", "32", "--quiet",
                   "--no-export"]  # fmt: skip
ONE_EPOCH_FLAGS = ["--epochs", "1", "--batch-size", "16", "--learning-rate", "0.002", "--max-length", "24", "--quiet",
                   "--no-export"]  # fmt: skip
