"""How a run option is declared once: a dataclass field that is also a command-line flag.

:func:`flag` declares a field with its default, a one-line help and (rarely) its flag spelling; the docstring
under the field is the full explanation. :class:`bertkit.config.TrainConfig` and
:class:`bertkit.read_options.ReadOptions` are declared this way, and the CLI builds its options from those fields
(``bertkit.cli.options.option`` reads them through :func:`option_field`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import field
from typing import Any, TypeVar

from bertkit.exceptions import ConfigError

T = TypeVar("T")


def flag(default: Any, help: str, *decls: str) -> Any:
    """A dataclass field that is also a command-line option: ``default``, the option's one-line ``help`` and,
    where the flag is not simply ``--field-name``, its ``decls`` (e.g. ``"--freeze-encoder"``: no ``--no-`` form)."""
    return field(default=default, metadata={"help": help, "decls": decls})


def option_field(owner: type, name: str) -> dataclasses.Field:
    """The field ``name`` of the dataclass ``owner``, declared with :func:`flag` (ConfigError otherwise)."""
    found = {f.name: f for f in dataclasses.fields(owner)}.get(name)
    if found is None or "help" not in found.metadata:
        raise ConfigError(f"{owner.__name__}.{name} is not an option declared with flag()")
    return found


def from_values(owner: type[T], values: dict[str, Any]) -> T:
    """An ``owner`` dataclass built from the keys of ``values`` that are its fields (other keys are ignored)."""
    names = {f.name for f in dataclasses.fields(owner)}
    return owner(**{k: v for k, v in values.items() if k in names})


def in_parameter_terms(message: str, owner: type) -> str:
    """``message`` with the command-line spellings of ``owner``'s options (``--learning-rate``, a field's
    ``decls``) replaced by their Python names (``learning_rate``): the same check, said to an API caller."""
    for found in dataclasses.fields(owner):
        if "help" not in found.metadata:
            continue
        spellings = found.metadata["decls"] or (f"--{found.name.replace('_', '-')}",)
        for spelling in spellings:
            for flag_text in spelling.split("/"):  # "--export/--no-export"
                flag_text = flag_text.strip()
                if flag_text.startswith("--"):
                    message = re.sub(rf"(?<![\w-]){re.escape(flag_text)}(?![\w-])", found.name, message)
    return re.sub(r"; config key '[^']*'", "", message)  # the name is the parameter's already
