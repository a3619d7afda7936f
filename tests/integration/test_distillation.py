"""Distillation (bertkit.Distiller, `bertkit distill`) on tiny random models: which layers a student keeps (the
mean-pooling layer too), the loss mix (alpha 1 is plain fine-tuning, bit for bit), unlabeled rows, pairs,
multi-label, regression, another encoder as student, the accuracy guard and its folder, the CLI's errors."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ONE_EPOCH_FLAGS, POSITIVE, fails, run_cli, sentiment_examples, write_csv

from bertkit import BertkitWarning, ConfigError, DataError, Distiller, TextClassifier
from bertkit.classification.distillation import (
    Teacher,
    augmented_copies,
    bottom_layers,
    encoder_layers,
    make_student,
    parse_student,
    student_layers,
    teacher_outputs_with_hidden,
)
from bertkit.classification.objective import DistillationObjective, HiddenCapture, SequenceObjective, soft_loss
from bertkit.data.encoding import encode
from bertkit.engine.forward import predict_logits

FAST = {"epochs": 1, "batch_size": 8, "max_length": 24, "precision": "fp32", "progress": False}


@pytest.fixture(scope="module")
def teacher_dir(tiny_bert, tmp_path_factory):
    """A sentiment teacher with mean pooling: the tiny BERT's 2 layers plus the pooling layer (3 layers)."""
    texts, labels = sentiment_examples(32)
    teacher = TextClassifier(model=str(tiny_bert), classifier_pooling="mean", **FAST).fit(texts, labels)
    return teacher.save(tmp_path_factory.mktemp("teacher"))


@pytest.fixture(scope="module")
def teacher(teacher_dir):
    """The teacher, loaded once (distilling does not change it)."""
    return TextClassifier.load(teacher_dir, device="cpu")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distill-data")
    for name, n, seed in (("train.csv", 32, 2), ("valid.csv", 12, 3)):
        texts, labels = sentiment_examples(n, seed=seed)
        write_csv(folder / name, ["text", "label"], [list(r) for r in zip(texts, labels, strict=True)])
    write_csv(folder / "more.csv", ["text"], [[t] for t in sentiment_examples(10, seed=4)[0]])
    return folder


# which layers a student keeps ------------------------------------------------------------------------------


def test_layers_n_keeps_the_lowest_layers():
    assert bottom_layers(3) == [0, 1, 2]
    assert bottom_layers(1) == [0]


def test_the_mean_pooling_layer_is_kept_besides_n_others():
    assert student_layers(3, 7, pooling_layer=True) == [0, 1, 2, 6]  # MiniLM's 6 layers + bertkit's pooling
    assert student_layers(3, 6, pooling_layer=False) == [0, 1, 2]
    assert student_layers((0, 2), 7, pooling_layer=True) == [0, 2, 6]
    with pytest.raises(
        ConfigError, match=r"6 encoder layers besides its mean-pooling layer; .* \(layers:1 to layers:5\)"
    ):
        student_layers(6, 7, pooling_layer=True)
    with pytest.raises(ConfigError, match="layers:0,6: the teacher has 6 encoder layers besides"):
        student_layers((0, 6), 7, pooling_layer=True)
    one = r"the teacher has 1 encoder layer besides its mean-pooling layer, none to leave out; give another model"
    for spec in (1, (0,)):
        with pytest.raises(ConfigError, match=one):
            student_layers(spec, 2, pooling_layer=True)


def test_student_specs_are_parsed():
    assert parse_student("layers:3").layers == 3
    assert parse_student("layers:4,0,2").layers == (0, 2, 4)
    assert parse_student("minilm").model == "minilm" and parse_student("minilm").layers is None
    for bad, message in (("layers:x", "expected layers:N"), ("layers:0", "at least one"), ("layers:1,1", "distinct")):
        with pytest.raises(ConfigError, match=message):
            parse_student(bad)


def tiny_bert_classifier(layers: int):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=20, max_position_embeddings=32, num_labels=3)  # fmt: skip
    return BertForSequenceClassification(config).eval()


