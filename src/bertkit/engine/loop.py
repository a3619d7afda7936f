"""The fine-tuning loop: AdamW, linear warm-up and decay, clipping, accumulation, autocast, per-epoch
evaluation, early stopping and the choice of the epoch kept.

It is written against plain PyTorch so that the same loop runs under ``torchrun``: with ``world_size > 1``
the model is wrapped in DistributedDataParallel, every global batch is split among the ranks (so N processes
take the same optimizer steps as one process with the same ``batch_size``), validation is sharded across the
ranks and gathered back in input order, and only rank 0 prints and writes.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from bertkit import ddp
from bertkit.classification.metrics import metric_lower_is_better
from bertkit.config import TrainConfig
from bertkit.cuda_graphs import GraphedTrainStep, capturable_optimizer
from bertkit.data.encoding import Encoded, collate, split_for_rank, training_batches
from bertkit.devices import autocast, autocast_dtype, inference_dtype
from bertkit.engine.forward import predict_logits, uses_type_ids
from bertkit.exceptions import ConfigError
from bertkit.models.packed import cls_only_last_layer

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


@dataclass
class FitResult:
    history: list[dict]
    """One record per epoch: train loss, validation metrics, wall time, throughput."""
    best_epoch: int
    """The epoch with the best validation score (the last epoch without validation)."""
    best_score: float | None
    validation_logits: np.ndarray | None = None
    """Validation logits of the kept epoch, [validation rows, labels]; None without validation."""
    kept_epoch: int = 0
    """The epoch whose weights the model holds after ``fit`` (see ``TrainConfig.keep_epoch``)."""
    best_win_share: float | None = None
    """Under ``keep_epoch="auto"`` with an earlier best epoch: the share of paired bootstrap resamples of the
    validation rows in which it scored better than the last epoch (kept when >= ``KEEP_BEST_CONFIDENCE``)."""


KEEP_BEST_CONFIDENCE = 0.95
"""``keep_epoch="auto"`` keeps an earlier epoch over the last one only when it scores better on validation in at
least this share of paired bootstrap resamples of the validation rows."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model: nn.Module, learning_rate: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW with weight decay on weight matrices only (not biases or LayerNorm weights)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if name.endswith(NO_DECAY) else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    devices = {p.device.type for group in groups for p in group["params"]}
    # The fused kernel (one pass over all parameters) is 15-20% faster per step on CPU than foreach.
    fused = devices <= {"cpu", "cuda"}
    return torch.optim.AdamW(groups, lr=learning_rate, fused=fused)


def linear_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """Linear warm-up from 0, then linear decay to 0: transformers' own schedule, so that given the same batches
    this loop takes exactly the steps ``transformers.Trainer`` takes (benchmarks/loop_equivalence.py)."""
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)


