"""Reading SQuAD v1.1/v2.0 JSON: flat records, and one clear error per kind of bad input."""

from __future__ import annotations

import copy
import json

import pytest
from helpers import make_squad, write_squad

from bertkit import DataError, read_squad
from bertkit.qa.squad import as_squad, parse_squad, questions_contexts

CONTEXT = "Ada Lovelace wrote the first program in 1843."
GOOD = {
    "version": "1.1",
    "data": [
        {
            "title": "Ada",
            "paragraphs": [
                {
                    "context": CONTEXT,
                    "qas": [
                        {
                            "id": "a1",
                            "question": "Who wrote it?",
                            "answers": [{"text": "Ada Lovelace", "answer_start": 0}],
                        },
                        {
                            "id": "a2",
                            "question": "When?",
                            "answers": [{"text": "1843", "answer_start": 40}, {"text": "in 1843", "answer_start": 37}],
                        },
                    ],
                }
            ],
        },
        {"title": "Empty", "paragraphs": [{"context": "Nothing here.", "qas": []}]},
    ],
}


def broken(change) -> dict:
    squad = copy.deepcopy(GOOD)
    change(squad)
    return squad


def test_reads_flat_records_with_all_gold_answers(tmp_path):
    data = read_squad(write_squad(tmp_path / "good.json", GOOD))
    assert [r.id for r in data.records] == ["a1", "a2"]
    assert data.version == "1.1" and not data.has_impossible and data.titles == ["Ada"]
    second = data.records[1]
    assert second.context == CONTEXT and second.title == "Ada"
    assert [(a.text, a.start, a.end) for a in second.answers] == [("1843", 40, 44), ("in 1843", 37, 44)]
    assert all(CONTEXT[a.start : a.end] == a.text for r in data.records for a in r.answers)


def test_v2_unanswerable_questions(tmp_path):
    data = read_squad(write_squad(tmp_path / "v2.json", make_squad(40, impossible_share=0.3, seed=2)))
    impossible = [r for r in data.records if r.is_impossible]
    assert data.version == "2.0" and data.has_impossible and impossible
    assert all(not r.answers for r in impossible)
    assert all(r.answers for r in data.records if not r.is_impossible)


