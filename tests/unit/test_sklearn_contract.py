"""The scikit-learn contract beyond get_params/clone: tags that let pipelines, cross-validation and searches take
the estimators, in-memory inputs as scikit-learn users hold them (DataFrames, arrays, column vectors), labels
typed as given, and fitted state that never outlives a refit."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import sentiment_examples
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from bertkit import BertkitWarning, ConfigError, DataError, TextClassifier, TextEmbedder
from bertkit.data.dataset import from_lists
from bertkit.data.labels import normalize_labels

FAST = dict(epochs=1, batch_size=16, learning_rate=3e-3, max_length=32, progress=False)


def test_tags_and_repr(tiny_bert):
    clf = TextClassifier(str(tiny_bert), epochs=1)
    assert is_classifier(clf) and not is_regressor(clf)
    assert is_regressor(TextClassifier(task="regression")) and not is_classifier(TextClassifier(task="regression"))
    assert get_tags(TextEmbedder()).estimator_type == "transformer"
    assert repr(clf) == f"TextClassifier(model={str(tiny_bert)!r}, epochs=1)"
    assert repr(TextClassifier()) == "TextClassifier()"
    with pytest.raises(NotFittedError):
        check_is_fitted(clf)


def test_cross_validation_and_a_pipeline_take_the_classifier(tiny_bert):
    texts, labels = sentiment_examples(48)
    scores = cross_val_score(TextClassifier(str(tiny_bert), **FAST), texts, labels, cv=2)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))
    lower = FunctionTransformer(lambda X: [t.lower() for t in X])
    pipeline = make_pipeline(lower, TextClassifier(str(tiny_bert), **FAST)).fit(texts, labels)
    assert set(pipeline.predict(["A GREAT FILM"])) <= {"negative", "positive"}
    check_is_fitted(pipeline[-1])


def test_a_dataframe_gives_its_rows_never_its_column_names():
    frame = pd.DataFrame({"text": ["a fine film", "dull", "ok"]})
    assert from_lists(frame).texts == ["a fine film", "dull", "ok"]
    pairs = from_lists(pd.DataFrame({"a": ["x", "y"], "b": ["p", "q"]}))
    assert pairs.texts == ["x", "y"] and pairs.pairs == ["p", "q"]
    assert from_lists(np.array([["x", "p"], ["y", "q"]])).pairs == ["p", "q"]
    with pytest.raises(DataError, match=r"^X: a DataFrame of 3 columns \('a', 'b', 'c'\); pass one text column"):
        from_lists(pd.DataFrame({"a": ["x"], "b": ["y"], "c": ["z"]}), name="X")


def test_a_column_vector_of_labels_is_one_label_per_row_with_a_warning():
    with pytest.warns(BertkitWarning, match=r"y: a column vector of shape \(2, 1\)"):
        data = from_lists(["a", "b"], np.array([[0], [1]]), name="X")
    assert data.labels == [0, 1]
    assert normalize_labels(data.labels, "auto") == ("classification", [0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a one-column DataFrame is a column, not a mistake
        assert from_lists(["a", "b"], pd.DataFrame({"y": ["p", "q"]}), name="X").labels == ["p", "q"]
    # lists of labels stay multi-label
    assert normalize_labels(from_lists(["a", "b"], [["p"], ["q"]]).labels, "auto")[0] == "multi-label"


def test_strings_given_in_memory_stay_strings_where_a_files_digits_are_numbers():
    assert normalize_labels(["0", "1", "1"], "auto", as_written=True) == ("classification", ["0", "1", "1"])
    assert normalize_labels(["0", "1", "1"], "auto") == ("classification", [0, 1, 1])
    assert normalize_labels([np.int64(2), 1], "auto", as_written=True) == ("classification", [2, 1])
    assert normalize_labels(["0.5", "1.5"], "auto", as_written=True)[0] == "classification"  # strings: labels
    assert normalize_labels([0.5, 1.5], "auto", as_written=True) == ("regression", [0.5, 1.5])


def test_scorers_that_read_classes_and_probabilities_take_the_classifier(tiny_bert):
    from sklearn.base import is_classifier
    from sklearn.metrics import get_scorer
    from sklearn.model_selection import cross_val_predict

    texts, labels = sentiment_examples(48)
    clf = TextClassifier(str(tiny_bert), **FAST).fit(texts, labels)
    assert isinstance(clf.classes_, np.ndarray) and clf.classes_.tolist() == ["negative", "positive"]
    for name in ("roc_auc", "neg_log_loss"):  # they index classes_ as an array
        assert np.isfinite(get_scorer(name)(clf, texts, labels)), name
    ids = [int(y == "positive") for y in labels]  # average_precision's pos_label=1, as for LogisticRegression
    numbers = TextClassifier(str(tiny_bert), **FAST).fit(texts, ids)
    assert numbers.classes_.dtype == np.int64  # as scikit-learn's classifiers give integer classes
    assert np.isfinite(get_scorer("average_precision")(numbers, texts, ids))
    proba = cross_val_predict(TextClassifier(str(tiny_bert), **FAST), texts, labels, cv=2, method="predict_proba")
    assert proba.shape == (48, 2) and is_classifier(clf)
    assert not hasattr(TextClassifier(), "classes_")


def test_labels_keep_their_type_through_fit_and_predict(tiny_bert):
    texts, labels = sentiment_examples(40)
    digits = ["1" if label == "positive" else "0" for label in labels]
    clf = TextClassifier(str(tiny_bert), **FAST).fit(texts, digits)
    assert list(clf.classes_) == ["0", "1"] and set(clf.predict(texts[:4])) <= {"0", "1"}
    flags = [label == "positive" for label in labels]
    clf = TextClassifier(str(tiny_bert), **FAST).fit(texts, flags)
    predicted = clf.predict(texts)
    assert predicted.dtype == bool
    assert 0 <= accuracy_score(flags, predicted) <= 1  # scikit-learn takes it as binary targets


def test_eval_set_must_be_an_x_y_tuple_of_the_training_shape(tiny_bert):
    texts, labels = sentiment_examples(20)
    clf = TextClassifier(str(tiny_bert), **FAST)
    with pytest.raises(DataError, match=r"^eval_set: expected an \(X, y\) tuple .*got a list of 2 items"):
        clf.fit(texts, labels, eval_set=[texts[:4], labels[:4]])
    pairs = [(t, t) for t in texts[:4]]
    with pytest.raises(DataError, match="^eval_set: the training data are single texts and the validation data text"):
        clf.fit(texts, labels, eval_set=(pairs, labels[:4]))


def test_refit_drops_a_loaded_graph_and_save_drops_stale_graphs(tiny_bert, tmp_path):
    pytest.importorskip("onnxruntime")
    texts, labels = sentiment_examples(40)
    clf = TextClassifier(str(tiny_bert), **FAST).fit(texts, labels)
    folder = clf.save(tmp_path / "m")
    clf.export_onnx(folder)
    loaded = TextClassifier.load(folder, backend="onnx", device="cpu")
    loaded.set_params(model=str(tiny_bert), seed=7, **FAST).fit(
        texts, [{"negative": "positive", "positive": "negative"}[y] for y in labels]
    )
    assert loaded.backend_ == "torch" and "onnx_forward_" not in vars(loaded)
    loaded.save(folder)  # over the folder whose onnx/ holds the first model's graph
    assert not (folder / "onnx").exists()
    np.testing.assert_allclose(
        TextClassifier.load(folder, device="cpu").predict_proba(texts[:4]), loaded.predict_proba(texts[:4]), atol=1e-5
    )
    with pytest.raises(Exception, match="is a file, where save writes a model folder"):
        clf.save(folder / "config.json")


def test_the_embedder_reads_dataframes_checks_texts_and_clones(tiny_bert):
    embedder = TextEmbedder(str(tiny_bert), max_length=512).fit()
    assert embedder.max_length_ == 128  # the tiny model's position table: longer texts are cut there
    texts = ["a good film", "bad", "ok " * 300]
    np.testing.assert_allclose(embedder.transform(pd.DataFrame({"t": texts})), embedder.transform(texts), atol=1e-6)
    assert repr(clone(embedder)) == f"TextEmbedder(model={str(tiny_bert)!r}, max_length=512)"
    for bad, message in (([], "texts: no texts given"), ([None], "texts item 0: expected a string, got NoneType")):
        with pytest.raises(DataError, match=f"^{message}"):
            embedder.transform(bad)


def test_whole_number_decimals_read_as_regression_are_said():
    from bertkit.classification.inputs import _task_notes

    data = from_lists(["a", "b", "c"], [0.0, 1.0, 1.0], name="X")
    assert _task_notes(data, "regression", "auto") == [
        "X: the labels are whole numbers written as decimals (0.0, 1.0, ...): read as regression scores; to classify "
        "them pass --task classification (task='classification')"
    ]
    assert _task_notes(data, "regression", "regression") == []  # asked for: nothing to say
    assert _task_notes(from_lists(["a", "b"], [0.5, 1.0], name="X"), "regression", "auto") == []


@pytest.mark.parametrize(
    ("labels", "found"), [([["a"], [], ["a"], []], "only one label ('a')"), ([[], [], [], []], "no label")]
)
def test_multi_label_with_fewer_than_two_labels_is_told_so(tiny_bert, labels, found):
    with pytest.raises(DataError, match=rf"^X: {re.escape(found)} in the training data; multi-label classification"):
        TextClassifier(str(tiny_bert), **FAST).fit(["w", "x", "y", "z"], labels)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"epochs": 0}, r"^epochs must be a positive integer \(got 0\)$"),
        ({"learning_rate": "x"}, r"^learning_rate must be a number \(got 'x'\)$"),
        ({"validation_overlap": "off"}, r"^validation_overlap must be drop, keep or error \(got 'off'\)$"),
    ],
)
def test_api_errors_name_parameters_not_flags(params, message):
    with pytest.raises(ConfigError, match=message):
        TextClassifier(**params).fit(["a", "b"], [0, 1])


def test_a_pickle_from_before_classes_became_a_property_still_loads():
    import pickle

    old = TextClassifier(epochs=1)
    old.__dict__["classes_"] = ["negative", "positive"]  # how such a pickle holds the labels
    loaded = pickle.loads(pickle.dumps(old))
    assert loaded.classes_.tolist() == ["negative", "positive"] and "classes_" not in loaded.__dict__
    assert loaded.get_params()["epochs"] == 1


def test_classes_arrays_take_the_labels_type():
    from bertkit.data.labels import label_array

    assert label_array([0, 2]).dtype == np.int64 and label_array([False, True]).dtype == bool
    assert label_array([0.5, 1.5]).dtype == np.float64 and label_array(["a", "b"]).dtype == object
    mixed = label_array([1, "b", (1, 2)])
    assert mixed.dtype == object and mixed[2] == (1, 2)  # a tuple label stays one item
