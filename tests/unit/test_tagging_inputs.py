"""What the tagger takes in: raw text split into words (combining marks and joiners inside words), words the
tokenizer drops, blank lines of a text file, the CoNLL-or-text sniff of a ``.txt``, and in-memory input that is
not strings. A tagger forced to say I-PER for every word it sees makes each case visible without training."""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest
import torch

from bertkit import DataError, TokenTagger, load_tagged_data
from bertkit.models.heads import build_token_classifier
from bertkit.tagging.words import encode_words, split_words

LABELS = ["O", "B-PER", "I-PER"]


@pytest.fixture(scope="module")
def forced(tiny_bert) -> TokenTagger:
    """An untrained tagger on the tiny BERT whose head gives I-PER to every first sub-token it is shown."""
    from bertkit.tagging.estimator import _tokenizer

    tagger = TokenTagger(str(tiny_bert), max_length=16, precision="fp32", device="cpu", progress=False)
    tagger.config_, tagger.labels_ = tagger._config(), LABELS
    tagger.tokenizer_ = _tokenizer(str(tiny_bert))
    tagger.model_ = build_token_classifier(str(tiny_bert), LABELS).eval()
    with torch.no_grad():
        tagger.model_.classifier.weight.zero_()
        tagger.model_.classifier.bias.copy_(torch.tensor([0.0, 0.0, 10.0]))
    return tagger


# raw text: words ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (unicodedata.normalize("NFD", "Jürgen Müller, É.U."), ["Jürgen", "Müller", ",", "É.U."]),
        ("हिन्दी नरेन्द्र मोदी", ["हिन्दी", "नरेन्द्र", "मोदी"]),  # vowel signs and viramas are marks
        ("क्\u200dष co\u00adop", ["क्\u200dष", "co\u00adop"]),  # joiner and soft hyphen inside a word
        ("good\u200bfilm \u200eParis\u200f \ufeffBonn", ["good", "film", "Paris", "Bonn"]),  # invisible: a space
        ("a 👨\u200d👩\u200d👧 #\u20e3", ["a", "👨\u200d👩\u200d👧", "#\u20e3"]),  # a ZWJ sequence is one symbol
    ],
)
def test_combining_marks_and_joiners_stay_inside_their_word(text, words):
    found, offsets = split_words(text)
    assert [unicodedata.normalize("NFC", w) for w in found] == [unicodedata.normalize("NFC", w) for w in words]
    assert [text[s:e] for s, e in offsets] == found


def test_a_decomposed_name_is_one_entity(forced):
    for form in ("NFC", "NFD"):
        text = unicodedata.normalize(form, "Jürgen Müller")
        (entity,) = forced.predict([text])[0]
        assert (entity["text"], entity["start"], entity["end"]) == (text, 0, len(text))
    (entity,) = forced.predict(["नरेन्द्र मोदी"])[0]
    assert entity["text"] == "नरेन्द्र मोदी"


# words of no sub-token ---------------------------------------------------------------------------------------

ZERO = ["\u200b", "\u00ad", "\u200e", "\x00", ""]  # the BERT tokenizer drops each of them whole


def test_a_word_of_no_sub_token_is_encoded_as_the_unknown_token(forced):
    tokenizer = forced.tokenizer_
    sentences = [["good", *ZERO, "film"], ["good"] * 10 + ZERO * 2]
    words = encode_words(tokenizer, sentences, max_length=8)  # the second sentence is cut into pieces
    assert words.word.tolist() == list(range(words.total_words))  # every word has a first sub-token
    first = tokenizer.convert_ids_to_tokens(words.encoded.ids[words.first].tolist())
    assert first[:7] == ["good", *["[UNK]"] * 5, "film"] and first[-10:] == ["[UNK]"] * 10
    assert words.encoded.lengths.max() <= 8
    labels = words.token_labels(np.arange(words.total_words))
    assert sorted(labels[labels >= 0].tolist()) == list(range(words.total_words))  # every gold tag trains


def test_a_max_length_with_no_room_for_words_is_refused(forced):
    from bertkit.exceptions import ConfigError

    with pytest.raises(ConfigError, match=r"^--max-length 2 leaves no room for words beside the model's 2 special"):
        encode_words(forced.tokenizer_, [["good", "film"]], max_length=2)  # every word would be tagged O
    assert encode_words(forced.tokenizer_, [["good", "film"]], max_length=3).word.tolist() == [0, 1]


def test_words_of_no_sub_token_are_tagged_and_scored(forced):
    sentences = [["good", w, "film"] for w in ZERO]
    assert forced.predict_tags(sentences) == [["I-PER"] * 3] * len(ZERO)
    report = forced.evaluate(sentences, [["B-PER", "I-PER", "I-PER"]] * len(ZERO))
    assert report["f1"] == 1.0 and report["n_predicted_entities"] == len(ZERO)


# blank lines of a text file ----------------------------------------------------------------------------------


