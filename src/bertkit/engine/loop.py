"""The fine-tuning loop: AdamW, linear warm-up and decay, clipping, accumulation, autocast, per-epoch
evaluation, early stopping and the choice of the epoch kept.

It is written against plain PyTorch so that the same loop runs under ``torchrun``: with ``world_size > 1``
the model is wrapped in DistributedDataParallel, every global batch is split among the ranks (so N processes
take the same optimizer steps as one process with the same ``batch_size``), validation is sharded across the
ranks and gathered back in input order, and only rank 0 prints and writes.

The loop knows no task: an :class:`~bertkit.engine.objective.Objective` gives targets and loss, and a
:class:`~bertkit.engine.objective.ValidationScorer` scores validation outputs (engine/objective.py); the
optimizer, schedule, weight average and CUDA-graph check are in engine/steps.py.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bertkit import ddp
from bertkit.config import TrainConfig
from bertkit.cuda_graphs import GraphedTrainStep, capturable_optimizer
from bertkit.data.encoding import Encoded, collate, global_batches_for, split_for_rank, training_batches
from bertkit.devices import autocast, autocast_dtype, inference_dtype
from bertkit.engine.batches import uses_type_ids
from bertkit.engine.checkpoint import CheckpointOptions, Checkpoints, EpochProgress
from bertkit.engine.keeper import EpochKeeper
from bertkit.engine.objective import Objective, Validation
from bertkit.engine.steps import WeightAverage, check_cuda_graphs, linear_schedule, make_optimizer, optimizer_step
from bertkit.exceptions import ConfigError
from bertkit.models.packed import cls_only_last_layer


@dataclass
class FitResult:
    history: list[dict]
    """One record per epoch: train loss, validation metrics, wall time, throughput."""
    best_epoch: int
    """The epoch with the best validation score (the last epoch without validation)."""
    best_score: float | None
    validation_logits: Any = None
    """Validation outputs of the kept epoch (for classification: logits [validation rows, labels]); None
    without validation."""
    kept_epoch: int = 0
    """The epoch whose weights the model holds after ``fit`` (see ``TrainConfig.keep_epoch``)."""
    best_win_share: float | None = None
    """Under ``keep_epoch="auto"`` with an earlier best epoch: the share of paired bootstrap resamples of the
    validation rows in which it scored better than the last epoch (kept when >= ``KEEP_BEST_CONFIDENCE``)."""
    resumed_seconds: float = 0.0
    """Seconds the runs this one resumed from (``--resume``) had trained before their checkpoint."""


@dataclass(frozen=True)
class RunOptions:
    """How a run reports and where it sits in a process group; none of it changes the numbers."""

    progress: bool = True
    """A progress bar and one line per epoch (rank 0 only)."""
    history_path: Path | None = None
    """history.jsonl: one JSON record per epoch, written by rank 0 as the epoch ends."""
    rank: int = 0
    world_size: int = 1
    """With ``world_size > 1`` the process group must already be initialised (see :mod:`bertkit.ddp`)."""
    on_epoch: Callable[[dict], None] | None = None
    """Called with each epoch's record on every rank (e.g. to report to a hyperparameter search, which may
    raise to stop)."""
    checkpoint: CheckpointOptions | None = None
    """Where a resumable checkpoint is written, how often, and whether the run continues from one."""

    @property
    def reports(self) -> bool:
        """Whether this process prints (rank 0 with progress on)."""
        return self.progress and self.rank == 0


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def freeze_encoder(model: nn.Module) -> None:
    """Train only the head: the encoder's parameters stop receiving gradients."""
    for param in model.base_model.parameters():
        param.requires_grad_(False)


