"""The scikit-learn parameter protocol shared by bertkit's estimators: every ``__init__`` argument is a
parameter, stored unchanged under its own name, so ``get_params``/``set_params``/``sklearn.clone`` work."""

from __future__ import annotations

import inspect
from typing import Any, Self

from bertkit.exceptions import ConfigError


class ParamsMixin:
    """``get_params`` and ``set_params`` from the ``__init__`` signature (as in scikit-learn's BaseEstimator)."""

    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ConfigError(f"unknown parameter {name!r}; valid parameters: {sorted(valid)}")
            setattr(self, name, value)
        return self
