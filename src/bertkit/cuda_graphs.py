"""Training steps replayed from CUDA graphs (``--cuda-graphs``).

On a GPU a BERT training step at batch 32 is bound by the host, not the GPU: the Python of the model's modules
and the launch of a few thousand small kernels take ~45 ms per step on the H200 this project measured
(benchmarks/RESULTS.md), the GPU's own arithmetic a few. A CUDA graph records one whole step (zero the
gradients, forward, loss, backward, gradient clipping, AdamW) once and replays it with a single launch.

A graph replays fixed shapes, so each batch is padded on the right to a multiple of :data:`LENGTH_MULTIPLE`
tokens: a length-grouped epoch then needs a handful of graphs (one per padded length, plus a short last
batch). The added positions are masked padding, so the step computes the same function. The first batch of
each shape runs eagerly (it loads that shape's kernels); the second captures the graph; later ones replay it.
Parameters and optimizer state live outside the graphs; AdamW takes its learning rate as a device tensor, which
the scheduler fills in place between replays. The graphs share one memory pool, which is safe because every
replay is a whole step whose only output, the loss, is read before the next replay.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from bertkit.devices import autocast

LENGTH_MULTIPLE = 16
"""Batches are padded up to a multiple of this many tokens: few shapes (graphs), little added padding."""


def padded_length(length: int, limit: int) -> int:
    """``length`` rounded up to a multiple of :data:`LENGTH_MULTIPLE`, but never past ``limit`` (the model's
    position table) unless ``length`` itself is longer."""
    return max(length, min(math.ceil(length / LENGTH_MULTIPLE) * LENGTH_MULTIPLE, limit))


def pad_batch(inputs: dict[str, torch.Tensor], length: int, pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a collated batch ([batch, n] tensors) to ``length`` columns: ids with ``pad_id``, the attention
    mask and segment ids with 0."""
    extra = length - inputs["input_ids"].shape[1]
    if extra <= 0:
        return inputs
    fill = {"input_ids": pad_id}
    return {k: nn.functional.pad(v, (0, extra), value=fill.get(k, 0)) for k, v in inputs.items()}


def capturable_optimizer(optimizer: torch.optim.Optimizer, device: torch.device) -> torch.optim.Optimizer:
    """The same AdamW (groups, hyperparameters) rebuilt for capture: fused, ``capturable``, and a learning rate
    held in a device tensor per group, so the schedule can change it between replays."""
    groups = []
    for group in optimizer.param_groups:
        settings = {k: v for k, v in group.items() if k not in ("params", "lr", "initial_lr", "fused", "capturable")}
        groups.append({"params": group["params"], "lr": torch.tensor(float(group["lr"]), device=device), **settings})
    return torch.optim.AdamW(groups, fused=True, capturable=True)


class GraphedTrainStep:
    """Callable ``(inputs, targets) -> loss`` that runs one training step, replayed from a CUDA graph per batch
    shape. ``inputs`` and ``targets`` are CPU tensors as collated; the returned loss is a device scalar that is
    valid until the next call."""

    def __init__(
        self,
        model: nn.Module,
        loss: Callable[[Any, torch.Tensor], torch.Tensor],
        optimizer: torch.optim.Optimizer,
        *,
        device: torch.device,
        dtype: torch.dtype | None,
        max_grad_norm: float,
        pad_id: int,
        capture: bool = True,
    ) -> None:
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.device, self.dtype, self.max_grad_norm, self.pad_id = device, dtype, max_grad_norm, pad_id
        self.capture = capture  # False: every step runs eagerly, padded the same way (tests on CPU)
        self.limit = int(getattr(model.config, "max_position_embeddings", 512))
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.seen: set[tuple] = set()
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, dict, torch.Tensor, torch.Tensor]] = {}
        self.pool = torch.cuda.graph_pool_handle() if capture else None

    def __call__(self, inputs: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
        length = padded_length(inputs["input_ids"].shape[1], self.limit)
        inputs = pad_batch(inputs, length, self.pad_id)
        key = (tuple(inputs["input_ids"].shape), tuple(sorted(inputs)), tuple(targets.shape), targets.dtype)
        graph = self.graphs.get(key)
        if graph is None and (not self.capture or key not in self.seen):
            self.seen.add(key)
            return self._step({k: v.to(self.device, non_blocking=True) for k, v in inputs.items()},
                              targets.to(self.device, non_blocking=True))  # fmt: skip
        if graph is None:
            graph = self.graphs[key] = self._capture(inputs, targets)
        cuda_graph, static_inputs, static_targets, static_loss = graph
        for name, value in inputs.items():
            static_inputs[name].copy_(value, non_blocking=True)
        static_targets.copy_(targets, non_blocking=True)
        cuda_graph.replay()
        return static_loss

    def _step(self, inputs: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
        """One whole step on device tensors; what the graph records."""
        self.optimizer.zero_grad(set_to_none=True)
        # Autocast's weight-cast cache would hold casts made during capture: off, as PyTorch's graph notes say.
        with autocast(self.device, self.dtype, cache_enabled=False):
            outputs = self.model(**inputs)
        loss = self.loss(outputs, targets)
        loss.backward()
        if self.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        return loss.detach()

    def _capture(
        self, inputs: dict[str, torch.Tensor], targets: torch.Tensor
    ) -> tuple[torch.cuda.CUDAGraph, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Record :meth:`_step` on device copies of this batch (which the graph then reads at every replay):
        the graph, its input buffers, its target buffer and its loss output. Recording runs nothing."""
        static_inputs = {k: v.to(self.device) for k, v in inputs.items()}
        static_targets = targets.to(self.device)
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            static_loss = self._step(static_inputs, static_targets)
        return graph, static_inputs, static_targets, static_loss
