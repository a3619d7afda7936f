"""Option types shared by the ``bertkit`` command modules (cli, cli_qa, cli_tag): one definition, one help text."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

TextColumn = Annotated[str | None, typer.Option("--text-column", help="Column holding the text.")]
PairColumn = Annotated[str | None, typer.Option("--text-pair-column", help="Column holding the second text of a pair.")]
LabelColumn = Annotated[str | None, typer.Option("--label-column", help="Column holding the label.")]
Encoding = Annotated[str, typer.Option("--encoding", help="Text encoding of CSV/TSV/JSONL files.")]
SkipBadRows = Annotated[
    bool,
    typer.Option("--skip-bad-rows", help="Skip rows with an empty text or label (counted in the report)."),
]
Header = Annotated[
    bool | None,
    typer.Option("--header/--no-header", help="Whether CSV/TSV files start with a header line (default: detect)."),
]
InferencePrecision = Annotated[
    str | None,
    typer.Option(
        "--precision",
        help="Override the saved precision for torch inference: auto (bf16 where native), bf16 or fp32 "
        "(fp32 matches plain transformers exactly).",
    ),
]
LabelNames = Annotated[
    Path | None,
    typer.Option("--label-names", help="File with one label name per line; integer labels index into it."),
]

Task = Annotated[str, typer.Option(help="auto, classification, multi-label or regression.")]
BaseModel = Annotated[str, typer.Option(help="Hub id, local folder or 'minilm' (built in).")]
TrainPrecision = Annotated[str, typer.Option(help="auto, fp32, bf16 or fp16.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]