def test_a_bert_student_copies_the_chosen_layers(tmp_path):
    from transformers import AutoModelForSequenceClassification

    teacher = tiny_bert_classifier(4)
    student = make_student(teacher, [1, 3])
    assert len(teacher.bert.encoder.layer) == 4 and teacher.config.num_hidden_layers == 4  # the teacher untouched
    assert len(student.bert.encoder.layer) == 2 and student.config.num_hidden_layers == 2
    for new, old in ((0, 1), (1, 3)):
        for (name, value), expected in zip(student.bert.encoder.layer[new].state_dict().items(),
                                           teacher.bert.encoder.layer[old].state_dict().values(), strict=True):  # fmt: skip
            assert torch.equal(value, expected), name
        assert student.bert.encoder.layer[new].attention.self.layer_idx == new
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    ids = torch.tensor([[2, 7, 9, 3]])
    student.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(reloaded(input_ids=ids).logits, student(input_ids=ids).logits)


def test_a_distilbert_student(tiny_distilbert):
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    teacher = AutoModelForSequenceClassification.from_pretrained(str(tiny_distilbert), num_labels=2).eval()
    student = make_student(teacher, [1])
    assert len(student.distilbert.transformer.layer) == 1 and student.config.n_layers == 1
    assert student.distilbert.transformer.n_layers == 1
    layer_weight = student.distilbert.transformer.layer[0].ffn.lin1.weight
    assert torch.equal(layer_weight, teacher.distilbert.transformer.layer[1].ffn.lin1.weight)
    assert student(input_ids=torch.tensor([[2, 7, 3]])).logits.shape == (1, 2)


def test_an_encoder_without_known_layers_is_refused():
    class Odd(torch.nn.Module):
        config = type("Config", (), {"model_type": "funnel"})()

    with pytest.raises(ConfigError, match="this teacher is a funnel model: give --student MODEL"):
        encoder_layers(Odd())


# the loss -------------------------------------------------------------------------------------------------


def test_soft_losses_match_their_definitions():
    from scipy.special import expit, rel_entr, softmax

    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    s, t, temperature = torch.from_numpy(student), torch.from_numpy(teacher), 2.0
    kl = rel_entr(softmax(teacher / temperature, axis=1), softmax(student / temperature, axis=1)).sum(axis=1)
    np.testing.assert_allclose(soft_loss(s, t, "classification", temperature).numpy(), kl * 4, rtol=1e-5)
    p, q = expit(teacher / temperature), expit(student / temperature)
    bce = -(p * np.log(q) + (1 - p) * np.log(1 - q)).mean(axis=1)
    np.testing.assert_allclose(soft_loss(s, t, "multi-label", temperature).numpy(), bce * 4, rtol=1e-5)
    mse = ((student[:, :1] - teacher[:, :1]) ** 2)[:, 0]
    np.testing.assert_allclose(soft_loss(s[:, :1], t[:, :1], "regression", temperature).numpy(), mse, rtol=1e-6)


def objective_case(labeled: np.ndarray, alpha: float):
    rng = np.random.default_rng(1)
    logits = torch.from_numpy(rng.normal(size=(6, 3)).astype(np.float32))
    targets, teacher = np.array([0, 2, 1, 1, 0, 2]), rng.normal(size=(6, 3)).astype(np.float32)
    objective = DistillationObjective("classification", targets, labeled, teacher, alpha=alpha, temperature=2.0)
    outputs = type("Outputs", (), {"logits": logits})()
    return objective.loss(outputs, objective.batch_targets(np.arange(6), {})), logits, targets, teacher


