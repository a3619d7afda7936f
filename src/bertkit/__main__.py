"""``python -m bertkit ...``: the ``bertkit`` command line (also how ``torchrun -m bertkit train`` starts it)."""

from bertkit.cli import main

main()
