"""Model folders damaged the ways folders get damaged (issue 19, beyond the list): a hand-edited bertkit.json,
weights or tokenizer files of another model, a corrupt ONNX file, a link loop; and requests the service must
answer 4xx, never 500. Each is one clear error, never a traceback or a silent answer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import fails

from bertkit import ModelLoadError, QuestionAnswerer, TextClassifier


def copy(folder: Path, tmp_path: Path, name: str = "m2") -> Path:
    return Path(shutil.copytree(folder, tmp_path / name))


def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"classes": 5}, "bertkit.json classes is a JSON number; it must be a list"),
        ({"classes": "negative,positive"}, "bertkit.json classes is a JSON string"),
        ({"config": ...}, "bertkit.json config is missing"),
        ({"config": "x"}, "bertkit.json config is a JSON string"),
        ({"task": ...}, "bertkit.json task is missing"),
        ({"kind": ["x"]}, "bertkit.json kind is ['x'], not one of"),
    ],
)
def test_a_hand_edited_bertkit_json_is_one_line(capsys, tiny_classifier, tmp_path, changes, message):
    folder = copy(tiny_classifier, tmp_path)
    edit_json(folder / "bertkit.json", **changes)
    data = tmp_path / "p.csv"
    data.write_text("text\ngood movie\n")
    assert message in fails(capsys, "predict", folder, "--data", data, "--output", tmp_path / "o.csv")


def test_weights_that_do_not_fit_config_name_a_tensor(tiny_classifier, tmp_path):
    folder = copy(tiny_classifier, tmp_path)
    edit_json(folder / "config.json", num_labels=5, id2label={str(i): f"l{i}" for i in range(5)}, label2id=...)
    edit_json(folder / "bertkit.json", classes=[f"l{i}" for i in range(5)])
    with pytest.raises(ModelLoadError, match=r"classifier\.\w+ is \[2.*\] in the weights but \[5.*\] by config"):
        TextClassifier.load(folder, device="cpu")


def test_weights_without_the_head_are_refused_not_random(tiny_classifier, tmp_path):
    """A classifier's weights copied into a QA folder: its qa_outputs head would be random, answering anyway."""
    from transformers import AutoModelForQuestionAnswering

    folder = tmp_path / "qa"
    AutoModelForQuestionAnswering.from_pretrained(str(tiny_classifier)).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_classifier / name, folder / name)
    QuestionAnswerer.load(folder, device="cpu")  # its own weights load
    shutil.copy(tiny_classifier / "model.safetensors", folder / "model.safetensors")
    with pytest.raises(ModelLoadError, match=r"the weights lack qa_outputs\.bias, qa_outputs\.weight"):
        QuestionAnswerer.load(folder, device="cpu")


def test_a_tokenizer_beyond_the_embeddings_is_refused(tiny_classifier, tmp_path):
    from tokenizers import Tokenizer, models

    folder = copy(tiny_classifier, tmp_path)
    vocab = {"[UNK]": 0, **{f"w{i}": i + 1 for i in range(999)}}
    Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")).save(str(folder / "tokenizer.json"))
    with pytest.raises(ModelLoadError, match=r"token ids up to \d+ but the model's embeddings hold"):
        TextClassifier.load(folder, device="cpu")


def test_a_link_loop_is_named(capsys, tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assert "symbolic link that leads nowhere" in fails(capsys, "export", tmp_path / "a")


def test_export_refuses_an_onnx_file_and_predict_a_corrupt_onnx_model(capsys, tiny_classifier, tmp_path):
    folder = copy(tiny_classifier, tmp_path)
    (folder / "onnx").write_text("x")
    assert "onnx: is a file, where the export writes a folder" in fails(capsys, "export", folder)
    (folder / "onnx").unlink()
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_text("garbage")
    with pytest.raises(ModelLoadError, match=r"model\.onnx: not a usable ONNX model .*bertkit export"):
        TextClassifier.load(folder, device="cpu", backend="onnx")


@pytest.fixture(scope="module")
def client(tiny_classifier):
    import time

    from fastapi.testclient import TestClient

    from bertkit.serving import ServeSettings, create_app

    with TestClient(create_app(tiny_classifier, ServeSettings(device="cpu")), raise_server_exceptions=False) as c:
        while c.get("/ready").status_code != 200:
            time.sleep(0.02)
        yield c


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "message"),
    [
        ("/predict", b'{"texts": ["\\ud800 good"]}', JSON, 422, "texts[0]: character 0 is a lone UTF-16 surrogate"),
        ("/embed", b'{"texts": ["\\udfff"]}', JSON, 422, "lone UTF-16 surrogate"),
        ("/predict", b'{"texts": ["good"]}', {"content-type": "text/plain"}, 415, "content-type text/plain; send JSON"),
        ("/predict", b'{"texts": ["good"], "top_k": true}', JSON, 422, "top_k: Input should be a valid integer"),
        ("/embed", b'{"texts": ["good"], "normalize": "yes"}', JSON, 422, "normalize: Input should be a valid boolean"),
    ],
)
def test_the_service_answers_4xx_for_client_mistakes(client, path, body, headers, status, message):
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_info_after_a_failed_load_says_why(tiny_classifier, tmp_path):
    import time

    from fastapi.testclient import TestClient

    from bertkit.serving import ServeSettings, create_app

    folder = copy(tiny_classifier, tmp_path)
    (folder / "model.safetensors").write_bytes((tiny_classifier / "model.safetensors").read_bytes()[:5000])
    with TestClient(create_app(folder, ServeSettings(device="cpu"))) as c:
        while c.get("/ready").json()["status"] == "loading":
            time.sleep(0.02)
        response = c.get("/info")
    assert response.status_code == 503
    assert "model folder is unreadable" in response.json()["detail"]