def fit(
    model: nn.Module,
    train: Encoded,
    config: TrainConfig,
    objective: Objective,
    *,
    device: torch.device,
    validation: Validation | None = None,
    run: RunOptions | None = None,
) -> FitResult:
    """Train ``model`` in place on ``train`` under ``objective``; keep the weights of the epoch
    ``config.keep_epoch`` names.

    With ``validation``, every epoch's outputs on ``validation.data`` are scored by ``validation.scorer``,
    whose ``main_metric`` decides the best epoch and whose ``win_share`` decides, under ``keep_epoch="auto"``,
    whether an earlier best epoch is kept over the last. ``config`` must be resolved
    (:meth:`TrainConfig.resolved`); under DDP ``config.batch_size`` is the global batch, split among the ranks.
    """
    assert config.batch_size and config.learning_rate, "call TrainConfig.resolved() first"
    run = run or RunOptions()
    seed_everything(config.seed)
    trainer = _Trainer(model, train, config, objective, device, run)
    if run.rank > 0:
        # The model is built and broadcast; from here torch draws dropout masks. One seed on every rank would
        # give rank k's rows rank 0's masks: each rank its own stream (rank 0's, and one process's, unchanged).
        torch.manual_seed(config.seed + 1_000_003 * run.rank)
    keeper = EpochKeeper(config, validation.scorer if validation is not None else None)
    history: list[dict] = []
    saver = Checkpoints(run.checkpoint, trainer, keeper, history, run) if run.checkpoint is not None else None
    first_epoch = saver.resume() if saver is not None else 1  # restores the run, random generators last
    if run.history_path is not None and run.rank == 0:
        run.history_path.parent.mkdir(parents=True, exist_ok=True)
        run.history_path.write_text("".join(json.dumps(record) + "\n" for record in history))

    # The pooler reads only [CLS]: the last layer skips the other tokens' dead arithmetic (packed.py).
    with cls_only_last_layer(trainer.net), _gradients_released(trainer.optimizer, enabled=trainer.graphed is not None):
        for epoch in range(first_epoch, config.epochs + 1):
            # every rank sees the same gathered validation outputs, so they all stop (and keep) the same epoch
            if keeper.stops():
                break
            record = trainer.train_epoch(epoch)
            if validation is None:
                keeper.unscored(epoch)
            else:
                outputs = _validation_outputs(objective, trainer.net, validation.data, device, config, run)
                metrics = validation.scorer.score(outputs)
                record.update({f"val_{k}": v for k, v in metrics.items()})
                keeper.scored(epoch, metrics, outputs, trainer.net)
            _record_epoch(record, history, run)
            if saver is not None and saver.options.each_epoch:
                saver.save(epoch)
    kept_epoch, kept_outputs, win = keeper.keep(history[-1]["epoch"], trainer.net)
    if run.reports and win is not None:
        _print_kept(kept_epoch, keeper.best_epoch, win)
    trainer.net.eval()
    return FitResult(
        history=history, best_epoch=keeper.best_epoch, best_score=keeper.best_score,
        validation_logits=kept_outputs, kept_epoch=kept_epoch, best_win_share=win,
        resumed_seconds=saver.resumed_seconds if saver is not None else 0.0,
    )  # fmt: skip


@dataclass(frozen=True)
class StepPlan:
    """Batches and optimizer steps of a run."""

    micro_batch: int
    """Rows per forward pass over all ranks (each rank takes 1/world_size of it)."""
    steps_per_epoch: int
    total_steps: int

    @classmethod
    def of(cls, n_train: int, config: TrainConfig, world_size: int) -> StepPlan:
        """The plan for ``n_train`` training rows: ``config.batch_size`` is the global batch per optimizer
        step, made of ``config.grad_accumulation`` micro-batches."""
        micro_batch = config.batch_size // config.grad_accumulation or 1
        if world_size > 1 and micro_batch < world_size:
            # each process needs a row of every forward pass; with fewer, nothing would train
            rows = f"{micro_batch} row" + ("s" if micro_batch > 1 else "")
            raise ConfigError(
                f"--batch-size {config.batch_size} with --grad-accumulation {config.grad_accumulation} gives forward "
                f"passes of {rows}, fewer than the {world_size} processes, which need one each: raise --batch-size "
                f"to at least {world_size * config.grad_accumulation} or lower --grad-accumulation"
            )
        if world_size > 1 and n_train < world_size:
            raise ConfigError(
                f"{n_train} training rows cannot be shared among {world_size} processes: give more rows or launch "
                "fewer processes (torchrun --nproc-per-node)"
            )
        n_batches = math.ceil(n_train / micro_batch)
        if world_size > 1 and 0 < n_train % micro_batch < world_size:
            n_batches -= 1  # global_batches_for joins a last batch smaller than world_size to another
        steps_per_epoch = math.ceil(n_batches / config.grad_accumulation)
        return cls(micro_batch, steps_per_epoch, steps_per_epoch * config.epochs)


