"""``bertkit qa ...``: extractive question answering from the command line, over :class:`QuestionAnswerer`.

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

qa_app = typer.Typer(
    no_args_is_help=True,
    help="Extractive question answering on SQuAD v1.1/v2.0 JSON: train, evaluate, predict.",
)


@qa_app.command("train")
def qa_train(
    train: Annotated[Path, typer.Option("--train", help="SQuAD v1.1 or v2.0 JSON to train on.")],
    output: Annotated[Path, typer.Option("--output", help="Folder to write the model into.")],
    overwrite: Overwrite = False,
    validation: Annotated[
        Path | None,
        typer.Option("--validation", help="SQuAD JSON for validation (default: hold out 10% of the articles)."),
    ] = None,
    model: BaseModel = "minilm",
    epochs: Annotated[int, typer.Option(help="Passes over the training data.")] = 3,
    batch_size: Annotated[int | None, typer.Option(help="Windows per step (default: 16 or 32 by data size).")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Peak learning rate (default by data size).")] = None,
    max_length: Annotated[int, typer.Option(help="Tokens per window (question + context).")] = 384,
    doc_stride: Annotated[int, typer.Option(help="Tokens shared by neighbouring windows of a long context.")] = 128,
    max_question_length: Annotated[int, typer.Option(help="Questions are cut to this many tokens.")] = 64,
    max_answer_length: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = 30,
    n_best: Annotated[int, typer.Option(help="Candidate spans kept per question.")] = 20,
    null_threshold: Annotated[
        float | None,
        typer.Option(help="SQuAD v2: answer '' when the no-answer score beats the best span by more (default: tuned)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (also of the held-out articles).")] = 42,
    validation_fraction: Annotated[float, typer.Option(help="Share of articles held out without --validation.")] = 0.1,
    max_train_questions: Annotated[int | None, typer.Option(help="Train on a seeded sample of N questions.")] = None,
    weight_decay: float = option(TrainConfig, "weight_decay"),
    warmup_ratio: float = option(TrainConfig, "warmup_ratio"),
    grad_accumulation: int = option(TrainConfig, "grad_accumulation"),
    early_stopping_patience: int = option(TrainConfig, "early_stopping_patience"),
    precision: TrainPrecision = "auto",
    device: Device = "auto",
    quiet: Quiet = False,
) -> None:
    """Fine-tune an extractive QA model on SQuAD JSON and save it to --output."""
    from bertkit import QuestionAnswerer, read_squad
    from bertkit.runs import check_output_folder, clear_output_folder

    answerer = QuestionAnswerer(
        model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, max_length=max_length,
        doc_stride=doc_stride, max_question_length=max_question_length, max_answer_length=max_answer_length,
        n_best=n_best, null_threshold=null_threshold, seed=seed, validation_fraction=validation_fraction,
        max_train_questions=max_train_questions, weight_decay=weight_decay, warmup_ratio=warmup_ratio,
        grad_accumulation=grad_accumulation, early_stopping_patience=early_stopping_patience,
        precision=precision, device=device, progress=not quiet,
    )  # fmt: skip
    answerer.check_params()  # before the data is read: a wrong flag costs no time
    check_output_folder(output, overwrite)  # before the data is read: a refused folder costs no time
    train_data = read_squad(train)
    validation_data = read_squad(validation) if validation is not None else None
    say(f"training on {len(train_data)} questions ({len(train_data.titles)} articles, SQuAD {train_data.version}) "
        f"of {train}")  # fmt: skip
    if validation_data is not None:
        seen = {(r.question, r.context) for r in train_data.records}
        shared = sum((r.question, r.context) in seen for r in validation_data.records)
        say_overlap(shared, len(validation_data), "questions")
    answerer.fit(train_data, eval_set=validation_data, output_dir=output)
    if overwrite:  # only now, so a run that fails or is interrupted keeps the old model
        clear_output_folder(output, keep=("history.jsonl",))
    answerer.save(output)
    metrics = answerer.validation_metrics_
    say(f"question-answering model saved to {output} (best epoch {answerer.best_epoch_}, "
        f"{answerer.train_seconds_:.0f} s); validation: exact_match {metrics['exact_match']:.2f}, "
        f"f1 {metrics['f1']:.2f} on {metrics['total']} questions")  # fmt: skip


@qa_app.command("evaluate")
def qa_evaluate(
    model_dir: Annotated[str, typer.Argument(help="A folder written by `bertkit qa train` or any HF QA model.")],
    data: Annotated[Path, typer.Option("--data", help="SQuAD v1.1 or v2.0 JSON with answers.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    device: Device = "auto",
) -> None:
    """Official SQuAD exact match and F1 (0-100) of a model on labelled data."""
    from bertkit import QuestionAnswerer, read_squad

    answerer = QuestionAnswerer.load(model_dir, device=device)
    metrics = answerer.evaluate(read_squad(data))
    if as_json:
        typer.echo(json.dumps(metrics))
        return
    for name, value in metrics.items():
        typer.echo(f"{name:>16}  {value:.2f}" if isinstance(value, float) else f"{name:>16}  {value}")


@qa_app.command("predict")
def qa_predict(
    model_dir: Annotated[str, typer.Argument(help="A folder written by `bertkit qa train` or any HF QA model.")],
    question: Annotated[str | None, typer.Option("--question", help="One question (with --context).")] = None,
    context: Annotated[str | None, typer.Option("--context", help="The text to find the answer in.")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="SQuAD JSON of questions to answer.")] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="FILE.json ({id: answer}, the official format) or FILE.jsonl (one row each)."),
    ] = None,
    device: Device = "auto",
) -> None:
    """Answer one --question about --context (printed as JSON), or every question of --data (to --output)."""
    from bertkit import QuestionAnswerer, read_squad
    from bertkit.runs import check_output_file, write_output_text

    single = question is not None or context is not None
    if single == (data is not None):
        raise DataError("give either --question and --context, or --data FILE.json with --output FILE")
    if single and (question is None or context is None):
        raise DataError("--question and --context go together; give both")
    if data is not None and output is None:
        raise DataError("--data needs --output FILE.json or FILE.jsonl to write the answers to")
    if single and output is not None:
        raise DataError("--output goes with --data; one --question is answered on stdout")
    if output is not None and output.suffix.lower() not in (".json", ".jsonl"):
        raise DataError(f"{output}: --output must end in .json or .jsonl")
    if output is not None:
        check_output_file(output, data)  # before the model loads: a wrong --output costs no time
    if single and not context.strip():
        raise DataError("--context is empty; give the text to find the answer in")
    answerer = QuestionAnswerer.load(model_dir, device=device)
    if single:
        answer = answerer.predict([question], [context])[0]
        typer.echo(json.dumps(answer, ensure_ascii=False))
        return
    answers = answerer.predict_records(read_squad(data, need_answers=False))
    if output.suffix.lower() == ".json":
        text = json.dumps({a["id"]: a["answer"] for a in answers}, ensure_ascii=False, indent=1) + "\n"
    else:
        text = "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in answers)
    write_output_text(output, text)
    say(f"wrote {len(answers)} answers to {output}")
