"""The ``bertkit`` command line: each command parses flags, makes one facade call and prints.

Commands live by task: ``train``, ``tune`` in :mod:`bertkit.cli.classify`, ``evaluate``, ``predict`` in
:mod:`bertkit.cli.predict`, ``tag ...`` in :mod:`bertkit.cli.tag`, ``qa ...`` in :mod:`bertkit.cli.qa`; ``embed``,
``export``, ``demo`` and ``serve`` here.
Errors a user can cause (:class:`bertkit.BertkitError`) end as one line on stderr and exit code 1
(:func:`bertkit.cli.console.run`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from bertkit.cli.classify import train, tune
from bertkit.cli.console import run, say
from bertkit.cli.cv import cv
from bertkit.cli.distill import distill
from bertkit.cli.options import Device, Encoding, Header, TextColumn
from bertkit.cli.predict import evaluate, predict
from bertkit.cli.qa import qa_app
from bertkit.cli.tag import tag_app
from bertkit.exceptions import ConfigError, DataError
from bertkit.read_options import ReadOptions

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Fine-tune, evaluate, predict with and serve BERT-family models: text classifiers, taggers (tag), "
    "question answering (qa).",
)

for _command in (train, tune, cv, evaluate, predict, distill):
    app.command()(_command)
app.add_typer(tag_app, name="tag")
app.add_typer(qa_app, name="qa")


def _print_version(value: bool) -> None:
    if value:
        from bertkit import __version__

        typer.echo(f"bertkit {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Options before any command (``bertkit --version``)."""


@app.command()
def embed(
    model: Annotated[str, typer.Argument(help="minilm, a hub id, a model folder or a bertkit model.")],
    data: Annotated[str, typer.Option("--data", help="File of texts to embed.")],
    output: Annotated[Path, typer.Option("--output", help="FILE.npy (matrix) or FILE.parquet.")],
    text_column: TextColumn = None,
    pooling: Annotated[str, typer.Option(help="mean, cls or pooler.")] = "mean",
    layer: Annotated[
        list[int] | None, typer.Option("--layer", help="Hidden layer (repeat to average several).")
    ] = None,
    normalize: Annotated[bool, typer.Option("--normalize", help="Scale vectors to unit length.")] = False,
    max_length: Annotated[int, typer.Option(help="Tokens kept per text.")] = 256,
    encoding: Encoding = "utf-8",
    header: Header = None,
    device: Device = "auto",
) -> None:
    """Write one embedding per text (rows in input order)."""
    from bertkit import TextEmbedder
    from bertkit.embeddings import write_embeddings
    from bertkit.runs import check_output_file, read_data

    if output.suffix not in (".npy", ".parquet"):
        raise DataError(f"{output}: --output must end in .npy or .parquet")
    if max_length < 1:
        raise ConfigError(f"--max-length must be a positive integer (got {max_length})")
    check_output_file(output, data)  # before the model loads: a wrong --output costs no time
    dataset = read_data(data, ReadOptions(text_column=text_column, encoding=encoding, header=header), need_label=False,
                        skip_hint=False)  # fmt: skip
    if dataset.pairs is not None and text_column is None:
        # one vector per text: embedding only the first of each pair would drop half the file without a word
        raise DataError(
            f"{data}: holds text pairs ({dataset.columns.text!r}, {dataset.columns.pair!r}) and embed writes one "
            f"vector per text: choose the column with --text-column (run twice for both)"
        )
    embedder = TextEmbedder(model, pooling=pooling, layers=layer or -1, normalize=normalize,
                            max_length=max_length, device=device).fit()  # fmt: skip
    vectors = embedder.transform(dataset.texts)
    write_embeddings(vectors, output)
    say(f"wrote {vectors.shape[0]} x {vectors.shape[1]} embeddings to {output}")


@app.command()
def export(
    model_dir: Annotated[str, typer.Argument(help="A bertkit model folder.")],
    format: Annotated[str, typer.Option("--format", help="Only onnx for now.")] = "onnx",
    quantize: Annotated[str | None, typer.Option("--quantize", help="int8: dynamic int8 weights.")] = None,
) -> None:
    """Export a model for ONNX Runtime (written to MODEL_DIR/onnx/), optionally int8-quantized."""
    from bertkit import TextClassifier

    if format != "onnx":
        raise ConfigError(f"--format must be onnx (got {format!r})")
    path = TextClassifier.load(model_dir, device="cpu").export_onnx(model_dir, quantize=quantize)
    say(f"wrote {path}; predict with: bertkit predict {model_dir} --backend {'onnx-int8' if quantize else 'onnx'} ...")


