"""``python -m behavhmm.cli``: the ``behavhmm`` command."""

from . import main

main()
