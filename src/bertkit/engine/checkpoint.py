"""A resumable checkpoint of a training run: one folder (``OUTPUT/checkpoint``), replaced whole each time it is
written, holding everything the loop needs to continue exactly where it stopped.

``state.pt`` holds the weights, the optimizer, the schedule, the fp16 loss scaler, the weight average, every
random generator (torch, CUDA, numpy, Python and the loop's own batch-order generator, per rank under DDP), the
position (epoch, and micro-batch within it with that epoch's batch order), the history so far and the epoch
keeper's bookkeeping (the best epoch's weights). ``checkpoint.json`` says where the run was and carries the run's
fingerprint (resolved options and data hashes): a checkpoint of another run is refused, not silently mixed in.

``state.pt`` is read with ``torch.load(weights_only=True)``: tensors and plain Python values, no pickled code;
numpy arrays are stored as tensors (:func:`storable`). :class:`Checkpoints` is the loop's side: it gathers the
trainer's and the epoch keeper's state (engine/loop.py, engine/keeper.py) and puts it back.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertkit.exceptions import ConfigError

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.pt"
META_FILE = "checkpoint.json"
FORMAT = 1
_ARRAY, _SCALAR = "__ndarray__", "__npscalar__"


def parse_every(value: str | int | None) -> str | int | None:
    """``--checkpoint-every`` as ``"epoch"``, a positive number of optimizer steps, or None (off)."""
    if value is None or value == "epoch":
        return value
    text = str(value).strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise ConfigError(f"--checkpoint-every must be 'epoch' or a positive number of optimizer steps (got {value!r})")


@dataclass(frozen=True)
class CheckpointOptions:
    """Where a run keeps its checkpoint, how often it writes it, and whether it starts from it."""

    folder: Path
    """The checkpoint folder (``OUTPUT/checkpoint``)."""
    every: str | int | None = None
    """``"epoch"``, every N optimizer steps, or None: write none (a resumed run without it writes no more)."""
    fingerprint: dict[str, Any] = field(default_factory=dict)
    """What the run trains (JSON values): a checkpoint written under another fingerprint is refused."""
    resume_from: Path | None = None
    """A checkpoint folder to continue from (see :func:`locate`)."""

    def after_step(self, optimizer_steps: int) -> bool:
        """Whether a checkpoint is due after this many optimizer steps."""
        return isinstance(self.every, int) and optimizer_steps % self.every == 0

    @property
    def each_epoch(self) -> bool:
        return self.every == "epoch"


def locate(path: str | Path) -> Path:
    """The checkpoint folder of ``path``: ``path/checkpoint`` (an output folder) or ``path`` itself; a write
    interrupted between its two renames leaves the previous checkpoint as ``.checkpoint.old``, used then."""
    path = Path(path)
    for candidate in (path / CHECKPOINT_DIR, path, path / f".{CHECKPOINT_DIR}.old"):
        if (candidate / META_FILE).is_file() and (candidate / STATE_FILE).is_file():
            return candidate
    raise ConfigError(
        f"{path}: no checkpoint to resume from (expected {path / CHECKPOINT_DIR}/{META_FILE}); train with "
        "--checkpoint-every epoch|N to write one, or drop --resume"
    )


def write(folder: Path, state: dict[str, Any], meta: dict[str, Any]) -> None:
    """Replace the checkpoint in ``folder`` as a whole: written to a temporary folder beside it, then renamed,
    so an interruption at any point leaves one complete checkpoint (the old or the new)."""
    folder = Path(folder)
    temporary, old = folder.parent / f".{folder.name}.tmp", folder.parent / f".{folder.name}.old"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    torch.save(storable(state), temporary / STATE_FILE)
    (temporary / META_FILE).write_text(json.dumps({"format": FORMAT, **meta}, indent=1, default=str) + "\n")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    temporary.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def read(folder: Path, fingerprint: dict[str, Any]) -> dict[str, Any]:
    """The state of the checkpoint in ``folder`` after checking it belongs to a run of ``fingerprint``."""
    meta_path = folder / META_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{meta_path}: unreadable checkpoint ({exc}); start afresh without --resume") from None
    if meta.get("format") != FORMAT:
        raise ConfigError(f"{meta_path}: checkpoint format {meta.get('format')!r}, this bertkit reads {FORMAT}")
    differences = _differences(meta.get("fingerprint") or {}, _as_json(fingerprint))
    if differences:
        raise ConfigError(
            f"{folder}: the checkpoint belongs to another run ({'; '.join(differences)}); resume with the options "
            "and data it was written with, or delete it (or choose a new --output) and train afresh"
        )
    try:
        state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which, not a pickle traceback
        raise ConfigError(f"{folder / STATE_FILE}: unreadable checkpoint ({type(exc).__name__}: {exc})") from None
    return restored(state)


def remove(output: str | Path) -> None:
    """Delete the checkpoint of an output folder (and any leftover of an interrupted write)."""
    output = Path(output)
    for name in (CHECKPOINT_DIR, f".{CHECKPOINT_DIR}.tmp", f".{CHECKPOINT_DIR}.old"):
        shutil.rmtree(output / name, ignore_errors=True)


def _as_json(values: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(values, default=str))


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    def shown(value: Any) -> str:
        text = json.dumps(value)
        return text if len(text) <= 60 else text[:57] + "..."

    keys = sorted(set(saved) | set(current))
    found = [f"{k}: checkpoint {shown(saved.get(k))}, this run {shown(current.get(k))}"
             for k in keys if saved.get(k) != current.get(k)]  # fmt: skip
    return found[:4] + ([f"and {len(found) - 4} more"] if len(found) > 4 else [])


def rng_state() -> dict[str, Any]:
    """The global generators of this process: torch (CPU and every CUDA device in use), numpy, Python."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return {
        "torch": torch.get_rng_state(), "cuda": cuda,
        "numpy": np.random.get_state(legacy=False), "python": random.getstate(),
    }  # fmt: skip


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def storable(value: Any) -> Any:
    """``value`` with numpy arrays and scalars turned into tensors and Python numbers, for weights-only loading."""
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            items = [storable(v) for v in value.ravel().tolist()]
            return {_ARRAY: items, "dtype": "object", "shape": list(value.shape)}
        wide = value.astype(np.int64) if value.dtype.kind == "u" else value  # torch lacks most unsigned dtypes
        return {_ARRAY: torch.from_numpy(np.ascontiguousarray(wide)), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return {_SCALAR: value.item(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {k: storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(storable(v) for v in value)
    return value


def restored(value: Any) -> Any:
    """The inverse of :func:`storable`."""
    if isinstance(value, dict):
        if _ARRAY in value:
            if value["dtype"] == "object":
                array = np.empty(len(value[_ARRAY]), dtype=object)
                array[:] = [restored(v) for v in value[_ARRAY]]
                return array.reshape(value["shape"])
            return value[_ARRAY].numpy().astype(value["dtype"], copy=False)
        if _SCALAR in value:
            return np.dtype(value["dtype"]).type(value[_SCALAR])
        return {k: restored(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(restored(v) for v in value)
    return value


def rng_states(world_size: int) -> list[dict[str, Any]]:
    """:func:`rng_state` of every rank, in rank order (a collective under DDP: every rank calls it)."""
    state = rng_state()
    if world_size <= 1:
        return [state]
    import torch.distributed as dist

    states: list[Any] = [None] * world_size
    dist.all_gather_object(states, state)
    return states


@dataclass
class EpochProgress:
    """An epoch under way: its global batches in training order and what the micro-batches done so far add up to."""

    batches: list[np.ndarray]
    running: torch.Tensor
    """Summed loss of the micro-batches done (a device tensor: read once, at the end of the epoch)."""
    step: int = 0
    """Micro-batches done."""
    seen_loss: int = 0
    samples: int = 0
    tokens: int = 0
    seconds: float = 0.0
    """Training time before this process took the epoch over (a resumed run)."""


def trainer_state(trainer: Any) -> dict[str, Any]:
    """What a checkpoint keeps of the trainer: weights, optimizer, schedule, scaler, average, batch order."""
    averaged, progress = trainer.averaged, trainer.epoch
    return {
        "model": trainer.net.state_dict(), "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.scaler.state_dict() if trainer.scaler is not None else None,
        "averaged": None if averaged is None else {
            "model": averaged.model.state_dict(), "count": averaged.count, "swapped": averaged.swapped},
        "optimizer_steps": trainer.optimizer_steps, "batch_rng": trainer.rng.bit_generator.state,
        "epoch": None if progress is None else {**vars(progress), "running": progress.running.detach().cpu()},
    }  # fmt: skip


def load_trainer_state(trainer: Any, state: dict[str, Any]) -> None:
    trainer.net.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    if trainer.scaler is not None and state["scaler"] is not None:
        trainer.scaler.load_state_dict(state["scaler"])
    if trainer.averaged is not None:
        trainer.averaged.model.load_state_dict(state["averaged"]["model"])
        trainer.averaged.count, trainer.averaged.swapped = state["averaged"]["count"], state["averaged"]["swapped"]
    trainer.optimizer_steps = state["optimizer_steps"]
    trainer.rng.bit_generator.state = state["batch_rng"]
    if state["epoch"] is not None:
        progress = dict(state["epoch"], running=state["epoch"]["running"].to(trainer.device))
        trainer.epoch = EpochProgress(**progress)


class Checkpoints:
    """Writes the run's checkpoint (every epoch or every N optimizer steps) and resumes from one."""

    def __init__(self, options: CheckpointOptions, trainer: Any, keeper: Any, history: list[dict], run: Any) -> None:
        self.options, self.trainer, self.keeper, self.history, self.run = options, trainer, keeper, history, run
        self.started = time.perf_counter()
        self.resumed_seconds = 0.0
        """Seconds the runs this one resumed from trained before their checkpoint (0 for a new run)."""
        if isinstance(options.every, int):
            trainer.after_step = self.after_step

    def after_step(self, epoch: int, optimizer_steps: int) -> None:
        if self.options.after_step(optimizer_steps):
            self.save(epoch)

    def save(self, epoch: int) -> None:
        """Write the checkpoint: mid-epoch when the trainer has an epoch in progress, else after ``epoch``."""
        rngs = rng_states(self.run.world_size)  # a collective: every rank takes part
        if self.run.rank != 0:
            return
        mid_epoch = self.trainer.epoch is not None
        state = {
            "trainer": trainer_state(self.trainer), "keeper": self.keeper.state_dict(), "history": self.history,
            "rng": rngs, "next_epoch": epoch if mid_epoch else epoch + 1,
            "seconds": self.resumed_seconds + time.perf_counter() - self.started,  # a resumed run's time counts it
        }  # fmt: skip
        step = self.trainer.epoch.step if mid_epoch else 0
        meta = {"epoch": epoch, "epoch_finished": not mid_epoch, "micro_batch": step,
                "optimizer_steps": self.trainer.optimizer_steps, "fingerprint": self.options.fingerprint}  # fmt: skip
        write(self.options.folder, state, meta)

    def resume(self) -> int:
        """Restore the run from ``options.resume_from`` (if given); returns the epoch to train next."""
        if self.options.resume_from is None:
            return 1
        state = read(locate(self.options.resume_from), self.options.fingerprint)
        load_trainer_state(self.trainer, state["trainer"])
        self.keeper.load_state_dict(state["keeper"])
        self.history[:] = state["history"]
        set_rng_state(state["rng"][self.run.rank])
        self.resumed_seconds = float(state.get("seconds", 0.0))  # a checkpoint from before this record: 0
        return state["next_epoch"]