def test_subset_keeps_whole_articles(tmp_path):
    data = parse_squad(make_squad(20, per_article=4))
    part = data.subset(["article 1", "article 3"])
    assert len(part) == 8 and set(part.titles) == {"article 1", "article 3"}


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (lambda s: s.pop("data"), ["not SQuAD JSON", '"data" list', "got keys ['version']"]),
        (lambda s: s["data"][0].pop("paragraphs"), ['data[0]: missing "paragraphs"', "keys present"]),
        (lambda s: s["data"].__setitem__(1, "text"), ["data[1]: expected an article object", "got str"]),
        (lambda s: s["data"][0]["paragraphs"][0].__setitem__("context", 7), ["data[0].paragraphs[0].context", "expected a string (got int)"]),
        (lambda s: s["data"][0]["paragraphs"][0]["qas"][0].pop("question"), ['data[0].paragraphs[0].qas[0]: missing "question"']),
        (lambda s: s["data"][0]["paragraphs"][0]["qas"][0].__setitem__("question", "  "), ["qas[0].question (id a1): the question is empty"]),
        (lambda s: s["data"][0]["paragraphs"][0]["qas"][1].pop("id"), ["qas[1].id: missing or empty question id"]),
        (lambda s: s["data"][0]["paragraphs"][0]["qas"][1].__setitem__("id", "a1"), ["qas[1].id: question id 'a1' already used at data[0].paragraphs[0].qas[0]"]),
        (lambda s: s["data"][0]["paragraphs"][0]["qas"][0].__setitem__("answers", {}), ["qas[0].answers (id a1): must be a list (got dict)"]),
        (lambda s: s["data"][0]["paragraphs"][0]["qas"][0].__setitem__("answers", []), ["qas[0].answers (id a1): no answer", "is_impossible"]),
        (lambda s: s["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].pop("text"), ['answers[0]: missing "text"']),
        (lambda s: s["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].__setitem__("answer_start", "0"), ["answers[0].answer_start (question id a1): must be an integer", "got '0'"]),
        (lambda s: s["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].__setitem__("text", ""), ["answers[0].text (question id a1): the answer text is empty"]),
        (lambda s: s["data"][0]["paragraphs"][0]["qas"][0].__setitem__("is_impossible", "no"), ["qas[0].is_impossible (id a1): must be true or false"]),
        (lambda s: s["data"][0]["paragraphs"][0]["qas"][0].__setitem__("is_impossible", True), ["qas[0] (id a1): is_impossible is true but answers are given", "plausible_answers"]),
        (lambda s: s["data"].__setitem__(0, s["data"][1]), ["no questions found"]),
    ],
)  # fmt: skip
def test_malformed_squad_names_the_file_and_json_path(tmp_path, change, fragments):
    path = write_squad(tmp_path / "bad.json", broken(change))
    with pytest.raises(DataError) as caught:
        read_squad(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_answer_start_off_by_some_characters_names_the_question_and_the_fix(tmp_path):
    squad = broken(lambda s: s["data"][0]["paragraphs"][0]["qas"][1]["answers"][0].__setitem__("answer_start", 38))
    with pytest.raises(DataError) as caught:
        read_squad(write_squad(tmp_path / "off.json", squad))
    assert str(caught.value) == (
        f"{tmp_path / 'off.json'} data[0].paragraphs[0].qas[1].answers[0].answer_start (question id a2): "
        "answer '1843' does not match the context at 38 (context there: 'n 18'); the text occurs at 40: "
        "set answer_start to 40"
    )


def test_answer_text_missing_from_the_context(tmp_path):
    squad = broken(lambda s: s["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].__setitem__("text", "Babbage"))
    with pytest.raises(DataError, match=r"question id a1\): answer 'Babbage' does not match .* does not occur in"):
        read_squad(write_squad(tmp_path / "missing.json", squad))


def test_invalid_json_names_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"version": "1.1",\n "data": [oops]}', encoding="utf-8")
    with pytest.raises(DataError, match=r"broken.json line 2 column 11: invalid JSON \(Expecting value\)"):
        read_squad(path)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(DataError, match=r"nope.json: SQuAD file not found"):
        read_squad(tmp_path / "nope.json")
    path = tmp_path / "latin1.json"
    path.write_bytes(json.dumps(GOOD).replace("Ada", "Ad\u00e9").encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.json: not UTF-8 text .* save the file as UTF-8"):
        read_squad(path)


def test_questions_without_answers_are_accepted_for_prediction(tmp_path):
    squad = broken(lambda s: s["data"][0]["paragraphs"][0]["qas"][0].pop("answers"))
    data = read_squad(write_squad(tmp_path / "questions.json", squad), need_answers=False)
    assert data.records[0].answers == [] and len(data) == 2


def test_in_memory_inputs():
    rows = [{"question": "Who?", "context": CONTEXT, "answers": [{"text": "Ada", "answer_start": 0}]}]
    data = as_squad(rows)
    assert data.records[0].id == "0" and data.records[0].answers[0].text == "Ada"
    with pytest.raises(DataError, match=r"X \[0\].answers\[0\].answer_start \(question id 0\).*set answer_start to 0"):
        as_squad([{**rows[0], "answers": [{"text": "Ada", "answer_start": 3}]}], "X")
    with pytest.raises(DataError, match=r'X \[1\]: missing "context"'):
        as_squad([rows[0], {"question": "Why?"}], "X")
    with pytest.raises(DataError, match=r"X \[1\].id: question id '0' already used"):
        as_squad([rows[0], {**rows[0], "id": "0"}], "X")
    with pytest.raises(DataError, match="X: no questions given"):
        as_squad([], "X")
    with pytest.raises(DataError, match="expected a SQuAD JSON path, a SquadData or a list of dicts"):
        as_squad(42)
    assert len(questions_contexts(["Who?", "When?"], [CONTEXT, CONTEXT])) == 2
    with pytest.raises(DataError, match="2 questions but 1 contexts; pass one context per question"):
        questions_contexts(["Who?", "When?"], [CONTEXT])
    with pytest.raises(DataError, match="got a single string; wrap it in a list"):
        questions_contexts("Who?", CONTEXT)
