"""CoNLL and JSONL readers for word-tagged sentences: IOB1 -> BIO, document markers, errors with file:line."""

from __future__ import annotations

import json

import pytest

from bertkit import DataError, load_tagged_data
from bertkit.tagging.conll import iob1_to_bio, read_conll
from bertkit.tagging.inputs import from_lists


@pytest.mark.parametrize(
    ("iob1", "bio"),
    [
        (["I-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"]),
        # B- in IOB1 separates two adjacent entities of one type.
        (["I-LOC", "B-LOC", "I-LOC"], ["B-LOC", "B-LOC", "I-LOC"]),
        # A type change starts a new entity.
        (["I-ORG", "I-PER"], ["B-ORG", "B-PER"]),
        (["O", "I-MISC", "O", "I-MISC"], ["O", "B-MISC", "O", "B-MISC"]),
        # BIO input is left as is.
        (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),
        ([], []),
    ],
)
def test_iob1_to_bio(iob1, bio):
    assert iob1_to_bio(iob1) == bio


CONLL = """-DOCSTART- -X- -X- O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER


-DOCSTART- -X- -X- O

BRUSSELS NNP I-NP I-LOC
1996-08-22 CD I-NP O"""


def test_conll_sentences_documents_and_tags(tmp_path):
    path = tmp_path / "eng.sample"
    path.write_text(CONLL)
    data = read_conll(path)
    assert data.tokens == [
        ["EU", "rejects", "German", "call", "."],
        ["Peter", "Blackburn"],
        ["BRUSSELS", "1996-08-22"],  # the last sentence has no blank line after it
    ]
    assert data.tags == [["B-ORG", "O", "B-MISC", "O", "O"], ["B-PER", "I-PER"], ["B-LOC", "O"]]
    assert data.lines == [3, 9, 15]
    assert data.where(1) == "eng.sample line 9"


def test_conll_other_tag_column_and_tab_separated(tmp_path):
    path = tmp_path / "chunks.txt"
    path.write_text("He\tPRP\tB-NP\nreckons\tVBZ\tB-VP\n\n")
    assert read_conll(path, tag_column=2).tags == [["B-NP", "B-VP"]]
    with pytest.raises(DataError, match=r"chunks.txt line 1: tag 'PRP' is not BIO/IOB1"):
        read_conll(path, tag_column=1)
    with pytest.raises(DataError, match=r"chunks.txt line 1: --tag-column 5 does not name a tag column of 3"):
        read_conll(path, tag_column=5)
    with pytest.raises(DataError, match=r"--tag-column 0 does not name a tag column"):
        read_conll(path, tag_column=0)


