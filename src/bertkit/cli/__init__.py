"""The ``bertkit`` command line: one module per command group, each a thin shell over the public API."""
