"""Batch prediction over many files on a Ray cluster (Ray Data), for inputs too large for one machine.

The input files are spread over a pool of Ray actors; each actor loads the model once and streams its files
chunk by chunk (the reader of ``bertkit predict``), writing one output part per chunk:

    OUTPUT/part-FFFFF-CCCCC.parquet     F: index of the input file in the list given, C: chunk within it
    OUTPUT/_manifest.json               input files by index, parts with their row counts

Each part carries ``input_file`` (the file's index) and ``input_row`` (the row's 0-based position in that
file) before the input columns and predictions, so sorting by the two (or reading parts in name order)
restores the input order. A bertkit error on a worker (a bad row) reaches the caller as itself, and the parts
written before it are removed. Ray is imported only when this runs (``pip install 'bertkit[ray]'``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

import numpy as np

from bertkit.data.writers import OUTPUT_SUFFIXES
from bertkit.exceptions import BertkitError, ConfigError, DataError

if TYPE_CHECKING:
    from bertkit.classification.tables import FileOptions

MANIFEST = "_manifest.json"


@dataclass
class RayPredictResult:
    """What a distributed prediction wrote."""

    output_dir: Path
    rows: int
    skipped: int
    parts: list[dict[str, Any]] = field(default_factory=list)
    """One record per part in input order: file (index), chunk, part (file name), rows, skipped."""


class WorkerError(Exception):
    """A :class:`BertkitError` raised on a Ray worker, on its way to the caller: Ray Data appends its retry notes
    to the message of the exception a task raises, and they land in this wrapper's arguments, not the error's."""

    def __init__(self, error: BertkitError, *notes: object) -> None:
        super().__init__(error, *notes)

    @property
    def error(self) -> BertkitError:
        return self.args[0]


class FilePredictor:
    """A Ray Data actor: loads the model once (torch backend), then predicts whole files into part files."""

    def __init__(
        self,
        model_dir: str,
        output_dir: str,
        options: dict[str, Any],
        device: str,
        threads: int,
        precision: str | None = None,
        per_file: list[dict[str, Any]] | None = None,
    ) -> None:
        import torch

        from bertkit.classification.estimator import TextClassifier

        torch.set_num_threads(max(1, threads))
        self.error: BertkitError | None = None
        try:
            self.classifier = TextClassifier.load(model_dir, device=device, backend="torch", precision=precision)
        except BertkitError as exc:  # raised from a task instead: Ray keeps a constructor's error as text only
            self.error = exc
        self.output_dir = Path(output_dir)
        self.options = options
        self.read = {key: value for key, value in options.items() if key != "format"}  # FileOptions
        self.per_file = per_file

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            if self.error is not None:
                raise self.error
            return self._predict(batch)
        except BertkitError as exc:
            raise WorkerError(exc) from None

    def _predict(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from bertkit.data.writers import TableWriter

        suffix = self.options["format"]
        records: dict[str, list] = {"file": [], "chunk": [], "part": [], "rows": [], "skipped": []}
        for file_index, path in zip(batch["file_index"], batch["path"], strict=True):
            read = {**self.read, **(self.per_file[int(file_index)] if self.per_file else {})}
            chunks = self.classifier.iter_predict_file(str(path), row_numbers=True, **read)
            for chunk, (frame, skipped) in enumerate(chunks):
                frame.insert(0, "input_file", int(file_index))
                name = f"part-{int(file_index):05d}-{chunk:05d}{suffix}"
                with TableWriter(self.output_dir / name) as writer:
                    writer.write(frame)
                for key, value in zip(records, (int(file_index), chunk, name, len(frame), skipped), strict=True):
                    records[key].append(value)
        return {key: np.asarray(values) for key, values in records.items()}


def predict_ray(
    model_dir: str | Path,
    files: list[str | Path],
    output_dir: str | Path,
    *,
    workers: int = 2,
    cpus_per_worker: float = 1,
    gpus_per_worker: float = 0,
    output_format: str = ".parquet",
    address: str | None = None,
    precision: str | None = None,
    per_file: Sequence[FileOptions] | None = None,
    **options: Unpack[FileOptions],
) -> RayPredictResult:
    """Predict every file in ``files`` with the model in ``model_dir`` on Ray, writing parts into ``output_dir``.

    Joins the Ray cluster at ``address`` (``auto``: the one this machine belongs to), or uses one already
    started with ``ray.init``, or starts a local one. ``workers`` actors each take ``cpus_per_worker`` CPUs
    (and ``gpus_per_worker`` GPUs: the model then runs on CUDA). Files are the unit of work: give at least
    as many files as workers to keep them all busy. ``options``: how each file is read and predicted, as in
    :meth:`TextClassifier.predict_file` (:class:`~bertkit.classification.tables.FileOptions`: ``top_k``,
    ``text_column``, ``pair_column``, ``encoding``, ``header``, ``skip_bad_rows``, ``chunk_rows``, ``delimiter``);
    ``per_file``: one such mapping per file, over ``options`` (how ``bertkit predict`` reads each file with the
    model's saved settings). The model loads with the torch backend (``precision`` as in
    :meth:`TextClassifier.load`).

    A :class:`~bertkit.exceptions.BertkitError` raised on a worker (a bad row) is raised here as itself, and the
    part files this call wrote are removed (after the cluster shuts down when this call started it; on a cluster
    it joined, a worker still busy with another file may finish it)."""
    ray = _ray()
    paths, suffix, output_dir = _checked_arguments(files, output_dir, output_format, workers)
    if per_file is not None and len(per_file) != len(paths):
        raise ConfigError(f"per_file gives options for {len(per_file)} files; give one mapping per file ({len(paths)})")
    created = not output_dir.exists()
    output_dir.mkdir(parents=True, exist_ok=True)
    before = {entry.name for entry in output_dir.iterdir()}
    model_path = Path(model_dir)
    model = str(model_path.resolve()) if model_path.exists() else str(model_dir)

    started_here = not ray.is_initialized()
    try:
        if started_here:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        try:
            with _quiet_ray_data():
                summary = _run_files(
                    paths,
                    model,
                    output_dir,
                    suffix,
                    workers,
                    cpus_per_worker,
                    gpus_per_worker,
                    dict(options),
                    precision,
                    [dict(o) for o in per_file] if per_file is not None else None,
                )
        finally:
            if started_here:
                ray.shutdown()
    except BaseException as exc:
        _remove_parts(output_dir, before, created)
        error = _worker_error(exc)
        if error is not None:
            raise error from None
        raise
    parts = sorted(
        ({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in summary),
        key=lambda r: (r["file"], r["chunk"]),
    )
    manifest = {"files": [str(p) for p in paths], "model": model, "parts": parts}
    (output_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return RayPredictResult(
        output_dir, rows=sum(p["rows"] for p in parts), skipped=sum(p["skipped"] for p in parts), parts=parts
    )


def read_parts(output_dir: str | Path):
    """All parts of a :func:`predict_ray` output as one DataFrame, in input order (file, then row). CSV and TSV
    parts are read as text, as written ("NA", "null" and "0012" stay so), but for the two position columns."""
    import pandas as pd

    from bertkit.data.readers import read_table

    output_dir = Path(output_dir)
    manifest = json.loads((output_dir / MANIFEST).read_text(encoding="utf-8"))
    frames = []
    for part in manifest["parts"]:
        path = output_dir / part["part"]
        if path.suffix == ".parquet":
            frames.append(pd.read_parquet(path))
        elif path.suffix == ".jsonl":
            # bertkit's own reader: pandas' would make an integer column with a null floats, and parse dates
            frames.append(read_table(path).frame)
        else:
            # TSV parts are written unquoted (data/writers.py): a quote there is part of the text
            quoting = {"sep": "\t", "quoting": csv.QUOTE_NONE} if path.suffix == ".tsv" else {"sep": ","}
            text = pd.read_csv(path, dtype=str, keep_default_na=False, **quoting)
            frames.append(text.astype({"input_file": "int64", "input_row": "int64"}))
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(["input_file", "input_row"], kind="stable").reset_index(drop=True)


def _worker_error(exc: BaseException) -> BertkitError | None:
    """The BertkitError a worker raised, out of Ray's wrappers (``RayTaskError.cause``, ``__cause__``); None for
    any other failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, WorkerError) and isinstance(current.error, BertkitError):
            return current.error
        current = getattr(current, "cause", None) or current.__cause__
    return None


