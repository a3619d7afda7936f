"""The ``bertkit`` command line: one module per command group, each a thin shell over the public API.

``app`` (cli/app.py) is the Typer application and ``main`` its entry point (``bertkit``, ``python -m bertkit``,
``python -m bertkit.cli``); train and tune live in cli/classify.py, evaluate and predict in
cli/predict.py, ``tag`` and ``qa`` in
their own modules."""

from bertkit.cli.app import app, main

__all__ = ["app", "main"]
