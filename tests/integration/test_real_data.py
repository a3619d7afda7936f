"""The packaged MiniLM on small slices of ../shared/data: one test per task shape.

Kept small (a few hundred rows, max_length 64) so the whole file runs in a few minutes on 2 cores;
the full-size runs live in benchmarks/accuracy.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import SHARED_DATA, needs_shared_data

from bertkit import TextClassifier, load_data

pytestmark = pytest.mark.integration
QUICK = dict(max_length=64, progress=False, seed=13)


def head(data, n: int):
    return data.subset(np.arange(min(n, len(data))))


@needs_shared_data("rotten_tomatoes")
def test_rotten_tomatoes_sentiment_beats_chance_clearly(tmp_path):
    folder = SHARED_DATA / "rotten_tomatoes"
    train = load_data(folder / "train.csv")
    clf = TextClassifier(epochs=1, max_train_rows=600, **QUICK).fit(
        train, eval_set=head(load_data(folder / "validation.csv"), 200)
    )
    report = clf.evaluate(head(load_data(folder / "test.csv"), 300))
    assert list(clf.classes_) == ["negative", "positive"]
    assert report.metrics["accuracy"] >= 0.7, report.metrics
    assert set(clf.predict(["a moving, beautifully acted film"])) <= {"negative", "positive"}


@needs_shared_data("glue", "MRPC")
def test_mrpc_sentence_pairs_from_a_glue_tsv():
    folder = SHARED_DATA / "glue" / "MRPC"
    train = load_data(folder / "train.tsv")
    assert (train.columns.text, train.columns.pair, train.columns.label) == ("#1 String", "#2 String", "Quality")
    clf = TextClassifier(epochs=1, max_train_rows=500, **QUICK).fit(train)
    report = clf.evaluate(head(load_data(folder / "dev.tsv"), 200))
    assert list(clf.classes_) == [0, 1]
    assert {"accuracy", "f1", "mcc"} <= set(report.metrics)
    assert report.metrics["accuracy"] >= 0.6, report.metrics


@needs_shared_data("glue", "STS-B")
def test_stsb_regression_on_float_scores():
    train = load_data(SHARED_DATA / "glue" / "STS-B" / "train.tsv")
    assert (train.columns.text, train.columns.pair, train.columns.label) == ("sentence1", "sentence2", "score")
    data = head(train, 700)
    fit, held_out = data.subset(np.arange(500)), data.subset(np.arange(500, 700))
    clf = TextClassifier(epochs=2, **QUICK).fit(fit)
    assert clf.task_ == "regression"
    report = clf.evaluate(held_out)
    assert report.metrics["pearson"] >= 0.5, report.metrics
    assert "spearman" in report.metrics


@needs_shared_data("goemotions")
@pytest.mark.filterwarnings(
    "ignore:.*are also rows of the validation data:bertkit.exceptions.BertkitWarning"
)  # duplicates the data set has
def test_goemotions_multi_label_with_label_names():
    folder = SHARED_DATA / "goemotions"
    names = (folder / "labels.txt").read_text().split()
    train = load_data(folder / "train.tsv", label_names=names)
    assert train.columns.text == "0"
    clf = TextClassifier(epochs=1, max_train_rows=800, **QUICK).fit(
        train, eval_set=head(load_data(folder / "dev.tsv", label_names=names), 300)
    )
    assert clf.task_ == "multi-label"
    assert set(clf.classes_) <= set(names) and "neutral" in clf.classes_
    assert clf.thresholds_.shape == (len(clf.classes_),)
    report = clf.evaluate(head(load_data(folder / "dev.tsv", label_names=names), 300))
    assert {"micro_f1", "macro_f1"} <= set(report.metrics)
    assert report.metrics["micro_f1"] > 0.2, report.metrics


@needs_shared_data("glue", "CoLA")
@pytest.mark.filterwarnings(
    "ignore:.*are also rows of the validation data:bertkit.exceptions.BertkitWarning"
)  # duplicates the data set has
def test_cola_headerless_tsv_with_mcc():
    folder = SHARED_DATA / "glue" / "CoLA"
    train = load_data(folder / "train.tsv")
    assert (train.columns.text, train.columns.label) == ("3", "1")
    clf = TextClassifier(epochs=1, max_train_rows=600, **QUICK).fit(train)
    report = clf.evaluate(head(load_data(folder / "dev.tsv"), 300))
    assert -1.0 <= report.metrics["mcc"] <= 1.0
    assert report.confusion is not None and np.sum(report.confusion) == 300


@needs_shared_data("conll2003", "eng.testa")
def test_conll2003_reader_and_a_short_ner_run():
    from bertkit import TokenTagger, load_tagged_data
    from bertkit.tagging.metrics import entity_scores

    folder = SHARED_DATA / "conll2003"
    testa = load_tagged_data(folder / "eng.testa")
    assert len(testa) == 3250 and len(load_tagged_data(folder / "eng.train")) == 14041
    # The published CoNLL-2003 development-set entity counts: IOB1 read as BIO gives exactly these.
    counts = {k: v["support"] for k, v in entity_scores(testa.tags, testa.tags)["per_type"].items()}
    assert counts == {"LOC": 1837, "MISC": 922, "ORG": 1341, "PER": 1842}
    tagger = TokenTagger(epochs=2, max_train_rows=600, batch_size=16, learning_rate=2e-4, **QUICK)
    tagger.fit(load_tagged_data(folder / "eng.train"))
    scores = tagger.evaluate(testa.subset(range(300)))
    assert scores["f1"] >= 0.4, scores  # 0.54 when written (seed 13)
