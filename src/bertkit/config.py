"""Run options: the one declaration of every training option of ``bertkit train`` (default, help, flag spelling).

:class:`TrainConfig` holds the hyperparameters (its fields are also ``TextClassifier``'s parameters); where the
data is and how to read it are :class:`bertkit.read_options.ReadOptions`. Each field is declared with
:func:`bertkit.flags.flag`: its default, a one-line help for the command line, and (rarely) its flag spelling;
the docstring under it is the full explanation. The CLI builds its options from these fields
(``bertkit.cli.options.option``), and a test holds the estimator's parameters and the commands' options equal to
them. :func:`read_options` reads a ``--config`` file.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bertkit.exceptions import ConfigError
from bertkit.flags import flag

Task = Literal["auto", "classification", "multi-label", "regression"]
TASKS: tuple[str, ...] = ("auto", "classification", "multi-label", "regression")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")


LENIENT = ("checkpoint_every",)
"""Options whose own check takes more than their annotated type (``checkpoint_every``: "epoch", 100 or "100")."""


@dataclass
class TrainConfig:
    """Hyperparameters of a fine-tuning run. ``None`` means "choose from the amount of data"."""

    model: str = flag("minilm", "Hub id, local folder or 'minilm' (built in).")
    """Hub id, local folder or built-in alias (``minilm``) of the encoder to fine-tune (``--model``)."""
    task: str = flag("auto", "auto, classification, multi-label or regression.")
    """``auto`` infers from the labels: floats give regression, label lists multi-label (``--task``)."""
    epochs: int = flag(3, "Passes over the training data.")
    """Passes over the training data (``--epochs``)."""
    batch_size: int | None = flag(None, "Examples per step, over all processes (default: 16 or 32 by data size).")
    """Examples per optimizer step; default 16 below 4,000 training rows, else 32 (``--batch-size``)."""
    learning_rate: float | None = flag(None, "Peak learning rate (default by data size).")
    """Peak AdamW learning rate; default 1e-4 below 4,000 rows, else 5e-5 (``--learning-rate``)."""
    max_length: int = flag(128, "Tokens kept per text or pair.")
    """Tokens per text (or pair) kept; longer inputs are truncated (``--max-length``)."""
    window_stride: int | None = flag(
        None,
        "Long texts: overlapping windows sharing N tokens; 0: truncate (default: windows of stride "
        "max_length/4 when over 10% of training texts are longer than --max-length).",
    )
    """Texts longer than max_length tokens: read in overlapping windows of max_length tokens sharing this many
    tokens, instead of truncated; each window carries the text's label in training and window logits combine
    by ``window_aggregation`` at prediction (for pairs, the second text is windowed). ``0`` truncates.
    ``None`` (the default) decides at training: windows of stride max_length // 4 (32 at 128, as measured on
    IMDb: +12 points over truncation, benchmarks/RESULTS.md) when more than 10% of the single training texts
    are longer than max_length, else truncation (pairs: always truncation); the run says so in one line and
    the choice is saved with the model, which predict, evaluate and serve follow (``--window-stride``)."""
    window_aggregation: str = flag("mean", "Combine window logits: mean or max.")
    """How window logits combine into one prediction per text: ``mean`` or ``max``."""
    weight_decay: float = flag(0.01, "AdamW weight decay.")
    """AdamW weight decay, not applied to biases and LayerNorm weights (``--weight-decay``)."""
    warmup_ratio: float = flag(0.1, "Share of steps with linear warm-up.")
    """Fraction of optimizer steps with a linear warm-up, followed by linear decay (``--warmup-ratio``)."""
    classifier_pooling: str = flag(
        "auto",
        "cls; mean: a layer that starts as mean pooling (still a plain HF model); "
        "auto: mean for sentence-transformers models trained with it (minilm), else cls.",
    )
    """What the classification head reads: ``cls``, the [CLS] state (the architecture's own head), or ``mean``,
    a layer added on top and initialised to average the tokens, as sentence-embedding checkpoints were trained
    (the saved model stays a plain Hugging Face classifier, one layer deeper); ``auto`` (the default) is
    ``mean`` for a sentence-transformers folder trained with mean pooling and built of BERT-style layers (the
    built-in minilm is one), else ``cls``
    (``--classifier-pooling``)."""
    label_smoothing: float = flag(0.0, "Classification: probability spread over all classes in the loss (e.g. 0.1).")
    """Single-label classification: share of each target's probability spread evenly over all classes in the
    loss, as ``torch.nn.CrossEntropyLoss(label_smoothing=...)`` and the Trainer's ``label_smoothing_factor``
    (``--label-smoothing``)."""
    dropout: float | None = flag(
        None, "Dropout probability while training, everywhere in the model (default: the checkpoint's)."
    )
    """Dropout probability while training, for every dropout of the encoder and the head (hidden states,
    attention weights, classifier input), set in the model's config so the saved model says it too; None keeps
    the checkpoint's own (0.1 in BERT-family checkpoints) (``--dropout``)."""
    attention_dropout: float | None = flag(
        None, "Dropout on the attention weights while training (default: --dropout, else the checkpoint's)."
    )
    """Dropout probability on the attention weights alone, applied after ``dropout``; None keeps what
    ``dropout`` or the checkpoint sets. At 0 PyTorch's fused CPU attention kernel runs in training as it does in
    prediction (with attention dropout it falls back to separate products, softmax and masks)
    (``--attention-dropout``)."""
    rdrop: float | None = flag(
        None,
        "R-Drop weight: each batch runs twice (two dropout masks), KL between them added; 0: off "
        "(default: 0.5 for single-label classification from 4,000 rows, else 0).",
    )
    """R-Drop weight: each batch also goes through the model a second time, with other dropout masks, and
    the loss adds this weight x the symmetric KL divergence of the two predictions (Liang et al., 2021), which
    regularises the model towards predictions that dropout does not change. It doubles the examples per forward
    and backward pass. ``None`` (the default): 0.5 for single-label classification from 4,000 training rows
    (rotten_tomatoes, 3 epochs: +0.5 points of test accuracy on 5 seeds, benchmarks/RESULTS.md), else 0 (off);
    also 0 with ``--freeze-encoder``, ``--dropout 0`` or ``--cuda-graphs`` (``--rdrop``)."""
    grad_accumulation: int = flag(1, "Micro-batches per optimizer step.")
    """Micro-batches accumulated per optimizer step (``--grad-accumulation``)."""
    max_grad_norm: float = flag(1.0, "Gradient clipping norm (0: no clipping).")
    """Gradient clipping norm; 0 disables clipping (``--max-grad-norm``)."""
    selection_metric: str = flag(
        "auto", "Validation metric picking the best epoch: auto (mcc / micro_f1 / pearson), accuracy, f1, loss..."
    )
    """Validation metric that picks the best epoch (and drives early stopping): ``auto`` is ``mcc`` for
    classification (robust to imbalance, e.g. CoLA), ``micro_f1`` for multi-label, ``pearson`` for
    regression; or any metric name the report shows, e.g. ``accuracy``, ``f1``, ``loss``."""
    average_weights: float = flag(
        0.0, "Share of the last optimizer steps whose weights are averaged into the model (0: off)."
    )
    """Share of the final optimizer steps whose weights are averaged uniformly into the model (stochastic
    weight averaging over the tail of the schedule, torch.optim.swa_utils.AveragedModel); epochs ending
    inside that tail are evaluated, and kept, with the average. The average is a second copy of the weights
    on the training device. A run that early stopping ends before the tail averages nothing. 0 (the
    default) turns it off (``--average-weights``)."""
    keep_epoch: str = flag(
        "auto",
        "Weights kept: best (validation), last, or auto: the last unless an earlier epoch is better "
        "beyond validation noise (95% of paired bootstrap resamples).",
    )
    """Whose weights the trained model keeps, given validation data: ``best`` (the epoch with the best
    ``selection_metric``), ``last``, or ``auto`` (the default): the last epoch, unless an earlier one scored
    better on validation in at least 95% of paired bootstrap resamples of the validation rows, or early
    stopping ended the run. The learning rate decays to zero at the last epoch; a validation score of 1,000
    rows moves by about a point from sampling alone, and picking the best of noisy epochs favoured early,
    worse epochs (rotten_tomatoes: benchmarks/RESULTS.md). ``--keep-epoch``; token tagging and question
    answering always keep the best epoch."""
    early_stopping_patience: int = flag(0, "Stop after N epochs without gain (0: never).")
    """Stop after this many epochs without improvement on validation; 0 never stops early."""
    freeze_encoder: bool = flag(False, "Train only the head.", "--freeze-encoder")
    """Train only the classification head on frozen encoder features (``--freeze-encoder``)."""
    class_weights: str = flag("none", "none or balanced.")
    """``none`` or ``balanced`` (inverse class frequency in the loss, for imbalanced data)."""
    precision: str = flag("auto", "auto, fp32, bf16 or fp16.")
    """``auto``: bf16 autocast where native (CUDA, CPUs with AVX512-BF16/AMX), else fp16 on GPU, fp32 on CPU."""
    seed: int = flag(42, "Random seed (the first one with --seeds).")
    """Seed for initialisation, validation split and batch order (``--seed``)."""
    validation_fraction: float = flag(0.1, "Share of train held out for validation when --validation is not given.")
    """Share of train carved out (stratified) for validation when no validation data is given."""
    validation_overlap: str = flag(
        "drop", "Training rows identical to a validation row: drop (train without them), keep, or error."
    )
    """What a run does with training rows whose text (and pair) equals a validation row's, whitespace collapsed
    (``--validation-overlap``): ``drop`` (the default) trains without them and says so in one line, so validation
    scores, the epoch kept, calibration and prediction sets rest on rows the model never saw; ``keep`` trains on
    them anyway (the line still says how many); ``error`` stops before training, naming the rows."""
    max_train_rows: int | None = flag(
        None, "Train on a seeded sample of N rows (validation, when not given, comes from the other rows)."
    )
    """Train on N rows, a seeded sample (``--max-train-rows``). Without validation data the validation rows
    (``validation_fraction`` x N of them) are held out first, from the whole file, so all N rows train."""
    device: str = flag("auto", "auto, cpu, cuda or cuda:N.")
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    cuda_graphs: bool = flag(
        False, "GPU: replay each training step from a CUDA graph (less host work).", "--cuda-graphs"
    )
    """On a GPU, replay each training step from a CUDA graph: the same step with far less host work per step
    (``--cuda-graphs``; single process, sequence classification, no gradient accumulation; cuda_graphs.py)."""
    checkpoint_every: str | None = flag(
        None, "Keep a resumable checkpoint in OUTPUT/checkpoint: every 'epoch' or every N optimizer steps (--resume)."
    )
    """Write a checkpoint to continue an interrupted run from (``bertkit train --resume``): ``epoch`` (after
    each epoch) or N (every N optimizer steps); None (the default) writes none. It holds everything the run needs
    to end with the same weights as an uninterrupted one (weights, optimizer, schedule, random generators,
    batch order, history, the best epoch's weights): about 3-4x the model's size on disk (MiniLM: ~0.3 GB),
    one folder replaced atomically each time, deleted once the model is saved (``--checkpoint-every``)."""
    track: str | None = flag(None, "Log the run to MLflow: mlflow, or mlflow:URI (needs the 'track' extra of bertkit).")
    """Experiment tracking: ``mlflow`` logs the resolved options, per-epoch metrics, the report's plots and the
    model folder to MLflow's tracking store (``MLFLOW_TRACKING_URI``, else MLflow's default: ./mlflow.db with
    artifacts in ./mlruns); ``mlflow:URI`` names the store, e.g. ``mlflow:sqlite:///runs.db`` or
    ``mlflow:http://host:5000`` (``--track``)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes stored with the model (not used by training)."""

    def __post_init__(self) -> None:
        self._check_types()
        if self.task not in TASKS:
            raise ConfigError(f"--task must be one of {', '.join(TASKS)} (got {self.task!r})")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})")
        if self.class_weights not in ("none", "balanced"):
            raise ConfigError(f"--class-weights must be 'none' or 'balanced' (got {self.class_weights!r})")
        _positive("--epochs", self.epochs)
        _positive("--max-length", self.max_length)
        _positive("--grad-accumulation", self.grad_accumulation)
        if self.batch_size is not None:
            _positive("--batch-size", self.batch_size)
        if self.max_train_rows is not None:
            _positive("--max-train-rows", self.max_train_rows)
        if self.learning_rate is not None and not 0 < self.learning_rate < 1:
            raise ConfigError(f"--learning-rate must be in (0, 1) (got {self.learning_rate})")
        if self.classifier_pooling not in ("auto", "cls", "mean"):
            raise ConfigError(f"--classifier-pooling must be auto, cls or mean (got {self.classifier_pooling!r})")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"--label-smoothing must be in [0, 1) (got {self.label_smoothing})")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ConfigError(f"--dropout must be in [0, 1) (got {self.dropout})")
        if self.attention_dropout is not None and not 0 <= self.attention_dropout < 1:
            raise ConfigError(f"--attention-dropout must be in [0, 1) (got {self.attention_dropout})")
        if self.rdrop is not None and not self.rdrop >= 0:
            raise ConfigError(f"--rdrop must be 0 (off) or a positive weight (got {self.rdrop})")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"--warmup-ratio must be in [0, 1) (got {self.warmup_ratio})")
        if not 0 < self.validation_fraction < 1:
            raise ConfigError(f"--validation-fraction must be in (0, 1) (got {self.validation_fraction})")
        if self.validation_overlap not in ("drop", "keep", "error"):
            raise ConfigError(f"--validation-overlap must be drop, keep or error (got {self.validation_overlap!r})")
        if not 0 <= self.average_weights <= 1:
            raise ConfigError(f"--average-weights must be in [0, 1] (got {self.average_weights})")
        if self.keep_epoch not in ("auto", "best", "last"):
            raise ConfigError(f"--keep-epoch must be auto, best or last (got {self.keep_epoch!r})")
        if self.window_aggregation not in ("mean", "max"):
            raise ConfigError(f"--window-aggregation must be mean or max (got {self.window_aggregation!r})")
        # Caught here, before any data is read; training.check_cuda_graphs checks the rest once the device is known.
        if self.cuda_graphs and self.device == "cpu":
            raise ConfigError("--cuda-graphs needs a CUDA GPU: drop it or use --device cuda")
        if self.cuda_graphs and self.grad_accumulation != 1:
            raise ConfigError("--cuda-graphs records whole optimizer steps: use --grad-accumulation 1")
        if self.cuda_graphs and self.rdrop:
            raise ConfigError("--cuda-graphs records steps of one batch shape and does not run --rdrop: drop one")
        if self.cuda_graphs and self.precision == "fp16":
            raise ConfigError("--cuda-graphs does not run fp16 loss scaling: use --precision bf16 or fp32")
        if self.window_stride is not None and not 0 <= self.window_stride < self.max_length // 2:
            raise ConfigError(
                f"--window-stride must be at least 0 and below half of --max-length {self.max_length} "
                f"(got {self.window_stride}); 0 truncates long texts"
            )
        if self.max_length > 8192:
            raise ConfigError(f"--max-length must be at most 8192 (got {self.max_length})")
        self._check_run_records()

    def _check_run_records(self) -> None:
        """--checkpoint-every and --track: the accepted forms (an int number of steps is kept as text)."""
        every = self.checkpoint_every
        if every is not None and every != "epoch":
            text = str(every).strip()
            if not (text.isdigit() and int(text) > 0):
                raise ConfigError(
                    f"--checkpoint-every must be 'epoch' or a positive number of optimizer steps (got {every!r})"
                )
            self.checkpoint_every = text
        if every is not None and self.cuda_graphs:
            raise ConfigError("--checkpoint-every does not apply to --cuda-graphs runs: drop one of them")
        track = self.track
        if track is not None and not (track == "mlflow" or (track.startswith("mlflow:") and track[len("mlflow:") :])):
            raise ConfigError(
                f"--track must be 'mlflow' or 'mlflow:URI' (e.g. mlflow:sqlite:///mlflow.db) (got {self.track!r})"
            )

    def _check_types(self) -> None:
        """ConfigError for a value of the wrong type (a config file's ``epochs = "three"`` or ``1.5``), before
        the range checks compare it and long before the loop would fail on it."""
        kinds = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}
        for item in dataclasses.fields(self):
            annotation = str(item.type)
            base = annotation.removesuffix(" | None")
            value = getattr(self, item.name)
            if base not in kinds or item.name in LENIENT or (value is None and annotation.endswith("| None")):
                continue
            if base == "bool":
                fits = isinstance(value, bool)
            elif base == "int":
                fits = isinstance(value, numbers.Integral) and not isinstance(value, bool)  # numpy ints too
            elif base == "float":
                fits = isinstance(value, numbers.Real) and not isinstance(value, bool)
            else:
                fits = isinstance(value, str)
            if not fits:
                flag = "--" + item.name.replace("_", "-")
                raise ConfigError(f"{flag} must be {kinds[base]} (got {value!r}; config key {item.name!r})")

    def resolved(self, n_train_rows: int, task: str | None = None) -> TrainConfig:
        """Return a copy with data-dependent defaults filled in; ``task`` is the resolved task of a text
        classifier (``classification``, ``multi-label``, ``regression``), None for other models.

        Few rows mean few optimizer steps: a smaller batch and a higher learning rate keep enough updates
        (2,000 rows, one epoch: batch 32 at 5e-5 reaches 0.74 on rotten_tomatoes, batch 16 at 1e-4 0.80).
        R-Drop is on where it was measured to help, single-label classification on the larger sets, and where
        it can act: with dropout in the encoder and a step it can run in.
        """
        small = n_train_rows < 4000
        rdrop = self.rdrop
        if rdrop is None:
            can_act = not (self.freeze_encoder or self.dropout == 0 or self.cuda_graphs)
            rdrop = 0.5 if task == "classification" and not small and can_act else 0.0
        return dataclasses.replace(
            self,
            batch_size=self.batch_size or (16 if small else 32),
            learning_rate=self.learning_rate or (1e-4 if small else 5e-5),
            rdrop=rdrop,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; allowed: {sorted(known)}")
        return cls(**values)

    @staticmethod
    def read_options(path: str | Path) -> dict[str, Any]:
        """The raw options of a JSON, TOML or YAML file (see :func:`read_options`)."""
        return read_options(path)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """Read a JSON, TOML or YAML file whose keys are field names (dashes allowed)."""
        return cls.from_dict(read_options(path))


def read_options(path: str | Path) -> dict[str, Any]:
    """The options in a JSON, TOML or YAML file as a dict, dashes in keys turned into underscores."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        import tomllib

        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    elif path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ConfigError(f"{path}: reading YAML needs PyYAML (pip install pyyaml)") from exc
        try:
            values = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    else:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc}); use .json, .toml, .yaml or .yml") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config file holds one table of options (got {type(values).__name__})")
    return {k.replace("-", "_"): v for k, v in values.items()}


def _positive(flag: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{flag} must be a positive integer (got {value})")
