"""Prediction with an exported ONNX graph (ONNX Runtime on the CPU): where the graphs live in a model folder, and
the forward that runs them on collated host batches. Nothing here imports torch: a model whose default backend is
ONNX predicts without it (:mod:`bertkit.export` writes the graphs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bertkit.exceptions import ModelLoadError

ONNX_DIR = "onnx"
FILES = {None: "model.onnx", "int8": "model-int8.onnx"}


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

    def __call__(self, batch: dict[str, Any]) -> np.ndarray:
        ids = np.asarray(batch["input_ids"])  # [batch, longest]
        feed = {}
        for name in self.names:
            value = batch.get(name)
            feed[name] = np.asarray(value) if value is not None else np.zeros_like(ids)
        return self.session.run(["logits"], feed)[0].astype(np.float32, copy=False)


def onnx_path(folder: str | Path, quantize: str | None) -> Path:
    path = Path(folder) / ONNX_DIR / FILES[quantize]
    if not path.is_file():
        flag = " --quantize int8" if quantize else ""
        raise ModelLoadError(f"{path}: no exported ONNX model; run `bertkit export {folder} --format onnx{flag}` first")
    return path
