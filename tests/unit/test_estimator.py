"""TextClassifier on tiny random models: learning, label round-trips, persistence, the sklearn contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import sentiment_examples

from bertkit import ConfigError, DataError, NotFittedError, TextClassifier

FAST = dict(epochs=5, batch_size=16, learning_rate=3e-3, max_length=32, progress=False)


@pytest.fixture(scope="module")
def fitted(tiny_bert) -> TextClassifier:
    texts, labels = sentiment_examples(240)
    return TextClassifier(str(tiny_bert), **FAST).fit(texts, labels)


def test_fit_learns_and_returns_labels_as_given(fitted):
    texts, labels = sentiment_examples(100, seed=7)
    assert list(fitted.classes_) == ["negative", "positive"]
    assert fitted.score(texts, labels) >= 0.9
    predicted = fitted.predict(texts[:5])
    assert isinstance(predicted, np.ndarray) and predicted.dtype == object
    assert set(predicted) <= {"negative", "positive"}
    assert fitted.history_[-1]["epoch"] == FAST["epochs"]
    assert fitted.validation_metrics_["accuracy"] >= 0.9


def test_predict_proba_columns_follow_classes(fitted):
    proba = fitted.predict_proba(["great film", "awful film", "the plot"])
    assert proba.shape == (3, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert proba[0, list(fitted.classes_).index("positive")] > 0.5
    assert proba[1, list(fitted.classes_).index("negative")] > 0.5


def test_integer_labels_come_back_as_integers(tiny_bert):
    texts, labels = sentiment_examples(120)
    numbers = [1 if label == "positive" else 0 for label in labels]
    clf = TextClassifier(str(tiny_bert), **{**FAST, "epochs": 1}).fit(texts, numbers)
    assert list(clf.classes_) == [0, 1]
    predicted = clf.predict(texts[:4])
    assert predicted.dtype == np.int64 and set(predicted.tolist()) <= {0, 1}  # scikit-learn's metrics take it


def test_save_load_round_trip_and_plain_transformers_pipeline(fitted, tmp_path):
    from transformers import pipeline

    folder = fitted.save(tmp_path / "model")
    assert {"config.json", "model.safetensors", "bertkit.json"} <= {p.name for p in folder.iterdir()}
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    metadata = json.loads((folder / "bertkit.json").read_text())
    assert metadata["task"] == "classification" and metadata["classes"] == ["negative", "positive"]
    assert metadata["data_fingerprint"]["rows"] == fitted.n_train_rows_
    assert "torch" in metadata["versions"]

    loaded = TextClassifier.load(folder)
    texts = ["great film", "a dull and tedious plot", "the music"]
    np.testing.assert_allclose(loaded.predict_proba(texts), fitted.predict_proba(texts), atol=1e-6)

    # fp32 agrees with plain transformers to float precision; the default may run bf16 on CPUs with native
    # bf16, which moves probabilities in the third decimal.
    exact = TextClassifier.load(folder, precision="fp32", calibration=False)  # the pipeline is uncalibrated
    results = pipeline("text-classification", model=str(folder))(texts)
    assert [r["label"] for r in results] == list(exact.predict(texts))
    np.testing.assert_allclose([r["score"] for r in results], exact.predict_proba(texts).max(axis=1), atol=1e-5)
    raw = TextClassifier.load(folder, calibration=False)  # the default precision, without the temperature
    np.testing.assert_allclose(raw.predict_proba(texts), exact.predict_proba(texts), atol=2e-2)


def test_load_rejects_an_unknown_precision(fitted, tmp_path):
    folder = fitted.save(tmp_path / "model")
    with pytest.raises(ConfigError, match="--precision must be one of auto, fp32, bf16, fp16"):
        TextClassifier.load(folder, precision="int4")


def test_unfitted_estimator_raises_not_fitted():
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        TextClassifier().predict(["text"])


def test_same_seed_gives_identical_models(tiny_bert):
    texts, labels = sentiment_examples(64)
    settings = {**FAST, "epochs": 1}
    a = TextClassifier(str(tiny_bert), **settings).fit(texts, labels).predict_proba(texts[:8])
    b = TextClassifier(str(tiny_bert), **settings).fit(texts, labels).predict_proba(texts[:8])
    np.testing.assert_array_equal(a, b)
    c = TextClassifier(str(tiny_bert), **{**settings, "seed": 7}).fit(texts, labels).predict_proba(texts[:8])
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("base", ["tiny_bert", "tiny_distilbert", "tiny_roberta"])
def test_dropout_replaces_every_dropout_of_the_checkpoint(base, request, tmp_path):
    from transformers import AutoConfig

    from bertkit.models import heads

    folder = str(request.getfixturevalue(base))
    default = heads.build_classifier(folder, "classification", ["a", "b"])
    assert any(m.p > 0 for m in default.modules() if isinstance(m, torch.nn.Dropout))
    model = heads.build_classifier(folder, "classification", ["a", "b"], dropout=0.0)
    probabilities = [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert probabilities and set(probabilities) == {0.0}
    fields = [f for f in heads.DROPOUT_FIELDS if hasattr(model.config, f)]
    assert fields and all(getattr(model.config, f) == 0.0 for f in fields)
    # a trained model says so in its saved config
    texts, labels = sentiment_examples(24)
    clf = TextClassifier(folder, **{**FAST, "epochs": 1, "dropout": 0.25}).fit(texts, labels)
    assert {m.p for m in clf.model_.modules() if isinstance(m, torch.nn.Dropout)} == {0.25}
    saved = AutoConfig.from_pretrained(clf.save(tmp_path / "m"))
    assert all(getattr(saved, f) == 0.25 for f in fields)


@pytest.mark.parametrize("base", ["tiny_bert", "tiny_distilbert", "tiny_roberta"])
def test_attention_dropout_sets_the_attention_weights_alone(base, request):
    from bertkit.models import heads

    folder = str(request.getfixturevalue(base))
    model = heads.build_classifier(folder, "classification", ["a", "b"], dropout=0.25, attention_dropout=0.0)
    attention = [m.dropout.p for m in model.modules() if type(m).__name__.endswith("SelfAttention")]
    others = {m.p for name, m in model.named_modules() if isinstance(m, torch.nn.Dropout) and "attention" not in name}
    assert attention and set(attention) == {0.0}
    assert others == {0.25}  # hidden states, embeddings, classifier input: --dropout's
    fields = [f for f in heads.ATTENTION_DROPOUT_FIELDS if hasattr(model.config, f)]
    assert fields and all(getattr(model.config, f) == 0.0 for f in fields)


def test_without_attention_dropout_training_runs_the_fused_attention_kernel(tiny_bert):
    """The point of --attention-dropout 0 on a CPU: the fused scaled-dot-product kernel, not the math fallback."""
    from torch.profiler import ProfilerActivity, profile

    from bertkit.models import heads

    def kernels(**dropouts) -> set[str]:
        model = heads.build_classifier(str(tiny_bert), "classification", ["a", "b"], **dropouts).train()
        ids = torch.randint(5, 90, (2, 12))
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.sum().backward()
        return {e.key for e in prof.key_averages()}

    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in kernels(attention_dropout=0.0)
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" not in kernels(dropout=0.1)


def test_label_smoothing_reaches_the_loss_and_only_for_classification(tiny_bert, monkeypatch):
    from bertkit.classification import objective

    seen = []
    make_loss = objective.make_loss
    monkeypatch.setattr(objective, "make_loss", lambda task, w, s=0.0: seen.append((task, s)) or make_loss(task, w, s))
    texts, labels = sentiment_examples(48)
    TextClassifier(str(tiny_bert), **{**FAST, "epochs": 1, "label_smoothing": 0.2}).fit(texts, labels)
    assert seen == [("classification", 0.2)]
    values = [1.5 if label == "positive" else 0.5 for label in labels]
    with pytest.raises(ConfigError, match="--label-smoothing applies to single-label classification; .* regression"):
        TextClassifier(str(tiny_bert), **{**FAST, "label_smoothing": 0.1}).fit(texts, values)


def test_freeze_encoder_trains_only_the_head(tiny_bert):
    from transformers import AutoModel

    texts, labels = sentiment_examples(64)
    clf = TextClassifier(str(tiny_bert), **{**FAST, "epochs": 1}, freeze_encoder=True).fit(texts, labels)
    base = AutoModel.from_pretrained(str(tiny_bert))
    trained = clf.model_.base_model.state_dict()
    for name, tensor in base.state_dict().items():
        torch.testing.assert_close(trained[name], tensor, msg=f"{name} changed")
    assert any(p.requires_grad for p in clf.model_.classifier.parameters())


def test_early_stopping_stops_when_validation_does_not_improve(tiny_bert):
    texts, labels = sentiment_examples(64)
    clf = TextClassifier(str(tiny_bert), **{**FAST, "epochs": 6, "learning_rate": 1e-9}, early_stopping_patience=1).fit(
        texts, labels
    )
    assert len(clf.history_) == 2  # epoch 2 shows no gain over epoch 1 at a negligible learning rate


def test_eval_set_label_never_seen_in_training_is_refused(tiny_bert):
    texts, labels = sentiment_examples(40)
    with pytest.raises(DataError, match=r"eval_set item 1: column 'label' has label 'neutral', never seen"):
        TextClassifier(str(tiny_bert), **FAST).fit(texts, labels, eval_set=(texts[:3], ["positive", "neutral", "x"]))


def test_single_class_training_data_is_refused(tiny_bert):
    with pytest.raises(DataError, match="only one label"):
        TextClassifier(str(tiny_bert), **FAST).fit(["a", "b", "c", "d"], ["x", "x", "x", "x"])


def test_sklearn_clone_and_params(tiny_bert):
    from sklearn.base import clone

    clf = TextClassifier(str(tiny_bert), epochs=2)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert clf.set_params(epochs=4).epochs == 4
    with pytest.raises(ConfigError, match="unknown parameter 'epoch'"):
        clf.set_params(epoch=1)


def test_history_written_while_training(tiny_bert, tmp_path):
    texts, labels = sentiment_examples(64)
    TextClassifier(str(tiny_bert), **{**FAST, "epochs": 2}).fit(texts, labels, output_dir=tmp_path)
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in records] == [1, 2]
    assert {"train_loss", "val_loss", "val_accuracy", "train_samples_per_s"} <= set(records[0])


def test_ready_made_hf_model_uses_its_id2label(tiny_bert, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(
        str(tiny_bert), num_labels=3, id2label={0: "NEG", 1: "NEU", 2: "POS"}, label2id={"NEG": 0, "NEU": 1, "POS": 2}
    )
    model.save_pretrained(tmp_path / "hf")
    AutoTokenizer.from_pretrained(str(tiny_bert)).save_pretrained(tmp_path / "hf")
    clf = TextClassifier.load(tmp_path / "hf")
    assert list(clf.classes_) == ["NEG", "NEU", "POS"] and clf.task_ == "classification"
    assert set(clf.predict(["great film", "bad film"])) <= {"NEG", "NEU", "POS"}


def test_max_train_rows_trains_on_all_n_rows_with_validation_held_out_first(tiny_bert):
    texts, labels = sentiment_examples(120, seed=3)
    texts = [f"{t} {i}" for i, t in enumerate(texts)]  # every row distinct, so the splits can be compared
    labels[-1] = "mixed"  # a label only one row carries, which the 30 training rows may well miss
    clf = TextClassifier(model=str(tiny_bert), epochs=1, max_train_rows=30, progress=False).fit(texts, labels)
    assert clf.n_train_rows_ == 30
    assert clf.validation_report_.n_examples == 3  # validation_fraction 0.1 of the rows that train
    assert "mixed" in clf.classes_  # every label of the training file is known to the model
    uncapped = TextClassifier(model=str(tiny_bert), epochs=1, progress=False).fit(texts, labels)
    assert (uncapped.n_train_rows_, uncapped.validation_report_.n_examples) == (108, 12)


def test_regression_predicts_in_fp32_whatever_the_precision(tiny_bert, monkeypatch):
    # bf16 keeps 8 bits of mantissa: STS-B's 0-5 scores would come back in steps of about 0.02.
    import bertkit.classification.logits as logits
    import bertkit.engine.forward as forward

    texts, labels = sentiment_examples(40)
    scores = [float(i % 7) / 2 + 0.25 for i in range(40)]
    clf = TextClassifier(str(tiny_bert), **{**FAST, "epochs": 1}).fit(texts, scores)
    seen = []
    real = forward.predict_logits
    monkeypatch.setattr(logits, "inference_dtype", lambda *args: torch.bfloat16)
    monkeypatch.setattr(forward, "predict_logits", lambda *a, **k: seen.append(k["dtype"]) or real(*a, **k))
    clf.predict(texts[:3])
    assert clf.task_ == "regression" and seen == [None]
