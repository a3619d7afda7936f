"""What every ``bertkit`` command shares at the edges: progress lines on stderr (:func:`say`) and the one place
that turns errors into exit codes (:func:`run`).

Exit codes: 0 done; 1 a :class:`bertkit.BertkitError` (one ``error: ...`` line on stderr); 2 a usage error
(click's message); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
import warnings

import typer

from bertkit.exceptions import BertkitError, BertkitWarning


def say(message: str) -> None:
    """Print a progress or result line on stderr (stdout is kept for machine-readable output)."""
    typer.echo(message, err=True)


def say_overlap(shared: int, total: int, unit: str) -> None:
    """The warning line when ``shared`` of the ``total`` validation items are also training items (``unit``:
    "sentences", "questions"): the validation scores, and the epoch they keep, would flatter the model."""
    if shared:
        say(
            f"warning: {shared} of {total} validation {unit} are also training {unit}: the validation scores, and "
            "the epoch kept by them, will be optimistic; give held-out data with --validation"
        )


def run(app: typer.Typer, argv: list[str] | None = None) -> None:
    """Run ``app`` on ``argv`` (default: the process's arguments) and exit with the code of the outcome:
    a BertkitError ends as one ``error:`` line and exit code 1, a usage error as click's message and its code
    (2), Ctrl-C as ``interrupted`` (or ``aborted`` at a prompt) and 130."""
    usage_errors, aborts = _click_exceptions()
    try:
        with warnings.catch_warnings():  # restores showwarning when the command ends
            warnings.showwarning = _warning_lines(warnings.showwarning)
            warnings.simplefilter("always", BertkitWarning)  # each is a line of this run, said where it happens
            # Without standalone mode typer turns Ctrl-C into an exit code (130) and returns it.
            code = app(args=argv, standalone_mode=False)
    except BertkitError as exc:
        say(f"error: {exc}")
        sys.exit(1)
    except aborts:
        say("aborted")
        sys.exit(130)
    except usage_errors as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        code = 130
    if code == 130:
        say("interrupted")
    if isinstance(code, int) and code:
        sys.exit(code)


def _warning_lines(show_other):
    """A ``warnings.showwarning`` that prints bertkit's own warnings (rows left out, a fallback taken: what the
    API says with BertkitWarning, and a command says even under --quiet) as ``warning: ...`` lines, and passes
    other libraries' warnings to ``show_other``."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, BertkitWarning):
            say(f"warning: {message}")
        else:
            show_other(message, category, filename, lineno, file, line)

    return show


def _click_exceptions() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(usage errors, aborts) as raised by the installed typer: recent typer vendors click (typer._click),
    older typer raises click's own exceptions."""
    usage: list[type[BaseException]] = []
    aborts: list[type[BaseException]] = [typer.Abort]
    try:
        from typer._click.exceptions import ClickException

        usage.append(ClickException)
    except ImportError:
        pass
    try:
        import click

        usage.append(click.ClickException)
        aborts.append(click.exceptions.Abort)
    except ImportError:
        pass
    return tuple(usage), tuple(aborts)
