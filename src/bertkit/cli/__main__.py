"""``python -m bertkit.cli``: the same command line as ``bertkit``."""

from bertkit.cli import main

if __name__ == "__main__":
    main()