def _remove_parts(output_dir: Path, before: set[str], created: bool) -> None:
    """Remove what a failed call wrote into ``output_dir``: its parts (and their unfinished ``.part-*.partial``
    files), never an entry that was there ``before``; the folder too when the call ``created`` it and it is
    left empty."""
    if not output_dir.is_dir():
        return
    for entry in output_dir.iterdir():
        if entry.name not in before and entry.is_file() and entry.name.startswith(("part-", ".part-")):
            entry.unlink(missing_ok=True)
    if created and not any(output_dir.iterdir()):
        output_dir.rmdir()


def _ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--engine ray needs Ray Data: pip install 'bertkit[ray]'") from None
    return ray


def _checked_arguments(
    files: list[str | Path], output_dir: str | Path, output_format: str, workers: int
) -> tuple[list[Path], str, Path]:
    """The input paths, the output suffix and folder, once every argument is checked (before Ray starts)."""
    paths = [Path(f) for f in files]
    if not paths:
        raise DataError("give at least one input file (--data FILE, repeat for more)")
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path}: input file not found")
    suffix = output_format if output_format.startswith(".") else f".{output_format}"
    if suffix not in OUTPUT_SUFFIXES:
        raise ConfigError(
            f"--output-format must be one of {', '.join(s[1:] for s in OUTPUT_SUFFIXES)} (got {output_format!r})"
        )
    if workers < 1:
        raise ConfigError(f"--workers must be a positive integer (got {workers})")
    output_dir = Path(output_dir)
    if output_dir.is_file() or output_dir.suffix.lower() in OUTPUT_SUFFIXES:
        raise DataError(f"{output_dir}: with --engine ray, --output names a folder (parts are written into it)")
    if output_dir.is_dir() and any(output_dir.iterdir()):
        raise DataError(f"{output_dir}: output folder is not empty; choose a new folder or empty it")
    return paths, suffix, output_dir


