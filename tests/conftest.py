"""Shared fixtures: offline settings, tiny random models built in-process, small synthetic data."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

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


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A random 2-layer, 32-wide BERT with a WordPiece vocab written here; never touches a hub."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_distilbert(tmp_path_factory) -> Path:
    return build_tiny_distilbert(tmp_path_factory.mktemp("tiny-distilbert"))


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory) -> Path:
    return build_tiny_roberta(tmp_path_factory.mktemp("tiny-roberta"))


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


@pytest.fixture()
def sentiment_csv(tmp_path) -> Path:
    import csv

    texts, labels = sentiment_examples(160)
    path = tmp_path / "train.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    return path


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
    classifier.save(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_classifier(tiny_bert, tmp_path_factory) -> Path:
    """A saved bertkit classifier folder (labels 'negative', 'positive') on the tiny random BERT."""
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny-classifier"), tiny_bert)