@app.command()
def demo(
    output: Annotated[Path, typer.Option(help="Where to write the demo model.")] = Path("bertkit-demo"),
    epochs: Annotated[int, typer.Option(help="Passes over the demo data.")] = 4,
) -> None:
    """Train the built-in model on a small packaged sentiment set, evaluate it, and predict a few sentences."""
    from bertkit.demo import run_demo

    run_demo(output, epochs=epochs)


@app.command()
def serve(
    model_dir: Annotated[str, typer.Argument(help="A bertkit model folder (fixed for the server's life).")],
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless told otherwise.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    max_batch_size: Annotated[
        int, typer.Option(help="Most texts of concurrent requests merged into one model call.")
    ] = 32,
    max_wait_ms: Annotated[float, typer.Option(help="How long a text waits for others to batch with.")] = 5.0,
    max_queue: Annotated[int, typer.Option(help="Most texts waiting; beyond it 503 with Retry-After.")] = 1024,
    max_texts: Annotated[int, typer.Option(help="Most texts per request (413 beyond).")] = 64,
    max_chars: Annotated[int, typer.Option(help="Most characters per text (413 beyond).")] = 10_000,
    timeout: Annotated[float, typer.Option(help="Seconds before an unanswered request gets 504.")] = 30.0,
    graceful_timeout: Annotated[float, typer.Option(help="Seconds in-flight requests get on shutdown.")] = 30.0,
    api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding an API key every endpoint but /health needs.")
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="Serve a --host other machines can reach without an API key (refused unless given); loopback "
            "hosts need neither.",
        ),
    ] = False,
    threads: Annotated[int | None, typer.Option(help="torch threads for the model (default: torch's).")] = None,
    precision: Annotated[
        str, typer.Option(help="auto (the saved precision: bf16 where native), fp32 (matches transformers) or bf16.")
    ] = "auto",
    forward_batch_size: Annotated[
        int | None,
        typer.Option(
            help="Texts per forward pass in a merged batch (default: all of it for BERT classifiers or on GPU, else 8)."
        ),
    ] = None,
    device: Device = "auto",
    no_calibration: Annotated[
        bool,
        typer.Option(
            "--no-calibration", help="Classifiers: serve the model's own probabilities, without the fitted temperature."
        ),
    ] = False,
) -> None:
    """Serve a model over HTTP: /predict, /embed (classifiers), /qa, /tag (by the folder's kind), /info, /health,
    /ready, /metrics, /docs and a page at /."""
    from bertkit.serving import ServeSettings, api_key_from_env
    from bertkit.serving import serve as run_server

    # The service's load figures (benchmarks/RESULTS.md) were measured with the tokenizer on one thread: on a
    # small CPU its threads would compete with torch's for the same cores.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    settings = ServeSettings(
        host=host, port=port, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms, max_queue=max_queue,
        max_texts=max_texts, max_chars=max_chars, request_timeout_s=timeout, graceful_timeout_s=graceful_timeout,
        api_key=api_key_from_env(api_key_env) if api_key_env else None, torch_threads=threads, device=device,
        precision=precision, forward_batch_size=forward_batch_size, no_auth=no_auth, calibration=not no_calibration,
    )  # fmt: skip
    settings.check_exposure()  # before "loading", so a refused host says nothing else
    if not settings.is_loopback and settings.api_key is None:
        say(f"warning: serving on {host} without an API key: anyone who can reach it can use it "
            "(set --api-key-env VAR)")  # fmt: skip
    say(f"loading {model_dir} ...")
    run_server(
        model_dir, settings,
        # Said once the port accepts connections; the port itself was bound before the model loaded.
        on_listening=lambda service: say(f"serving {service.kind} from {service.folder} on http://{host}:{port}/ "
                                         f"({service.route}, /embed, /docs; Ctrl-C stops)"),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``bertkit`` console script: run the command line on ``argv`` (default: the process's
    arguments); exit codes as :func:`bertkit.cli.console.run` says."""
    run(app, argv)


if __name__ == "__main__":  # pragma: no cover
    main()