def test_blank_lines_of_a_text_file_keep_their_rows(forced, tmp_path):
    texts = tmp_path / "texts.txt"
    texts.write_bytes("\ngood film\r\n\n   \nweak\u2028plot\n\n\n".encode())
    out = tmp_path / "spans.jsonl"
    assert forced.predict_file(texts, out, chunk_rows=2) == 5  # the trailing blank lines end the file
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n")[:-1]]  # U+2028 is in a row
    assert [r["text"] for r in rows] == ["", "good film", "", "   ", "weak\u2028plot"]  # row N is line N
    assert [len(r["entities"]) for r in rows] == [0, 1, 0, 0, 1]


# the CoNLL-or-text sniff of a .txt -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ("Boeing B-52\nBoeing B-17\nTake I-95\n", "text"),  # B-52 is a word, not a tag
        ("Paris B-LOC\nis O\nbig O\n", "text"),  # two columns, one sentence: nothing says CoNLL
        ("Boeing B-Max\nAirbus B-Neo\n", "text"),
        ("Paris B-LOC\nis O\n\nBonn B-LOC\nis O\n", "conll"),  # a blank line between sentences
        ("Paris NNP B-LOC\nis VBZ O\n", "conll"),  # word POS tag
        ("Paris NNP B-NP I-LOC\nis VBZ B-VP O\n", "conll"),
        ("-DOCSTART- O\n\nParis B-LOC\n", "conll"),
        ("Acme NNP B-ORG:gov\nis VBZ O\n", "conll"),  # a type beyond letters and digits is still a tag
        ("Paris B-PER/LOC\nis O\n\nBonn B-LOC\nis O\n", "conll"),
        ("Paris NNP B-LOC\nis VBZ O\nbig JJ\n", "text"),  # not one width
        ("John O Neil\nMary said hi\n", "text"),  # no column of tags alone
    ],
)
def test_a_txt_is_conll_only_when_its_lines_say_so(tmp_path, content, kind):
    from bertkit.tagging.conll import tagging_format

    path = tmp_path / "data.txt"
    path.write_text(content, encoding="utf-8")
    assert tagging_format(path, "utf-8") == kind


def test_a_one_sentence_two_column_txt_is_read_as_text_with_a_warning(tmp_path):
    from bertkit.exceptions import BertkitWarning
    from bertkit.tagging.conll import read_raw_texts

    path = tmp_path / "sentence.txt"
    path.write_text("Paris B-LOC\nis O\nbig O\n", encoding="utf-8")
    with pytest.warns(BertkitWarning, match=r"sentence.txt: read as one text per line, but every line is 'word TAG'"):
        assert read_raw_texts(path, "utf-8") == ["Paris B-LOC", "is O", "big O"]
    path.write_text("Boeing B-52\nTake I-95\n", encoding="utf-8")
    assert read_raw_texts(path, "utf-8") == ["Boeing B-52", "Take I-95"]  # no warning: warnings are errors here


def test_a_blank_line_after_a_long_first_sentence_is_found(tmp_path):
    from bertkit.tagging.conll import tagging_format

    path = tmp_path / "long.txt"
    sentence = "".join(f"w{i} O\n" for i in range(120))
    path.write_text(sentence + "\n" + sentence, encoding="utf-8")
    assert tagging_format(path, "utf-8") == "conll"
    assert len(load_tagged_data(path).tokens) == 2
    path.write_text(sentence, encoding="utf-8")
    with pytest.raises(DataError, match=r"long.txt: reads as raw text.*name it .conll\)$"):
        load_tagged_data(path)


# in-memory input that is not strings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.predict([None]), r"^texts\[0\]: expected a string, got None \(NoneType\); every text"),
        (lambda t: t.predict(["ok", 3]), r"^texts\[1\]: expected a string, got 3 \(int\)"),
        (lambda t: t.predict("good film"), r"^texts: expected a list of strings; wrap a single text in a list$"),
        (lambda t: t.predict_tags([["good", None]]), r"^X sentence 1 word 2: expected a string, got None \(NoneType\)"),
        (lambda t: t.predict_tags([["good"], "a film"]), r"^X sentence 2: the words are one string \('a film'\), no"),
        (lambda t: t.predict_tags([["good"], 7]), r"^X sentence 2: expected a list of words .*, got 7 \(int\)$"),
        (
            lambda t: t.evaluate([["good", "film"]], [["O", None]]),
            r"^X sentence 1 word 2: tag None is a NoneType, not a string; tags must be O, B-TYPE or I-TYPE",
        ),
        (lambda t: t.evaluate([["good", "film"]], ["OO"]), r"^X sentence 1: the tags are one string \('OO'\), not a"),
        (lambda t: t.evaluate([["good"]], "O"), r"^X: the tags must be a list of tag lists, one per sentence"),
        (lambda t: t.evaluate([["good", "film"]], [["O", "PER"]]), r"^X sentence 1 word 2: tag 'PER' is not BIO"),
    ],
)
def test_input_that_is_not_strings_is_refused_naming_sentence_and_word(forced, call, message):
    with pytest.raises(DataError, match=message):
        call(forced)


def test_arrays_and_iterables_of_strings_are_still_taken(forced):
    assert forced.predict_tags(np.array([["good", "film"]])) == [["I-PER", "I-PER"]]
    assert forced.evaluate([["good", "film"]], np.array([["B-PER", "I-PER"]]))["f1"] == 1.0
    assert forced.predict(t for t in ["good film"]) == forced.predict(["good film"])