def test_the_loss_mixes_labels_and_soft_targets_per_row():
    all_rows = np.ones(6, dtype=bool)
    loss, logits, targets, teacher = objective_case(all_rows, alpha=1.0)
    plain = SequenceObjective("classification", targets).loss(
        type("O", (), {"logits": logits})(), torch.tensor(targets)
    )
    assert torch.equal(loss, plain)  # alpha 1: the labels' loss, bit for bit
    soft = soft_loss(logits, torch.from_numpy(teacher), "classification", 2.0)
    mixed, *_ = objective_case(all_rows, alpha=0.3)
    torch.testing.assert_close(mixed, 0.3 * plain + 0.7 * soft.mean())
    # rows 4 and 5 unlabeled: no label loss for them, and their soft loss at full weight
    some = np.array([True, True, True, True, False, False])
    partial, *_ = objective_case(some, alpha=0.3)
    hard = torch.nn.functional.cross_entropy(logits[:4], torch.tensor(targets[:4])) * 4 / 6
    weights = torch.tensor([0.7, 0.7, 0.7, 0.7, 1.0, 1.0])
    torch.testing.assert_close(partial, 0.3 * hard + (weights * soft).mean())
    none, *_ = objective_case(np.zeros(6, dtype=bool), alpha=0.9)
    torch.testing.assert_close(none, soft.mean())  # unlabeled rows only: alpha does not matter
    with pytest.raises(ConfigError, match="--alpha must be between 0"):
        objective_case(all_rows, alpha=1.5)


def test_the_hidden_loss_adds_the_mean_squared_cls_difference():
    rng = np.random.default_rng(2)
    layer = torch.nn.Linear(4, 4)
    capture = HiddenCapture(layer)
    states = layer(torch.from_numpy(rng.normal(size=(6, 5, 4)).astype(np.float32)))  # [batch, length, hidden]
    torch.testing.assert_close(capture.state, states[:, 0])
    logits = torch.from_numpy(rng.normal(size=(6, 3)).astype(np.float32))
    targets, teacher = np.array([0, 2, 1, 1, 0, 2]), rng.normal(size=(6, 3)).astype(np.float32)
    taught = rng.normal(size=(6, 4)).astype(np.float32)
    labeled = np.array([True, True, True, True, False, False])
    outputs = type("Outputs", (), {"logits": logits})()
    plain = DistillationObjective("classification", targets, labeled, teacher, alpha=0.3, temperature=2.0)
    with_hidden = DistillationObjective("classification", targets, labeled, teacher, alpha=0.3, temperature=2.0,
                                        hidden=capture, teacher_hidden=taught, hidden_weight=0.5)  # fmt: skip
    index = np.arange(6)
    base = plain.loss(outputs, plain.batch_targets(index, {}))
    total = with_hidden.loss(outputs, with_hidden.batch_targets(index, {}))
    torch.testing.assert_close(total, base + 0.5 * ((states[:, 0] - torch.from_numpy(taught)) ** 2).mean())
    total.backward()  # the state keeps its history: the loss trains the layer
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    capture.remove()
    layer(torch.zeros(1, 2, 4))
    assert capture.state is None  # unhooked
    with pytest.raises(ConfigError, match="--hidden-weight must be 0"):
        DistillationObjective("classification", targets, labeled, teacher, alpha=0.3, temperature=2.0,
                              hidden=capture, teacher_hidden=taught, hidden_weight=-1.0)  # fmt: skip


def test_the_teachers_hidden_states_are_its_last_layers_cls_rows(teacher):
    texts = sentiment_examples(10, seed=5)[0]
    encoded = encode(teacher.tokenizer_, texts, None, 24, None)
    logits, hidden = teacher_outputs_with_hidden(
        Teacher(teacher.model_, teacher.tokenizer_, teacher.config_), encoded, torch.device("cpu")
    )
    np.testing.assert_allclose(logits, predict_logits(teacher.model_, encoded), atol=1e-5)
    for row in (0, 7):
        start, length = encoded.offsets[row], encoded.lengths[row]
        ids = torch.from_numpy(encoded.ids[start : start + length])[None]  # [1, length]: no padding
        with torch.no_grad():
            states = teacher.model_(input_ids=ids, output_hidden_states=True).hidden_states[-1]
        np.testing.assert_allclose(hidden[row], states[0, 0].numpy(), atol=1e-5)


def cls_distance(student, teacher, texts) -> float:
    """Mean squared difference of student's and teacher's last-layer [CLS] states on ``texts``."""
    encoded = encode(teacher.tokenizer_, texts, None, 24, None)
    device = torch.device("cpu")
    _, taught = teacher_outputs_with_hidden(
        Teacher(teacher.model_, teacher.tokenizer_, teacher.config_), encoded, device
    )
    _, learnt = teacher_outputs_with_hidden(
        Teacher(student.model_, student.tokenizer_, student.config_), encoded, device
    )
    return float(((taught - learnt) ** 2).mean())


