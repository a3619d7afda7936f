"""Shared fixtures: offline settings, tiny random models built in-process, small synthetic data.

Plain helpers live in helpers.py. Everything under tests/integration/ is marked ``slow``, so
``pytest -m "not slow"`` is the fast loop (tests/unit plus nothing that trains for long, spawns or listens).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

# Re-exported for test modules still written ``from conftest import ...``: new code imports from helpers.
from helpers import (  # noqa: E402, F401
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    SHARED_DATA,
    WORDS,
    build_tiny_bert,
    build_tiny_classifier,
    build_tiny_distilbert,
    build_tiny_roberta,
    make_squad,
    needs_shared_data,
    ner_examples,
    sentiment_examples,
    write_conll,
    write_squad,
)

INTEGRATION = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(config, items):
    """Everything under tests/integration/ is slow: subprocesses, sockets, a browser, real data, long training."""
    for item in items:
        if INTEGRATION in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.slow)


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


@pytest.fixture(scope="session")
def tiny_classifier(tiny_bert, tmp_path_factory) -> Path:
    """A saved bertkit classifier folder (labels 'negative', 'positive') on the tiny random BERT."""
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny-classifier"), tiny_bert)
