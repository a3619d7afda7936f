"""Label handling: infer the task from the labels, keep labels exactly as the user wrote them, map to ids."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bertkit.exceptions import ConfigError, DataError

ID_LIST = re.compile(r"^\s*-?\d+(\s*,\s*-?\d+)*\s*$")
INTEGER = re.compile(r"^\s*-?\d+\s*$")


def is_missing(value: Any) -> bool:
    """None, NaN, pandas' NA (a nullable column's missing value) or a blank string."""
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def normalize_labels(
    raw: Sequence[Any], task: str, *, as_written: bool = False, where: Callable[[int], str] | None = None
) -> tuple[str, list[Any]]:
    """Return (task, labels): strings from text files become ints or floats when every value is one,
    and comma-separated id lists become lists, so that labels compare and sort as the user meant them.
    ``as_written``: Python values given in memory, whose type is the user's own: strings stay strings ("0" is
    not 0), only numpy scalars become Python ones. ``where(i)`` names label ``i``'s row in errors."""
    values = list(raw)
    if task == "regression":
        _check_numbers(values, where)
    is_list = [isinstance(v, (list, tuple, np.ndarray)) for v in values]
    if any(is_list):
        if not all(is_list):
            raise DataError("labels mix lists and single values; a multi-label column needs a list in every row")
        return _check_task(task, "multi-label"), [sorted({_scalar(x, as_written) for x in v}) for v in values]
    if as_written and task != "regression":
        values = [_scalar(v, as_written) for v in values]
        if all(isinstance(v, str) for v in values):
            if task == "multi-label":
                return "multi-label", [sorted({x.strip() for x in v.split(",")}) for v in values]
            return _check_task(task, "classification"), [v.strip() for v in values]
    strings = all(isinstance(v, str) for v in values)
    if (
        strings
        and task in ("auto", "multi-label")
        and any("," in v for v in values)
        and all(ID_LIST.match(v) for v in values)
    ):
        return "multi-label", [sorted({int(x) for x in v.split(",")}) for v in values]
    if task == "multi-label":
        return "multi-label", [sorted({_scalar(x.strip()) for x in str(v).split(",")}) for v in values]
    if strings:
        if all(INTEGER.match(v) for v in values):
            values = [int(v) for v in values]
        else:
            try:
                values = [float(v) for v in values]
            except ValueError:
                return _check_task(task, "classification"), [v.strip() for v in values]
    if (
        any(isinstance(v, (float, np.floating)) and not float(v).is_integer() for v in values)
        or all(isinstance(v, (float, np.floating)) for v in values)
        and task == "auto"
    ):
        inferred = "regression"
    else:
        inferred = "classification"
    chosen = inferred if task == "auto" else task
    if chosen == "regression":
        try:
            numbers = [float(v) for v in values]
        except (TypeError, ValueError):
            raise ConfigError("--task regression needs numeric labels; these labels are not numbers") from None
        _check_finite(numbers, where)
        return chosen, numbers
    return chosen, [_scalar(v) for v in values]


def _check_numbers(values: list[Any], where: Callable[[int], str] | None) -> None:
    """ConfigError naming the first label that is not a number (regression needs numbers)."""
    for i, value in enumerate(values):
        if isinstance(value, (list, tuple, np.ndarray)):
            return  # lists: _check_task names the mismatch of tasks
        try:
            float(value)
        except (TypeError, ValueError):
            place = f"{where(i)}: " if where is not None else ""
            raise ConfigError(
                f"{place}label {value!r} is not a number; --task regression needs numeric labels (leave --task "
                "out to classify labels like these)"
            ) from None


def _check_finite(numbers: list[float], where: Callable[[int], str] | None) -> None:
    """DataError naming the first label that is NaN or infinite: its loss would be NaN for the whole run."""
    for i, number in enumerate(numbers):
        if not math.isfinite(number):
            place = f"{where(i)}: " if where is not None else ""
            raise DataError(
                f"{place}label {number!r} is not a finite number; regression trains on finite values (fix or "
                "drop that row)"
            )


def _check_task(requested: str, inferred: str) -> str:
    if inferred == "multi-label" and requested not in ("auto", "multi-label"):
        raise ConfigError(
            f"--task {requested} needs one label per row; these labels are lists (use --task multi-label)"
        )
    if requested == "regression" and inferred != "regression":
        raise ConfigError("--task regression needs numeric labels; these labels are not numbers")
    return inferred if requested == "auto" else requested


def _scalar(value: Any, as_written: bool = False) -> Any:
    """numpy scalars become Python ones so labels round-trip through JSON unchanged; a text file's integer
    strings become ints (not ``as_written``)."""
    if isinstance(value, np.generic):
        return value.item()
    if as_written:
        return value
    if isinstance(value, str) and INTEGER.match(value):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def class_order(labels: Sequence[Any], task: str, names: Sequence[Any] | None = None) -> list[Any]:
    """A model's classes for ``labels``: every one of ``names`` in their order when the labels are all among
    them (a label-names file such as AG News' classes.txt: class i is then the data's id i, as plain
    transformers users of the saved model expect), else the labels found, sorted."""
    found = sorted_classes(labels, task)
    if names:
        given = list(dict.fromkeys(names))
        if set(found) <= set(given):
            return given
    return found


def label_array(classes: Sequence[Any]) -> np.ndarray:
    """``classes`` as the 1-D array scikit-learn's classifiers give as ``classes_``: int64 for integer labels
    (its ``type_of_target`` reads an object array of ints as "unknown"), float64 for floats, bool for booleans,
    else an object array of the labels themselves."""
    if classes and all(isinstance(c, bool) for c in classes):
        return np.asarray(classes, dtype=bool)
    if classes and all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in classes):
        return np.asarray(classes, dtype=np.int64)
    if classes and all(isinstance(c, (float, np.floating)) for c in classes):
        return np.asarray(classes, dtype=np.float64)
    labels = np.empty(len(classes), dtype=object)
    for i, label in enumerate(classes):  # item by item: a tuple label stays one item
        labels[i] = label
    return labels


def sorted_classes(labels: Sequence[Any], task: str) -> list[Any]:
    found = {x for row in labels for x in row} if task == "multi-label" else set(labels)
    try:
        return sorted(found)
    except TypeError:  # mixed types: order by text, stable for a given set
        return sorted(found, key=str)


def encode_labels(labels: Sequence[Any], classes: Sequence[Any], task: str) -> np.ndarray:
    """Targets for the loss: class ids (int64), multi-hot rows (float32) or values (float32)."""
    if task == "regression":
        return np.asarray(labels, dtype=np.float32)
    index = {c: i for i, c in enumerate(classes)}
    if task == "multi-label":
        target = np.zeros((len(labels), len(classes)), dtype=np.float32)
        for row, values in enumerate(labels):
            target[row, [index[v] for v in values]] = 1.0
        return target
    return np.asarray([index[v] for v in labels], dtype=np.int64)


def unseen_labels(labels: Sequence[Any], classes: Sequence[Any], task: str) -> list[tuple[int, Any]]:
    """(row, label) for labels not among ``classes``; empty for regression."""
    if task == "regression":
        return []
    known = set(classes)
    if task == "multi-label":
        return [(i, v) for i, row in enumerate(labels) for v in row if v not in known]
    return [(i, v) for i, v in enumerate(labels) if v not in known]
