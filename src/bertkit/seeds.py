"""Multi-seed runs: train the same configuration with several seeds and report each metric's mean and spread.

Small data sets (MRPC, CoLA, RTE) move by several points from one seed to the next; one run says little.
Every seed's model is saved under ``OUTPUT/seed-N/`` (a complete model folder with its report), and
``OUTPUT/seeds.json`` holds the per-seed metrics, the mean, the standard deviation and the best seed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertkit.config import TrainConfig
from bertkit.data.dataset import TextData
from bertkit.exceptions import ConfigError
from bertkit.selection import metric_lower_is_better, resolve_selection_metric
from bertkit.tracking import tracked, tracked_group


@dataclass
class SeedsResult:
    """Per-seed validation metrics and their summary."""

    seeds: list[int]
    runs: list[dict[str, Any]]
    """One record per seed: seed, folder, best_epoch, kept_epoch, train_seconds, metrics."""
    mean: dict[str, float]
    std: dict[str, float]
    """Sample standard deviation (ddof=1) across seeds; 0 for a single seed."""
    selection_metric: str
    best_seed: int
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def seed_list(first: int, count: int) -> list[int]:
    """``count`` consecutive seeds starting at ``first``."""
    if count < 1:
        raise ConfigError(f"--seeds must be a positive integer (got {count})")
    return [first + i for i in range(count)]


def summarize(runs: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and sample standard deviation of every numeric metric shared by all runs."""
    names = [k for k, v in runs[0]["metrics"].items() if isinstance(v, int | float)]
    mean, std = {}, {}
    for name in names:
        values = [float(run["metrics"][name]) for run in runs]
        mean[name] = sum(values) / len(values)
        spread = sum((v - mean[name]) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
        std[name] = math.sqrt(spread)
    return mean, std


def train_seeds(
    config: TrainConfig,
    train: TextData,
    validation: TextData | None,
    output: str | Path,
    seeds: int | Sequence[int],
    *,
    progress: bool = True,
    run_options: dict[str, Any] | None = None,
    on_seed: Callable[[dict[str, Any]], None] | None = None,
    export: bool = True,
) -> SeedsResult:
    """Train ``config`` once per seed; save each model under ``output/seed-N/`` and the summary in
    ``output/seeds.json``. Without ``validation`` each seed also draws its own held-out split.

    ``seeds``: a list of seeds, or a count N for ``config.seed``, ``config.seed + 1``, ...
    ``on_seed`` is called with each finished run's record (seed, metrics, ...). ``export``: each model also gets
    its ONNX graphs and the default backend chosen on validation (see :func:`bertkit.runs.fit_and_save`)."""
    from bertkit.ddp import env_world_size, is_main_process
    from bertkit.runs import fit_and_save

    seeds = seed_list(config.seed, seeds) if isinstance(seeds, int) else list(seeds)
    if not seeds:
        raise ConfigError("train_seeds needs at least one seed")
    if len(seeds) > 1 and env_world_size() > 1:
        raise ConfigError("train_seeds runs one process per seed; launch it without torchrun")
    output = Path(output)
    runs: list[dict[str, Any]] = []
    metric = None
    group_params = {"seeds": ",".join(map(str, seeds))}
    with tracked_group(config, output, run_options, kind="seeds", params=group_params,
                       enabled=is_main_process()) as group:  # fmt: skip
        for seed in seeds:
            folder = output / f"seed-{seed}"
            options = {**run_options, "seed": seed} if run_options else None
            seeded = dataclasses.replace(config, seed=seed)
            with tracked(seeded, folder, options, parent=group, run_name=folder.name) as tracker:
                clf = fit_and_save(seeded, train, validation, folder, progress=progress, run_options=options,
                                   export=export, tracker=tracker)  # fmt: skip
            metric = resolve_selection_metric(config.selection_metric, clf.task_)
            run = {
                "seed": seed, "folder": str(folder), "best_epoch": clf.best_epoch_, "kept_epoch": clf.kept_epoch_,
                "train_seconds": clf.train_seconds_, "metrics": dict(clf.validation_metrics_),
            }  # fmt: skip
            group.log_metrics({f"seed_{name}": value for name, value in run["metrics"].items()}, step=seed)
            runs.append(run)
            if on_seed is not None:
                on_seed(run)
        mean, std = summarize(runs)
        lower_is_better = metric_lower_is_better(metric)
        best = (min if lower_is_better else max)(runs, key=lambda r: r["metrics"][metric])
        result = SeedsResult(
            seeds=list(seeds), runs=runs, mean=mean, std=std, selection_metric=metric, best_seed=best["seed"],
            config={k: v for k, v in config.to_dict().items() if k != "seed"},
        )  # fmt: skip
        output.mkdir(parents=True, exist_ok=True)
        summary = output / "seeds.json"
        summary.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        group.log_spread(mean, std)
        group.log_files([summary])
    return result
