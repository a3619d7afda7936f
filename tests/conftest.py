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
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Under pytest-xdist each worker gets one intra-op thread: two workers each running torch's default pool of
    # one thread per core would oversubscribe the cores, and OpenMP's spinning threads then slow both severalfold.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from helpers import (  # noqa: E402
    build_tiny_bert,
    build_tiny_classifier,
    build_tiny_distilbert,
    build_tiny_roberta,
    sentiment_examples,
    write_sentiment_csvs,
)

INTEGRATION = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(config, items):
    """Everything under tests/integration/ is slow: subprocesses, sockets, a browser, real data, long training."""
    for item in items:
        if INTEGRATION in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.slow)


def _is_fast_loop(config: pytest.Config) -> bool:
    return config.getoption("markexpr", "").replace(" ", "") == "notslow"


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """The fast loop (``-m "not slow"``) runs on pytest-xdist workers, one per core (at most 4).

    Its tests are small and single-threaded at heart (tiny models, Python overhead), so one worker per core halves
    its time on two cores. Runs before xdist's own hook (both ``tryfirst``; conftests register later, so run
    first). ``-n N`` given by hand wins, ``-n 0`` turns it off; ``--pdb`` and ``--collect-only`` stay in-process;
    so does the full suite, whose tests spawn processes and servers of their own.
    """
    if not _is_fast_loop(config) or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    if not config.pluginmanager.hasplugin("xdist") or config.getoption("numprocesses", None) is not None:
        return
    if config.getoption("usepdb") or config.getoption("collectonly"):
        return
    workers = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 4)
    if workers > 1:
        config.option.numprocesses = workers
        if config.getoption("dist", "no") == "no":
            # idle workers take tests queued for the other: a few tests train for seconds, and plain load
            # balancing left one worker running them after the other had finished (measured: 36 s against 43 s)
            config.option.dist = "worksteal"


def pytest_ignore_collect(collection_path, config):
    """Under ``-m "not slow"`` every test in tests/integration/ would be deselected anyway: not importing those
    modules (Ray, uvicorn, selenium, ...) takes seconds off the fast loop's start."""
    if not _is_fast_loop(config):
        return None
    path = Path(str(collection_path)).resolve()
    return True if path == INTEGRATION or INTEGRATION in path.parents else None


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


@pytest.fixture(scope="module")
def config_data_dir(tmp_path_factory) -> Path:
    """train.csv (64 rows) and valid.csv (16 rows) of sentiment examples, for the config-file tests."""
    folder = tmp_path_factory.mktemp("config-data")
    return write_sentiment_csvs(folder, train_rows=64, validation_rows=16)


@pytest.fixture
def scripted_fit(tiny_bert):
    """training.fit on a tiny BERT whose validation scores are scripted: 0.9, 0.5, 0.4 (epoch 1 best).

    Returns (result, weights after each epoch, validation logits of each epoch, win_share calls, final weights).
    """
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from bertkit.classification.objective import SequenceObjective
    from bertkit.config import TrainConfig
    from bertkit.data.encoding import encode
    from bertkit.engine import loop as training
    from bertkit.engine.objective import Validation

    def run(keep_epoch: str, share: float | None, scores=(0.9, 0.5, 0.4), epochs: int = 3, patience: int = 0):
        texts = [f"good movie {i}" if i % 2 else f"awful plot {i}" for i in range(16)]
        tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
        train = encode(tokenizer, texts, None, 16)
        validation = encode(tokenizer, texts[:6], None, 16)
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2)
        scores, snapshots, logits_seen, calls = iter(scores), [], [], []

        def evaluate(logits: np.ndarray) -> dict[str, float]:
            logits_seen.append(logits)
            snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
            return {"mcc": next(scores)}

        class Scorer:  # a ValidationScorer: scripted scores; `share` as the bootstrap's answer (None: no test)
            main_metric = "mcc"

            def score(self, logits: np.ndarray) -> dict[str, float]:
                return evaluate(logits)

            def win_share(self, first, second) -> float | None:
                if share is not None:
                    calls.append((first, second))
                return share

        config = TrainConfig(epochs=epochs, batch_size=8, learning_rate=1e-3, precision="fp32",
                             keep_epoch=keep_epoch, early_stopping_patience=patience).resolved(16)  # fmt: skip
        result = training.fit(
            model, train, config, SequenceObjective("classification", np.arange(16) % 2), device=torch.device("cpu"),
            validation=Validation(validation, Scorer()), run=training.RunOptions(progress=False),
        )  # fmt: skip
        return result, snapshots, logits_seen, calls, model.state_dict()

    return run