class _Trainer:
    """The model, optimizer, schedule and weight average of one run, and one epoch of training over them."""

    def __init__(
        self,
        model: nn.Module,
        train: Encoded,
        config: TrainConfig,
        objective: Objective,
        device: torch.device,
        run: RunOptions,
    ) -> None:
        model.to(device)
        model.train()
        if config.freeze_encoder:
            freeze_encoder(model)
        self.train, self.config, self.objective, self.device, self.run = train, config, objective, device, run
        self.dtype = autocast_dtype(config.precision, device)
        self.scaler = torch.amp.GradScaler(device.type) if self.dtype == torch.float16 else None
        self.with_types = uses_type_ids(model, train)
        self.net = model  # the plain module: evaluation, state dicts and config go through it, never through DDP
        self.model = ddp.wrap(model, device) if run.world_size > 1 else model
        self.plan = StepPlan.of(len(train), config, run.world_size)
        self.optimizer = make_optimizer(self.net, config.learning_rate, config.weight_decay)
        self.graphed = None
        if config.cuda_graphs:
            check_cuda_graphs(device, self.dtype, run.world_size, objective)
            self.optimizer = capturable_optimizer(self.optimizer, device)
            self.graphed = GraphedTrainStep(self.net, objective.loss, self.optimizer, device=device, dtype=self.dtype,
                                            max_grad_norm=config.max_grad_norm, pad_id=train.pad_id)  # fmt: skip
        total_steps = self.plan.total_steps
        # warm-up steps rounded up, as TrainingArguments(warmup_steps=<ratio>) does
        self.scheduler = linear_schedule(self.optimizer, math.ceil(config.warmup_ratio * total_steps), total_steps)
        # Made before cls_only_last_layer patches the model, so the copy holding the average is a plain module.
        share = config.average_weights
        self.averaged = WeightAverage(self.net, total_steps, share) if share else None
        self.optimizer_steps = 0
        self.rng = np.random.default_rng(config.seed)
        self.epoch: EpochProgress | None = None
        """The epoch in progress (its batch order and counts), or None between epochs."""
        self.after_step: Callable[[int, int], None] | None = None
        """Called with (epoch, optimizer steps) after each optimizer step (the step checkpoints)."""

    def train_epoch(self, epoch: int) -> dict:
        """One pass over the training data (the rest of it after a resumed mid-epoch checkpoint); returns the
        epoch's record (loss, learning rate, throughput)."""
        config, run, train, averaged = self.config, self.run, self.train, self.averaged
        if averaged is not None and averaged.swapped:
            averaged.swap(self.net)  # back to the trained weights; the average holds on
        if self.epoch is None:  # a new epoch, not the rest of one a checkpoint stopped in
            zero = torch.zeros((), device=self.device)
            self.epoch = EpochProgress(training_batches(train.lengths, self.plan.micro_batch, self.rng), zero)
        progress = self.epoch
        started = time.perf_counter() - progress.seconds
        global_batches = global_batches_for(progress.batches, run.world_size)
        batches = split_for_rank(global_batches, run.rank, run.world_size)
        global_sizes = [len(b) for b in global_batches]
        bar = _progress(batches, epoch, config.epochs, enabled=run.reports)
        for step, index in enumerate(bar, start=1):
            if step <= progress.step:
                continue  # trained before the checkpoint this run resumed from
            steps_before = self.optimizer_steps
            progress.running += self._step(step, index, len(batches), global_sizes[step - 1])
            if averaged is not None:
                averaged.after_step(self.net, self.optimizer_steps)
            progress.step, progress.seen_loss = step, progress.seen_loss + 1
            progress.samples += len(index)
            progress.tokens += int(train.lengths[index].sum())
            if self.after_step is not None and self.optimizer_steps != steps_before:
                progress.seconds = time.perf_counter() - started
                self.after_step(epoch, self.optimizer_steps)
            if run.reports and step % 10 == 0:
                elapsed = time.perf_counter() - started
                bar.set_postfix(loss=f"{progress.running.item() / progress.seen_loss:.4f}",
                                samples_s=f"{progress.samples / elapsed:.1f}")  # fmt: skip
        self.epoch = None
        running, seen_loss, samples, tokens = progress.running, progress.seen_loss, progress.samples, progress.tokens
        if run.world_size > 1:
            # loss and throughput over all ranks: one all-reduce per epoch, not per step
            counts = torch.tensor([seen_loss, samples, tokens], dtype=torch.float64, device=self.device)
            running, counts = ddp.all_sum(running.float()), ddp.all_sum(counts)
            seen_loss, samples, tokens = (int(v) for v in counts.tolist())  # seen_loss: world_size x steps
        # Reading the loss waits for the GPU's queued steps, so the clock stops when the epoch's work is done.
        train_loss = float(running.item() / max(seen_loss, 1))
        seconds = time.perf_counter() - started
        if averaged is not None and averaged.started:
            averaged.swap(self.net)  # this epoch is evaluated (and kept) with the averaged weights
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "learning_rate": float(self.scheduler.get_last_lr()[0]),  # a tensor under --cuda-graphs
            "train_seconds": round(seconds, 3),
            "train_samples_per_s": round(samples / seconds, 2),
            "train_tokens_per_s": round(tokens / seconds, 1),
        }
        if averaged is not None:
            record["averaged_steps"] = averaged.count
        return record

    def _step(self, step: int, index: np.ndarray, n_batches: int, global_size: int) -> torch.Tensor:
        """Forward and backward of one micro-batch (and the optimizer step that ends an accumulation); returns
        its loss, weighted by the rank's share of the global batch, without a host sync."""
        config, objective, world_size = self.config, self.objective, self.run.world_size
        cpu_inputs = collate(self.train, index, self.with_types)
        if self.graphed is not None:  # the whole step, optimizer included, is one graph replay (cuda_graphs.py)
            loss = self.graphed(cpu_inputs, objective.batch_targets(index, cpu_inputs))
            self.scheduler.step()
            self.optimizer_steps += 1
            return loss
        target = objective.batch_targets(index, cpu_inputs).to(self.device, non_blocking=True)
        inputs = {k: v.to(self.device, non_blocking=True) for k, v in cpu_inputs.items()}
        if objective.forward_copies > 1:  # R-Drop: the batch again, below itself [copies x batch, longest]
            inputs = {k: torch.cat([v] * objective.forward_copies) for k, v in inputs.items()}
        syncs = step % config.grad_accumulation == 0 or step == n_batches
        # DDP averages gradients over ranks; weighting each rank's mean loss by its share of the global
        # batch makes that average the global batch's mean, even when the batch splits unevenly.
        share = len(index) * world_size / global_size
        with _no_sync(self.model, enabled=world_size > 1 and not syncs):
            with autocast(self.device, self.dtype):
                outputs = self.model(**inputs)
            raw = objective.loss(outputs, target)
            loss = raw * (share / config.grad_accumulation)
            (self.scaler.scale(loss) if self.scaler else loss).backward()
        if syncs:
            optimizer_step(self.net, self.optimizer, self.scheduler, self.scaler, config.max_grad_norm)
            self.optimizer_steps += 1
        return raw.detach() * share  # summed over ranks: world_size x the global batch's mean loss


