"""``python -m fewcast`` is the ``fewcast`` command."""

from fewcast.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