def test_conll_wrong_column_count_names_file_and_line(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("EU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\nGerman JJ I-MISC\n")
    with pytest.raises(
        DataError, match=r"^bad.conll line 4: 3 columns, expected 4 like line 1; every word line needs the same"
    ):
        load_tagged_data(path)


def test_conll_bad_tag_and_missing_tag_column(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("EU B-ORG\nrejects X-VP\n")
    with pytest.raises(DataError, match=r"bad.conll line 2: tag 'X-VP' is not BIO/IOB1; tags must be O, B-TYPE"):
        load_tagged_data(path)
    words = tmp_path / "words.conll"
    words.write_text("EU\nrejects\n\nGerman\n")
    with pytest.raises(DataError, match=r"words.conll line 1: 1 column; labelled CoNLL data needs a word and a tag"):
        load_tagged_data(words)
    unlabelled = load_tagged_data(words, need_tags=False)
    assert unlabelled.tokens == [["EU", "rejects"], ["German"]] and unlabelled.tags is None


def test_conll_empty_missing_and_undecodable(tmp_path):
    empty = tmp_path / "empty.conll"
    empty.write_text("-DOCSTART- -X- -X- O\n\n\n")
    with pytest.raises(DataError, match=r"empty.conll: no sentences found"):
        load_tagged_data(empty)
    with pytest.raises(DataError, match=r"nope.conll: file not found"):
        load_tagged_data(tmp_path / "nope.conll")
    latin = tmp_path / "latin.conll"
    latin.write_bytes("Müller B-PER\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.conll line 1: bytes are not valid utf-8 .*--encoding latin-1"):
        load_tagged_data(latin)
    assert load_tagged_data(latin, encoding="latin-1").tokens == [["Müller"]]


def test_jsonl_tokens_and_tags(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [{"tokens": ["Peter", "Blackburn"], "tags": ["I-PER", "I-PER"]}, {"tokens": ["Hi"], "tags": ["O"]}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    data = load_tagged_data(path)
    assert data.tokens == [["Peter", "Blackburn"], ["Hi"]]
    assert data.tags == [["B-PER", "I-PER"], ["O"]]
    assert data.where(1) == "train.jsonl line 2"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"bad.jsonl line 2: not valid JSON"),
        ('{"words": ["a"]}', r'bad.jsonl line 2: needs "tokens", a list of strings'),
        ('{"tokens": []}', r'bad.jsonl line 2: "tokens" is empty'),
        ('{"tokens": ["a", "b"], "tags": ["O"]}', r'bad.jsonl line 2: "tags" must be a list of 2 strings.*\(got 1\)'),
        ('{"tokens": ["a"], "tags": ["PER"]}', r"bad.jsonl line 2: tag 'PER' is not BIO/IOB1"),
        ('{"tokens": ["a"]}', r'bad.jsonl line 2: no "tags"; labelled data needs one tag per token'),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"tokens": ["Hi"], "tags": ["O"]}\n' + line + "\n")
    with pytest.raises(DataError, match=message):
        load_tagged_data(path)


def test_jsonl_without_tags_for_prediction(tmp_path):
    path = tmp_path / "words.jsonl"
    path.write_text('{"tokens": ["Hi"]}\n{"tokens": ["there"]}\n')
    assert load_tagged_data(path, need_tags=False).tags is None
    path.write_text('{"tokens": ["Hi"], "tags": ["O"]}\n{"tokens": ["there"]}\n')
    with pytest.raises(DataError, match=r'words.jsonl line 2: no "tags" while other lines have them'):
        load_tagged_data(path, need_tags=False)


def test_in_memory_lists_are_checked():
    data = from_lists([["Peter", "Blackburn"]], [["I-PER", "I-PER"]])
    assert data.tags == [["B-PER", "I-PER"]] and data.where(0) == "X sentence 1"
    with pytest.raises(DataError, match=r"X sentence 1: 2 words but 1 tags"):
        from_lists([["Peter", "Blackburn"]], [["B-PER"]])
    with pytest.raises(DataError, match=r"X: 1 sentences but 2 tag lists"):
        from_lists([["a"]], [["O"], ["O"]])
    with pytest.raises(DataError, match=r"X: expected a list of sentences, each a list of words"):
        from_lists("Peter Blackburn", None)
    with pytest.raises(DataError, match=r"^X sentence 1: the words are one string \('Peter Blackburn'\), not a list"):
        from_lists(["Peter Blackburn"], None)
    with pytest.raises(DataError, match=r"X sentence 2: no words"):
        from_lists([["a"], []], None)


# one reader decision for tag train, evaluate and predict (issue 19, item 2) -----------------------------------


def test_a_conll_file_named_txt_is_conll_for_prediction_too(tmp_path):
    from bertkit.tagging.conll import read_raw_texts

    path = tmp_path / "conll_test.txt"
    path.write_text(CONLL)
    assert read_raw_texts(path, "utf-8") is None  # not 14 "texts" such as 'EU NNP I-NP I-ORG'
    assert load_tagged_data(path).tokens[0] == ["EU", "rejects", "German", "call", "."]


def test_a_text_per_line_file_stays_raw_text(tmp_path):
    from bertkit.tagging.conll import read_raw_texts

    path = tmp_path / "texts.txt"
    path.write_text("the film was great\n\nweak plot\nO B I\n\n")
    assert read_raw_texts(path, "utf-8") == ["the film was great", "", "weak plot", "O B I"]  # line i + 1: row i


def test_training_on_raw_text_says_which_formats_are_read(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("the film was great\nweak plot\n")
    with pytest.raises(DataError, match=r"texts.txt: reads as raw text, one text per line.*CoNLL.*JSONL"):
        load_tagged_data(path)
