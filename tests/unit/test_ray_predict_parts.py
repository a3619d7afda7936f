"""The pieces of ``predict --engine ray`` that need no Ray cluster: reading the parts back (read_parts), how a
worker loads the model (FilePredictor) and the checks made before Ray starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bertkit.exceptions import ConfigError, ModelLoadError
from bertkit.ray_predict import MANIFEST, FilePredictor, WorkerError, read_parts


def write_parts(folder: Path, suffix: str, parts: list[tuple[int, int, str]]) -> Path:
    """Parts ``(file, chunk, text)`` as predict_ray names them, and their manifest."""
    folder.mkdir()
    sep = "\t" if suffix == ".tsv" else ","
    records = []
    for file, chunk, text in parts:
        name = f"part-{file:05d}-{chunk:05d}{suffix}"
        (folder / name).write_text(text.replace(",", sep), encoding="utf-8")
        records.append({"file": file, "chunk": chunk, "part": name, "rows": text.count("\n") - 1, "skipped": 0})
    manifest = {"files": [], "model": "m", "parts": records}
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return folder


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_read_parts_keeps_csv_texts_as_written(tmp_path, suffix):
    header = "input_file,input_row,id,text,label,score\n"
    folder = write_parts(tmp_path / "out", suffix, [
        (0, 0, header + "0,0,0012,NA,positive,0.75\n0,1,007,null,negative,0.5\n"),
        (0, 1, header + "0,2,3,,positive,0.25\n0,10,4,N/A,negative,0.125\n"),
        (1, 0, header + "1,0,5,nan,positive,1.0\n"),
    ])  # fmt: skip
    frame = read_parts(folder)
    assert frame["id"].tolist() == ["0012", "007", "3", "4", "5"]
    assert frame["text"].tolist() == ["NA", "null", "", "N/A", "nan"]
    assert frame["score"].tolist() == ["0.75", "0.5", "0.25", "0.125", "1.0"]  # as written, as the input texts
    # the positions stay numbers: row 10 sorts after row 2, not between 1 and 2
    assert frame["input_file"].tolist() == [0, 0, 0, 0, 1]
    assert frame["input_row"].tolist() == [0, 1, 2, 10, 0]


def test_a_worker_loads_the_torch_backend_with_the_precision_given(monkeypatch, tmp_path):
    from bertkit.classification.estimator import TextClassifier

    calls = []
    monkeypatch.setattr("torch.set_num_threads", lambda n: None)  # the test process keeps its threads
    monkeypatch.setattr(TextClassifier, "load", classmethod(lambda cls, folder, **kw: calls.append((folder, kw))))
    FilePredictor("model", str(tmp_path), {"format": ".csv"}, device="cpu", threads=1, precision="fp32")
    assert calls == [("model", {"device": "cpu", "backend": "torch", "precision": "fp32"})]


def test_a_worker_raises_its_model_load_error_from_its_first_task(monkeypatch, tmp_path):
    """Ray keeps only the text of an error raised while an actor starts; from a task, the error itself comes back."""
    from bertkit.classification.estimator import TextClassifier

    def fail(cls, folder, **kw):
        raise ModelLoadError(f"{folder}: no such model folder")

    monkeypatch.setattr("torch.set_num_threads", lambda n: None)
    monkeypatch.setattr(TextClassifier, "load", classmethod(fail))
    predictor = FilePredictor("gone", str(tmp_path), {"format": ".csv"}, device="cpu", threads=1)
    with pytest.raises(WorkerError) as caught:
        predictor({"file_index": [0], "path": [str(tmp_path / "in.csv")]})
    assert isinstance(caught.value.error, ModelLoadError) and str(caught.value.error) == "gone: no such model folder"


def test_per_file_options_must_match_the_files(tmp_path):
    pytest.importorskip("ray")
    from bertkit import predict_ray

    data = tmp_path / "in.csv"
    data.write_text("text\na fine film\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^per_file gives options for 2 files; give one mapping per file \(1\)$"):
        predict_ray("model", [data], tmp_path / "out", per_file=[{}, {}])
    assert not (tmp_path / "out").exists()  # checked before anything is written or Ray starts


def test_read_parts_keeps_the_quotes_of_an_unquoted_tsv_part(tmp_path):
    header = "input_file\tinput_row\ttext\tlabel\n"
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "part-00000-00000.tsv").write_text(header + '0\t0\t"quoted text"\tpositive\n0\t1\tsay "hi"\tnegative\n')
    part = {"file": 0, "chunk": 0, "part": "part-00000-00000.tsv", "rows": 2, "skipped": 0}
    (folder / MANIFEST).write_text(json.dumps({"files": [], "model": "m", "parts": [part]}), encoding="utf-8")
    assert read_parts(folder)["text"].tolist() == ['"quoted text"', 'say "hi"']  # as the TSV writer wrote them


def test_read_parts_keeps_jsonl_integers_exact(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    lines = ['{"input_file": 0, "input_row": 0, "id": 1234567890123456789, "when": "2020-01-01"}',
             '{"input_file": 0, "input_row": 1, "id": null, "when": "soon"}']  # fmt: skip
    (folder / "part-00000-00000.jsonl").write_text("\n".join(lines) + "\n")
    part = {"file": 0, "chunk": 0, "part": "part-00000-00000.jsonl", "rows": 2, "skipped": 0}
    (folder / MANIFEST).write_text(json.dumps({"files": [], "model": "m", "parts": [part]}), encoding="utf-8")
    frame = read_parts(folder)
    assert frame["id"].tolist()[0] == 1234567890123456789 and frame["when"].tolist() == ["2020-01-01", "soon"]