def make_loss(
    task: str, class_weights: torch.Tensor | None, label_smoothing: float = 0.0
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if task == "regression":
        mse = nn.MSELoss()
        return lambda logits, target: mse(logits.squeeze(-1), target)
    if task == "multi-label":
        return nn.BCEWithLogitsLoss(pos_weight=class_weights)
    return nn.CrossEntropyLoss(weight=class_weights, label_smoothing=label_smoothing)


class Objective(Protocol):
    """What a task adds to the shared loop: the targets of a batch, its loss, and validation outputs.

    Sequence classification, token classification and question answering each define one; the loop
    (batching, optimizer, precision, evaluation, early stopping) stays the same for all of them.
    """

    forward_copies: int
    """Copies of each batch stacked into one forward pass (2 for R-Drop: each copy draws its own dropout
    masks; ``loss`` gets the outputs of all copies, copy after copy, and the targets of one), else 1."""

    def batch_targets(self, index: np.ndarray, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Targets of the examples at ``index``, shaped to match ``inputs`` (already padded), on the CPU."""
        ...

    def loss(self, outputs: Any, targets: torch.Tensor) -> torch.Tensor:
        """Scalar loss from the model's outputs (autocast dtype) and the batch targets."""
        ...

    def predict(self, model: nn.Module, validation: Encoded, device: torch.device, dtype: torch.dtype | None) -> Any:
        """Validation outputs handed to ``evaluate`` (for classification: logits [n, labels])."""
        ...


def consistency_loss(first: torch.Tensor, second: torch.Tensor, task: str) -> torch.Tensor:
    """R-Drop's penalty between two predictions of the same examples (logits [batch, labels] each): the
    symmetric KL divergence of the class distributions (summed over classes, averaged over the batch) for
    classification; of each label's Bernoulli distribution (averaged over labels and batch, as the BCE loss
    is) for multi-label; the squared difference of the two outputs for regression."""
    if task == "regression":
        return nn.functional.mse_loss(first, second)
    if task == "multi-label":
        # KL(p||q) + KL(q||p) of Bernoulli(p), Bernoulli(q) is (p - q)(logit p - logit q)
        return 0.5 * ((torch.sigmoid(first) - torch.sigmoid(second)) * (first - second)).mean()
    log_first, log_second = first.log_softmax(-1), second.log_softmax(-1)
    kl = nn.functional.kl_div
    return 0.5 * (
        kl(log_first, log_second, log_target=True, reduction="batchmean")
        + kl(log_second, log_first, log_target=True, reduction="batchmean")
    )


class SequenceObjective:
    """One target per example: class ids, label-indicator rows (multi-label) or floats (regression).

    With ``rdrop`` > 0 each batch goes through the model twice in one forward pass (two dropout masks), and
    the loss is the mean of the two supervised losses plus ``rdrop`` x :func:`consistency_loss` of the two
    predictions (R-Drop: Liang et al., 2021, "R-Drop: Regularized Dropout for Neural Networks").
    """

    rows_aligned = True
    """``predict`` returns one row per validation example, so validation can be sharded across ranks."""

    def __init__(
        self,
        task: str,
        targets: np.ndarray,
        class_weights: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        rdrop: float = 0.0,
    ) -> None:
        self.task = task
        self.targets = torch.from_numpy(targets)
        self.loss_fn = make_loss(task, class_weights, label_smoothing)
        self.rdrop = rdrop

    @property
    def forward_copies(self) -> int:
        return 2 if self.rdrop else 1

    def batch_targets(self, index: np.ndarray, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.targets[index]

    def loss(self, outputs: Any, targets: torch.Tensor) -> torch.Tensor:
        logits = outputs.logits.float()
        if not self.rdrop:
            return self.loss_fn(logits, targets)
        first, second = logits.chunk(2)  # [batch, labels] each: the same examples, two dropout masks
        supervised = 0.5 * (self.loss_fn(first, targets) + self.loss_fn(second, targets))
        return supervised + self.rdrop * consistency_loss(first, second, self.task)

    def predict(self, model: nn.Module, validation: Encoded, device: torch.device, dtype: torch.dtype | None) -> Any:
        return predict_logits(model, validation, device=device, dtype=dtype)


def freeze_encoder(model: nn.Module) -> None:
    """Train only the head: the encoder's parameters stop receiving gradients."""
    for param in model.base_model.parameters():
        param.requires_grad_(False)


def fit(
    model: nn.Module,
    train: Encoded,
    targets: np.ndarray | None,
    config: TrainConfig,
    *,
    task: str,
    device: torch.device,
    objective: Objective | None = None,
    validation: Encoded | None = None,
    evaluate: Callable[[np.ndarray], dict[str, float]] | None = None,
    main_metric: str = "loss",
    class_weights: np.ndarray | None = None,
    progress: bool = True,
    history_path: Path | None = None,
    rank: int = 0,
    world_size: int = 1,
    on_epoch: Callable[[dict], None] | None = None,
    win_share: Callable[[Any, Any], float] | None = None,
) -> FitResult:
    """Train ``model`` in place on ``train``; keep the weights of the epoch ``config.keep_epoch`` names.

    ``evaluate`` turns validation logits into metrics; ``main_metric`` among them decides the best epoch
    (higher is better, except losses and errors: ``metrics.metric_lower_is_better``). ``win_share(first, second)`` gives the
    share of paired bootstrap resamples of the validation rows in which the first validation outputs score
    better than the second; without it, ``keep_epoch="auto"`` keeps the best epoch. ``objective`` defines targets, loss
    and validation outputs for tasks other than sequence classification; by default it is built from
    ``targets``, ``task`` and ``class_weights``.

    With ``world_size > 1`` the process group must already be initialised (see :mod:`bertkit.ddp`);
    ``config.batch_size`` is the global batch, split among the ranks. ``on_epoch`` is called with each
    epoch's record on every rank (e.g. to report to a hyperparameter search, which may raise to stop).
    """
    assert config.batch_size and config.learning_rate, "call TrainConfig.resolved() first"
    seed_everything(config.seed)
    model.to(device)
    model.train()
    if config.freeze_encoder:
        freeze_encoder(model)
    dtype = autocast_dtype(config.precision, device)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    if objective is None:
        assert targets is not None, "pass targets or an objective"
        weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32, device=device)
        objective = SequenceObjective(task, targets, weights, config.label_smoothing, config.rdrop or 0.0)
    with_types = uses_type_ids(model, train)
    net = model  # the plain module: evaluation, state dicts and config go through it, never through DDP
    if world_size > 1:
        model = ddp.wrap(net, device)

    # batch_size is the global batch per optimizer step; each rank takes 1/world_size of every micro-batch.
    micro_batch = config.batch_size // config.grad_accumulation or 1
    n_batches = math.ceil(len(train) / micro_batch)
    if world_size > 1 and 0 < len(train) % micro_batch < world_size:
        n_batches -= 1  # split_for_rank leaves out a last global batch smaller than world_size
    steps_per_epoch = math.ceil(n_batches / config.grad_accumulation)
    total_steps = steps_per_epoch * config.epochs
    optimizer = make_optimizer(net, config.learning_rate, config.weight_decay)
    graphed = None
    if config.cuda_graphs:
        check_cuda_graphs(device, dtype, world_size, objective)
        optimizer = capturable_optimizer(optimizer, device)
        graphed = GraphedTrainStep(net, objective.loss, optimizer, device=device, dtype=dtype,
                                   max_grad_norm=config.max_grad_norm, pad_id=train.pad_id)  # fmt: skip
    # warm-up steps rounded up, as TrainingArguments(warmup_steps=<ratio>) does
    scheduler = linear_schedule(optimizer, math.ceil(config.warmup_ratio * total_steps), total_steps)
    # Made before cls_only_last_layer patches the model, so the copy holding the average is a plain module.
    averaged = WeightAverage(net, total_steps, config.average_weights) if config.average_weights else None
    optimizer_steps = 0
    rng = np.random.default_rng(config.seed)
    lower_is_better = metric_lower_is_better(main_metric)
    best_score, best_epoch, best_state, stale, best_logits, logits = None, 0, None, 0, None, None
    history: list[dict] = []
    if history_path is not None and rank == 0:
        history_path.parent.mkdir(parents=True, exist_ok=True)
        history_path.write_text("")

    # The pooler reads only [CLS]: the last layer skips the other tokens' dead arithmetic (packed.py).
    with cls_only_last_layer(net), _gradients_released(optimizer, enabled=graphed is not None):
        for epoch in range(1, config.epochs + 1):
            if averaged is not None and averaged.swapped:
                averaged.swap(net)  # back to the trained weights; the average holds on
            started = time.perf_counter()
            global_batches = training_batches(train.lengths, micro_batch, rng)
            batches = split_for_rank(global_batches, rank, world_size)
            global_sizes = [len(b) for b in global_batches if len(b) >= world_size]
            bar = _progress(batches, epoch, config.epochs, enabled=progress and rank == 0)
            running, seen_loss, samples, tokens = torch.zeros((), device=device), 0, 0, 0
            for step, index in enumerate(bar, start=1):
                cpu_inputs = collate(train, index, with_types)
                if graphed is not None:  # the whole step, optimizer included, is one graph replay (cuda_graphs.py)
                    running += graphed(cpu_inputs, objective.batch_targets(index, cpu_inputs))
                    scheduler.step()
                    optimizer_steps += 1
                else:
                    target = objective.batch_targets(index, cpu_inputs).to(device, non_blocking=True)
                    inputs = {k: v.to(device, non_blocking=True) for k, v in cpu_inputs.items()}
                    if objective.forward_copies > 1:  # R-Drop: the batch again, below itself [copies x batch, longest]
                        inputs = {k: torch.cat([v] * objective.forward_copies) for k, v in inputs.items()}
                    syncs = step % config.grad_accumulation == 0 or step == len(batches)
                    # DDP averages gradients over ranks; weighting each rank's mean loss by its share of the global
                    # batch makes that average the global batch's mean, even when the batch splits unevenly.
                    share = len(index) * world_size / global_sizes[step - 1]
                    with _no_sync(model, enabled=world_size > 1 and not syncs):
                        with autocast(device, dtype):
                            outputs = model(**inputs)
                        raw = objective.loss(outputs, target)
                        loss = raw * (share / config.grad_accumulation)
                        (scaler.scale(loss) if scaler else loss).backward()
                    running += raw.detach() * share  # summed over ranks: world_size x the global batch's mean loss
                    if syncs:
                        _optimizer_step(net, optimizer, scheduler, scaler, config.max_grad_norm)
                        optimizer_steps += 1
                if averaged is not None:
                    averaged.after_step(net, optimizer_steps)
                seen_loss += 1
                samples += len(index)
                tokens += int(train.lengths[index].sum())
                if progress and rank == 0 and step % 10 == 0:
                    elapsed = time.perf_counter() - started
                    bar.set_postfix(loss=f"{running.item() / seen_loss:.4f}", samples_s=f"{samples / elapsed:.1f}")
            if world_size > 1:
                # loss and throughput over all ranks: one all-reduce per epoch, not per step
                counts = torch.tensor([seen_loss, samples, tokens], dtype=torch.float64, device=device)
                running, counts = ddp.all_sum(running.float()), ddp.all_sum(counts)
                seen_loss, samples, tokens = (int(v) for v in counts.tolist())  # seen_loss: world_size x steps
            # Reading the loss waits for the GPU's queued steps, so the clock stops when the epoch's work is done.
            train_loss = float(running.item() / max(seen_loss, 1))
            seconds = time.perf_counter() - started
            if averaged is not None and averaged.started:
                averaged.swap(net)  # this epoch is evaluated (and kept) with the averaged weights
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                "learning_rate": float(scheduler.get_last_lr()[0]),  # a tensor under --cuda-graphs
                "train_seconds": round(seconds, 3),
                "train_samples_per_s": round(samples / seconds, 2),
                "train_tokens_per_s": round(tokens / seconds, 1),
            }
            if averaged is not None:
                record["averaged_steps"] = averaged.count
            if validation is not None and evaluate is not None:
                logits = _validation_outputs(objective, net, validation, device, config, rank, world_size)
                metrics = evaluate(logits)
                record.update({f"val_{k}": v for k, v in metrics.items()})
                score = metrics[main_metric]
                improved = best_score is None or (score < best_score if lower_is_better else score > best_score)
                if improved:
                    best_score, best_epoch, stale, best_logits = score, epoch, 0, logits
                    if config.keep_epoch != "last" and epoch < config.epochs:  # the last epoch is the live model
                        best_state = copy.deepcopy({k: v.detach().cpu() for k, v in net.state_dict().items()})
                else:
                    stale += 1
            else:
                best_epoch = epoch
            history.append(record)
            if history_path is not None and rank == 0:
                with history_path.open("a") as handle:
                    handle.write(json.dumps(record) + "\n")
            if progress and rank == 0:
                _print_epoch(record, main_metric)
            if on_epoch is not None:
                on_epoch(record)
            # every rank sees the same gathered validation outputs, so they all stop (and keep) the same epoch
            if config.early_stopping_patience and stale >= config.early_stopping_patience:
                break
    last_epoch = history[-1]["epoch"]
    kept_epoch, kept_logits, win = best_epoch, best_logits, None
    # Stopped early, the last epoch is `patience` epochs past the best, before the learning rate reached zero:
    # auto then keeps the best, as early stopping means to.
    finished_schedule = last_epoch == config.epochs
    if best_epoch != last_epoch and best_score is not None:
        if config.keep_epoch == "auto" and win_share is not None and finished_schedule:
            win = win_share(best_logits, logits)
        if config.keep_epoch == "last" or (win is not None and win < KEEP_BEST_CONFIDENCE):
            kept_epoch, kept_logits = last_epoch, logits
    if kept_epoch != last_epoch:
        net.load_state_dict(best_state)
    if progress and rank == 0 and win is not None:
        _print_kept(kept_epoch, best_epoch, win)
    net.eval()
    return FitResult(
        history=history, best_epoch=best_epoch, best_score=best_score, validation_logits=kept_logits,
        kept_epoch=kept_epoch, best_win_share=win,
    )  # fmt: skip


class WeightAverage:
    """The uniform average of the weights after each of the last ``share`` x ``total_steps`` optimizer steps
    (stochastic weight averaging's average, torch.optim.swa_utils.AveragedModel, over the decaying tail of
    the schedule). ``swap`` exchanges it with the model's weights in place, for evaluation and at the end."""

    def __init__(self, net: nn.Module, total_steps: int, share: float) -> None:
        from torch.optim.swa_utils import AveragedModel

        # rounded before the ceiling: 0.07 x 100 is 7.000000000000001 in floating point, and means 7 steps
        self.first_step = total_steps - math.ceil(round(share * total_steps, 6)) + 1
        self.model = AveragedModel(net)  # a second copy of the weights, on the model's device, for the whole run
        self.count = 0  # steps averaged so far, kept on the host: reading AveragedModel.n_averaged is a tensor read
        self.swapped = False

    @property
    def started(self) -> bool:
        return self.count > 0

    def after_step(self, net: nn.Module, optimizer_step: int) -> None:
        """Called after every micro-batch: adds the weights once per optimizer step inside the tail."""
        if optimizer_step >= self.first_step + self.count:
            self.model.update_parameters(net)
            self.count += 1

    @torch.no_grad()
    def swap(self, net: nn.Module) -> None:
        for current, average in zip(net.parameters(), self.model.module.parameters(), strict=True):
            held = current.detach().clone()
            current.copy_(average)
            average.copy_(held)
        self.swapped = not self.swapped


def _validation_outputs(objective, net, validation, device, config, rank: int, world_size: int) -> Any:
    """Validation outputs in input order. Under DDP, objectives with one output row per example are
    sharded (rank r takes rows r, r + N, ...: no row twice, unlike DistributedSampler's padding) and
    gathered; others run the whole validation set on every rank."""
    dtype = inference_dtype(config.precision, device)
    if world_size <= 1 or not getattr(objective, "rows_aligned", False):
        return objective.predict(net, validation, device, dtype)
    index = np.arange(rank, len(validation), world_size)
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


CUDA_GRAPHS_MIN_TORCH = (2, 5)
"""Older schedulers replace a tensor learning rate instead of filling it in place (pytorch#123753), which a
captured optimizer step would not see; 2.11 (GPU) and 2.13 (CPU) are the versions tested."""


def check_cuda_graphs(device: torch.device, dtype: torch.dtype | None, world_size: int, objective: object) -> None:
    """Raise a ConfigError naming what keeps ``--cuda-graphs`` from applying to this run, once the device and
    precision are resolved (``TrainConfig`` already refuses --device cpu, gradient accumulation and fp16)."""
    version = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
    reasons = {
        f"needs a CUDA GPU and this run is on {device.type}: drop --cuda-graphs": device.type != "cuda",
        f"needs torch >= {'.'.join(map(str, CUDA_GRAPHS_MIN_TORCH))} (found {torch.__version__})": version
        < CUDA_GRAPHS_MIN_TORCH,
        "records whole single-process steps: not under torchrun": world_size > 1,
        "does not run fp16 loss scaling: use --precision bf16 or fp32": dtype == torch.float16,
        "applies to sequence classification (text classifiers)": not isinstance(objective, SequenceObjective),
    }
    failed = [reason for reason, broken in reasons.items() if broken]
    if failed:
        raise ConfigError("--cuda-graphs " + "; ".join(failed))


def _no_sync(model, enabled: bool):
    """Skip DDP's gradient all-reduce on micro-batches that do not end an accumulation step."""
    return model.no_sync() if enabled else contextlib.nullcontext()


def _optimizer_step(model, optimizer, scheduler, scaler, max_grad_norm: float) -> None:
    if scaler is not None:
        scaler.unscale_(optimizer)
    if max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


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


def _print_epoch(record: dict, main_metric: str) -> None:
    from tqdm.auto import tqdm

    parts = [f"epoch {record['epoch']}", f"train loss {record['train_loss']:.4f}"]
    parts += [f"{k} {v:.4f}" for k, v in record.items() if k.startswith("val_") and isinstance(v, float)]
    parts.append(f"{record['train_samples_per_s']:.1f} samples/s")
    tqdm.write(" | ".join(parts))
