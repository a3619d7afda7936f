"""How a run's data is read: :class:`ReadOptions` (the data files, columns, encoding, header, delimiter, label
names and offset) and the reading settings a model saves for evaluate and predict to reuse.

The fields are declared with :func:`bertkit.flags.flag`, as :class:`bertkit.config.TrainConfig`'s are, so the
CLI builds its data options from them. Below the data layer: this module names settings, ``bertkit.data`` reads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertkit.exceptions import ConfigError, DataError
from bertkit.flags import flag


@dataclass
class ReadOptions:
    """Where a run's data is and how to read it: the options of ``bertkit train`` and ``bertkit tune`` that are not
    :class:`TrainConfig` fields. A config file may hold them too, and a saved ``train_config.json`` repeats them
    (:meth:`to_dict`), so ``bertkit train --config MODEL/train_config.json`` reads the same data again."""

    train: str | None = flag(None, "Training data: CSV, TSV, JSONL, Parquet or hf:NAME.", "--train")
    """Training data: a CSV, TSV, JSONL or Parquet file, or ``hf:NAME`` for a Hugging Face dataset (``--train``)."""
    validation: str | None = flag(None, "Validation data (default: 10% of train).", "--validation")
    """Validation data in the same forms; without it a share of train is held out (``--validation``)."""
    text_column: str | None = flag(None, "Column holding the text.", "--text-column")
    """Column holding the text; None detects it (``--text-column``)."""
    text_pair_column: str | None = flag(None, "Column holding the second text of a pair.", "--text-pair-column")
    """Column holding the second text of a pair, for pair classification (``--text-pair-column``)."""
    label_column: str | None = flag(None, "Column holding the label.", "--label-column")
    """Column holding the label; None detects it (``--label-column``)."""
    encoding: str = flag("utf-8", "Text encoding of CSV/TSV/JSONL files.", "--encoding")
    """Text encoding of CSV, TSV and JSONL files (``--encoding``)."""
    header: bool | None = flag(
        None, "Whether CSV/TSV files start with a header line (default: detect).", "--header/--no-header"
    )
    """Whether CSV/TSV files start with a header line; None detects it (``--header/--no-header``)."""
    skip_bad_rows: bool = flag(
        False, "Skip rows with an empty text or label (counted in the report).", "--skip-bad-rows"
    )
    """Skip rows with an empty text or label instead of failing; they are counted in the report
    (``--skip-bad-rows``)."""
    label_names: str | list[str] | None = flag(
        None, "File with one label name per line; integer labels index into it.", "--label-names"
    )
    """File with one label name per line; integer labels index into it (``--label-names``). A model saves the
    names themselves (a list, which a config file may give too), so the file need not exist at evaluation."""
    delimiter: str | None = flag(
        None,
        "Column separator: ',', ';', '|', 'tab', or 'space' for 'label text' lines (TREC, fastText's "
        "__label__X text). Default: by extension (.csv ',', .tsv and .txt tab).",
        "--delimiter",
    )
    """Column separator of text files: ``,`` ``;`` ``|`` ``tab`` (or a tab character), or ``space`` for lines of a
    label, whitespace and the text (TREC's ``DESC:manner How did ...``, fastText's ``__label__positive great``),
    read as the columns ``label`` and ``text``. None chooses by extension: ``.csv`` comma, ``.tsv`` and ``.txt``
    tab, except that a ``.txt`` whose first line starts with ``__label__`` is read as fastText lines
    (``--delimiter``)."""
    label_offset: int | None = flag(
        None, "Id of the first label name with --label-names: 0 or 1 (default: detect).", "--label-offset"
    )
    """The label id that names the first line of ``--label-names``: 0 (ids are 0..N-1) or 1 (1..N, AG News'
    classes.txt). None detects 1-based ids: every id of 1..N present and no 0 (``--label-offset``)."""

    def __post_init__(self) -> None:
        # Paths (from the command line) are kept as text: the options are saved as JSON with the model.
        for name in ("train", "validation", "label_names"):
            value = getattr(self, name)
            if isinstance(value, Path):
                setattr(self, name, str(value))
        if self.delimiter is not None:
            delimiter_char(self.delimiter)
        if self.label_offset not in (None, 0, 1):
            raise ConfigError(f"--label-offset must be 0 or 1 (got {self.label_offset})")

    def to_dict(self) -> dict[str, Any]:
        """The options as saved with a model (``metadata["run_options"]``, ``train_config.json``)."""
        return dataclasses.asdict(self)

    def as_trained(self, header: bool | None, label_offset: int | None) -> ReadOptions:
        """These options as a model saves them: the header decision made on the training file (given or
        detected), the label names themselves (not the path, which may be gone later) and the label offset
        used, so that evaluating a file of the training file's layout reads it the same way."""
        return dataclasses.replace(
            self,
            header=self.header if self.header is not None else header,
            label_names=read_label_names(self.label_names),
            label_offset=self.label_offset if self.label_offset is not None else label_offset,
        )

    def with_saved(
        self, saved: dict[str, Any], given: set[str], data: str, names: tuple[str, ...] | None = None
    ) -> tuple[ReadOptions, list[str]]:
        """These options with each reading setting in ``names`` (default: all of :data:`SAVED_READ_SETTINGS`)
        that is not in ``given`` (the flags set on the command line) taken from a model's saved ``run_options``.
        The header decision and the delimiter describe the training file's layout: they are taken only for a
        ``data`` file of the training file's extension. Returns the options and the settings taken, as flags
        (for one info line). Data paths and --skip-bad-rows are never taken: they belong to the run."""
        same_layout = Path(str(data)).suffix.lower() == Path(str(saved.get("train") or "")).suffix.lower()
        taken: dict[str, Any] = {}
        for name in names or SAVED_READ_SETTINGS:
            if name in given or saved.get(name) is None:
                continue
            if (name in ("header", "delimiter") and not same_layout) or saved[name] == getattr(self, name):
                continue
            taken[name] = saved[name]
        shown = [_as_flag(name, value) for name, value in taken.items()]
        return dataclasses.replace(self, **taken), shown


