"""Errors raised by bertkit.

Every error a user can cause is a :class:`BertkitError`; the CLI prints its message on one line and exits 1,
the service maps :class:`DataError` and :class:`ConfigError` to HTTP 422.

    BertkitError
    ├── ConfigError        an argument or flag value is not allowed
    ├── DataError          an input file or in-memory data set is unreadable or inconsistent
    ├── ModelLoadError     a checkpoint (hub id, folder or alias) cannot be resolved or loaded
    └── NotFittedError     predict/score/save called before fit or load

Messages follow one shape: what was wrong, where (file, line, column), what is allowed, what was given.
"""

from __future__ import annotations


class BertkitError(Exception):
    """Base class of every error bertkit raises on purpose."""


class ConfigError(BertkitError, ValueError):
    """An argument or option value is not allowed."""


class DataError(BertkitError, ValueError):
    """Input data is missing, unreadable or inconsistent."""


class ModelLoadError(BertkitError, OSError):
    """A model could not be resolved or loaded."""


class NotFittedError(BertkitError, AttributeError):
    """The estimator was used before ``fit`` or ``load``."""


class BertkitWarning(UserWarning):
    """Warnings about questionable but accepted input (e.g. a tiny validation split)."""
