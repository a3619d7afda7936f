"""Prediction with an exported ONNX graph (ONNX Runtime on the CPU): where the graphs live in a model folder, and
the forward that runs them on collated host batches. Nothing here imports torch: a model whose default backend is
ONNX predicts without it (:mod:`bertkit.export` writes the graphs)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from bertkit.exceptions import ModelLoadError

ONNX_DIR = "onnx"
FILES = {None: "model.onnx", "int8": "model-int8.onnx"}
SOURCE_FILE = "source.json"
"""In ``onnx/``: for each graph, the digest of the folder's weights it was exported from (see :func:`check_graph`)."""


class OnnxForward:
    """Callable on a collated batch (numpy arrays, or CPU torch tensors) that returns float32 logits from ONNX
    Runtime; an input the graph takes and the batch lacks (segment ids of single texts) is zeros."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's InvalidProtobuf, Fail, NoSuchFile... for a damaged file
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            folder = Path(path).parent.parent
            raise ModelLoadError(
                f"{path}: not a usable ONNX model ({first[:200]}); export it again: bertkit export {folder} --format onnx"
                + (" --quantize int8" if Path(path).name == FILES["int8"] else "")
            ) from None
        self.names = [i.name for i in self.session.get_inputs()]
        width = self.session.get_outputs()[0].shape[-1]
        self.width: int | None = width if isinstance(width, int) else None
        """Scores per text the graph gives (None when its output axis is not fixed)."""

    def __call__(self, batch: dict[str, Any]) -> np.ndarray:
        ids = np.asarray(batch["input_ids"])  # [batch, longest]
        feed = {}
        for name in self.names:
            value = batch.get(name)
            feed[name] = np.asarray(value) if value is not None else np.zeros_like(ids)
        return self.session.run(["logits"], feed)[0].astype(np.float32, copy=False)


def weights_digest(folder: str | Path) -> str | None:
    """SHA-256 over the folder's weight files (``*.safetensors``, ``pytorch_model*.bin``), by name and content;
    None when it holds none. About 0.07 s for MiniLM's 90 MB."""
    folder = Path(folder)
    files = sorted(
        p for p in folder.glob("*") if p.suffix == ".safetensors" or (p.name.startswith("pytorch_model") and p.suffix == ".bin")
    )  # fmt: skip
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as handle:
            digest.update(path.name.encode() + b"\0" + hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def record_source(folder: str | Path, graphs: list[str]) -> None:
    """Record in ``onnx/source.json`` that ``graphs`` (file names) were exported from the folder's weights as
    they are now; the other graphs' records are kept. Nothing is recorded for a folder without weights."""
    target = Path(folder) / ONNX_DIR / SOURCE_FILE
    records = _read_source(target)
    digest = weights_digest(folder)
    for name in graphs:
        if digest is None:
            records.pop(name, None)
        else:
            records[name] = digest
    partial = target.with_name(SOURCE_FILE + ".partial")
    partial.write_text(json.dumps({"weights_sha256": records}, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, target)


def _read_source(path: Path) -> dict[str, str]:
    try:
        records = json.loads(path.read_text(encoding="utf-8")).get("weights_sha256", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return records if isinstance(records, dict) else {}


def check_graph(forward: OnnxForward, path: Path, folder: str | Path, n_outputs: int) -> None:
    """Raise unless the graph at ``path`` belongs to the model in ``folder``: it gives ``n_outputs`` scores per
    text, and (when the export recorded it) the folder's weights are those it was exported from. A graph copied
    from another model, or left behind when the weights were replaced, would otherwise predict for that model."""
    again = f"export it again: bertkit export {folder} --format onnx" + (
        " --quantize int8" if path.name == FILES["int8"] else ""
    )
    if forward.width is not None and forward.width != n_outputs:
        raise ModelLoadError(
            f"{path}: the graph gives {forward.width} scores per text where this model has {n_outputs}; it was "
            f"exported from another model; {again}"
        )
    recorded = _read_source(path.parent / SOURCE_FILE).get(path.name)
    if recorded is not None and recorded != weights_digest(folder):
        raise ModelLoadError(
            f"{path}: exported from other weights than the folder holds now (they changed after the export); {again}"
        )


def onnx_path(folder: str | Path, quantize: str | None) -> Path:
    path = Path(folder) / ONNX_DIR / FILES[quantize]
    if not path.is_file():
        flag = " --quantize int8" if quantize else ""
        raise ModelLoadError(f"{path}: no exported ONNX model; run `bertkit export {folder} --format onnx{flag}` first")
    return path