SAVED_READ_SETTINGS = (
    "text_column", "text_pair_column", "label_column", "encoding", "header", "label_names", "delimiter",
    "label_offset",
)  # fmt: skip
"""The settings of ``bertkit train`` that evaluate and predict reuse from a model folder unless a flag is given."""

DELIMITERS: dict[str, str] = {
    ",": ",", ";": ";", "|": "|", "tab": "\t", "\t": "\t", "\\t": "\t", "space": " ", " ": " ",
}  # fmt: skip
"""``--delimiter`` spellings and the separator each means; ``" "`` reads "label text" lines."""


def read_label_names(value: str | Path | list[str] | None) -> list[str] | None:
    """The label names of ``--label-names``: a file with one name per line, or the names themselves (as a
    model folder saves them, so that the file need not exist at evaluation)."""
    if value is None or value == "":
        return None
    if not isinstance(value, (str, Path)):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"--label-names must be a file of names or a list of them (got {value!r})")
        return [str(name) for name in value]
    path = Path(value)
    if not path.is_file():
        raise DataError(f"{path}: --label-names file not found")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def delimiter_char(value: str) -> str:
    """The separator ``--delimiter value`` means (ConfigError listing the allowed spellings otherwise)."""
    if value not in DELIMITERS:
        raise ConfigError(f"--delimiter must be one of ',', ';', '|', 'tab' or 'space' (got {value!r})")
    return DELIMITERS[value]


def _as_flag(name: str, value: Any) -> str:
    if name == "header":
        return "--header" if value else "--no-header"
    if name == "label_names":
        return f"--label-names ({len(value)} names)" if isinstance(value, list) else f"--label-names {value}"
    return f"--{name.replace('_', '-')} {value!r}" if name == "delimiter" else f"--{name.replace('_', '-')} {value}"
