"""ONNX export of a classifier folder, optional dynamic int8 quantization, and an ONNX Runtime forward.

The exported graph takes the same dynamically padded batches as the torch path (dynamic batch and sequence
axes), so the batching code is shared; outputs are checked against torch before the file is kept.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from bertkit.exceptions import ConfigError, ModelLoadError
from bertkit.models.heads import torch_network
from bertkit.models.packed import packed_classifier
from bertkit.onnx_forward import FILES, ONNX_DIR, OnnxForward, record_source

PARTIAL = ".partial"


class _LogitsOnly(torch.nn.Module):
    """ONNX needs a tensor output, not a ModelOutput. Classifiers of every family :mod:`bertkit.models.packed`
    knows are traced through its packed forward (no work on padding; the graph expects right-padded batches,
    which bertkit always builds); others through their own forward."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.packed = packed_classifier(model)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        if self.packed is not None:
            return self.packed(input_ids, attention_mask, token_type_ids)
        if token_type_ids is None:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits


def input_names(model) -> list[str]:
    names = ["input_ids", "attention_mask"]
    if getattr(model.config, "type_vocab_size", 1) > 1:
        names.append("token_type_ids")
    return names


def export_onnx(
    model, tokenizer, folder: str | Path, *, quantize: str | None = None, opset: int = 17, write: bool = True
) -> Path:
    """Write ``folder/onnx/model.onnx`` (and ``model-int8.onnx`` with ``quantize="int8"``); return the path
    of the file a predictor should use. Raises if ONNX Runtime's logits differ from torch's. ``write=False``
    (a torchrun rank other than 0) checks the arguments and returns that path, writing nothing."""
    if quantize not in FILES:
        raise ConfigError(f"--quantize must be int8 or omitted (got {quantize!r})")
    if not write:
        return Path(folder) / ONNX_DIR / FILES[quantize]
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ConfigError("ONNX export needs onnx and onnxruntime: pip install 'bertkit[onnx]'") from None
    target = Path(folder) / ONNX_DIR
    if target.exists() and not target.is_dir():
        raise ModelLoadError(
            f"{target}: is a file, where the export writes a folder; move or remove it, then export again"
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelLoadError(
            f"{target}: cannot create the export folder ({exc.strerror or exc}); make {folder} writable"
        ) from None
    model = torch_network(model)  # a model loaded to predict with its graph: export its torch network
    names = input_names(model)
    sample = tokenizer(["a short text", "a somewhat longer second text for the example batch"], padding=True,
                       return_tensors="pt")  # fmt: skip
    model = model.float().eval().cpu()
    graphs = [None, "int8"] if quantize == "int8" else [None]
    final = {q: target / FILES[q] for q in graphs}
    # Written beside their final names and moved there only once checked: an export that fails (or is
    # interrupted) leaves the folder's graphs as they were, never a half-written or unchecked one.
    partial = {q: path.with_name(path.name + PARTIAL) for q, path in final.items()}
    try:
        partial[None].open("wb").close()  # an unwritable folder fails here, in one line, not inside the exporter
        _write_graphs(model, sample, names, partial, opset)
        checks = [
            sample,
            tokenizer(["one", "two words here", "and a third text, longer than the others"], padding=True, return_tensors="pt"),
            tokenizer(["same length", "same length"], padding=True, return_tensors="pt"),
            tokenizer(["just one text"], return_tensors="pt"),
        ]  # fmt: skip
        # The traced graph is checked on the batch it was traced with, on another padded batch, on a batch
        # without padding and on one text: the packed forward's indexing must hold for every shape.
        forward = OnnxForward(partial[quantize])
        for batch in checks:
            _check_against_torch(model, forward, final[quantize], _feed(batch, names), quantize)
        for q in graphs:
            os.replace(partial[q], final[q])
        record_source(folder, [FILES[q] for q in graphs])
    except OSError as exc:
        raise ModelLoadError(
            f"{target}: cannot write the exported graph ({exc.strerror or exc}); make the folder writable"
        ) from None
    finally:
        for path in partial.values():
            with contextlib.suppress(OSError):  # the cause, raised above, is what to say
                path.unlink(missing_ok=True)
    return final[quantize]


def _write_graphs(model, sample, names: list[str], paths: dict[str | None, Path], opset: int) -> None:
    """Trace ``model`` to ``paths[None]`` (fp32) and, when ``paths`` has ``"int8"``, quantize it there."""
    inputs = tuple(_feed(sample, names).values())
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice: dynamo needs onnxscript
        torch.onnx.export(
            _LogitsOnly(model).eval(), inputs, str(paths[None]), input_names=names, output_names=["logits"],
            dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}},
            opset_version=opset, dynamo=False,
        )  # fmt: skip
    # The exporter restores the wrapper's training flag, recursively: make sure dropout is off again.
    model.eval()
    if "int8" in paths:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with warnings.catch_warnings(), _root_log_level(logging.ERROR):
            warnings.simplefilter("ignore")  # and its logging.warning advice to pre-process (shape inference)
            # Per-channel int8 weights for the matrix products only (embeddings stay fp32): on rotten_tomatoes
            # this kept test accuracy within 0.2 points of torch, where the defaults lost 1.6.
            quantize_dynamic(
                str(paths[None]), str(paths["int8"]), weight_type=QuantType.QInt8, per_channel=True,
                op_types_to_quantize=["MatMul"],
            )  # fmt: skip


@contextlib.contextmanager
def _root_log_level(level: int) -> Iterator[None]:
    """The root logger at ``level`` for the block (ONNX Runtime's quantizer logs through it)."""
    root = logging.getLogger()
    before = root.level
    root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(before)


def _feed(batch, names: list[str]) -> dict[str, torch.Tensor]:
    """The graph's inputs from a tokenizer batch, in ``names`` order (zeros for absent segment ids)."""
    return {n: batch[n] if n in batch else torch.zeros_like(batch["input_ids"]) for n in names}


def _check_against_torch(
    model, forward: OnnxForward, path: Path, inputs: dict[str, torch.Tensor], quantize: str | None
) -> None:
    """Raise unless the ONNX graph's logits match the Hugging Face forward's on ``inputs``."""
    with torch.inference_mode():
        expected = model(**inputs).logits.numpy()
    got = forward(inputs)
    tolerance = 0.5 if quantize else 1e-3  # int8 weights move logits; fp32 must match closely
    error = float(np.abs(got - expected).max())
    if error > tolerance:
        raise ModelLoadError(f"{path}: exported graph disagrees with torch (max logit error {error:.4g})")