def test_the_hidden_loss_brings_the_students_cls_state_to_the_teachers(teacher):
    texts, labels, validation = sentiment_split()
    options = {"student": "layers:1", "epochs": 3, "batch_size": 8, "learning_rate": 3e-3, "progress": False}
    without = Distiller(**options).fit(teacher, texts, labels, eval_set=validation)
    matched = Distiller(hidden_weight=10.0, **options).fit(teacher, texts, labels, eval_set=validation)
    assert matched.record_["hidden_weight"] == 10.0 and without.record_["hidden_weight"] == 0.0
    near, far = cls_distance(matched.student_, teacher, texts), cls_distance(without.student_, teacher, texts)
    assert near < 0.5 * far
    with pytest.raises(ConfigError, match="--hidden-weight matches .* needs a student cut from the teacher"):
        Distiller(student="minilm", hidden_weight=1.0).check()
    with pytest.raises(ConfigError, match="--hidden-weight must be 0"):
        Distiller(hidden_weight=float("nan")).check()


def sentiment_split():
    texts, labels = sentiment_examples(32, seed=2)
    validation = sentiment_examples(12, seed=3)
    return texts, labels, validation


def test_alpha_one_without_unlabeled_data_is_plain_fine_tuning(teacher, tmp_path):
    texts, labels, validation = sentiment_split()
    options = {"student": "layers:1", "epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "progress": False}
    distilled = Distiller(alpha=1.0, **options).fit(teacher, texts, labels, eval_set=validation)
    assert distilled.record_["layers_kept"] == [0, 2]  # the lower of the two layers, and the pooling layer
    # the same student before training, saved, then fine-tuned by TextClassifier (no pooling layer added: it has one)
    make_student(teacher.model_, [0, 2]).save_pretrained(tmp_path)
    teacher.tokenizer_.save_pretrained(tmp_path)
    config = dataclasses.replace(distilled.student_.config_, model=str(tmp_path), classifier_pooling="cls")
    plain = TextClassifier.from_config(config, progress=False).fit(texts, labels, eval_set=validation)
    expected = plain.model_.state_dict()
    assert all(torch.equal(value, expected[name]) for name, value in distilled.student_.model_.state_dict().items())
    # and the soft loss does change the outcome
    mixed = Distiller(alpha=0.5, **options).fit(teacher, texts, labels, eval_set=validation)
    weight = "classifier.weight"
    assert not torch.equal(mixed.student_.model_.state_dict()[weight], expected[weight])


def test_a_teacher_that_predicts_with_onnx_is_distilled_from_its_torch_model(teacher_dir, tmp_path):
    import shutil

    folder = shutil.copytree(teacher_dir, tmp_path / "teacher")
    TextClassifier.load(folder, backend="torch").export_onnx(folder)
    metadata = json.loads((folder / "bertkit.json").read_text())
    (folder / "bertkit.json").write_text(json.dumps({**metadata, "backend": {"default": "onnx"}}))
    loaded = TextClassifier.load(folder, device="cpu")  # as `bertkit train` leaves a model whose graph won
    assert loaded.backend_ == "onnx"
    texts, labels, validation = sentiment_split()
    options = {"student": "layers:1", "epochs": 1, "batch_size": 8, "progress": False}
    reference = Distiller(**options).fit(teacher_dir, texts, labels, eval_set=validation).student_.model_.state_dict()
    for given in (folder, loaded):  # the folder (as `bertkit distill` gives it), or the loaded model
        student = Distiller(**options).fit(given, texts, labels, eval_set=validation).student_.model_
        assert all(torch.equal(value, reference[name]) for name, value in student.state_dict().items())
    assert loaded.backend_ == "onnx" and hasattr(loaded, "onnx_forward_")  # the given model is left as it was


def test_augmented_copies_mask_and_drop_words_and_follow_the_seed():
    from bertkit.data.dataset import from_lists

    texts = [" ".join(f"w{i}" for i in range(40)), "one", "two words"]
    data = from_lists([(t, t) for t in texts], ["a", "b", "a"])
    copies = augmented_copies(data, 3, "[MASK]", seed=0)
    assert len(copies) == 9 and copies.labels is None and copies.pairs is not None
    assert copies.texts[1] == "one"  # one word: left as it is
    long = [copies.texts[i].split() for i in (0, 3, 6)]
    assert all(0 < len(words) < 40 for words in long)  # some words dropped
    assert all(0 < words.count("[MASK]") < 20 for words in long)  # some masked
    assert len({" ".join(words) for words in long}) == 3 and copies.texts[0] != copies.pairs[0]  # all different
    again = augmented_copies(data, 3, "[MASK]", seed=0)
    assert again.texts == copies.texts and augmented_copies(data, 3, "[MASK]", seed=1).texts != copies.texts
    assert "[MASK]" not in " ".join(augmented_copies(data, 2, None, seed=0).texts)  # no mask token: drops only
    assert all(text for text in augmented_copies(from_lists(["a b"] * 200), 5, None, seed=0).texts)  # never empty


def test_augment_adds_teacher_labelled_copies(teacher):
    texts, labels, validation = sentiment_split()
    distiller = Distiller(student="layers:1", augment=2, progress=False).fit(
        teacher, texts, labels, eval_set=validation
    )
    assert distiller.record_["augment"] == 2 and distiller.record_["unlabeled_rows"] == 2 * len(texts)
    with pytest.raises(ConfigError, match="--augment must be a number of copies"):
        Distiller(augment=-1).check()


def test_unlabeled_rows_are_counted_and_must_have_the_training_shape(teacher):
    texts, labels, validation = sentiment_split()
    more = [f"{word} film" for word in POSITIVE]
    distiller = Distiller(student="layers:1", progress=False).fit(
        teacher, texts, labels, eval_set=validation, unlabeled=more
    )
    assert distiller.record_["unlabeled_rows"] == len(more)
    assert distiller.student_.n_train_rows_ == len(texts)
    with pytest.raises(DataError, match="unlabeled: unlabeled data holds text pairs but the training data single"):
        Distiller(student="layers:1", progress=False).fit(
            teacher, texts, labels, eval_set=validation, unlabeled=[("a", "b")]
        )


def test_unlabeled_validation_rows_are_left_out_in_the_api_too_held_out_validation_included(teacher):
    texts, labels = sentiment_examples(40, seed=9)
    distiller = Distiller(student="layers:1", progress=False, seed=0)
    # Without eval_set the validation rows are a held-out share of X: unlabeled copies of all of X hold them.
    with pytest.warns(BertkitWarning, match=r"^unlabeled: (\d+) of 40 unlabeled rows are validation rows; left out"):
        distiller.fit(teacher, texts, labels, unlabeled=[f"  {t} " for t in texts])  # spacing differs: same rows
    assert distiller.record_["unlabeled_rows"] == 40 - distiller.record_["validation_rows"]
    with pytest.raises(ConfigError, match=r"^--validation-overlap must be drop, keep, error \(got 'off'\)"):
        Distiller(validation_overlap="off").check()
    # training rows that are validation rows: refused on asking, as TextClassifier does, with distill's own flag
    with pytest.raises(DataError, match=r"are also rows of the validation data eval_set.*--validation-overlap drop"):
        Distiller(student="layers:1", progress=False, validation_overlap="error").fit(
            teacher, texts, labels, eval_set=(texts[:8], labels[:8])
        )


def test_labels_the_teacher_does_not_know_are_refused(teacher):
    texts, labels, validation = sentiment_split()
    labels = ["neutral", *labels[1:]]
    with pytest.raises(DataError, match="X item 0: label 'neutral' is not one of the teacher's labels"):
        Distiller(student="layers:1", progress=False).fit(teacher, texts, labels, eval_set=validation)


def fit_teacher(tiny_bert, texts, labels):
    return TextClassifier(model=str(tiny_bert), classifier_pooling="cls", **FAST).fit(texts, labels)


def test_pairs(tiny_bert):
    texts, labels = sentiment_examples(24)
    pairs = [(text, "the film") for text in texts]
    teacher = fit_teacher(tiny_bert, pairs, labels)
    distiller = Distiller(student="layers:1", progress=False).fit(teacher, pairs, labels)
    assert distiller.student_.text_pair_ is True and distiller.metric_ == "accuracy"
    assert distiller.record_["layers_kept"] == [0] and distiller.record_["teacher"] is None
    assert distiller.student_.predict([("good plot", "the film")])[0] in ("positive", "negative")
    with pytest.raises(DataError, match="the teacher was trained on text pairs"):
        Distiller(student="layers:1", progress=False).fit(teacher, texts, labels)


def test_windows_follow_the_teacher(tiny_bert, tiny_distilbert):
    texts, labels = sentiment_examples(24)
    options = {**FAST, "max_length": 8, "window_stride": 3}
    teacher = TextClassifier(model=str(tiny_bert), classifier_pooling="cls", **options).fit(texts, labels)
    more = [" ".join(["the", "film", "was", word, "and", "the", "plot", "was", "quite", word]) for word in POSITIVE]
    for student in ("layers:1", str(tiny_distilbert)):  # the teacher's windows; another tokenizer's windows
        distiller = Distiller(student=student, progress=False).fit(teacher, texts, labels, unlabeled=more)
        assert distiller.student_.config_.window_stride == 3 and distiller.student_.config_.max_length == 8
        assert distiller.student_.predict(["the film was good and the plot was quite good"])[0] in labels


def test_multi_label_and_regression(tiny_bert):
    texts, labels = sentiment_examples(24)
    tags = [[label] + (["long"] if len(text) > 25 else []) for text, label in zip(texts, labels, strict=True)]
    teacher = fit_teacher(tiny_bert, texts, tags)
    distiller = Distiller(student="layers:1", temperature=3.0, progress=False).fit(teacher, texts, tags)
    assert distiller.metric_ == "micro_f1" and distiller.student_.thresholds_ is not None
    assert list(distiller.student_.classes_) == list(teacher.classes_)
    values = [len(text) + 0.5 for text in texts]  # decimals: whole numbers as floats would be announced
    teacher = fit_teacher(tiny_bert, texts, values)
    distiller = Distiller(student="layers:1", progress=False).fit(teacher, texts, values)
    assert distiller.metric_ == "pearson" and distiller.student_.task_ == "regression"
    assert np.isfinite(distiller.student_score_) and distiller.speedup_ > 0


def test_the_guard_scores_multi_label_models_as_they_predict(tiny_bert):
    """The guard's micro F1 is that of the labels the model predicts: its calibrated probabilities against the
    thresholds on their scale, which is the F1 of the uncalibrated ones against the thresholds as tuned."""
    from bertkit.classification.inputs import as_data

    texts, labels = sentiment_examples(24)
    tags = [[label] + (["long"] if len(text) > 25 else []) for text, label in zip(texts, labels, strict=True)]
    model = fit_teacher(tiny_bert, texts, tags)
    logits = model._logits(model._encode(as_data(texts, None, "X")))
    # thresholds in the middle of each label's logits and a strong temperature: the two scales differ a lot
    model.thresholds_ = 1 / (1 + np.exp(-np.median(logits, axis=0)))
    model.temperature_ = np.full(len(model.classes_), 10.0)
    model.use_calibration = False
    expected = model.score(texts, tags)  # micro F1 with no temperature at all
    model.use_calibration = True
    assert model.score(texts, tags) == pytest.approx(expected)
    distiller = Distiller(progress=False)
    distiller.student_ = model
    distiller._guard(model, as_data(texts, tags, "X"))
    assert distiller.metric_ == "micro_f1"
    assert distiller.teacher_score_ == pytest.approx(expected, abs=1e-6)


def test_another_encoder_as_student(tiny_distilbert, teacher):
    texts, labels, validation = sentiment_split()
    distiller = Distiller(student=str(tiny_distilbert), progress=False).fit(teacher, texts, labels, eval_set=validation)
    student = distiller.student_
    assert student.model_.config.model_type == "distilbert" and list(student.classes_) == ["negative", "positive"]
    assert distiller.record_["layers_kept"] is None and student.config_.model == str(tiny_distilbert)


# the command and its guard ----------------------------------------------------------------------------------


def test_distill_keeps_a_good_enough_student(capsys, teacher_dir, data_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "student"
    code = run_cli("distill", teacher_dir, "--train", data_dir / "train.csv", "--validation", data_dir / "valid.csv",
                   "--unlabeled", data_dir / "more.csv", "--student", "layers:1", "--epochs", "1", "--max-drop", "1000",
                   "--output", out, "--quiet")  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 0, err
    assert re.search(
        r"teacher accuracy \d\.\d{4}, student \d\.\d{4} \([+-]\d+\.\d\d points; max drop 1000.0; .*: kept", err
    )
    record = json.loads((out / "bertkit.json").read_text())["distillation"]
    assert record["teacher"] == str(teacher_dir) and record["layers_kept"] == [0, 2] and record["kept"] is True
    assert record["unlabeled_rows"] == 10 and record["validation_rows"] == 12 and record["speedup"] > 0
    assert record["temperature"] == 2.0 and record["alpha"] == 0.5 and record["metric"] == "accuracy"
    loaded = TextClassifier.load(out, device="cpu")
    assert loaded.model_.config.num_hidden_layers == 2 and loaded.metadata_["distillation"] == record
    assert AutoModelForSequenceClassification.from_pretrained(out).config.num_hidden_layers == 2
    assert (out / "report").is_dir()
    # as after bertkit train: the student's ONNX graphs are written and its default backend chosen on validation
    backend = json.loads((out / "bertkit.json").read_text())["backend"]
    assert set(backend["candidates"]) == {"torch", "onnx", "onnx-int8"} and backend["rows"] == 12
    assert (out / "onnx" / "model-int8.onnx").is_file() and loaded.backend_ == backend["default"]


def test_a_student_below_the_teacher_goes_to_its_own_folder(capsys, teacher_dir, data_dir, tmp_path):
    out = tmp_path / "student"
    error = fails(capsys, "distill", teacher_dir, "--train", data_dir / "train.csv", "--validation",
                  data_dir / "valid.csv", "--student", "layers:1", "--epochs", "1", "--max-drop", "-1000",
                  "--output", out, "--quiet", "--no-export", alone=False)  # fmt: skip
    rejected = tmp_path / "student-below-teacher"
    assert f"saved to {rejected} instead of {out}" in error and "more than --max-drop -1000" in error
    assert not out.exists()
    metadata = json.loads((rejected / "bertkit.json").read_text())
    assert metadata["distillation"]["kept"] is False
    assert "backend" not in metadata and not (rejected / "onnx").exists()  # --no-export: no graphs, torch stays


def test_named_columns_reach_the_unlabeled_files_and_the_students_folder(capsys, tiny_bert, tmp_path):
    """A teacher trained on named columns: its label column is not looked for in unlabeled files, and the student
    saves the reading settings as `train` does, so that `predict` reads the same layout without flags."""
    texts, labels = sentiment_examples(32, seed=2)
    train, more = tmp_path / "train.csv", tmp_path / "more.csv"
    write_csv(train, ["review", "gold"], [list(r) for r in zip(texts, labels, strict=True)])
    write_csv(more, ["review"], [[t] for t in sentiment_examples(10, seed=4)[0]])
    teacher = tmp_path / "teacher"
    assert run_cli("train", "--train", train, "--text-column", "review", "--label-column", "gold", "--model",
                   tiny_bert, "--output", teacher, *ONE_EPOCH_FLAGS) == 0  # fmt: skip
    out = tmp_path / "student"
    code = run_cli("distill", teacher, "--train", train, "--unlabeled", more, "--student", "layers:1", "--epochs", "1",
                   "--max-drop", "1000", "--no-export", "--output", out, "--quiet")  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 0, err
    saved = json.loads((out / "bertkit.json").read_text())["run_options"]
    assert (saved["text_column"], saved["label_column"], saved["train"]) == ("review", "gold", str(train))
    predictions = tmp_path / "predictions.csv"
    assert run_cli("predict", out, "--data", more, "--output", predictions) == 0, capsys.readouterr()[1]
    assert len(predictions.read_text().splitlines()) == 11  # a header and the 10 rows


def test_cli_errors(capsys, teacher_dir, data_dir, tmp_path):
    train = data_dir / "train.csv"
    common = ("distill", teacher_dir, "--train", train, "--output", tmp_path / "out")
    assert "--alpha must be between 0" in fails(capsys, *common, "--alpha", "1.5")
    assert "--temperature must be a positive number" in fails(capsys, *common, "--temperature", "0")
    assert "--temperature must be a positive number (got inf)" in fails(capsys, *common, "--temperature", "inf")
    message = fails(capsys, "distill", teacher_dir, "--train", train, "--output", teacher_dir, "--overwrite")
    assert "is the teacher's folder; the student would replace the teacher" in message
    assert (Path(teacher_dir) / "bertkit.json").exists()
    assert "expected layers:N" in fails(capsys, *common, "--student", "layers:two")
    message = fails(capsys, *common, "--student", "layers:2", alone=False)
    assert "the teacher has 2 encoder layers besides its mean-pooling layer" in message
    assert "missing.csv" in fails(capsys, *common, "--unlabeled", tmp_path / "missing.csv")
    assert "--track must be 'mlflow' or 'mlflow:URI'" in fails(capsys, *common, "--track", "wandb")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert "folder is not empty" in fails(
        capsys, "distill", teacher_dir, "--train", train, "--output", tmp_path / "busy"
    )
    assert run_cli("distill", teacher_dir, "--train", train) == 2  # --output missing: a usage error
    capsys.readouterr()


def test_help_lists_the_options(capsys):
    assert run_cli("distill", "--help") == 0
    out = capsys.readouterr().out
    flags = ("--unlabeled", "--student", "--temperature", "--alpha", "--hidden-weight", "--augment", "--max-drop",
             "--track")  # fmt: skip
    for flag in (*flags, "--output"):
        assert flag in out


def test_a_tracked_distillation_is_one_mlflow_run(capsys, teacher_dir, data_dir, tmp_path, monkeypatch):
    """--track mlflow:URI against a real local store: the distillation's options, the student's epochs, the
    guard's scores and verdict, the student's folder; a rejected student (exit 1) still ends a FINISHED run."""
    pytest.importorskip("mlflow", reason="pip install 'bertkit[track]'")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # MLflow puts a SQLite store's artifacts under ./mlruns
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "student"
    code = run_cli("distill", teacher_dir, "--train", data_dir / "train.csv", "--validation", data_dir / "valid.csv",
                   "--student", "layers:1", "--epochs", "2", "--max-drop", "-1000", "--output", out, "--quiet",
                   "--no-export", "--track", f"mlflow:{uri}")  # fmt: skip
    capsys.readouterr()
    assert code == 1  # the guard rejected the student, as asked
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("bertkit").experiment_id])
    record = json.loads((tmp_path / "student-below-teacher" / "bertkit.json").read_text())["distillation"]
    assert run.info.status == "FINISHED" and run.info.run_name == "student" and run.data.tags["bertkit.kept"] == "false"
    params = run.data.params
    assert params["student"] == "layers:1" and params["epochs"] == "2" and params["teacher"] == str(teacher_dir)
    assert params["max_drop"] == "-1000.0" and "learning_rate" in params  # the student's, resolved from the data
    assert run.data.metrics["distill_student_score"] == pytest.approx(record["student_score"])
    assert run.data.metrics["distill_drop_points"] == pytest.approx(record["drop_points"])
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")) == [1, 2]
    model = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/model.safetensors", "model/bertkit.json"} <= model


def test_unlabeled_rows_that_are_validation_rows_are_left_out_and_said(capsys, teacher_dir, data_dir, tmp_path):
    valid = data_dir / "valid.csv"
    out = tmp_path / "student"
    code = run_cli("distill", teacher_dir, "--train", data_dir / "train.csv", "--validation", valid, "--unlabeled",
                   valid, "--unlabeled", data_dir / "more.csv", "--student", "layers:1", "--epochs", "1",
                   "--max-drop", "1000", "--no-export", "--output", out)  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 0, err
    assert "valid.csv: 12 of 12 unlabeled rows are validation rows; left out, so that validation stays unseen" in err
    record = json.loads((out / "bertkit.json").read_text())["distillation"]
    assert record["unlabeled_rows"] == 10  # more.csv's rows alone