def _record_epoch(record: dict, history: list[dict], run: RunOptions) -> None:
    """Append the epoch's record to the history (and history.jsonl), print it, hand it to ``on_epoch``."""
    history.append(record)
    if run.history_path is not None and run.rank == 0:
        with run.history_path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
    if run.reports:
        _print_epoch(record)
    if run.on_epoch is not None:
        run.on_epoch(record)


def _validation_outputs(
    objective: Objective, net: nn.Module, validation: Encoded, device: torch.device, config: TrainConfig,
    run: RunOptions,
) -> Any:  # fmt: skip
    """Validation outputs in input order. Under DDP, objectives with one output row per example are
    sharded (rank r takes rows r, r + N, ...: no row twice, unlike DistributedSampler's padding) and
    gathered; others run the whole validation set on every rank."""
    # Regression scores in fp32: bf16's 8-bit mantissa would round them into steps (STS-B's 0-5 into ~0.02).
    regression = getattr(objective, "task", config.task) == "regression"
    dtype = None if regression else inference_dtype(config.precision, device)
    if run.world_size <= 1 or not getattr(objective, "rows_aligned", False):
        return objective.predict(net, validation, device, dtype)
    index = np.arange(run.rank, len(validation), run.world_size)
    outputs = objective.predict(net, validation.subset(index), device, dtype) if len(index) else None
    if outputs is None:
        outputs = np.zeros((0, net.config.num_labels), dtype=np.float32)
    return ddp.gather_rows(index, outputs, len(validation))


@contextlib.contextmanager
def _gradients_released(optimizer: torch.optim.Optimizer, enabled: bool) -> Iterator[None]:
    """Drop the gradients on the way out, also when training stops with an exception: under --cuda-graphs they
    live in the graphs' memory pool, and the eager loop leaves none either."""
    try:
        yield
    finally:
        if enabled:
            optimizer.zero_grad(set_to_none=True)


def _no_sync(model, enabled: bool):
    """Skip DDP's gradient all-reduce on micro-batches that do not end an accumulation step."""
    return model.no_sync() if enabled else contextlib.nullcontext()


def _progress(batches: list, epoch: int, epochs: int, enabled: bool):
    if not enabled:
        return batches
    from tqdm.auto import tqdm

    return tqdm(batches, desc=f"epoch {epoch}/{epochs}", unit="batch", dynamic_ncols=True, leave=False)


def _print_kept(kept_epoch: int, best_epoch: int, share: float) -> None:
    from tqdm.auto import tqdm

    verdict = "kept" if kept_epoch == best_epoch else f"not kept: epoch {kept_epoch} kept"
    tqdm.write(f"epoch {best_epoch} scored best on validation, better than the last in {share:.1%} of bootstrap "
               f"resamples of the validation rows ({verdict}; --keep-epoch best always keeps it)")  # fmt: skip


def _print_epoch(record: dict) -> None:
    from tqdm.auto import tqdm

    parts = [f"epoch {record['epoch']}", f"train loss {record['train_loss']:.4f}"]
    parts += [f"{k} {v:.4f}" for k, v in record.items() if k.startswith("val_") and isinstance(v, float)]
    parts.append(f"{record['train_samples_per_s']:.1f} samples/s")
    tqdm.write(" | ".join(parts))
