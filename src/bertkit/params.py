"""The scikit-learn estimator protocol shared by bertkit's estimators: every ``__init__`` argument is a
parameter, stored unchanged under its own name, so ``get_params``/``set_params``/``sklearn.clone`` work; the
estimator tags let scikit-learn's pipelines, cross-validation and searches take them; ``repr`` shows the
parameters set. scikit-learn is imported only when it asks for the tags."""

from __future__ import annotations

import inspect
from typing import Any, Self

from bertkit.exceptions import ConfigError


class ParamsMixin:
    """``get_params`` and ``set_params`` from the ``__init__`` signature, ``__repr__`` and the scikit-learn tags
    (as scikit-learn's BaseEstimator gives them)."""

    _estimator_type: str | None = None
    """"classifier", "regressor", "transformer" or None: what scikit-learn takes the estimator for (read by
    scikit-learn before 1.6 as this attribute, from 1.6 through :meth:`__sklearn_tags__`)."""

    def __sklearn_tags__(self) -> Any:
        """Tags for scikit-learn >= 1.6 (``sklearn.utils.get_tags``): the estimator type; inputs are texts."""
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags, TransformerTags

        kind = self._estimator_type
        return Tags(
            estimator_type=kind,
            target_tags=TargetTags(required=kind in ("classifier", "regressor")),
            transformer_tags=TransformerTags() if kind == "transformer" else None,
            classifier_tags=ClassifierTags() if kind == "classifier" else None,
            regressor_tags=RegressorTags() if kind == "regressor" else None,
            input_tags=InputTags(one_d_array=True, two_d_array=False, string=True),
        )

    def __repr__(self) -> str:
        """``Name(param=value, ...)`` with the parameters that differ from their defaults."""
        defaults = inspect.signature(type(self).__init__).parameters
        shown = [
            f"{name}={value!r}"
            for name, value in self.get_params().items()
            if defaults[name].default is inspect.Parameter.empty or not _same(value, defaults[name].default)
        ]
        return f"{type(self).__name__}({', '.join(shown)})"

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


def _same(value: Any, default: Any) -> bool:
    try:
        return bool(value == default) and type(value) is type(default)
    except Exception:  # noqa: BLE001 - an array-like parameter has no single truth value: show it
        return False
