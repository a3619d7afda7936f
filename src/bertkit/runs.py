"""One training run of a text classifier, from options to a saved model folder: the steps ``bertkit train``,
``bertkit tune`` and :func:`bertkit.train_seeds` share, in one place.

- :func:`read_data` / :func:`read_run_data`: the data a :class:`~bertkit.read_options.ReadOptions` names.
- :func:`check_output_folder` / :func:`clear_output_folder`: a training run never mixes into, or silently
  replaces, a folder; ``--overwrite`` replaces only a model folder bertkit wrote.
- :func:`describe_rows`: the one line that says which rows train and which validate.
- :func:`fit_and_save`: fit a :class:`~bertkit.TextClassifier` from a :class:`~bertkit.TrainConfig` and write
  the model folder (with the skipped-row count and the run's data options in its metadata) and its
  validation report (``OUTPUT/report/``).

Built on the public estimator API only; nothing heavy is imported until a function runs.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bertkit.config import TrainConfig
from bertkit.exceptions import ConfigError, DataError
from bertkit.read_options import ReadOptions

if TYPE_CHECKING:
    from bertkit.classification.estimator import TextClassifier
    from bertkit.data.dataset import TextData
    from bertkit.tracking import Tracker


def read_data(path: str | Path, options: ReadOptions, *, need_label: bool = True, skip_hint: bool = True) -> TextData:
    """Read one data file (or ``hf:NAME``) with the columns, encoding, header and bad-row handling of
    ``options``; ``options.label_names`` is a file of label names, one per line (or the names, as a model
    saves them), that integer labels index from ``options.label_offset``."""
    from bertkit.data.dataset import load_file
    from bertkit.read_options import read_label_names

    return load_file(
        path, text_column=options.text_column, pair_column=options.text_pair_column,
        label_column=options.label_column, need_label=need_label, encoding=options.encoding,
        header=options.header, skip_bad_rows=options.skip_bad_rows, label_names=read_label_names(options.label_names),
        delimiter=options.delimiter, label_offset=options.label_offset, skip_hint=skip_hint,
    )  # fmt: skip


def check_output_file(output: Path, *inputs: str | Path | None) -> None:
    """DataError, before any work, unless ``output`` can become the ``--output`` file of a command: not a
    folder, not one of the ``inputs`` (:func:`bertkit.data.writers.check_output_file`)."""
    from bertkit.data.writers import check_output_file as check

    check(output, *inputs)


def prepare_report_dir(folder: Path, flag: str = "--report-dir") -> None:
    """Create the folder a report goes in, before any work: a path that is (or runs through) a file, or that
    cannot be created, is a DataError naming ``flag``."""
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: is a file, not a folder; give {flag} a folder for report.json and the PNGs")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DataError(f"{folder}: a part of this path is a file, not a folder; choose another {flag}") from None
    except OSError as exc:
        raise DataError(f"{folder}: cannot create the folder ({exc.strerror or exc}); choose another {flag}") from None


def write_output_text(output: Path, text: str) -> None:
    """Write ``text`` to the ``--output`` file: complete, or not at all (an earlier file stays until then)."""
    from bertkit.data.writers import written_file

    with written_file(output) as partial:
        partial.write_text(text, encoding="utf-8")


def check_data_file(path: str | Path, *, delimiter: str | None = None, model_dir: str | Path | None = None) -> None:
    """The checks of a data file that cost nothing: it exists, is a file, can be read, and has an extension
    bertkit reads. ``evaluate`` and ``predict`` run them before loading the model, which takes seconds; the reader
    makes the same checks (:func:`bertkit.data.readers.check_data_path`) and the rest. Any extension passes with a ``delimiter``, given or saved
    with the model in ``model_dir`` (read from its bertkit.json, not the weights)."""
    if str(path).startswith("hf:"):
        return
    from bertkit.data.readers import check_data_path

    any_suffix = delimiter is not None or (
        model_dir is not None and saved_run_options(model_dir).get("delimiter") is not None
    )
    check_data_path(Path(path), any_suffix=any_suffix)


def saved_run_options(model_dir: str | Path) -> dict[str, Any]:
    """The options a model folder's training recorded (bertkit.json ``run_options``: columns, encoding, header,
    delimiter...), read without loading the weights; empty for a folder that records none, a hub id, or an
    unreadable bertkit.json (loading the model names it)."""
    from bertkit.exceptions import BertkitError
    from bertkit.models.folders import read_metadata

    if not Path(model_dir).is_dir():
        return {}
    try:
        metadata = read_metadata(model_dir) or {}
    except BertkitError:  # an unreadable bertkit.json: loading the model names it
        return {}
    return dict(metadata.get("run_options") or {})


def read_run_data(options: ReadOptions) -> tuple[TextData, TextData | None]:
    """The labelled training data and, when ``options.validation`` names a file, the validation data."""
    if not options.train:
        raise DataError("no training data: give --train FILE")
    train = read_data(options.train, options)
    validation = read_data(options.validation, options) if options.validation else None
    return train, validation


MODEL_FILES = frozenset({
    "config.json", "model.safetensors", "generation_config.json", "bertkit.json", "train_config.json",
    "history.jsonl", "report", "onnx", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "vocab.txt", "vocab.json", "merges.txt", "added_tokens.json", "spiece.model", "sentencepiece.bpe.model",
    "chat_template.jinja", "README.md",
})  # fmt: skip
"""What a bertkit model folder holds: what ``save`` (weights, Hugging Face config and tokenizer files, metadata,
the model card README.md), training (history.jsonl, report/) and ``bertkit export`` (onnx/) write."""
SEEDS_FILE = "seeds.json"


CHECKPOINT_FILES = frozenset({"checkpoint", ".checkpoint.tmp", ".checkpoint.old"})
"""A resumable checkpoint (``--checkpoint-every``: bertkit.engine.checkpoint) and the leftovers of a write."""


def _is_model_folder(folder: Path) -> bool:
    return (folder / "bertkit.json").is_file() and all(
        entry.name in MODEL_FILES | CHECKPOINT_FILES for entry in folder.iterdir()
    )


def _is_interrupted_folder(names: list[str]) -> bool:
    """What an interrupted run leaves: history.jsonl (its finished epochs) and, with --checkpoint-every, its
    checkpoint."""
    return bool(names) and all(n in CHECKPOINT_FILES | {"history.jsonl"} for n in names)


def _is_seeds_folder(folder: Path) -> bool:
    """A folder ``bertkit train --seeds`` wrote: seeds.json and seed-N/ model folders."""
    entries = list(folder.iterdir())
    return any(e.name == SEEDS_FILE for e in entries) and all(
        e.name == SEEDS_FILE or (e.name.startswith("seed-") and e.is_dir() and _is_model_folder(e)) for e in entries
    )


def _shown(names: list[str], limit: int = 5) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(repr(n) for n in names[:limit]) + more


def check_output_folder(output: str | Path, overwrite: bool, resume: bool = False) -> None:
    """Refuse an ``--output`` that a run would mix into or replace silently; call it before any data is read.

    A missing or empty folder is fine. A non-empty one needs ``overwrite``, and even then it must be a model
    folder bertkit wrote (bertkit.json, or a ``--seeds`` run's seeds.json and seed-N/ folders) holding nothing
    but the files bertkit writes: anything else (a user's notes, another tool's output) is never deleted.
    ``resume`` (``--resume``): the folder must hold an interrupted run's checkpoint, and besides it only that
    run's history.jsonl (and, with ``overwrite``, the model the run was to replace)."""
    output = Path(output)
    if resume:
        _check_resumable(output, overwrite)
        return
    if not output.exists():
        return
    if not output.is_dir():
        raise ConfigError(f"{output}: is a file, not a folder; give --output a new or empty folder")
    names = sorted(entry.name for entry in output.iterdir())
    if not names:
        return
    ours = _is_model_folder(output) or _is_seeds_folder(output) or _is_interrupted_folder(names)
    if not overwrite and any(n in CHECKPOINT_FILES for n in names):
        raise ConfigError(
            f"{output}: folder holds the checkpoint of an interrupted run; pass --resume to continue it, or "
            "--overwrite to start afresh"
        )
    if not overwrite and names == ["history.jsonl"]:
        raise ConfigError(
            f"{output}: folder holds an interrupted run (history.jsonl; no checkpoint to resume: it ran without "
            "--checkpoint-every or stopped before its first one); pass --overwrite to start afresh, or choose a new "
            "--output folder"
        )
    if not overwrite:
        what = "holds a model bertkit wrote" if ours else f"holds {_shown(names)}"
        raise ConfigError(
            f"{output}: folder is not empty ({what}); choose a new --output folder, or pass --overwrite to "
            "replace a model bertkit wrote there"
        )
    if not ours:
        foreign = [n for n in names if n not in MODEL_FILES and n != SEEDS_FILE and not n.startswith("seed-")] or names
        raise ConfigError(
            f"{output}: --overwrite replaces only a model folder bertkit wrote, and this one holds "
            f"{_shown(foreign)}; choose a new --output folder (nothing was deleted)"
        )


def _check_resumable(output: Path, overwrite: bool) -> None:
    """ConfigError unless ``output`` holds a checkpoint to resume and nothing a resumed run would mix into."""
    names = sorted(entry.name for entry in output.iterdir()) if output.is_dir() else []
    if not any(n in CHECKPOINT_FILES for n in names):
        raise ConfigError(
            f"{output}: no checkpoint to --resume from (a run writes OUTPUT/checkpoint with --checkpoint-every); "
            "drop --resume to train afresh"
        )
    allowed = CHECKPOINT_FILES | {"history.jsonl"}
    model = (output / "bertkit.json").is_file()
    if model and overwrite:
        allowed |= MODEL_FILES
    other = [n for n in names if n not in allowed]
    if other:
        hint = "move them away"
        if model and not overwrite:
            hint = "pass --overwrite too, as the interrupted run did, to replace the model"
        raise ConfigError(f"{output}: --resume continues a run in its own folder, and this one also holds "
                          f"{_shown(other)}; {hint}")  # fmt: skip


def clear_output_folder(output: str | Path, keep: tuple[str, ...] = ()) -> None:
    """Delete the previous model of a folder :func:`check_output_folder` let ``--overwrite`` replace: every entry
    is one bertkit writes (checked again here), so a file from the old run (an ONNX export of the old weights, a
    plot) never outlives it. ``keep``: entries the new run already wrote (its history.jsonl)."""
    output = Path(output)
    if not output.is_dir() or all(entry.name in keep for entry in output.iterdir()):
        return  # nothing but what this run wrote (a new folder holds its history.jsonl alone)
    check_output_folder(output, overwrite=True)
    for entry in output.iterdir():
        if entry.name in keep:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def describe_rows(train: TextData, validation: TextData | None, config: TrainConfig) -> str:
    """The line a run prints before training: the rows that train (after the hold-out and --max-train-rows),
    those that validate, and the columns read."""
    from bertkit.classification.inputs import planned_rows
    from bertkit.data.overlap import shared_rows

    shared = 0 if validation is None or config.validation_overlap != "drop" else len(shared_rows(train, validation))
    n_train, n_held_out = planned_rows(len(train) - shared, config, held_out=validation is None)
    of = f"{n_train} of {len(train)}" if n_train != len(train) else f"{n_train}"
    if validation is None:
        checked = f"{n_held_out} held out for validation"
    else:
        checked = f"validation: {len(validation)} rows of {validation.source.name}"
        checked += f", {shared} of them also in the training data, left out of training" if shared else ""
    columns = train.columns
    pair = f", pair: {columns.pair!r}" if columns.pair else ""
    return (f"training on {of} rows of {train.source.name} ({checked}; text: {columns.text!r}{pair}, "
            f"label: {columns.label!r})")  # fmt: skip


def fit_and_save(
    config: TrainConfig,
    train: TextData,
    validation: TextData | None,
    output: str | Path,
    *,
    progress: bool = True,
    run_options: Mapping[str, Any] | None = None,
    replace: bool = False,
    resume: str | Path | None = None,
    export: bool = True,
    tracker: Tracker | None = None,
) -> TextClassifier:
    """Fit a classifier configured by ``config`` on ``train`` (``validation``: the eval set, else a held-out
    share of train) and save it to ``output`` with its validation report in ``output/report/``. ``export``:
    also write its ONNX graphs (fp32, int8), score every backend on the validation rows and record the default
    that ``predict`` and ``serve`` load (:mod:`bertkit.fast_backend`); ``progress`` prints that choice.

    The saved metadata also records how many training rows were skipped and, when given, ``run_options``
    (the data options, e.g. :meth:`ReadOptions.to_dict`), which ``train_config.json`` repeats so that
    ``bertkit train --config output/train_config.json`` reruns the same training. ``replace`` (``--overwrite``)
    deletes the folder's previous model once the new one is trained, just before it is saved, so a run that
    fails or is interrupted keeps the old model. Under ``torchrun`` every
    process fits; only the main process writes. Returns the fitted classifier.

    ``resume`` continues from the checkpoint in that folder (``resume/checkpoint``, normally ``output``'s, which
    ``config.checkpoint_every`` wrote); ``output``'s checkpoint is deleted once the model is saved. ``config.track`` logs the run to MLflow (:mod:`bertkit.tracking`); ``tracker``: log it
    there instead (a run nested under a group's, which the caller opened and ends)."""
    from bertkit.classification.estimator import TextClassifier
    from bertkit.ddp import is_main_process
    from bertkit.tracking import Tracker, tracked

    main_process = is_main_process()
    output = Path(output)
    if config.track and tracker is None:
        _check_model(config)  # a run for a model that cannot load would only be a FAILED entry in the store
    opened = (
        contextlib.nullcontext(tracker if main_process else Tracker())
        if tracker is not None
        else tracked(config, output, run_options, enabled=main_process, resume_from=resume)
    )
    with opened as tracker:
        classifier = TextClassifier.from_config(config, progress=progress)
        classifier.fit(train, eval_set=validation, output_dir=output, on_epoch=tracker.log_epoch,
                       resume_from=resume)  # fmt: skip
        if not main_process:
            return classifier
        if replace:
            clear_output_folder(output, keep=("history.jsonl",))  # history.jsonl: written by this run's fit
        classifier.metadata_["skipped_rows"] = len(train.skipped)
        if run_options:
            classifier.metadata_["run_options"] = dict(run_options)
        classifier.save(output)
        classifier.validation_report_.save(output / "report", history=classifier.history_)
        if export:
            choose_default_backend(classifier, output, progress)
        _remove_checkpoint(output)  # the run is complete: the model folder is its result
        tracker.finish(classifier, output)
    return classifier


def check_resume_folder(path: str | Path) -> None:
    """ConfigError unless ``path`` (``--resume``) holds a checkpoint: said before any data is read."""
    from bertkit.engine.checkpoint import locate

    locate(path)


def _check_model(config: TrainConfig) -> None:
    """The checks ``TextClassifier.fit`` starts with: the model exists and holds ``max_length`` tokens."""
    from bertkit.models.checkpoints import check_max_length, resolve_checkpoint

    check_max_length(config.model, resolve_checkpoint(config.model), config.max_length)


def choose_default_backend(classifier: TextClassifier, output: Path, progress: bool) -> None:
    """Export, score and time the backends on the classifier's validation rows (``validation_data_``, left by
    fitting); record the default in ``output``'s bertkit.json (:mod:`bertkit.fast_backend`); ``progress`` says it."""
    from bertkit.classification.inputs import say
    from bertkit.fast_backend import choose_backend, describe

    record = choose_backend(classifier, output, classifier.validation_data_)
    if progress:
        say(describe(record))


def _remove_checkpoint(output: Path) -> None:
    for name in CHECKPOINT_FILES:
        if (output / name).is_dir():
            shutil.rmtree(output / name)
