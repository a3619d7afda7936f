"""Routes follow the model folder's kind: /qa for question answering, /tag for token classification.

The adapters call ``QuestionAnswerer.load(folder).predict(questions, contexts)`` and
``TokenTagger.load(folder).predict(texts)``. Recording stand-ins check the routing and batching whatever
bertkit version this is; the real TokenTagger is served too when this bertkit has it.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="bertkit serve needs the serve extra")

from fastapi.testclient import TestClient  # noqa: E402

import bertkit  # noqa: E402
from bertkit.serving import ServeSettings, create_app  # noqa: E402


def wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 60
    while (ready := client.get("/ready")).status_code != 200:
        assert time.monotonic() < deadline, ready.json()
        time.sleep(0.02)


def folder_of_kind(tiny_classifier: Path, tmp_path: Path, kind: str) -> Path:
    # A BERT checkpoint serves as the encoder of /embed; the stand-in estimators ignore its head.
    folder = shutil.copytree(tiny_classifier, tmp_path / kind)
    meta = json.loads((folder / "bertkit.json").read_text())
    (folder / "bertkit.json").write_text(json.dumps({**meta, "kind": kind}))
    return folder


class FakeAnswerer:
    calls: list[tuple[list[str], list[str]]] = []

    @classmethod
    def load(cls, folder, *, device="auto"):
        return cls()

    def predict(self, questions, contexts):
        FakeAnswerer.calls.append((list(questions), list(contexts)))
        return [{"answer": c.split()[-1], "score": 0.5, "start": len(c) - len(c.split()[-1]), "end": len(c)}
                for q, c in zip(questions, contexts, strict=True)]  # fmt: skip


class FakeTagger:
    labels_ = ["O", "B-X", "I-X"]

    @classmethod
    def load(cls, folder, *, device="auto"):
        return cls()

    def predict(self, texts):
        return [[{"entity": "X", "text": t.split()[0], "start": 0, "end": len(t.split()[0]), "score": 0.9}]
                for t in texts]  # fmt: skip


def test_question_answering_folder_serves_qa(tiny_classifier, tmp_path, monkeypatch):
    monkeypatch.setattr(bertkit, "QuestionAnswerer", FakeAnswerer, raising=False)
    FakeAnswerer.calls.clear()
    folder = folder_of_kind(tiny_classifier, tmp_path, "question-answering")
    with TestClient(create_app(folder, ServeSettings(device="cpu"))) as client:
        wait_ready(client)
        body = {"questions": ["who?", "where?"], "contexts": ["it was Alice", "in Paris"]}
        answers = client.post("/qa", json=body).json()["answers"]
        assert [a["answer"] for a in answers] == ["Alice", "Paris"]
        assert FakeAnswerer.calls[-1] == (body["questions"], body["contexts"])
        mismatch = client.post("/qa", json={"questions": ["a", "b"], "contexts": ["c"]})
        assert mismatch.status_code == 422
        assert "2 questions but 1 contexts; give one per question" in mismatch.json()["detail"]
        response = client.post("/predict", json={"texts": ["a"]})
        assert response.status_code == 404
        assert response.json()["detail"] == (
            "this model folder holds a question-answering model; /predict needs a text classifier"
        )
        assert client.post("/tag", json={"texts": ["a"]}).status_code == 404
        assert client.get("/info").json()["endpoints"] == ["/qa", "/embed"]
        assert "/qa" in client.get("/openapi.json").json()["paths"]
        assert client.post("/embed", json={"texts": ["a"]}).status_code == 200


def test_token_classification_folder_serves_tag(tiny_classifier, tmp_path, monkeypatch):
    monkeypatch.setattr(bertkit, "TokenTagger", FakeTagger, raising=False)
    folder = folder_of_kind(tiny_classifier, tmp_path, "token-classification")
    with TestClient(create_app(folder, ServeSettings(device="cpu"))) as client:
        wait_ready(client)
        tags = client.post("/tag", json={"texts": ["Alice left", "Bob"]}).json()["tags"]
        assert [[e["text"] for e in row] for row in tags] == [["Alice"], ["Bob"]]
        assert client.get("/info").json()["labels"] == ["O", "B-X", "I-X"]
        response = client.post("/qa", json={"questions": ["a"], "contexts": ["b"]})
        assert response.json()["detail"] == (
            "this model folder holds a token-classification model; /qa needs a question-answering model"
        )


def test_a_kind_this_bertkit_cannot_load_says_so(tiny_classifier, tmp_path, monkeypatch):
    from bertkit.serving.models import QuestionAnswererAdapter

    if "QuestionAnswerer" in vars(bertkit):  # only the lazy table names it otherwise
        monkeypatch.delattr(bertkit, "QuestionAnswerer")
    monkeypatch.setattr(bertkit, "_LAZY", {k: v for k, v in bertkit._LAZY.items() if k != "QuestionAnswerer"})
    with pytest.raises(bertkit.ModelLoadError, match="holds a question-answering model, but this bertkit has no"):
        QuestionAnswererAdapter(folder_of_kind(tiny_classifier, tmp_path, "question-answering"), "cpu", 8)


def test_kind_from_config_architectures_without_bertkit_json(tiny_classifier, tmp_path):
    from bertkit.serving.models import detect_kind

    folder = shutil.copytree(tiny_classifier, tmp_path / "plain")
    (folder / "bertkit.json").unlink()
    assert detect_kind(folder) == "text-classification"
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "architectures": ["BertForQuestionAnswering"]}))
    assert detect_kind(folder) == "question-answering"
    (folder / "config.json").write_text(json.dumps({**config, "architectures": ["BertForTokenClassification"]}))
    assert detect_kind(folder) == "token-classification"


def test_real_token_tagger_is_served(tiny_bert, tmp_path):
    from bertkit import TokenTagger

    sentences = [["alice", "was", "great"], ["the", "film", "was", "dull"], ["bob", "is", "good"]] * 8
    tags = [["B-PER", "O", "O"], ["O", "O", "O", "O"], ["B-PER", "O", "O"]] * 8
    tagger = TokenTagger(model=str(tiny_bert), epochs=1, max_length=32, progress=False).fit(sentences, tags)
    folder = tagger.save(tmp_path / "tagger")
    texts = ["alice was great", "the film was dull"]
    with TestClient(create_app(folder, ServeSettings(device="cpu"))) as client:
        wait_ready(client)
        response = client.post("/tag", json={"texts": texts})
        assert response.status_code == 200
        expected = json.loads(json.dumps(TokenTagger.load(folder, device="cpu").predict(texts)))
        got = response.json()["tags"]
        assert [[(e["entity"], e["start"], e["end"]) for e in row] for row in got] == [
            [(e["entity"], e["start"], e["end"]) for e in row] for row in expected
        ]


def test_real_question_answerer_is_served(tiny_bert, tmp_path):
    from helpers import make_squad

    from bertkit import QuestionAnswerer

    answerer = QuestionAnswerer(str(tiny_bert), epochs=1, max_length=48, doc_stride=16, progress=False)
    folder = answerer.fit(make_squad(40, seed=1)).save(tmp_path / "qa")
    questions = ["what is good ?", "what is good ?"]
    contexts = ["the film was very great and the music was dull .", "a plot is boring but the acting is lovely ."]
    with TestClient(create_app(folder, ServeSettings(device="cpu"))) as client:
        wait_ready(client)
        response = client.post("/qa", json={"questions": questions, "contexts": contexts})
        assert response.status_code == 200, response.text
        expected = QuestionAnswerer.load(folder, device="cpu").predict(questions, contexts)
        got = response.json()["answers"]
        assert [(a["answer"], a["start"], a["end"]) for a in got] == [
            (a["answer"], a["start"], a["end"]) for a in expected
        ]
        for answer, context in zip(got, contexts, strict=True):
            assert context[answer["start"] : answer["end"]] == answer["answer"]
            assert "id" not in answer  # ids would number the merged batch, not this request


def test_an_unreadable_config_is_refused_in_the_readers_own_words(tmp_path):
    from bertkit.exceptions import ModelLoadError
    from bertkit.serving.models import detect_kind

    (tmp_path / "config.json").write_text("{bad", encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"config\.json: unreadable \(Expecting property name"):
        detect_kind(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(ModelLoadError, match=r"config\.json: unreadable \(\[Errno 2\] No such file"):
        detect_kind(tmp_path)
