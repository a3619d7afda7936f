"""Rows that are both training and validation data: found, then dropped from training, kept, or refused.

A validation row the model also trained on scores as if it were unseen: the validation metrics, the epoch kept,
the calibration temperature and the conformal threshold are all fitted on rows the model has memorised, and the
prediction sets lose their coverage guarantee. Public data sets ship such splits (the shared AG News ``dev.csv``
is 1,000 rows of its ``train.csv``: the model scored 0.958 on it and 0.902 on test, and a temperature fitted on it
made test calibration worse). Rows match when their text (and pair) agree after whitespace is collapsed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bertkit.data.dataset import TextData
from bertkit.exceptions import ConfigError, DataError

POLICIES: tuple[str, ...] = ("drop", "keep", "error")
"""What a run does with training rows identical to a validation row (``validation_overlap``)."""


@dataclass
class Overlap:
    """Training rows found identical to a validation row, and what the run did with them."""

    rows: int
    policy: str
    note: str | None
    """The one line a run prints; None when no row is shared."""

    def metadata(self) -> dict[str, dict[str, int | str]]:
        """bertkit.json's ``validation_overlap`` entry (``rows``, ``action``); empty when no row is shared."""
        action = "dropped from training" if self.policy == "drop" else "kept in training"
        return {"validation_overlap": {"rows": self.rows, "action": action}} if self.rows else {}


def _key(text: str, pair: str | None) -> tuple[str, str | None]:
    """A row's text (and pair) with runs of whitespace collapsed: the same sentence however it was spaced."""
    return " ".join(text.split()), None if pair is None else " ".join(pair.split())


def shared_rows(train: TextData, validation: TextData) -> np.ndarray:
    """Positions in ``train`` of rows whose text (and pair) is also a validation row's, in order."""
    seen = {_key(t, None if validation.pairs is None else validation.pairs[i]) for i, t in enumerate(validation.texts)}
    pairs = train.pairs
    return np.asarray(
        [i for i, t in enumerate(train.texts) if _key(t, None if pairs is None else pairs[i]) in seen], dtype=np.int64
    )


def resolve_overlap(train: TextData, validation: TextData, policy: str) -> tuple[TextData, Overlap]:
    """``train`` without the rows it shares with ``validation`` (``policy`` ``drop``), unchanged (``keep``), or a
    DataError naming both files, the first shared rows and the fix (``error``)."""
    if policy not in POLICIES:
        raise ConfigError(f"--validation-overlap must be drop, keep or error (got {policy!r})")
    shared = shared_rows(train, validation)
    if not len(shared):
        return train, Overlap(0, policy, None)
    source = train.source
    where = ", ".join(str(source.lines[int(train.rows[i])]) for i in shared[:3])
    more = f" and {len(shared) - 3} more" if len(shared) > 3 else ""
    what = (
        f"{len(shared)} of {len(train)} training rows of {source.name} ({source.unit}{'s' if len(shared) > 1 else ''} "
        f"{where}{more}) are also "
        f"rows of the validation data {validation.source.name}"
    )
    if policy == "error":
        raise DataError(
            f"{what}: validation scores, calibration and prediction sets fitted on rows the model trained on are "
            "optimistic. Fix: remove them from one file, or pass --validation-overlap drop (train without them) "
            "or keep (train on them anyway)"
        )
    if policy == "keep":
        note = f"{what}; kept in training (--validation-overlap keep): validation scores will be optimistic"
        return train, Overlap(len(shared), policy, note)
    keep = np.setdiff1d(np.arange(len(train)), shared)
    if not len(keep):
        raise DataError(
            f"{what}: every training row is a validation row; pass a validation file of other rows (or "
            "--validation-overlap keep to train on them anyway)"
        )
    note = (
        f"{what}; training on the other {len(keep)} so validation stays unseen (--validation-overlap keep trains "
        "on them too)"
    )
    return train.subset(keep), Overlap(len(shared), policy, note)
