"""Which epoch's weights a run keeps: the best validation score so far, the epochs without improvement (early
stopping) and, at the end, the choice ``TrainConfig.keep_epoch`` names. Its state goes into a resumable
checkpoint (engine/checkpoint.py) with the rest of the run."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from bertkit.config import TrainConfig
from bertkit.engine.objective import ValidationScorer
from bertkit.selection import KEEP_BEST_CONFIDENCE, metric_lower_is_better

_STATE = ("best_score", "best_epoch", "stale", "best_state", "best_outputs", "last_outputs")


class EpochKeeper:
    """Tracks the best validation score, counts epochs without improvement (early stopping) and, at the end,
    decides which epoch's weights the model keeps (``TrainConfig.keep_epoch``)."""

    def __init__(self, config: TrainConfig, scorer: ValidationScorer | None) -> None:
        self.config, self.scorer = config, scorer
        main_metric = scorer.main_metric if scorer is not None else "loss"
        self.lower_is_better = metric_lower_is_better(main_metric)
        self.best_score: float | None = None
        self.best_epoch, self.stale = 0, 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_outputs: Any = None
        self.last_outputs: Any = None

    def unscored(self, epoch: int) -> None:
        """Without validation every epoch counts as the best so far."""
        self.best_epoch = epoch

    def scored(self, epoch: int, metrics: dict[str, float], outputs: Any, net: nn.Module) -> None:
        """Record an epoch's validation; snapshot the weights when it is the best so far and may be kept."""
        self.last_outputs = outputs
        score = metrics[self.scorer.main_metric]
        best = self.best_score
        if best is None or (score < best if self.lower_is_better else score > best):
            self.best_score, self.best_epoch, self.stale, self.best_outputs = score, epoch, 0, outputs
            if self.config.keep_epoch != "last" and epoch < self.config.epochs:  # the last epoch is the live model
                self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in net.state_dict().items()})
        else:
            self.stale += 1

    def stops(self) -> bool:
        """Whether early stopping ends the run here (``early_stopping_patience`` epochs without improvement)."""
        patience = self.config.early_stopping_patience
        return bool(patience) and self.stale >= patience

    def keep(self, last_epoch: int, net: nn.Module) -> tuple[int, Any, float | None]:
        """Load the kept epoch's weights into ``net``; returns (kept epoch, its validation outputs, the
        bootstrap win share of the best epoch over the last, when it was asked)."""
        kept_epoch, kept_outputs, win = self.best_epoch, self.best_outputs, None
        # Stopped early, the last epoch is `patience` epochs past the best, before the learning rate reached
        # zero: auto then keeps the best, as early stopping means to.
        finished_schedule = last_epoch == self.config.epochs
        keep_epoch = self.config.keep_epoch
        if self.best_epoch != last_epoch and self.best_score is not None:
            if keep_epoch == "auto" and finished_schedule:
                win = self.scorer.win_share(self.best_outputs, self.last_outputs)
            if keep_epoch == "last" or (win is not None and win < KEEP_BEST_CONFIDENCE):
                kept_epoch, kept_outputs = last_epoch, self.last_outputs
        if kept_epoch != last_epoch:
            net.load_state_dict(self.best_state)
        return kept_epoch, kept_outputs, win

    def state_dict(self) -> dict[str, Any]:
        """The bookkeeping a resumed run continues from (the best epoch's weights and validation outputs)."""
        return {name: getattr(self, name) for name in _STATE}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in _STATE:
            setattr(self, name, state[name])