@contextlib.contextmanager
def _quiet_ray_data() -> Iterator[None]:
    """Ray Data logs every execution plan at INFO, and a failed task's traceback (twice) at ERROR: noise for a
    CLI, as the error itself reaches the caller; it re-reads RAY_DATA_LOG_LEVEL when it (re)configures its
    logger, so both are set, and put back afterwards."""
    data_logger = logging.getLogger("ray.data")
    level, env_level = data_logger.level, os.environ.get("RAY_DATA_LOG_LEVEL")
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "CRITICAL")
    data_logger.setLevel(os.environ["RAY_DATA_LOG_LEVEL"])
    try:
        yield
    finally:
        data_logger.setLevel(level)
        if env_level is None:
            os.environ.pop("RAY_DATA_LOG_LEVEL", None)


def _run_files(
    paths: list[Path],
    model: str,
    output_dir: Path,
    suffix: str,
    workers: int,
    cpus_per_worker: float,
    gpus_per_worker: float,
    read: dict[str, Any],
    precision: str | None,
    per_file: list[dict[str, Any]] | None,
) -> list[dict[str, Any]]:
    """One Ray Data pass: a pool of FilePredictor actors, one input file per task; the part summaries. A task's
    exception comes back as raised (a WorkerError), not as Ray Data's UserCodeException, which loses it."""
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    raise_original = context.raise_original_map_exception
    context.raise_original_map_exception = True
    items = [{"file_index": i, "path": str(p.resolve())} for i, p in enumerate(paths)]
    try:
        return (
            ray.data.from_items(items, override_num_blocks=len(items))
            .map_batches(
                FilePredictor,
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=min(workers, len(items))),
                num_cpus=cpus_per_worker,
                num_gpus=gpus_per_worker,
                fn_constructor_kwargs=dict(
                    model_dir=model,
                    output_dir=str(output_dir.resolve()),
                    options={"format": suffix, **read},
                    device="cuda" if gpus_per_worker > 0 else "cpu",
                    threads=int(max(1, cpus_per_worker)),
                    precision=precision,
                    per_file=per_file,
                ),
            )
            .take_all()
        )  # fmt: skip
    finally:
        context.raise_original_map_exception = raise_original
