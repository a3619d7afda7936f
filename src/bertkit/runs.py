"""One training run of a text classifier, from options to a saved model folder: the steps ``bertkit train``,
``bertkit tune`` and :func:`bertkit.train_seeds` share, in one place.

- :func:`read_data` / :func:`read_run_data`: the data a :class:`~bertkit.config.ReadOptions` names.
- :func:`fit_and_save`: fit a :class:`~bertkit.TextClassifier` from a :class:`~bertkit.TrainConfig` and write
  the model folder (with the skipped-row count and the run's data options in its metadata) and its
  validation report (``OUTPUT/report/``).

Built on the public estimator API only; nothing heavy is imported until a function runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bertkit.config import ReadOptions, TrainConfig
from bertkit.exceptions import DataError

if TYPE_CHECKING:
    from bertkit.classification.estimator import TextClassifier
    from bertkit.data.dataset import TextData


def read_data(path: str | Path, options: ReadOptions, *, need_label: bool = True) -> TextData:
    """Read one data file (or ``hf:NAME``) with the columns, encoding, header and bad-row handling of
    ``options``; ``options.label_names`` is a file of label names, one per line, that integer labels index."""
    from bertkit.data.dataset import load_file

    names = None
    if options.label_names:
        label_names = Path(options.label_names)
        if not label_names.is_file():
            raise DataError(f"{label_names}: --label-names file not found")
        names = [line.strip() for line in label_names.read_text(encoding="utf-8").splitlines() if line.strip()]
    return load_file(
        path, text_column=options.text_column, pair_column=options.text_pair_column,
        label_column=options.label_column, need_label=need_label, encoding=options.encoding,
        header=options.header, skip_bad_rows=options.skip_bad_rows, label_names=names,
    )  # fmt: skip


def read_run_data(options: ReadOptions) -> tuple[TextData, TextData | None]:
    """The labelled training data and, when ``options.validation`` names a file, the validation data."""
    if not options.train:
        raise DataError("no training data: give --train FILE")
    train = read_data(options.train, options)
    validation = read_data(options.validation, options) if options.validation else None
    return train, validation


def fit_and_save(
    config: TrainConfig,
    train: TextData,
    validation: TextData | None,
    output: str | Path,
    *,
    progress: bool = True,
    run_options: Mapping[str, Any] | None = None,
) -> TextClassifier:
    """Fit a classifier configured by ``config`` on ``train`` (``validation``: the eval set, else a held-out
    share of train) and save it to ``output`` with its validation report in ``output/report/``.

    The saved metadata also records how many training rows were skipped and, when given, ``run_options``
    (the data options, e.g. :meth:`ReadOptions.to_dict`), which ``train_config.json`` repeats so that
    ``bertkit train --config output/train_config.json`` reruns the same training. Under ``torchrun`` every
    process fits; only the main process writes. Returns the fitted classifier."""
    from bertkit.classification.estimator import TextClassifier
    from bertkit.ddp import is_main_process

    main_process = is_main_process()
    output = Path(output)
    classifier = TextClassifier.from_config(config, progress=progress)
    classifier.fit(train, eval_set=validation, output_dir=output)
    if not main_process:
        return classifier
    classifier.metadata_["skipped_rows"] = len(train.skipped)
    if run_options:
        classifier.metadata_["run_options"] = dict(run_options)
    classifier.save(output)
    classifier.validation_report_.save(output / "report", history=classifier.history_)
    return classifier
