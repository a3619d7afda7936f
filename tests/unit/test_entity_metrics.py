"""Entity-level precision/recall/F1 against hand-counted examples (conlleval semantics)."""

from __future__ import annotations

import pytest

from bertkit.tagging.metrics import bio_spans, entity_scores


@pytest.mark.parametrize(
    ("tags", "spans"),
    [
        (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
        # conlleval: I- after O or after another type opens an entity; B- always opens one.
        (["O", "I-PER", "I-PER"], [("PER", 1, 3)]),
        (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 3)]),
        (["B-PER", "B-PER", "I-PER"], [("PER", 0, 1), ("PER", 1, 3)]),
        (["B-ORG"], [("ORG", 0, 1)]),
        (["O", "O"], []),
        ([], []),
    ],
)
def test_bio_spans(tags, spans):
    assert bio_spans(tags) == spans


def test_entity_scores_hand_example():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-MISC", "I-MISC"]]
    predicted = [
        ["B-PER", "I-PER", "O", "B-ORG"],  # PER right; LOC predicted as ORG: one wrong, one missed
        ["B-ORG", "O", "B-MISC", "O"],  # ORG right; MISC cut short: one wrong, one missed
    ]
    scores = entity_scores(gold, predicted)
    # 4 gold entities, 4 predicted, 2 exact matches.
    assert scores["precision"] == pytest.approx(2 / 4)
    assert scores["recall"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx(0.5)
    assert scores["accuracy"] == pytest.approx(6 / 8)
    assert (scores["n_gold_entities"], scores["n_predicted_entities"]) == (4, 4)
    assert scores["per_type"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert scores["per_type"]["ORG"]["precision"] == pytest.approx(1 / 2)  # one right ORG, one wrong
    assert scores["per_type"]["ORG"]["recall"] == 1.0
    assert scores["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_precision_and_recall_differ():
    gold = [["B-PER", "O", "O", "O"]]
    predicted = [["B-PER", "O", "B-LOC", "B-LOC"]]
    scores = entity_scores(gold, predicted)
    assert scores["precision"] == pytest.approx(1 / 3)
    assert scores["recall"] == 1.0
    assert scores["f1"] == pytest.approx(2 * (1 / 3) / (1 / 3 + 1))


def test_iob1_style_prediction_counts_like_bio():
    """A prediction that starts an entity with I- matches the same gold entity (conlleval reads it so)."""
    scores = entity_scores([["O", "B-PER", "I-PER"]], [["O", "I-PER", "I-PER"]])
    assert scores["f1"] == 1.0


def test_no_entities_anywhere_scores_zero_not_nan():
    scores = entity_scores([["O", "O"]], [["O", "O"]])
    assert (scores["precision"], scores["recall"], scores["f1"], scores["accuracy"]) == (0.0, 0.0, 0.0, 1.0)


def test_length_mismatch_is_refused():
    with pytest.raises(ValueError, match="2 gold tags but 1 predicted"):
        entity_scores([["O", "O"]], [["O"]])
