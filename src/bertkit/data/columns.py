"""Choose the text, text-pair and label columns of a table: named by flags, or inferred when obvious."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bertkit.exceptions import DataError

TEXT_NAMES = (
    "text", "sentence", "review", "content", "document", "comment", "tweet", "body", "utterance",
    "question", "string", "#1 string", "sentence1", "premise", "question1", "text_a", "text1",
)  # fmt: skip
PAIR_OF = {
    "sentence1": "sentence2", "#1 string": "#2 string", "premise": "hypothesis", "question1": "question2",
    "text_a": "text_b", "text1": "text2", "text": "text_pair", "question": "sentence",
}  # fmt: skip
LABEL_NAMES = (
    "label", "labels", "score", "target", "class", "category", "quality", "sentiment", "y", "rating",
    "gold_label", "stars",
)  # fmt: skip


@dataclass(frozen=True)
class Columns:
    text: str
    pair: str | None
    label: str | None


def choose_columns(
    frame: pd.DataFrame,
    where: str,
    *,
    text: str | None = None,
    pair: str | None = None,
    label: str | None = None,
    need_label: bool = True,
) -> Columns:
    """Resolve the columns to use; an explicit name wins, otherwise a well-known name, otherwise a guess
    for header-less files (the longest non-numeric column is the text, a numeric one the label)."""
    names = [str(c) for c in frame.columns]
    lower = {n.lower(): n for n in names}
    headerless = all(n.isdigit() for n in names)
    for flag, value in (("--text-column", text), ("--text-pair-column", pair), ("--label-column", label)):
        if value is not None and value not in names:
            guess = _text_column_guess(frame, lower, headerless) if flag == "--text-column" else None
            hint = f"; the text looks to be in {guess!r}: pass --text-column {guess}" if guess is not None else ""
            raise DataError(f"{where}: {flag} {value!r} is not a column; columns found: {_listing(names)}{hint}")

    if text is None and pair is None:
        # A known pair wins over single names: QNLI's (question, sentence) must not read as "sentence" alone.
        known = [lower[a] for a, b in PAIR_OF.items() if a in lower and b in lower]
        text = next((t for t in known if label not in (t, lower[PAIR_OF[t.lower()]])), None)
    if text is None:
        text = next((lower[n] for n in TEXT_NAMES if n in lower), None)
        if text is None and headerless:
            text = _longest_text_column(frame, exclude={label, pair})
        if text is None:
            raise DataError(
                f"{where}: no text column found; name it with --text-column (columns found: {_listing(names)})"
            )
    if pair is None and text.lower() in PAIR_OF and PAIR_OF[text.lower()] in lower:
        pair = lower[PAIR_OF[text.lower()]]
    if label is None:
        label = next((lower[n] for n in LABEL_NAMES if n in lower and lower[n] not in (text, pair)), None)
        if label is None and headerless:
            label = _label_like_column(frame, exclude={text, pair})
        if label is None and need_label:
            raise DataError(
                f"{where}: no label column found; name it with --label-column (columns found: {_listing(names)})"
            )
    if label is not None and label in (text, pair):
        raise DataError(f"{where}: column {label!r} cannot be both the text and the label")
    return Columns(text=text, pair=pair, label=label)


def _text_column_guess(frame: pd.DataFrame, lower: dict[str, str], headerless: bool) -> str | None:
    """The column that would be the text were no --text-column given, for the advice when the named one is
    missing (a header-less model's saved column 1 on a file that holds the text alone, as column 0)."""
    known = next((lower[n] for n in TEXT_NAMES if n in lower), None)
    return known if known is not None or not headerless else _longest_text_column(frame, exclude=set())


def _listing(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _numeric_share(series: pd.Series) -> float:
    values = series.astype(str).str.strip()
    return float(pd.to_numeric(values.str.replace(",", "", regex=False), errors="coerce").notna().mean())


def _longest_text_column(frame: pd.DataFrame, exclude: set[str | None]) -> str | None:
    candidates = [c for c in frame.columns if c not in exclude and _numeric_share(frame[c].head(200)) < 0.5]
    if not candidates:
        return None
    return max(candidates, key=lambda c: frame[c].head(200).astype(str).str.len().mean())


def _label_like_column(frame: pd.DataFrame, exclude: set[str | None]) -> str | None:
    candidates = [c for c in frame.columns if c not in exclude]
    numeric = [c for c in candidates if _numeric_share(frame[c].head(200)) > 0.99]
    if numeric:
        return min(numeric, key=lambda c: frame[c].nunique())
    return None
