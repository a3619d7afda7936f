"""``bertkit tag ...``: token classification (named entities) from the command line, over :class:`TokenTagger`.

Each command parses flags, makes one facade call and prints; errors end as one line via ``bertkit.cli.console.run``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bertkit.cli.console import say, say_overlap
from bertkit.cli.options import BaseModel, Device, Overwrite, Quiet, TrainPrecision, option
from bertkit.config import TrainConfig
from bertkit.exceptions import DataError

tag_app = typer.Typer(
    no_args_is_help=True,
    help="Token classification (named entities): train, evaluate and predict on CoNLL or JSONL data.",
)

TagColumn = Annotated[int, typer.Option("--tag-column", help="CoNLL column holding the tag, 0-based (-1: the last).")]
Encoding = Annotated[str, typer.Option("--encoding", help="Text encoding of the data files.")]


@tag_app.command("train")
def train(
    train: Annotated[str, typer.Option("--train", help="Training data: CoNLL columns or JSONL tokens/tags.")],
    output: Annotated[Path, typer.Option("--output", help="Folder to write the model into.")],
    overwrite: Overwrite = False,
    validation: Annotated[
        str | None, typer.Option("--validation", help="Validation data (default: 10% of the train sentences).")
    ] = None,
    model: BaseModel = "minilm",
    epochs: Annotated[int, typer.Option(help="Passes over the training data.")] = 3,
    batch_size: Annotated[int | None, typer.Option(help="Sentences per step (default: 16 or 32 by data size).")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Peak learning rate (default by data size).")] = None,
    max_length: Annotated[
        int, typer.Option(help="Sub-tokens per piece; longer sentences are cut between words.")
    ] = 128,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    max_train_rows: Annotated[int | None, typer.Option(help="Train on a seeded sample of N sentences.")] = None,
    weight_decay: float = option(TrainConfig, "weight_decay"),
    warmup_ratio: float = option(TrainConfig, "warmup_ratio"),
    grad_accumulation: int = option(TrainConfig, "grad_accumulation"),
    early_stopping_patience: int = option(TrainConfig, "early_stopping_patience"),
    precision: TrainPrecision = "auto",
    device: Device = "auto",
    tag_column: TagColumn = -1,
    encoding: Encoding = "utf-8",
    quiet: Quiet = False,
) -> None:
    """Fine-tune a tagger on word-tagged sentences and save it to --output (best epoch by entity F1)."""
    from bertkit import TokenTagger, load_tagged_data
    from bertkit.runs import check_output_folder, clear_output_folder

    tagger = TokenTagger(
        model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, max_length=max_length,
        seed=seed, max_train_rows=max_train_rows, weight_decay=weight_decay, warmup_ratio=warmup_ratio,
        grad_accumulation=grad_accumulation, early_stopping_patience=early_stopping_patience,
        precision=precision, device=device, progress=not quiet,
    )  # fmt: skip
    tagger.check_params()  # before the data is read: a wrong flag costs no time
    check_output_folder(output, overwrite)  # before the data is read: a refused folder costs no time
    train_data = load_tagged_data(train, tag_column=tag_column, encoding=encoding)
    validation_data = load_tagged_data(validation, tag_column=tag_column, encoding=encoding) if validation else None
    say(f"training on {len(train_data)} sentences of {train_data.source}")
    if validation_data is not None:
        seen = {tuple(words) for words in train_data.tokens}
        say_overlap(sum(tuple(words) in seen for words in validation_data.tokens), len(validation_data), "sentences")
    tagger.fit(train_data, eval_set=validation_data, output_dir=output)
    if overwrite:  # only now, so a run that fails or is interrupted keeps the old model
        clear_output_folder(output, keep=("history.jsonl",))
    tagger.save(output)
    metrics = tagger.validation_metrics_
    say(
        f"token-classification model saved to {output} ({len(tagger.labels_)} tags, best epoch {tagger.best_epoch_}, "
        f"{tagger.train_seconds_:.0f} s); validation entity precision {metrics['precision']:.4f}, "
        f"recall {metrics['recall']:.4f}, f1 {metrics['f1']:.4f}"
    )


@tag_app.command("evaluate")
def evaluate(
    model_dir: Annotated[str, typer.Argument(help="A folder written by `bertkit tag train` (or an HF NER model).")],
    data: Annotated[str, typer.Option("--data", help="Tagged data: CoNLL columns or JSONL tokens/tags.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    tag_column: TagColumn = -1,
    encoding: Encoding = "utf-8",
    device: Device = "auto",
) -> None:
    """Entity-level precision, recall and F1 (conlleval: exact span and type), overall and per type."""
    from bertkit import TokenTagger, load_tagged_data

    tagger = TokenTagger.load(model_dir, device=device)
    report = tagger.evaluate(load_tagged_data(data, tag_column=tag_column, encoding=encoding))
    for line in report["warnings"]:  # stderr, beside the table or --json: what the scores do not show
        say(f"warning: {line}")
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"{report['data']}: {report['n_sentences']} sentences, {report['n_gold_entities']} entities")
    typer.echo(f"{'type':<10} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}")
    rows = [*report["per_type"].items(), ("overall", {**report, "support": report["n_gold_entities"]})]
    for name, scores in rows:
        typer.echo(
            f"{name:<10} {scores['precision']:>9.4f} {scores['recall']:>9.4f} {scores['f1']:>9.4f} "
            f"{scores['support']:>8}"
        )


@tag_app.command("predict")
def predict(
    model_dir: Annotated[str, typer.Argument(help="A folder written by `bertkit tag train` (or an HF NER model).")],
    text: Annotated[str | None, typer.Argument(help="One text to tag (instead of --data).")] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", help="File to tag: CoNLL, JSONL (tokens or text) or .txt (one text per line)."),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", help="Where to write: .jsonl, or .conll/.txt.")] = None,
    tag_column: TagColumn = -1,
    encoding: Encoding = "utf-8",
    device: Device = "auto",
) -> None:
    """Print the entities of one text as JSON, or tag a file into --output."""
    from bertkit import TokenTagger
    from bertkit.runs import check_output_file

    if (text is None) == (data is None):
        raise DataError("give either one TEXT argument or --data FILE (with --output FILE)")
    if data is not None and output is None:
        raise DataError("--data needs --output FILE.jsonl (or FILE.conll) to write the predictions to")
    if text is not None and output is not None:
        raise DataError("--output goes with --data; one TEXT is printed as JSON")
    if output is not None:
        check_output_file(output, data)  # before the model loads: a wrong --output costs no time
    tagger = TokenTagger.load(model_dir, device=device)
    if text is not None:
        typer.echo(json.dumps(tagger.predict([text])[0], ensure_ascii=False))
        return
    count = tagger.predict_file(data, output, tag_column=tag_column, encoding=encoding)
    say(f"wrote {count} tagged sentences to {output}")
